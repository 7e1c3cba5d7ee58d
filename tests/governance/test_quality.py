"""The quality score: each criterion met or not with why, the score the share met, a declared
frequency kept only while the last update is within its period."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from exchange import format_time, utcnow
from governance import Dataset, State, quality

SCHEMA = {
    "fields": [
        {"name": "region", "type": "string", "description": "Région administrative"},
        {"name": "births", "type": "integer", "title": "Naissances"},
    ]
}


def _dataset(**changes) -> Dataset:
    now = format_time(utcnow())
    fields = {
        "dataset_id": "dec-births",
        "owner_agency": "DEC",
        "steward": "amina",
        "title": {"ar": "الولادات", "fr": "Naissances", "en": "Births"},
        "description": {
            "ar": "عدد الولادات المسجلة في كل جهة",
            "fr": "Nombre de naissances enregistrées par région et par année",
            "en": "Registered births per region and year",
        },
        "source": "births.csv",
        "table_schema": SCHEMA,
        "licence": "cc-by-4.0",
        "update_frequency": "yearly",
        "tags": ("population",),
        "state": State.PUBLISHED,
        "classification": None,
        "content_sha256": None,
        "published_sha256": None,
        "publication_reference": None,
        "created_at": now,
        "updated_at": now,
    }
    return Dataset(**{**fields, **changes})


def test_a_well_described_dataset_scores_100():
    report = quality(_dataset())
    assert report.score == 100
    assert report.missing == ()
    assert [c["name"] for c in report.as_dict()["criteria"]] == [
        "description", "languages", "licence", "schema", "tags", "frequency",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "criterion", "why"),
    [
        ({"description": {"fr": "Naissances par région et par année, du registre civil"}},
         "description", "no description in ar, en"),
        ({"description": {"ar": "قصير", "fr": "Court", "en": "Short"}}, "description", "under 40"),
        ({"title": {"fr": "Naissances"}, "description": {"fr": "x" * 50}}, "languages",
         "no title in ar, en"),
        ({"licence": "Creative Commons"}, "licence", "not a licence id"),
        ({"table_schema": {"fields": [{"name": "region", "type": "string"}]}}, "schema",
         "region"),
        ({"table_schema": {}}, "schema", "no Table Schema fields"),
        ({"tags": ()}, "tags", "no tags"),
        ({"update_frequency": ""}, "frequency", "no update frequency"),
    ],
)  # fmt: skip
def test_each_criterion_says_what_is_missing(changes, criterion, why):
    report = quality(_dataset(**changes))
    [missing] = report.missing
    assert missing.name == criterion
    assert why in missing.why
    assert report.score == round(100 * 5 / 6)


def test_a_declared_frequency_is_kept_only_within_its_period():
    ds = _dataset(update_frequency="monthly")
    later = utcnow() + timedelta(days=40)
    assert quality(ds).score == 100
    stale = quality(ds, later)
    assert [c.name for c in stale.missing] == ["frequency"]
    assert "last updated 40 days ago" in stale.missing[0].why
    assert quality(dataclasses.replace(ds, update_frequency="irregular"), later).score == 100


def test_a_schema_field_that_is_not_an_object_is_named_not_a_crash():
    report = quality(_dataset(table_schema={"fields": ["region", {"name": "x", "type": "any"}]}))
    [missing] = report.missing
    assert missing.why == "fields without a type or a description: 'region', x"
