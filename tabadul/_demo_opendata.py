"""The open-data half of ``tabadul demo``: two datasets go through the governed pipeline to
the local CKAN, and one comes back to a consumer, verified.

- Customs (ADII) opens its tariff. The PII screening flags the 10-digit HS codes as phone
  numbers; the steward justifies keeping them (tariff nomenclature, not phones).
- The civil registry (DEC) opens births by place: the register holds names, national
  identity card numbers and exact birth dates, so the steward derives a file without them
  (names and card numbers dropped, birth dates generalised to the year); the derivation's
  lineage resolves the findings on those columns.

Each is classified PUBLIC, screened, validated with Frictionless, approved by a second
person (an attempt by the steward who is also an approver is refused: four eyes), published
to CKAN and recorded, each publication with its release signed by the governance key. A
consumer then pulls the births and checks them with the CA certificate alone: the release's
signature, every size and SHA-256, the schema. Each run makes its own CA, so running the demo
again publishes the same bytes as a new version, signed under that run's CA (with the same CA
and key, the same bytes would publish nothing new).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509

from governance import (
    AuditSigner,
    Drop,
    FourEyes,
    GeneraliseDateToYear,
    GovernanceStore,
    Workflow,
    derive_csv,
    record_derivation,
)
from opendata import Consumer, DataFiles, OpenData, Publisher, ckan_name

Progress = Callable[[str], None]

TARIFF_SCHEMA = {
    "fields": [
        {
            "name": "hs_code",
            "type": "string",
            "constraints": {"required": True, "pattern": "[0-9]{10}"},
        },
        {"name": "description", "type": "string"},
        {"name": "di_rate", "type": "number", "constraints": {"minimum": 0}},
        {"name": "tva_rate", "type": "number", "constraints": {"minimum": 0}},
    ],
    "primaryKey": ["hs_code"],
}
BIRTHS_SCHEMA = {
    "fields": [
        {"name": "registry_office", "type": "string"},
        {"name": "sex", "type": "string", "constraints": {"enum": ["F", "M"]}},
        {"name": "birth_date", "type": "year", "description": "year of birth (generalised)"},
        {"name": "birth_place", "type": "string"},
    ]
}
BIRTHS_PLAN = (
    Drop("act_number"),
    Drop("registered_at"),
    Drop("child_first_name_latin"),
    Drop("child_first_name_arabic"),
    Drop("birth_time"),
    Drop("mother_cin"),
    Drop("father_cin"),
    GeneraliseDateToYear("birth_date"),
)
TARIFF, BIRTHS = "adii-customs-tariff", "dec-births-by-place"
PEOPLE = (
    ("dnum.operator", "DNUM", ["operator"]),
    ("adii.steward", "ADII", ["steward"]),
    ("adii.approver", "ADII", ["approver"]),
    ("dec.chief", "DEC", ["steward", "approver"]),
    ("dec.approver", "DEC", ["approver"]),
)


def _sample(name: str, folder: Path) -> Path:
    """A copy of a ministry's sample file in ``folder`` (the source the steward exported)."""
    target = folder / name
    data = resources.files("connectors.ministries").joinpath("data", name).read_bytes()
    target.write_bytes(data)
    return target


def _people_and_datasets(flow: Workflow) -> None:
    operator, *others = PEOPLE
    flow.register_user(
        None, operator[0], name="Bus operator", agency=operator[1], roles=operator[2]
    )
    for user_id, agency, roles in others:
        flow.register_user(operator[0], user_id, name=user_id, agency=agency, roles=roles)
    flow.register_dataset(
        "adii.steward",
        TARIFF,
        title={
            "fr": "Tarif douanier : droits d'importation et TVA",
            "ar": "التعريفة الجمركية: رسوم الاستيراد والضريبة على القيمة المضافة",
            "en": "Customs tariff: import duty and VAT rates",
        },
        description={"fr": "Positions tarifaires (SH à 10 chiffres) et taux applicables."},
        source="connectors/ministries/data/customs_tariff.csv",
        table_schema=TARIFF_SCHEMA,
        licence="cc-by",
        update_frequency="yearly",
        tags=["customs", "tariff"],
    )
    flow.register_dataset(
        "dec.chief",
        BIRTHS,
        title={
            "fr": "Naissances déclarées par lieu et par année",
            "ar": "الولادات المصرح بها حسب المكان والسنة",
            "en": "Registered births by place and year",
        },
        description={"fr": "Dérivé du registre : sans noms, sans CIN, année de naissance."},
        source="connectors/ministries/data/civil_births.csv",
        table_schema=BIRTHS_SCHEMA,
        licence="cc-by",
        update_frequency="monthly",
        tags=["civil-registry", "births"],
    )
    for steward, dataset_id, why in (
        ("adii.steward", TARIFF, "published nomenclature and rates"),
        ("dec.chief", BIRTHS, "personal columns dropped, birth dates generalised to the year"),
    ):
        flow.classify(
            steward,
            dataset_id,
            level="PUBLIC",
            personal_data=False,
            legal_basis="Law 31-13 on the right of access to information",
            justification=why,
        )


def run(  # noqa: PLR0913 - keyword-only settings
    folder: Path,
    *,
    ckan_url: str,
    ckan_token: str,
    ca_certificate: x509.Certificate,
    audit_signer: AuditSigner,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the open-data scenario with its governance database in ``folder`` (which must
    be empty of a previous one); returns its summary. Portal failures raise
    :class:`opendata.PortalError`; governance refusals other than the shown four-eyes one
    are bugs of the scenario and propagate."""
    say = progress or (lambda _text: None)
    store = GovernanceStore.open(str(folder / "governance.sqlite"))
    store.audit_signer = audit_signer  # every audit entry then signs the log's head
    try:
        flow = Workflow(store)
        portal = Publisher(ckan_url, ckan_token, signer=audit_signer)  # it signs the releases
        pipeline = OpenData(flow, DataFiles(folder / "data"), portal)
        _people_and_datasets(flow)
        say("governance: five people, two datasets registered and classified PUBLIC")

        tariff = pipeline.submit("adii.steward", TARIFF, _sample("customs_tariff.csv", folder))
        for finding in tariff.review.findings:
            flow.resolve_finding(
                "adii.steward",
                TARIFF,
                finding.finding_id,
                resolution="justify",
                reason="10-digit HS tariff codes, not telephone numbers",
            )
        births_file = folder / "births-by-place.csv"
        derived = derive_csv(_sample("civil_births.csv", folder), births_file, BIRTHS_PLAN)
        births = pipeline.submit("dec.chief", BIRTHS, births_file)
        record_derivation(store, "dec.chief", BIRTHS, derived, reason="open data release")
        screened = {
            TARIFF: [f.finding_id for f in tariff.review.findings],
            BIRTHS: [f.finding_id for f in births.review.findings],
        }
        say(f"screened and validated with Frictionless; PII findings resolved: {screened}")

        refusals: Counter[str] = Counter()
        try:
            flow.approve("dec.chief", BIRTHS)
        except FourEyes as refusal:
            refusals[refusal.code] += 1
        flow.approve("adii.approver", TARIFF, reason="checked against the official tariff")
        flow.approve("dec.approver", BIRTHS, reason="no person can be identified")
        say("approved by a second person (the steward's own approval refused: four eyes)")

        published = {}
        for actor, dataset_id in (("adii.steward", TARIFF), ("dnum.operator", BIRTHS)):
            result = pipeline.publish(actor, dataset_id)
            published[dataset_id] = {
                **result.as_dict(),
                "url": f"{ckan_url.rstrip('/')}/dataset/{ckan_name(dataset_id)}",
            }
        say(f"published to CKAN: {', '.join(p['url'] for p in published.values())}")

        pulled = Consumer(ckan_url).pull(BIRTHS, folder / "pulled", ca_certificate=ca_certificate)
        say(
            f"a consumer pulled {BIRTHS} version {pulled.version} and checked it with the CA "
            "certificate alone: "
            + (
                "its signed release, every size and SHA-256 and the schema check out"
                if pulled.ok
                else f"refused ({pulled.code}): {'; '.join(pulled.problems)}"
            )
        )
        audit = flow.audit.verify()
    finally:
        store.close()
    return {
        "datasets": published,
        "pii_findings_resolved": screened,
        "derived_rows": derived.rows,
        "refusals_by_code": dict(refusals),
        "pulled": pulled.as_dict(),
        "audit_entries": audit.count,
    }
