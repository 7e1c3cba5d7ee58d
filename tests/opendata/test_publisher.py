"""Publishing to and withdrawing from the real local CKAN (scripts/ckan-local)."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from pathlib import Path

import ckanapi
import httpx
import pytest

from opendata import InvalidData, NotPublished, PortalRefused, Publisher
from opendata._mapping import extras_of
from tests.opendata.conftest import TOKEN_FILE, URL

SCHEMA = {
    "fields": [
        {"name": "station", "type": "string", "constraints": {"required": True}},
        {"name": "ph", "type": "number"},
    ]
}


@pytest.fixture
def dataset(ckan):
    """A fresh dataset of a fresh agency; its package and organisation are purged afterwards."""
    tag = uuid.uuid4().hex[:10]
    ds = {
        "dataset_id": f"MoH.Water-{tag}",
        "owner_agency": f"MoH-{tag}",
        "steward": "steward-1",
        "title": {"ar": "جودة المياه", "fr": f"Qualité de l'eau {tag}", "en": "Water quality"},
        "description": {"fr": "Mesures", "en": "Measures"},
        "licence": "cc-by",
        "tags": ["water"],
        "classification": "public",
    }
    yield ds
    for action, ident in (
        ("dataset_purge", f"moh-water-{tag}"),
        ("organization_purge", f"moh-{tag}"),
    ):
        with contextlib.suppress(ckanapi.NotFound):
            ckan.call_action(action, {"id": ident})


@pytest.fixture
def publisher(ckan):
    return Publisher(URL, TOKEN_FILE.read_text("utf-8").strip())


def _csv(tmp_path: Path, text: str, name: str = "water.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_publish_creates_org_package_and_resources(ckan, publisher, dataset, tmp_path):
    """A first publication creates the organisation, the package, the CSV and schema resources,
    with the SHA-256 and version in the extras; the uploaded bytes are the file's."""
    path = _csv(tmp_path, "station,ph\nA,7.1\nB,6.9\n")
    result = publisher.publish(dataset, path, SCHEMA, "review-1")
    assert (result.status, result.version) == ("created", 1)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.sha256 == sha

    package = ckan.action.package_show(id=result.name)
    assert package["organization"]["name"] == dataset["owner_agency"].lower()
    assert package["title"] == dataset["title"]["fr"]
    assert package["license_id"] == "cc-by"
    extras = extras_of(package)
    assert package["version"] == "1"
    assert extras["sha256:data.csv"] == sha
    assert extras["approval_reference"] == "review-1"
    assert extras["classification"] == "public"
    assert {r["name"]: r["format"] for r in package["resources"]} == {
        "data.csv": "CSV",
        "schema.json": "JSON",
    }
    data = next(r for r in package["resources"] if r["name"] == "data.csv")
    token = TOKEN_FILE.read_text("utf-8").strip()
    downloaded = httpx.get(data["url"], headers={"Authorization": token}, timeout=10)
    assert hashlib.sha256(downloaded.content).hexdigest() == sha


def test_republishing_same_bytes_changes_nothing(ckan, publisher, dataset, tmp_path):
    """The same bytes again: status unchanged, no new activity, version still 1."""
    path = _csv(tmp_path, "station,ph\nA,7.1\n")
    first = publisher.publish(dataset, path, SCHEMA, "review-1")
    activities = ckan.action.package_activity_list(id=first.package_id)
    again = publisher.publish(
        dataset, _csv(tmp_path, "station,ph\nA,7.1\n", "copy.csv"), SCHEMA, "r"
    )
    assert (again.status, again.version, again.package_id) == ("unchanged", 1, first.package_id)
    assert ckan.action.package_activity_list(id=first.package_id) == activities


def test_new_bytes_make_a_new_version(ckan, publisher, dataset, tmp_path):
    """New bytes: version 2, new SHA-256 in the extras, the previous version in the activity."""
    first = publisher.publish(dataset, _csv(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "review-1")
    path = _csv(tmp_path, "station,ph\nA,7.1\nC,8.0\n", "v2.csv")
    second = publisher.publish(dataset, path, SCHEMA, "review-2")
    assert (second.status, second.version, second.package_id) == ("updated", 2, first.package_id)

    package = ckan.action.package_show(id=second.name)
    extras = extras_of(package)
    assert package["version"] == "2"
    assert extras["sha256:data.csv"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert extras["approval_reference"] == "review-2"
    assert sorted(r["name"] for r in package["resources"]) == ["data.csv", "schema.json"]

    versions = set()
    for activity in ckan.action.package_activity_list(id=second.package_id):
        shown = ckan.action.activity_show(id=activity["id"], include_data=True)
        old = shown["data"].get("package") or {}
        versions.add(old.get("version"))
        if old.get("version") == "1" and extras_of(old).get("sha256:data.csv"):
            assert extras_of(old)["sha256:data.csv"] == first.sha256
    assert {"1", "2"} <= versions


def test_invalid_data_is_not_published(ckan, publisher, dataset, tmp_path):
    """A CSV that fails its schema raises InvalidData with the report; nothing is created."""
    with pytest.raises(InvalidData) as caught:
        publisher.publish(dataset, _csv(tmp_path, "station,ph\nA,acid\n"), SCHEMA, "review-1")
    assert caught.value.code == "invalid-data"
    assert caught.value.report.errors[0].field == "ph"
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=dataset["dataset_id"].lower().replace(".", "-"))


def test_withdraw_purges_the_package(ckan, publisher, dataset, tmp_path):
    """Withdrawal purges: package_show says NotFound and search no longer finds it."""
    result = publisher.publish(dataset, _csv(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "review-1")
    assert ckan.action.package_search(q=f'name:"{result.name}"')["count"] == 1
    withdrawn = publisher.withdraw(dataset["dataset_id"], "consent withdrawn")
    assert withdrawn.as_dict() == {
        "dataset_id": dataset["dataset_id"],
        "package_id": result.package_id,
        "name": result.name,
        "version": 1,
        "reason": "consent withdrawn",
    }
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=result.package_id)
    assert ckan.action.package_search(q=f'name:"{result.name}"', include_deleted=True)["count"] == 0
    with pytest.raises(NotPublished) as caught:
        publisher.withdraw(dataset["dataset_id"], "again")
    assert caught.value.code == "not-published"


def test_bad_token_is_a_portal_refusal(ckan, dataset, tmp_path):
    """CKAN's NotAuthorized comes back as PortalRefused (code portal-refused)."""
    with pytest.raises(PortalRefused) as caught:
        Publisher(URL, "not-a-token").publish(
            dataset, _csv(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "review-1"
        )
    assert caught.value.code == "portal-refused"
