"""What a cell's text is to a detector and to a spreadsheet.

:func:`plain` is the text detectors read: compatibility forms folded (NFKC: full-width
letters and digits and signs, no-break spaces), every Unicode space a plain space, format
characters dropped (zero-width spaces and joiners, bidirectional marks, soft hyphens: they
can split a number without showing), every decimal digit an ASCII digit (``٠٦١٢`` is
``0612``) and every dash a hyphen.

:func:`is_formula` says whether a spreadsheet opening the CSV would take the cell for a
formula (CSV injection, OWASP): after leading spaces, tabs and line breaks, it starts with
``=`` or ``@``, or with ``+`` or ``-`` and is not a plain signed number (nor, after ``+``, the
digits and punctuation of a phone number). :func:`neutralise` prefixes such a cell with an
apostrophe, OWASP's advice, so that it is shown as text.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

__all__ = ["is_formula", "neutralise", "plain"]

FORMULA_START = frozenset("=+-@")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?%?")
_PHONE_LIKE = re.compile(r"\+(?:[ ().-]*\d){8,}[ ().-]*")
_BMP = 0x10000


@cache
def _folding() -> dict[int, str | None]:
    """The translation :func:`plain` applies after NFKC, built on first use (it walks the
    Basic Multilingual Plane once)."""
    table: dict[int, str | None] = {0x2212: "-"}  # MINUS SIGN
    for code in range(0x80, _BMP):
        char = chr(code)
        kind = unicodedata.category(char)
        if kind == "Zs":
            table[code] = " "
        elif kind == "Cf":
            table[code] = None
        elif kind == "Nd":
            table[code] = str(unicodedata.digit(char))
        elif kind == "Pd":
            table[code] = "-"
    return table


def plain(text: str) -> str:
    """``text`` as detectors read it (see the module docstring); ASCII text is unchanged."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_folding())


def is_formula(cell: str) -> bool:
    """True when a spreadsheet would take ``cell`` for a formula (see the module docstring).
    A lone ``=``, ``+``, ``-`` or ``@`` is not one."""
    text = plain(cell).strip()
    if len(text) < 2 or text[0] not in FORMULA_START:
        return False
    if text[0] in "=@":
        return True
    if _NUMBER.fullmatch(text):
        return False
    return not (text[0] == "+" and _PHONE_LIKE.fullmatch(text))


def neutralise(cell: str) -> str:
    """``cell`` prefixed with an apostrophe when it is a formula; else ``cell`` itself."""
    return "'" + cell if is_formula(cell) else cell
