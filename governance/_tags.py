"""Dataset tags: CKAN 2.11's own tag rules, checked when a dataset is registered.

CKAN validates each tag with ``tag_length_validator`` (2 to 100 characters,
``ckan.model.MIN_TAG_LENGTH``/``MAX_TAG_LENGTH``) and ``tag_name_validator`` (``[\\w \\-.]*$``:
letters and digits of any script, ``_``, space, ``-`` and ``.``). A tag it refuses would only
be found after four-eyes approval, when publishing fails; so the same rules apply here, a
little stricter: no control, format (bidi overrides and marks, zero-width characters) or
other invisible character, not even the final newline CKAN's ``$`` lets through.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from governance._errors import InvalidInput, InvalidTag

TAG_MIN, TAG_MAX = 2, 100  # CKAN 2.11: ckan.model.MIN_TAG_LENGTH, MAX_TAG_LENGTH
_TAG_CHARACTERS = re.compile(r"[\w .-]+")  # CKAN's tag_name_validator, matched in full
# Control, format, surrogate, private-use and unassigned code points, and separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
# Letters (so \w) that draw nothing: the Hangul fillers.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def _invisible(char: str) -> bool:
    if char == " ":
        return False
    return char in _BLANK_LETTERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def _shown(tag: str) -> str:
    """The tag as a message quotes it: escaped (``repr`` escapes what does not print), and
    cut short."""
    return repr(tag if len(tag) <= 40 else tag[:40] + "…")


def _check_tag(tag: str, index: int) -> str:
    """The tag trimmed and in NFC; raises :class:`InvalidTag` naming the rule it breaks."""
    normal = unicodedata.normalize("NFC", tag).strip(" ")
    where = f"tag {index + 1} ({_shown(tag)})"
    hidden = next((char for char in normal if _invisible(char)), None)
    if hidden is not None:
        name = unicodedata.name(hidden, "unnamed")
        raise InvalidTag(
            f"{where} holds the invisible or control character U+{ord(hidden):04X} {name}",
            index=index,
            rule="invisible",
        )
    if not TAG_MIN <= len(normal) <= TAG_MAX:
        raise InvalidTag(
            f"{where} has {len(normal)} characters; a tag has {TAG_MIN} to {TAG_MAX}",
            index=index,
            rule="length",
        )
    if not _TAG_CHARACTERS.fullmatch(normal):
        raise InvalidTag(
            f"{where} may hold only letters, digits, spaces, '-', '_' and '.'",
            index=index,
            rule="characters",
        )
    return normal


def check_tags(tags: Sequence[str]) -> list[str]:
    """The tags as stored and published: each trimmed and in NFC, repeats dropped, in the
    order given. Raises :class:`InvalidTag` for the first tag CKAN would refuse (or that
    holds an invisible character), :class:`InvalidInput` when ``tags`` is not a list of
    texts."""
    if (
        isinstance(tags, str)
        or not isinstance(tags, Sequence)
        or not all(isinstance(tag, str) for tag in tags)
    ):
        raise InvalidInput("tags must be a list of texts")
    kept: list[str] = []
    for index, tag in enumerate(tags):
        normal = _check_tag(tag, index)
        if normal not in kept:
            kept.append(normal)
    return kept


__all__ = ["check_tags"]
