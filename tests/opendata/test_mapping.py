"""The pure mapping of a governed dataset to a CKAN package dict."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from opendata import ResourceInfo, ckan_name, organization_dict, package_dict
from opendata._mapping import extras_of, published_version

CKAN_NAME = re.compile(r"^[a-z0-9_-]{2,100}$")
SHA = "a" * 64

DATASET = {
    "dataset_id": "MoH.Water_Quality 2024",
    "owner_agency": "MoH",
    "steward": "steward-1",
    "title": {"ar": "جودة المياه", "fr": "Qualité de l'eau", "en": "Water quality"},
    "description": {"ar": "وصف", "fr": "Mesures trimestrielles", "en": "Quarterly measures"},
    "licence": "cc-by",
    "tags": ("water", "health"),
    "classification": "public",
}
RESOURCES = [ResourceInfo(name="data.csv", format="CSV", sha256=SHA)]


def _package(**changes):
    return package_dict(
        {**DATASET, **changes}, version=3, resources=RESOURCES, approval_ref="review-42"
    )


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("water-quality", "water-quality"),
        ("MoH.Water_Quality 2024", "moh-water_quality-2024"),
        ("  --Spaces  and//slashes--  ", "spaces-and-slashes"),
        ("x", "ds-x"),
        ("Éau", "au"),
    ],
)
def test_ckan_name_follows_ckan_rules(identifier, expected):
    """Names are lowercase a-z0-9-_, dashes collapse and are trimmed, short ones are padded."""
    assert ckan_name(identifier) == expected
    assert CKAN_NAME.match(expected)


def test_long_names_are_cut_to_100_and_stay_distinct():
    """Identifiers longer than 100 characters give distinct valid names."""
    first, second = ckan_name("a" * 150 + "1"), ckan_name("a" * 150 + "2")
    assert CKAN_NAME.match(first)
    assert len(first) == 100
    assert first != second


def test_names_with_nothing_usable_are_refused():
    """An identifier with no ASCII letter or digit cannot become a CKAN name."""
    with pytest.raises(ValueError, match="CKAN name"):
        ckan_name("مياه")


def test_package_core_fields():
    """Name from the id, organisation from the agency, French title and notes, licence, tags."""
    package = _package()
    assert package["name"] == "moh-water_quality-2024"
    assert package["owner_org"] == "moh"
    assert package["title"] == "Qualité de l'eau"
    assert package["notes"] == "Mesures trimestrielles"
    assert package["license_id"] == "cc-by"
    assert package["tags"] == [{"name": "water"}, {"name": "health"}]


def test_package_extras():
    """Extras carry classification, steward, approval, source agency and SHA-256s."""
    extras = extras_of(_package())
    assert extras["classification"] == "public"
    assert extras["steward"] == "steward-1"
    assert "version" not in extras  # CKAN refuses it as an extra: a core field
    assert extras["approval_reference"] == "review-42"
    assert extras["source_agency"] == "MoH"
    assert extras["tabadul_dataset_id"] == "MoH.Water_Quality 2024"
    assert extras["sha256:data.csv"] == SHA
    assert extras["title_ar"] == "جودة المياه"
    assert extras["title_en"] == "Water quality"
    assert extras["notes_ar"] == "وصف"
    assert all(isinstance(e["value"], str) for e in _package()["extras"])
    assert _package()["version"] == "3"
    assert published_version(_package()) == 3


def test_english_then_arabic_when_french_is_missing():
    """Without French, CKAN shows English; with Arabic only, Arabic."""
    english = _package(title={"ar": "ع", "en": "Water"}, description={"en": "Measures"})
    assert (english["title"], english["notes"]) == ("Water", "Measures")
    arabic = _package(title={"ar": "جودة"}, description={})
    assert (arabic["title"], arabic["notes"]) == ("جودة", "")


def test_classification_as_mapping_or_object():
    """The classification may be a level name, a mapping with a level or an object with one."""
    assert extras_of(_package(classification={"level": "open"}))["classification"] == "open"

    class Level:
        level = "public"

    assert extras_of(_package(classification=Level()))["classification"] == "public"


@pytest.mark.parametrize(
    ("changes", "kwargs", "match"),
    [
        ({"title": {"fr": " "}}, {}, "no title"),
        ({"classification": None}, {}, "not classified"),
        ({}, {"version": 0}, "version"),
        ({}, {"approval_ref": " "}, "approval"),
    ],
)
def test_unpublishable_datasets_are_refused(changes, kwargs, match):
    """No title, no classification, a version below 1 or no approval: ValueError."""
    arguments = {"version": 1, "resources": RESOURCES, "approval_ref": "r", **kwargs}
    with pytest.raises(ValueError, match=match):
        package_dict({**DATASET, **changes}, **arguments)


def test_organization_dict_and_resource_info():
    """The agency's organisation is its slug; a ResourceInfo reads back as a dict."""
    assert organization_dict("MoH") == {"name": "moh", "title": "MoH"}
    info = replace(RESOURCES[0], description="d")
    assert info.as_dict() == {
        "name": "data.csv",
        "format": "CSV",
        "description": "d",
        "sha256": SHA,
    }
