"""Each detector and column hint on its own: positives, lookalike negatives, and agreement
with the libraries whose rules the fast paths copy."""

import random
from datetime import date

import phonenumbers
import pytest
from stdnum.iso7064 import mod_97_10

from governance.pii import (
    HINTS,
    BirthDate,
    ColumnEvidence,
    EmailAddress,
    Iban,
    MoroccanRib,
    NationalIdCard,
    PersonName,
    PhoneNumber,
    Screener,
    hints_for,
    is_valid_rib,
    normalise_header,
)
from governance.pii._detectors import _mod97
from tests.governance.pii import generate


@pytest.mark.parametrize("value", ["BE123456", "A123456", "be 123456", "K12345", " JA654321 "])
def test_national_id_matches_cin_and_cnie_numbers(value):
    """One or two letters then five or six digits, any case, an optional space."""
    assert NationalIdCard().match(value)


@pytest.mark.parametrize("value", ["AB1234", "ABC123456", "A100", "X-12", "123456", "AB1234567"])
def test_national_id_ignores_short_codes_and_other_shapes(value):
    """Product, room and line codes are not identity card numbers."""
    assert not NationalIdCard().match(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0612345678", True),
        ("06 12 34 56 78", True),
        ("06-12-34-56-78", True),
        ("+212 6 12 34 56 78", True),
        ("00212612345678", True),
        ("0537123456", True),
        ("+33 6 12 34 56 78", True),
        ("0123456789", False),
        ("612345678", False),
        ("5123456789", False),
        ("0012345678", False),
    ],
)
def test_phone_matches_what_phonenumbers_validates(value, expected):
    """National and international forms; bare digits are not phone numbers."""
    assert PhoneNumber("MA").match(value) is expected


@pytest.mark.parametrize("region", ["MA", "FR"])
def test_phone_fast_path_agrees_with_phonenumbers(region):
    """On random national and international numbers the detector and
    ``phonenumbers.is_valid_number`` give the same verdict."""
    rng = random.Random(5)  # noqa: S311 - seeded test data
    detector = PhoneNumber(region)
    cc = str(phonenumbers.country_code_for_region(region))
    for _ in range(3000):
        national = f"{rng.randrange(10**8, 10**9)}"
        for value in ("0" + national, "+" + cc + national, "00" + cc + national):
            expected = phonenumbers.is_valid_number(phonenumbers.parse(value, region))
            assert detector.match(value) is expected, value


@pytest.mark.parametrize("value", ["a.b@example.ma", "karim.tazi+dossier@gov.ma", "X@Y.COM"])
def test_email_matches_addresses(value):
    assert EmailAddress().match(value)


@pytest.mark.parametrize("value", ["a.b@", "@gov.ma", "a b@gov.ma", "karim at gov.ma", "a@b"])
def test_email_ignores_non_addresses(value):
    assert not EmailAddress().match(value)


def test_iban_checks_country_format_and_check_digits():
    """Valid German and Moroccan IBANs match; one changed digit does not."""
    rng = random.Random(3)  # noqa: S311 - seeded test data
    for make in (generate.german_iban, generate.moroccan_iban):
        number = make(rng)
        assert Iban().match(number)
        assert Iban().match(" ".join(number[i : i + 4] for i in range(0, len(number), 4)))
        wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
        assert not Iban().match(wrong)
    assert not Iban().match("FR00 1234 5678 9012 3456 7890 123")


def test_rib_key_is_the_documented_mod_97_check():
    """``is_valid_rib`` agrees with ``key = 97 - (first 22 digits x 100 mod 97)`` and with
    stdnum's ISO 7064 remainder; our remainder equals stdnum's."""
    rng = random.Random(4)  # noqa: S311 - seeded test data
    for _ in range(500):
        good = generate.rib(rng)
        bad = generate.rib(rng, valid=False)
        assert int(good[22:]) == 97 - int(good[:22]) * 100 % 97
        assert is_valid_rib(good)
        assert mod_97_10.checksum(good) == 0
        assert not is_valid_rib(bad)
        assert MoroccanRib().match(" ".join(good[i : i + 4] for i in range(0, 24, 4)))
        mixed = f"MA{rng.randrange(100):02d}{good}"
        assert _mod97(mixed) == mod_97_10.checksum(mixed)
    assert not is_valid_rib("0" * 24)


def test_birth_date_formats_and_range():
    """Day-first, month-first (when unambiguous) and ISO dates from 1900 to today."""
    detector = BirthDate(today=date(2026, 11, 22))
    assert detector.parse("12/05/1987") == date(1987, 5, 12)
    assert detector.parse("05/31/1987") == date(1987, 5, 31)
    assert detector.parse("1987-05-12T00:00:00") == date(1987, 5, 12)
    assert detector.parse("12.05.1987") == date(1987, 5, 12)
    for value in ("31/02/1987", "12/05/1899", "01/01/2027", "2026-12-01", "1987", "12/05/87"):
        assert not detector.match(value), value


def test_birth_date_column_rule():
    """Hinted columns always count; unhinted ones only when most values are dates and the
    header names no other date."""
    detector = BirthDate()

    def evidence(name, matches, hints=frozenset()):
        return ColumnEvidence(name, normalise_header(name), hints, 100, matches)

    assert detector.reportable(evidence("date de naissance", 1, frozenset({"birth-date"})))
    assert detector.reportable(evidence("col7", 90))
    assert not detector.reportable(evidence("col7", 50))
    assert not detector.reportable(evidence("date_operation", 100))
    assert not detector.reportable(evidence("تاريخ العملية", 100))


def test_person_name_needs_a_name_like_header():
    """Alphabetic values (Latin or Arabic) are names only under a name hint."""
    detector = PersonName()
    for value in ("Fatima Zahra El Idrissi", "O'Neill", "Jean-Pierre", "محمد بن علي", "Anaïs"):
        assert detector.match(value), value
    for value in ("A", "R2D2", "12", "a_b"):
        assert not detector.match(value), value
    hinted = ColumnEvidence("nom", "nom", frozenset({"person-name"}), 10, 9)
    assert detector.reportable(hinted)
    assert not detector.reportable(ColumnEvidence("ville", "ville", frozenset(), 10, 10))


@pytest.mark.parametrize(
    ("header", "category"),
    [
        ("Nom", "person-name"),
        ("PRÉNOM", "person-name"),
        ("first_name", "person-name"),
        ("lastName", "person-name"),
        ("nom de famille", "person-name"),
        ("الاسم", "person-name"),
        ("الإسم الشخصي", "person-name"),
        ("الاســـم", "person-name"),
        ("النَّسَب", "person-name"),
        ("date_de_naissance", "birth-date"),
        ("Date of Birth", "birth-date"),
        ("تاريخ الازدياد", "birth-date"),
        ("تاريخ الميلاد", "birth-date"),
        ("Téléphone", "phone"),
        ("tel2", "phone"),
        ("الهاتف", "phone"),
        ("E-mail", "email"),
        ("courriel", "email"),
        ("البريد الإلكتروني", "email"),
        ("adresse", "address"),
        ("العنوان", "address"),
        ("N° CIN", "national-id"),
        ("CNIE", "national-id"),
        ("carte nationale", "national-id"),
        ("رقم البطاقة الوطنية", "national-id"),
        ("IBAN", "bank-account"),
        ("rib", "bank-account"),
        ("passeport", "passport"),
        ("جواز السفر", "passport"),
    ],
)
def test_column_hints_in_three_languages(header, category):
    """Case, accents, Arabic diacritics and tatweel, and separators do not matter."""
    assert category in hints_for(header)


@pytest.mark.parametrize(
    "header",
    ["montant", "nom de la commune", "nom_entreprise", "nombre", "telemetry", "ville", "المبلغ"],
)
def test_column_hints_ignore_other_headers(header):
    assert "person-name" not in hints_for(header)
    assert hints_for(header) <= {"address"}


def test_address_hint_excludes_email_address():
    """'adresse électronique' is an e-mail column, not a postal address."""
    assert hints_for("adresse électronique") == {"email"}


def test_hint_names_are_stable():
    assert {h.name for h in HINTS} >= {"header-phone", "header-person-name", "header-passport"}


def test_screener_rejects_shapes_with_capturing_groups():
    class Bad(NationalIdCard):
        __slots__ = ()
        shape = r"(A)\d+"

    with pytest.raises(ValueError, match="groups"):
        Screener([Bad()])
