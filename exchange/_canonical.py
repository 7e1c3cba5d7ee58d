"""Canonical bytes: RFC 8785 (JSON Canonicalization Scheme) over NFC-normalised strings.

RFC 8785 leaves Unicode normalisation to the application; Tabadul normalises every string
(object keys and values) to NFC first, so the same text typed in another normal form signs and
verifies the same. For values without floats, integers beyond 2**53 or keys outside the Basic
Multilingual Plane (whose UTF-16 order differs from code point order), ``orjson`` with sorted
keys writes exactly the RFC 8785 bytes, far faster than a general implementation; a property
test checks it against the ``rfc8785`` package, which handles everything else.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import orjson
import rfc8785

from exchange._errors import Malformed

_SAFE_INT = 2**53 - 1


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _nfc(text: str) -> str:
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def _prepare(value: Any) -> tuple[Any, bool]:
    """Return ``(value with NFC strings, fast path allowed)``."""
    if isinstance(value, str):
        return _nfc(value), True
    if isinstance(value, bool) or value is None:
        return value, True
    if isinstance(value, int):
        return value, -_SAFE_INT <= value <= _SAFE_INT
    if isinstance(value, float):
        return value, False
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        simple = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise Malformed(f"object keys must be strings, not {type(key).__name__}")
            norm_key = _nfc(key)
            if norm_key in out:
                raise Malformed(f"key {norm_key!r} appears twice after NFC normalisation")
            if not key.isascii() and any(ord(ch) > 0xFFFF for ch in key):
                simple = False
            out[norm_key], item_simple = _prepare(item)
            simple = simple and item_simple
        return out, simple
    if isinstance(value, list | tuple):
        items = []
        simple = True
        for item in value:
            prepared, item_simple = _prepare(item)
            items.append(prepared)
            simple = simple and item_simple
        return items, simple
    raise Malformed(f"{type(value).__name__} has no JSON form")


def canonical(value: Any) -> bytes:
    """The canonical bytes of a JSON value; raises :class:`Malformed` if it has none
    (non-string keys, NaN, lone surrogates, non-JSON types)."""
    prepared, simple = _prepare(value)
    try:
        if simple:
            return _dumps(prepared)
        return bytes(rfc8785.dumps(prepared))
    except (TypeError, ValueError, UnicodeEncodeError, rfc8785.CanonicalizationError) as exc:
        raise Malformed(f"value has no canonical JSON form: {exc}") from exc


def canonical_flat(value: dict[str, Any]) -> bytes:
    """:func:`canonical` for an object already checked to hold only ASCII keys and strings,
    small integers, booleans, null and such objects (an envelope header after parsing): with
    no non-ASCII text no normalisation can apply, so sorted-key JSON is the answer. Raises
    :class:`Malformed` if the object holds non-ASCII text after all."""
    try:
        text = _dumps(value)
    except (TypeError, ValueError) as exc:
        raise Malformed(f"value has no canonical JSON form: {exc}") from exc
    if not text.isascii():
        raise Malformed("this object must hold ASCII text only")
    return text


def canonical_record(value: dict[str, Any]) -> bytes:
    """:func:`canonical` for a flat object of strings, integers below 2**53 and nulls (a log
    record): sorted-key JSON when it is pure ASCII, the general path otherwise."""
    try:
        text = _dumps(value)
    except (TypeError, ValueError):  # e.g. a lone surrogate: the general path explains
        return canonical(value)
    if text.isascii() and all(
        not isinstance(v, int) or -_SAFE_INT <= v <= _SAFE_INT for v in value.values()
    ):
        return text
    return canonical(value)
