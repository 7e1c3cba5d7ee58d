"""Value detectors: small objects that say whether one cell looks like one kind of PII.

Each detector has a stable ``name`` (used in finding ids), the PII ``category`` it reveals, a
``shape`` (a regular expression for a cheap structural pre-check, full-matched on the stripped
value) and ``match(value)``, the full check. When ``shape_is_check`` is true the shape alone
decides and the scanner does not call ``match``. ``reportable`` decides, once a column has been
read, whether its matches make a finding: a phone number anywhere is one, an alphabetic value
is a personal name only in a column whose header says so.

Identifiers are also found inside text (``Tel: 06 12 34 56 78``, ``a@gov.ma; b@gov.ma``):
``text_shape`` is the identifier with its own boundaries (look-arounds that keep it from
starting or ending inside a longer word or number), or None for detectors that judge whole
cells only (birth dates, names); ``count_in(candidate)`` says how many identifiers a text
match holds (0 when it fails the check). A candidate may take in a neighbouring group of
digits (``0612345678 12 rue``), so the detectors whose identifiers are groups of digits
check the longest runs of whole groups inside it as well.

The scanner joins the shapes of its detectors into one regular expression, so a cell that
looks like nothing costs one C-level match; the libraries (``phonenumbers``, ``stdnum``) run
only on cells that have the right shape. Cells are read as :func:`governance._cells.plain`
text: no-break and other Unicode spaces, full-width forms, zero-width characters and
non-ASCII digits do not hide an identifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc
from stdnum import iban as stdnum_iban
from stdnum import luhn

from governance.pii._hints import (
    BANK_ACCOUNT,
    BIRTH_DATE,
    EMAIL,
    NATIONAL_ID,
    PERSON_NAME,
    PHONE,
)


@dataclass(frozen=True, slots=True)
class ColumnEvidence:
    """What a detector may weigh once a column is read: counts and the header, no values."""

    column: str
    normalised_name: str
    hints: frozenset[str]
    non_empty: int
    matches: int

    @property
    def share(self) -> float:
        return self.matches / self.non_empty if self.non_empty else 0.0


class ValueDetector(Protocol):
    """One kind of PII in cell values; see the module docstring."""

    @property
    def name(self) -> str: ...

    @property
    def category(self) -> str: ...

    @property
    def shape(self) -> str: ...

    @property
    def shape_is_check(self) -> bool: ...

    @property
    def text_shape(self) -> str | None: ...

    def match(self, value: str) -> bool: ...

    def count_in(self, candidate: str) -> int: ...

    def reportable(self, evidence: ColumnEvidence) -> bool: ...


def _count_runs(
    text: str, groups: list[tuple[int, int]], valid: Callable[[str], bool], most: int
) -> int:
    """How many non-overlapping runs of whole ``groups`` (spans of ``text``, in order) are
    ``valid``, taking from each group the longest valid run of at most ``most`` groups."""
    found = 0
    start = 0
    while start < len(groups):
        for end in range(min(len(groups), start + most), start, -1):
            if valid(text[groups[start][0] : groups[end - 1][1]]):
                found += 1
                start = end
                break
        else:
            start += 1
    return found


_DIGIT_GROUPS = re.compile(r"\d+")
_WORDS = re.compile(r"[^ ]+")


class _AnyMatch:
    """Base for detectors whose matches are findings wherever they occur; inside text, a
    candidate counts once when it passes ``match``."""

    __slots__ = ()
    shape_is_check = False
    text_shape: str | None = None

    def match(self, value: str) -> bool:
        raise NotImplementedError

    def count_in(self, candidate: str) -> int:
        return 1 if self.match(candidate) else 0

    def reportable(self, evidence: ColumnEvidence) -> bool:
        return evidence.matches > 0


class NationalIdCard(_AnyMatch):
    """Moroccan national identity card numbers (CIN, and CNIE since 2008): one or two letters
    then five or six digits (``BE123456``, ``A123456``, ``be 123456``, ``BE.123456``). Shorter
    codes (``A100``, ``AB1234``) read as room, line or product codes and are left alone.
    Inside text the letters are capitals when a space, dot or hyphen follows them (``la
    commune a 12345 habitants`` holds no card number)."""

    __slots__ = ()
    name = "national-id"
    category = NATIONAL_ID
    shape = r"[A-Za-z]{1,2}[ .-]?\d{5,6}"
    text_shape = r"(?<![A-Za-z0-9])(?:[A-Z]{1,2}[ .-]?|[A-Za-z]{1,2})\d{5,6}(?![A-Za-z0-9])"
    shape_is_check = True
    _pattern = re.compile(shape)

    def match(self, value: str) -> bool:
        return self._pattern.fullmatch(value.strip()) is not None


class EmailAddress(_AnyMatch):
    """E-mail addresses: a plain local part, ``@``, a dotted domain ending in letters."""

    __slots__ = ()
    name = "email"
    category = EMAIL
    # the possessive look-ahead fails at once, without backtracking, on cells with no @
    shape = (
        r"(?=[^@]*+@)[A-Za-z0-9._%+'-]{1,64}"
        r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}"
    )
    text_shape = (
        r"(?<![A-Za-z0-9._%+'-])[A-Za-z0-9._%+'-]{1,64}"
        r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
    )
    shape_is_check = True
    _pattern = re.compile(shape)

    def match(self, value: str) -> bool:
        return self._pattern.fullmatch(value.strip()) is not None


def _mod97(text: str) -> int:
    """ISO 7064 MOD 97-10 remainder of digits and letters (A=10 ... Z=35); the same function as
    ``stdnum.iso7064.mod_97_10.checksum``, without its per-character conversion (tests compare
    the two)."""
    if not text.isdigit():
        text = "".join(c if c.isdigit() else str(int(c, 36)) for c in text)
    return int(text) % 97


def is_valid_rib(digits: str) -> bool:
    """A Moroccan RIB: 24 digits, bank (3), city (3), account (16), key (2), where
    ``key = 97 - (first 22 digits x 100 mod 97)``, so the whole number is 0 modulo 97 and the
    key lies in 01..97 (the RIB key of the French CFONB standard Morocco adopted)."""
    if len(digits) != 24 or not digits.isdigit():
        return False
    return 1 <= int(digits[22:]) <= 97 and int(digits) % 97 == 0 and digits.strip("0") != ""


class Iban(_AnyMatch):
    """International bank account numbers, checked with ``stdnum.iban`` (country format and
    check digits). Moroccan IBANs (``MA`` + 2 check digits + the 24-digit RIB) are not in
    stdnum's registry: their IBAN check digits (ISO 7064) and RIB key are checked here."""

    __slots__ = ()
    name = "iban"
    category = BANK_ACCOUNT
    shape = r"[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}"
    text_shape = r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"

    def count_in(self, candidate: str) -> int:
        words = [m.span() for m in _WORDS.finditer(candidate)]
        return _count_runs(candidate, words, self.match, len(words))

    def match(self, value: str) -> bool:
        compact = value.replace(" ", "").replace("-", "").upper()
        if compact.startswith("MA"):
            bban = compact[4:]
            return (
                len(compact) == 28
                and is_valid_rib(bban)
                and _mod97(bban + "2210" + compact[2:4]) == 1
            )
        return bool(stdnum_iban.is_valid(compact))


class MoroccanRib(_AnyMatch):
    """Moroccan RIBs (relevé d'identité bancaire): 24 digits, spaces allowed, with a valid key
    (see ``is_valid_rib``)."""

    __slots__ = ()
    name = "rib"
    category = BANK_ACCOUNT
    shape = r"\d[\d ]{22,28}\d"
    text_shape = r"(?<!\d)(?<!\d )\d[\d ]{22,28}\d(?!\d)(?! \d)"

    def count_in(self, candidate: str) -> int:
        groups = [m.span() for m in _DIGIT_GROUPS.finditer(candidate)]
        return _count_runs(candidate, groups, self.match, len(groups))

    def match(self, value: str) -> bool:
        return is_valid_rib(value.replace(" ", "").strip())


# Issuer identification number prefixes of the card schemes in use (ISO/IEC 7812), with the
# lengths each issues: Visa, Mastercard, American Express, Discover, JCB, Diners, UnionPay.
_CARD_PREFIXES = re.compile(
    r"4\d{12}(?:\d{3}){0,2}|(?:5[1-5]\d{2}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)\d{12}"
    r"|3[47]\d{13}|(?:6011|65\d{2}|64[4-9]\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}"
    r"|3(?:0[0-5]|[68]\d)\d{11,16}|62\d{14,17}"
)


class PaymentCard(_AnyMatch):
    """Payment card numbers: 13 to 19 digits, in groups separated by single spaces or hyphens
    or not, with the issuer prefix and length of a card scheme and a valid Luhn check digit
    (``4111 1111 1111 1111``)."""

    __slots__ = ()
    name = "card"
    category = BANK_ACCOUNT
    shape = r"\d(?:[ -]?\d){12,18}"
    text_shape = r"(?<!\d)(?<!\d[ -])\d(?:[ -]?\d){12,18}(?!\d)(?![ -]\d)"
    _separators = str.maketrans("", "", " -")

    def count_in(self, candidate: str) -> int:
        groups = [m.span() for m in _DIGIT_GROUPS.finditer(candidate)]
        return _count_runs(candidate, groups, self.match, len(groups))

    def match(self, value: str) -> bool:
        digits = value.strip().translate(self._separators)
        return (
            digits.isdigit()
            and _CARD_PREFIXES.fullmatch(digits) is not None
            and bool(luhn.is_valid(digits))
        )


@dataclass(frozen=True, slots=True)
class _Region:
    """The validity rules ``phonenumbers`` applies to one region's national numbers: the
    general pattern, then any number type's pattern (types with the same possible lengths are
    joined into one expression)."""

    leading_digits: re.Pattern[str] | None
    general: tuple[frozenset[int], re.Pattern[str]]
    types: tuple[tuple[frozenset[int], re.Pattern[str]], ...]

    @classmethod
    def of(cls, metadata: PhoneMetadata) -> _Region:
        def lengths(d: PhoneNumberDesc) -> frozenset[int]:
            return frozenset(d.possible_length or ())

        general = metadata.general_desc
        if general is None:  # every region's metadata has one; no pattern means no number
            general = PhoneNumberDesc(national_number_pattern="(?!)")
        kinds = (
            metadata.premium_rate, metadata.toll_free, metadata.shared_cost, metadata.voip,
            metadata.personal_number, metadata.pager, metadata.uan, metadata.voicemail,
            metadata.fixed_line, metadata.mobile,
        )  # fmt: skip
        by_lengths: dict[frozenset[int], list[str]] = {}
        for d in kinds:
            if d is not None and d.national_number_pattern is not None:
                by_lengths.setdefault(lengths(d), []).append(d.national_number_pattern)
        types = tuple(
            (length_set, re.compile("|".join(f"(?:{p})" for p in patterns)))
            for length_set, patterns in by_lengths.items()
        )
        leading = metadata.leading_digits
        return cls(
            re.compile(leading) if leading else None,
            (lengths(general), re.compile(general.national_number_pattern or "")),
            types,
        )

    def valid(self, national: str) -> bool:
        size = len(national)
        lengths, pattern = self.general
        if (lengths and size not in lengths) or pattern.fullmatch(national) is None:
            return False
        for type_lengths, type_pattern in self.types:
            if (not type_lengths or size in type_lengths) and type_pattern.fullmatch(national):
                return True
        return False


class PhoneNumber(_AnyMatch):
    """Phone numbers, as ``phonenumbers`` validates them: national forms of ``region``
    (``06 12 34 56 78``) and international forms of any country (``+212 6...``,
    ``00212 6...``, ``+33 6...``). Bare digit strings without a trunk ``0`` or a ``+``/``00``
    prefix are not taken for phone numbers (they are usually identifiers or amounts).

    The common forms of the region's own numbers are checked against the region's
    ``phonenumbers`` metadata directly (the same patterns and lengths
    ``is_valid_number`` uses, ten times faster than parsing); anything else goes through
    ``phonenumbers.parse`` and ``is_valid_number``.
    """

    __slots__ = ("_fast", "_international", "_prefix", "_region", "_regions")
    name = "phone"
    category = PHONE
    shape = r"(?:\+|00)\d[\d ().-]{6,20}|\(?0\d[\d ().-]{7,16}"
    text_shape = r"(?<![\w+@])(?:(?:\+|00)\d[\d ().-]{5,22}|\(?0\d[\d ().-]{6,18})[\d)](?!\d)"
    _noise = str.maketrans("", "", " ().-")
    _shape = re.compile(shape)
    _groups = re.compile(r"[+(]*\d+\)?")
    _most_groups = 9  # +212 (0)6 12 34 56 78 and the like

    def __init__(self, region: str = "MA") -> None:
        metadata = PhoneMetadata.metadata_for_region(region.upper())
        if metadata is None:
            raise ValueError(f"phonenumbers has no metadata for region {region!r}")
        self._region = region.upper()
        cc = str(metadata.country_code)
        self._international = ("+" + cc, "00" + cc)
        self._prefix = metadata.national_prefix
        # the fast path copies phonenumbers' rules only where parsing is a plain prefix strip
        parsing = metadata.national_prefix_for_parsing
        self._fast = parsing in (None, metadata.national_prefix) and (
            not metadata.national_prefix_transform_rule
        )
        code = metadata.country_code or 0
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())
        self._regions = tuple(
            _Region.of(md)
            for code in regions
            if (md := PhoneMetadata.metadata_for_region(code)) is not None
        )

    def count_in(self, candidate: str) -> int:
        groups = [m.span() for m in self._groups.finditer(candidate)]
        return _count_runs(candidate, groups, self.match, self._most_groups)

    def match(self, value: str) -> bool:
        value = value.strip()
        if self._shape.fullmatch(value) is None:
            return False
        digits = value if value.isdigit() else value.translate(self._noise)
        if not 8 <= len(digits) <= 18:
            return False
        national = self._national(digits) if self._fast else None
        if national is not None and national.isdigit():
            return self._valid_national(national)
        try:
            parsed = phonenumbers.parse(value, self._region)
        except phonenumbers.NumberParseException:
            return False
        return bool(phonenumbers.is_valid_number(parsed))

    def _national(self, digits: str) -> str | None:
        for international in self._international:
            if digits.startswith(international):
                rest = digits[len(international) :]
                return None if rest.startswith("0") else rest
        if self._prefix and digits.startswith(self._prefix) and not digits.startswith("00"):
            return digits[len(self._prefix) :]
        return None

    def _valid_national(self, national: str) -> bool:
        # phonenumbers' _region_code_for_number_from_list, then the type check
        for region in self._regions:
            if region.leading_digits is not None:
                if region.leading_digits.match(national):
                    return region.valid(national)
            elif region.valid(national):
                return True
        return False


_DAY_FIRST = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T].*)?")
_YEAR_FIRST = re.compile(r"(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})(?:[ T].*)?")
_OTHER_DATE_WORDS = frozenset(
    {
        "date", "jour", "day", "time", "timestamp", "created", "updated", "modified",
        "periode", "period", "mois", "month", "annee", "year", "تاريخ", "يوم", "الشهر", "السنه",
    }
)  # fmt: skip


class BirthDate:
    """Dates in a plausible birth range (1 January 1900 to ``today``), written
    ``dd/mm/yyyy``, ``dd-mm-yyyy``, ``dd.mm.yyyy`` (day first, as in Morocco and France;
    month first when day first is impossible) or ``yyyy-mm-dd`` (with an optional time).

    A column's dates are birth dates when its header says so (``date de naissance``,
    ``تاريخ الازدياد``...), or when at least 80 % of its values are such dates and its
    header names no other date (``date_operation``, ``تاريخ العملية``: event dates)."""

    __slots__ = ("_today",)
    name = "birth-date"
    category = BIRTH_DATE
    text_shape = None
    shape = (
        r"\d{1,2}[/.-]\d{1,2}[/.-]\d{4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?"
        r"|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?"
    )
    shape_is_check = False
    share_without_hint = 0.8

    def __init__(self, today: date | None = None) -> None:
        self._today = today or date.today()  # noqa: DTZ011 - a calendar day, not an instant

    def parse(self, value: str) -> date | None:
        """The date ``value`` holds, when it is one in the birth range; else None."""
        value = value.strip()
        if m := _DAY_FIRST.fullmatch(value):
            year, month, day = int(m[3]), int(m[2]), int(m[1])
            if month > 12 and day <= 12:  # month first: 05/31/1987
                month, day = day, month
        elif m := _YEAR_FIRST.fullmatch(value):
            year, month, day = int(m[1]), int(m[2]), int(m[3])
        else:
            return None
        if not 1900 <= year <= self._today.year:
            return None
        try:
            found = date(year, month, day)
        except ValueError:
            return None
        return found if found <= self._today else None

    def match(self, value: str) -> bool:
        return self.parse(value) is not None

    def count_in(self, candidate: str) -> int:
        return 1 if self.match(candidate) else 0

    def reportable(self, evidence: ColumnEvidence) -> bool:
        if evidence.matches == 0:
            return False
        if BIRTH_DATE in evidence.hints:
            return True
        other_date = not _OTHER_DATE_WORDS.isdisjoint(evidence.normalised_name.split())
        return not other_date and evidence.share >= self.share_without_hint


class PersonName:
    """Personal names: one to six words of letters, Latin (with accents) or Arabic, joined
    by spaces, hyphens or apostrophes (``Fatima Zahra El Idrissi``, ``O'Brien``,
    ``محمد بن علي``). Any alphabetic word has that shape, so a column's values are names only
    when its header is name-like and at least half of its values have the shape."""

    __slots__ = ()
    name = "person-name"
    category = PERSON_NAME
    text_shape = None
    shape = r"(?=..)[^\W\d_]{1,40}(?:(?: |-|'|\u2019|\. ?)[^\W\d_]{1,40}){0,5}"
    shape_is_check = True
    share_with_hint = 0.5
    _pattern = re.compile(shape)

    def match(self, value: str) -> bool:
        return self._pattern.fullmatch(value.strip()) is not None

    def count_in(self, candidate: str) -> int:
        return 1 if self.match(candidate) else 0

    def reportable(self, evidence: ColumnEvidence) -> bool:
        return PERSON_NAME in evidence.hints and evidence.share >= self.share_with_hint


def default_detectors(country: str = "MA") -> tuple[ValueDetector, ...]:
    """The shipped detectors, in the order the scanner tries them on a whole cell (the first
    whose shape and check pass claims it); ``country`` is the region of national phone
    numbers."""
    return (
        BirthDate(),
        NationalIdCard(),
        EmailAddress(),
        Iban(),
        MoroccanRib(),
        PhoneNumber(country),
        PaymentCard(),
        PersonName(),
    )
