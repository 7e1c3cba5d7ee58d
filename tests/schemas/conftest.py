"""Shared fixtures for the schema registry tests: one realistic valid payload per shipped type."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from schemas import SchemaRegistry, default_registry

MAD = "MAD"
PERSON_NAMES = {
    "latin": {"first_name": "Fatima Zahra", "last_name": "El Idrissi"},
    "arabic": {"first_name": "فاطمة الزهراء", "last_name": "الإدريسي"},
}
ACCOUNT = {"rib": "011780000012345678901234", "holder": "Tresorerie Generale du Royaume"}

EXAMPLES: dict[str, dict[str, Any]] = {
    "civil.person-lookup.request": {
        "cin": "BE123456",
        "purpose": "passport-issuance",
        "case_reference": "DGSN/2026-0042",
    },
    "civil.person-lookup.response": {
        "found": True,
        "person": {
            "cin": "BE123456",
            "names": PERSON_NAMES,
            "birth_date": "1990-02-28",
            "birth_place": "Fes",
            "sex": "F",
            "nationality": "MAR",
            "vital_status": "alive",
        },
    },
    "civil.birth-registered": {
        "act_number": "1532/2026",
        "registry_office": "010203",
        "registered_at": "2026-11-02T09:30:00+01:00",
        "child": {
            "names": {
                "latin": {"first_name": "Youssef", "last_name": "Benali"},
                "arabic": {"first_name": "يوسف", "last_name": "بنعلي"},
            },
            "birth_date": "2026-10-30",
            "birth_time": "06:45",
            "sex": "M",
            "birth_place": "Rabat",
        },
        "mother_cin": "A987654",
        "father_cin": "AB12345",
    },
    "tax.compliance-certificate.request": {
        "taxpayer_id": "12345678",
        "purpose": "public-procurement",
        "tender_reference": "AO-12/2026",
    },
    "tax.compliance-certificate.response": {
        "status": "compliant",
        "checked_at": "2026-11-02T10:00:00Z",
        "certificate_number": "ARF-2026-00001234",
        "valid_until": "2027-05-02",
    },
    "tax.declaration-filed": {
        "declaration_id": "DGI-2026-0000012345",
        "taxpayer_id": "1234567",
        "tax": "TVA",
        "period": {"year": 2026, "quarter": 3},
        "filed_at": "2026-10-20T16:12:09.5+01:00",
        "taxable_base": {"amount": "1250000.00", "currency": MAD},
        "tax_due": {"amount": "250000.00", "currency": MAD},
        "channel": "online",
    },
    "customs.declaration-lodged": {
        "declaration_number": "301-2026-0001234",
        "office_code": "301",
        "regime": "import",
        "lodged_at": "2026-11-03T10:15:00+01:00",
        "importer": {"tax_id": "12345678", "ice": "001234567000089", "name": "Atlas Import SARL"},
        "items": [
            {
                "line": 1,
                "hs_code": "8471300000",
                "description": "Portable computers",
                "origin_country": "CN",
                "quantity": {"value": "50", "unit": "NAR"},
                "gross_mass_kg": "120.5",
                "customs_value": {"amount": "250000.00", "currency": MAD},
            },
            {
                "line": 2,
                "hs_code": "090240",
                "description": "Green tea",
                "origin_country": "CN",
                "quantity": {"value": "1000", "unit": "KGM"},
                "customs_value": {"amount": "3100.50", "currency": "USD"},
            },
        ],
        "total_customs_value": {"amount": "281005.00", "currency": MAD},
    },
    "customs.declaration-cleared": {
        "declaration_number": "301-2026-0001234",
        "office_code": "301",
        "cleared_at": "2026-11-04T14:00:00+01:00",
        "release": "full",
        "importer": {"tax_id": "12345678", "name": "Atlas Import SARL"},
        "items": [
            {
                "line": 1,
                "hs_code": "8471300000",
                "description": "Portable computers",
                "customs_value": {"amount": "250000.00", "currency": MAD},
                "duties": [
                    {
                        "tax": "DI",
                        "base": {"amount": "250000.00", "currency": MAD},
                        "rate": "2.5",
                        "amount": {"amount": "6250.00", "currency": MAD},
                    }
                ],
            }
        ],
        "total_duties": {"amount": "6250.00", "currency": MAD},
        "payment_reference": "TGR-2026-000000123456",
    },
    "treasury.payment-executed": {
        "payment_id": "TGR-2026-000000123456",
        "executed_at": "2026-11-04T15:00:00Z",
        "value_date": "2026-11-05",
        "amount": {"amount": "6250.00", "currency": MAD},
        "debtor": ACCOUNT,
        "creditor": {"rib": "007780000098765432109876", "holder": "Atlas Import SARL"},
        "budget_line": "13.01.02.33",
        "method": "transfer",
    },
    "treasury.suspicious-transaction-alert": {
        "alert_id": "STA-2026-00000042",
        "raised_at": "2026-11-04T18:00:00Z",
        "severity": "high",
        "typologies": ["structuring", "unusual-volume"],
        "transactions": [
            {
                "transaction_id": "TGR-2026-000000123457",
                "executed_at": "2026-11-04T09:00:00Z",
                "amount": {"amount": "99000.00", "currency": MAD},
                "counterparty_rib": "007780000098765432109876",
            }
        ],
        "subject": {"name": "Example Trading SARL", "taxpayer_id": "7654321"},
        "narrative": "Nine transfers just under the reporting threshold within one day.",
        "analyst_email": "analyst@tgr.gov.ma",
    },
    "property.parcel-lookup.request": {"title_number": "12345/07", "purpose": "expropriation"},
    "property.parcel-lookup.response": {
        "found": True,
        "parcel": {
            "title_number": "12345/07",
            "cadastral_reference": "RB-2019-1234",
            "region_code": "04",
            "commune": "Temara",
            "area_m2": "10500.75",
            "land_use": "urban",
            "owner": {"kind": "state-private-domain", "name": "Etat marocain (domaine prive)"},
            "encumbrances": [{"kind": "easement", "registered_on": "2011-06-15"}],
            "updated_at": "2026-01-10T08:00:00Z",
        },
    },
}


@pytest.fixture(scope="session")
def registry() -> SchemaRegistry:
    """The shipped registry (loaded once per process)."""
    return default_registry()


@pytest.fixture
def example() -> Any:
    """A function returning a fresh copy of the example payload of a type."""

    def make(type_name: str) -> dict[str, Any]:
        return copy.deepcopy(EXAMPLES[type_name])

    return make
