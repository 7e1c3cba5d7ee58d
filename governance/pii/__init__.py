"""PII screening of tabular data, before a dataset goes to review.

A streaming scan reads a CSV file (or rows already parsed) once, in constant memory, and
returns a ``PiiReport``: per column, which detectors matched, on what share of the non-empty
values, how many cells and identifiers, and the first few row numbers. The report never holds
a value. Identifiers are found in whole cells and inside text; formula cells (``=``, ``+``,
``-``, ``@``: CSV injection) are findings of their own (``column:formula``). Every finding (id
``column:detector``) blocks approval until the review workflow resolves it.

Files are read with ``governance.open_table``: the declared dialect (commas unless told) and
bounded lines, cells, columns and bytes.

Detectors are small objects, composable in a ``Screener``: column-name hints in Arabic,
French and English (``ColumnHint``), and value detectors for Moroccan identity card numbers,
phone numbers (``phonenumbers``), e-mail addresses, IBANs (``stdnum``) and Moroccan RIBs,
payment card numbers (Luhn, with ``stdnum``), birth dates and personal names.

>>> from governance.pii import scan_rows
>>> report = scan_rows(["nom", "téléphone"], [["Amina Alaoui", "0612345678"]])
>>> [f.id for f in report.findings]
['nom:person-name', 'téléphone:phone']

Reading errors are governance's ``BadSource`` family; see ``governance.pii._errors``.
"""

from __future__ import annotations

from governance.pii._detectors import (
    BirthDate,
    ColumnEvidence,
    EmailAddress,
    Iban,
    MoroccanRib,
    NationalIdCard,
    PaymentCard,
    PersonName,
    PhoneNumber,
    ValueDetector,
    default_detectors,
    is_valid_rib,
)
from governance.pii._errors import PiiError
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
from governance.pii._report import FORMULA, ColumnReport, Finding, PiiReport, Severity
from governance.pii._scan import Progress, Screener, scan_csv, scan_rows

__all__ = [
    "ADDRESS",
    "BANK_ACCOUNT",
    "BIRTH_DATE",
    "EMAIL",
    "FORMULA",
    "HINTS",
    "NATIONAL_ID",
    "PASSPORT",
    "PERSON_NAME",
    "PHONE",
    "BirthDate",
    "ColumnEvidence",
    "ColumnHint",
    "ColumnReport",
    "EmailAddress",
    "Finding",
    "Iban",
    "MoroccanRib",
    "NationalIdCard",
    "PaymentCard",
    "PersonName",
    "PhoneNumber",
    "PiiError",
    "PiiReport",
    "Progress",
    "Screener",
    "Severity",
    "ValueDetector",
    "default_detectors",
    "hints_for",
    "is_valid_rib",
    "normalise_header",
    "scan_csv",
    "scan_rows",
]
