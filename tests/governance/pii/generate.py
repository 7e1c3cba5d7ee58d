"""Seeded generated tables for PII screening tests: columns with known positives (labelled with
the detector that must claim each cell) and lookalike negatives, headers in Arabic, French
and English."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

FIRST_LATIN = ["Amina", "Youssef", "Fatima Zahra", "Mohamed", "Khadija", "Omar", "Salma",
               "Hamza", "Nadia", "Karim", "Zineb", "Jean-Pierre", "Anaïs", "Rachid"]  # fmt: skip
LAST_LATIN = ["Alaoui", "Bennani", "El Idrissi", "Tazi", "Berrada", "Chraibi", "Fassi",
              "Ouazzani", "Benjelloun", "O'Neill", "Lahlou", "Sqalli"]  # fmt: skip
FIRST_ARABIC = ["محمد", "فاطمة", "يوسف", "خديجة", "عمر", "سلمى", "حمزة", "زينب"]
LAST_ARABIC = ["العلوي", "بناني", "الإدريسي", "التازي", "برادة", "الشرايبي", "بن علي"]
CITIES = ["Rabat", "Casablanca", "Fès", "Marrakech", "Tanger", "Agadir", "Oujda", "Meknès",
          "الرباط", "الدار البيضاء", "فاس", "مراكش"]  # fmt: skip
STATUSES = ["actif", "inactif", "suspendu", "active", "closed", "نشط"]
COMMENTS = ["dossier complet", "en attente de pièces", "livré le 12 mai", "RAS",
            "à revoir en commission", "tout est en ordre", "لا شيء"]  # fmt: skip


@dataclass(frozen=True)
class Column:
    """One generated column: its header, its cells and, per cell, the detector that must
    claim it (None for cells that are not PII)."""

    header: str
    values: tuple[str, ...]
    labels: tuple[str | None, ...]


def rib(rng: random.Random, *, valid: bool = True) -> str:
    body = f"{rng.randrange(10**21, 10**22):022d}"
    key = 97 - int(body) * 100 % 97
    if not valid:
        key = key % 97 + 1  # any other key in 01..97
    return f"{body}{key:02d}"


def moroccan_iban(rng: random.Random) -> str:
    bban = rib(rng)
    check = 98 - int(bban + "221000") % 97
    return f"MA{check:02d}{bban}"


def german_iban(rng: random.Random) -> str:
    bban = f"{rng.randrange(10**17, 10**18):018d}"
    number = "DE" + stdnum_iban.calc_check_digits("DE00" + bban) + bban
    assert stdnum_iban.is_valid(number)
    return number


def spaced(value: str, rng: random.Random) -> str:
    return (
        " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if rng.random() < 0.3 else value
    )


def cin(rng: random.Random) -> str:
    letters = rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + rng.choice(["", "", "B", "E", "K", "J"])
    return f"{letters}{rng.randrange(10_000, 999_999)}"


def phone(rng: random.Random) -> str:
    national = rng.choice("67") + f"{rng.randrange(0, 10**8):08d}"
    if national[0] == "6" and national[1] == "8":
        national = "61" + national[2:]
    if national[0] == "7":
        national = "70" + national[2:]
    form = rng.randrange(5)
    if form == 0:
        return "0" + national
    if form == 1:
        return "0" + " ".join([national[0], *(national[i : i + 2] for i in range(1, 9, 2))])
    if form == 2:
        return "+212 " + national
    if form == 3:
        return "00212" + national
    while True:  # a French mobile number phonenumbers accepts
        number = "+33 6 " + " ".join(f"{rng.randrange(100):02d}" for _ in range(4))
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST_LATIN), rng.choice(LAST_LATIN)
    user = f"{first[0]}.{last}".lower().replace(" ", "").replace("'", "").replace("ï", "i")
    return f"{user}{rng.randrange(1000)}@{rng.choice(['gmail.com', 'menara.ma', 'gov.ma'])}"


def card(rng: random.Random) -> str:
    """A Visa or Mastercard number with a valid Luhn check digit, in groups of four or not."""
    body = rng.choice(["4", "51", "55", "2221"])
    body += "".join(str(rng.randrange(10)) for _ in range(15 - len(body)))
    digits = body + luhn.calc_check_digit(body)
    if rng.random() < 0.5:
        return " ".join(digits[i : i + 4] for i in range(0, 16, 4))
    return digits


def birth_date(rng: random.Random) -> str:
    y, m, d = rng.randrange(1935, 2008), rng.randrange(1, 13), rng.randrange(1, 29)
    return rng.choice([f"{d:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{d:02d}-{m:02d}-{y}"])


def person_name(rng: random.Random) -> str:
    if rng.random() < 0.35:
        return f"{rng.choice(FIRST_ARABIC)} {rng.choice(LAST_ARABIC)}"
    return rng.choice(
        [rng.choice(FIRST_LATIN), f"{rng.choice(FIRST_LATIN)} {rng.choice(LAST_LATIN)}"]
    )


Maker = Callable[[random.Random], str]


def any_iban(rng: random.Random) -> str:
    return spaced(rng.choice([moroccan_iban, german_iban])(rng), rng)


def amount(rng: random.Random) -> str:
    return f"{rng.randrange(0, 10**6)}.{rng.randrange(100):02d}"


def event_date(rng: random.Random) -> str:
    """A recent date: in the birth range, but under a header that names another date."""
    return f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/{rng.randrange(2022, 2026)}"


def product_code(rng: random.Random) -> str:
    return rng.choice(
        [
            f"AB{rng.randrange(1000, 9999)}",
            f"ABC{rng.randrange(10**5, 10**6)}",
            f"X-{rng.randrange(10, 99)}",
            f"R{rng.randrange(100, 9999)}",
        ]
    )


def reference(rng: random.Random) -> str:
    """Bare digits (phone-like), RIBs with a wrong key, an IBAN with wrong check digits."""
    return rng.choice(
        [
            f"{rng.randrange(5 * 10**9, 10**10)}",
            rib(rng, valid=False),
            f"{rng.randrange(10**6, 10**7)}",
            "FR00 1234 5678 9012 3456 7890 123",
        ]
    )


POSITIVE: dict[str, tuple[tuple[str, ...], Maker]] = {
    "national-id": (("CIN", "N° CNIE", "numéro carte nationale", "رقم البطاقة الوطنية"), cin),
    "phone": (("téléphone", "Phone number", "GSM", "رقم الهاتف"), phone),
    "email": (("email", "Courriel", "adresse électronique", "البريد الإلكتروني"), email),
    "iban": (("IBAN", "iban_beneficiaire"), any_iban),
    "rib": (("RIB", "numéro de compte", "رقم الحساب"), rib),
    "card": (("numéro de carte", "Card number", "رقم البطاقة البنكية"), card),
    "birth-date": (
        ("date de naissance", "Date of birth", "تاريخ الازدياد", "تاريخ الميلاد"),
        birth_date,
    ),
    "person-name": (
        ("nom", "Prénom", "Last name", "full_name", "الاسم الشخصي", "النسب", "الإسم"),
        person_name,
    ),
}

NEGATIVE: tuple[tuple[tuple[str, ...], Maker], ...] = (
    (("montant", "amount", "المبلغ"), amount),
    (("ville", "City", "المدينة", "nom de la commune"), lambda rng: rng.choice(CITIES)),
    (("date_operation", "Payment date", "تاريخ العملية"), event_date),
    (("code_produit", "Product code"), product_code),
    (("reference", "المرجع"), reference),
    (("statut", "Status"), lambda rng: rng.choice(STATUSES)),
    (("commentaire", "notes", "ملاحظات"), lambda rng: rng.choice(COMMENTS)),
    (("année", "year"), lambda rng: str(rng.randrange(1990, 2026))),
)


def columns(seed: int = 20261122, rows: int = 400) -> list[Column]:
    """Every positive header with ``rows`` cells (5 % left empty) and every negative one."""
    rng = random.Random(seed)  # noqa: S311 - seeded test data
    out = []
    for detector, (headers, make) in POSITIVE.items():
        for header in headers:
            cells = [make(rng) if rng.random() >= 0.05 else "" for _ in range(rows)]
            out.append(Column(header, tuple(cells), tuple(detector if c else None for c in cells)))
    for headers, make in NEGATIVE:
        for header in headers:
            cells = [make(rng) for _ in range(rows)]
            out.append(Column(header, tuple(cells), (None,) * rows))
    return out


def table(seed: int = 20261122, rows: int = 400) -> tuple[list[str], list[list[str]], list[Column]]:
    cols = columns(seed, rows)
    header = [c.header for c in cols]
    body = [[c.values[i] for c in cols] for i in range(rows)]
    return header, body, cols


def write_table(path: Path, seed: int = 20261122, rows: int = 400) -> list[Column]:
    header, body, cols = table(seed, rows)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(body)
    return cols


def stream_rows(rows: int, seed: int = 7) -> Iterator[list[str]]:
    """A long table, one row at a time: eight columns, five of them personal."""
    rng = random.Random(seed)  # noqa: S311 - seeded test data
    for i in range(rows):
        yield [str(i), person_name(rng), cin(rng), phone(rng), email(rng), birth_date(rng),
               rng.choice(CITIES), f"{rng.randrange(10**5)}.{rng.randrange(100):02d}"]  # fmt: skip


STREAM_HEADER = ["id", "nom", "cin", "téléphone", "email", "date de naissance", "ville", "montant"]


def write_stream(path: Path, rows: int, seed: int = 7) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(STREAM_HEADER)
        writer.writerows(stream_rows(rows, seed))
