# ruff: noqa: RUF001, RUF002 - Arabic letters are the point of these terms, not look-alikes
"""Column-name hints: what a header says about its column, in Arabic, French and English.

A header is normalised before it is compared (``normalise_header``): camelCase and
letter/digit boundaries are split, accents and Arabic diacritics are dropped (NFKD, then every
combining mark, which also turns أ إ آ into ا), tatweel is removed, ة becomes ه and ى becomes ي,
case is folded and every run of separators (space, ``_``, ``-``, ``.``, ``/``...) becomes one
space. A hint matches when one of its phrases appears as whole words in the normalised header
and none of its exclusions does (``nom de la commune`` names a place, not a person).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

PERSON_NAME = "person-name"
BIRTH_DATE = "birth-date"
PHONE = "phone"
EMAIL = "email"
ADDRESS = "address"
NATIONAL_ID = "national-id"
BANK_ACCOUNT = "bank-account"
PASSPORT = "passport"

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=\D)(?=\d)|(?<=\d)(?=\D)")
_SEPARATORS = re.compile(r"[\W_]+")
_ARABIC = str.maketrans({"\u0640": None, "ة": "ه", "ى": "ي"})


def normalise_header(name: str) -> str:
    """``"Date_de_Naissance"`` -> ``"date de naissance"``;
    ``"الإسم الشخصـي"`` -> ``"الاسم الشخصي"``."""
    spaced = _CAMEL.sub(" ", name)
    decomposed = unicodedata.normalize("NFKD", spaced)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_SEPARATORS.sub(" ", bare.translate(_ARABIC).casefold()).split())


@lru_cache(maxsize=64)
def _phrases(terms: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f" {normalise_header(term)} " for term in terms)


@dataclass(frozen=True, slots=True)
class ColumnHint:
    """A PII category suggested by a column's name (``header-phone`` for ``téléphone``)."""

    category: str
    terms: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"header-{self.category}"

    def match(self, column_name: str) -> bool:
        """True when the normalised name holds one of the terms as whole words and no
        exclusion."""
        padded = f" {normalise_header(column_name)} "
        if any(phrase in padded for phrase in _phrases(self.exclude)):
            return False
        return any(phrase in padded for phrase in _phrases(self.terms))


_NOT_A_PERSON = (
    # fr / en
    "entreprise", "societe", "company", "business", "organisation", "organization",
    "etablissement", "ville", "city", "commune", "province", "region", "pays", "country",
    "produit", "product", "fichier", "file", "dataset", "banque", "bank", "agence", "agency",
    "service", "ministere", "ministry", "ecole", "school", "rue", "street", "domaine",
    "domain", "host", "colonne", "column", "champ", "field", "categorie", "category", "type",
    "lieu", "place",
    # ar
    "الشركه", "المؤسسه", "المدينه", "الجماعه", "الاقليم", "الجهه", "البنك", "المنتوج",
    "الملف", "الوزاره", "المصلحه", "المدرسه", "الشارع", "مكان",
)  # fmt: skip

HINTS: tuple[ColumnHint, ...] = (
    ColumnHint(
        PERSON_NAME,
        (
            "name",
            "full name",
            "fullname",
            "first name",
            "firstname",
            "given name",
            "last name",
            "lastname",
            "surname",
            "family name",
            "forename",
            "middle name",
            "nom",
            "prenom",
            "nom complet",
            "nom de famille",
            "nom et prenom",
            "patronyme",
            "الاسم",
            "اسم",
            "الاسم الكامل",
            "الاسم الشخصي",
            "الاسم العائلي",
            "النسب",
            "نسب",
            "اللقب",
        ),
        exclude=_NOT_A_PERSON,
    ),
    ColumnHint(
        BIRTH_DATE,
        (
            "birth date",
            "birthdate",
            "date of birth",
            "dob",
            "birthday",
            "born",
            "date de naissance",
            "date naissance",
            "naissance",
            "ne le",
            "nee le",
            "ddn",
            "تاريخ الازدياد",
            "تاريخ الميلاد",
            "تاريخ الولاده",
            "الازدياد",
            "الميلاد",
        ),
        exclude=("lieu", "place", "birthplace", "مكان"),
    ),
    ColumnHint(
        PHONE,
        (
            "phone",
            "telephone",
            "tel",
            "mobile",
            "gsm",
            "portable",
            "cellphone",
            "cell",
            "fax",
            "phone number",
            "numero de telephone",
            "الهاتف",
            "هاتف",
            "المحمول",
            "الجوال",
            "النقال",
            "رقم الهاتف",
        ),
    ),
    ColumnHint(
        EMAIL,
        (
            "email",
            "e mail",
            "mail",
            "courriel",
            "adresse electronique",
            "adresse mail",
            "البريد الالكتروني",
            "البريد",
            "الايميل",
        ),
    ),
    ColumnHint(
        ADDRESS,
        (
            "address",
            "adresse",
            "addr",
            "street address",
            "domicile",
            "residence",
            "lieu de naissance",
            "place of birth",
            "birthplace",
            "العنوان",
            "عنوان",
            "السكن",
            "محل السكني",
            "مكان الازدياد",
            "مكان الولاده",
        ),
        exclude=("mail", "email", "electronique", "ip", "mac", "url", "web", "الالكتروني"),
    ),
    ColumnHint(
        NATIONAL_ID,
        (
            "cin",
            "cnie",
            "national id",
            "national identity",
            "id card",
            "identity card",
            "identity number",
            "carte nationale",
            "carte d identite",
            "numero cin",
            "nni",
            "رقم البطاقه الوطنيه",
            "البطاقه الوطنيه",
            "بطاقه التعريف",
            "رقم التعريف الوطني",
        ),
    ),
    ColumnHint(
        BANK_ACCOUNT,
        (
            "iban",
            "rib",
            "bank account",
            "account number",
            "compte bancaire",
            "numero de compte",
            "الحساب البنكي",
            "رقم الحساب",
            "الحساب البنكي",
        ),
    ),
    ColumnHint(
        PASSPORT,
        ("passport", "passeport", "passport number", "جواز السفر", "جواز", "رقم جواز السفر"),
    ),
)


def hints_for(column_name: str, hints: tuple[ColumnHint, ...] = HINTS) -> frozenset[str]:
    """The categories ``column_name`` suggests (empty for ``montant`` or ``code_region``)."""
    return frozenset(hint.category for hint in hints if hint.match(column_name))
