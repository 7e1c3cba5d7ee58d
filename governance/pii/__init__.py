"""PII screening of tabular data, before a dataset goes to review.

A streaming scan reads a CSV file (or rows already parsed) once, in constant memory, and
returns a ``PiiReport``: per column, which detectors matched, on what share of the non-empty
values, how many cells, and the first few row numbers. The report never holds a value.
Every finding (id ``column:detector``) blocks approval until the review workflow resolves it.

Detectors are small objects, composable in a ``Screener``: column-name hints in Arabic,
French and English (``ColumnHint``), and value detectors for Moroccan identity card numbers,
phone numbers (``phonenumbers``), e-mail addresses, IBANs (``stdnum``) and Moroccan RIBs,
birth dates and personal names.

>>> from governance.pii import scan_rows
>>> report = scan_rows(["nom", "téléphone"], [["Amina Alaoui", "0612345678"]])
>>> [f.id for f in report.findings]
['nom:person-name', 'téléphone:phone']

Errors derive from ``PiiError``; see ``governance.pii._errors`` for the tree.
"""

from __future__ import annotations

from governance.pii._detectors import (
    BirthDate,
    ColumnEvidence,
    EmailAddress,
    Iban,
    MoroccanRib,
    NationalIdCard,
    PersonName,
    PhoneNumber,
    ValueDetector,
    default_detectors,
    is_valid_rib,
)
from governance.pii._errors import BadCsv, NotUtf8, PiiError, UnreadableFile
from governance.pii._hints import (
    ADDRESS,
    BANK_ACCOUNT,
    BIRTH_DATE,
    EMAIL,
    HINTS,
    NATIONAL_ID,
    PASSPORT,
    PERSON_NAME,
    PHONE,
    ColumnHint,
    hints_for,
    normalise_header,
)
from governance.pii._report import ColumnReport, Finding, PiiReport, Severity
from governance.pii._scan import Progress, Screener, scan_csv, scan_rows

__all__ = [
    "ADDRESS",
    "BANK_ACCOUNT",
    "BIRTH_DATE",
    "EMAIL",
    "HINTS",
    "NATIONAL_ID",
    "PASSPORT",
    "PERSON_NAME",
    "PHONE",
    "BadCsv",
    "BirthDate",
    "ColumnEvidence",
    "ColumnHint",
    "ColumnReport",
    "EmailAddress",
    "Finding",
    "Iban",
    "MoroccanRib",
    "NationalIdCard",
    "NotUtf8",
    "PersonName",
    "PhoneNumber",
    "PiiError",
    "PiiReport",
    "Progress",
    "Screener",
    "Severity",
    "UnreadableFile",
    "ValueDetector",
    "default_detectors",
    "hints_for",
    "is_valid_rib",
    "normalise_header",
    "scan_csv",
    "scan_rows",
]
