"""Publishing to and withdrawing from the real local CKAN (scripts/ckan-local)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import ckanapi
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchange import CertificateAuthority
from governance import AuditSigner
from opendata import (
    Consumer,
    InvalidData,
    NoReleaseKey,
    NotPublished,
    PortalRefused,
    Publisher,
    UnknownVersion,
    ckan_name,
)
from opendata._mapping import extras_of
from tests.opendata.conftest import ROOT, TOKEN_FILE, URL, csv_file
from tests.support.ckan import CA_CERTIFICATE, RELEASE_SIGNER

STORAGE = ROOT / "var" / "ckan" / "storage" / "resources"
FILES = ["data.csv", "datapackage.json", "release.json", "schema.json"]

SCHEMA = {
    "fields": [
        {"name": "station", "type": "string", "constraints": {"required": True}},
        {"name": "ph", "type": "number"},
    ]
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stored_file(resource_id: str) -> Path:
    """Where CKAN's storage keeps an uploaded resource's bytes."""
    return STORAGE / resource_id[:3] / resource_id[3:6] / resource_id[6:]


def _get(url: str) -> httpx.Response:
    token = TOKEN_FILE.read_text("utf-8").strip()
    return httpx.get(url, headers={"Authorization": token}, timeout=10, follow_redirects=True)


def _current(package: dict) -> list[dict]:
    return [r for r in package["resources"] if r.get("tabadul_version") == package["version"]]


def test_publish_creates_org_package_and_resources(ckan, publisher, dataset, tmp_path):
    """A first publication creates the organisation and a public package with data.csv,
    schema.json and datapackage.json, each marked with the version and its SHA-256; the
    uploaded bytes are the file's and the datapackage names the data's hash."""
    path = csv_file(tmp_path, "station,ph\nA,7.1\nB,6.9\n")
    result = publisher.publish(dataset, path, SCHEMA, "review-1")
    assert (result.status, result.version) == ("created", 1)
    sha = _sha(path.read_bytes())
    assert result.sha256 == sha

    package = ckan.action.package_show(id=result.name)
    assert package["private"] is False
    assert package["organization"]["name"] == dataset["owner_agency"].lower()
    assert package["title"] == dataset["title"]["fr"]
    assert package["license_id"] == "cc-by"
    extras = extras_of(package)
    assert package["version"] == "1"
    assert extras["sha256:data.csv"] == sha
    assert extras["approval_reference"] == "review-1"
    assert extras["classification"] == "public"
    assert sorted((r["name"], r["format"], r["tabadul_version"]) for r in package["resources"]) == [
        ("data.csv", "CSV", "1"),
        ("datapackage.json", "JSON", "1"),
        ("release.json", "JSON", "1"),
        ("schema.json", "JSON", "1"),
    ]
    for resource in package["resources"]:
        served = _get(resource["url"]).content
        assert _sha(served) == resource["sha256"] == extras[f"sha256:{resource['name']}"]
        if resource["name"] == "datapackage.json":
            assert json.loads(served)["resources"][0]["hash"] == f"sha256:{sha}"


def test_republishing_same_bytes_changes_nothing(ckan, publisher, dataset, tmp_path):
    """The same bytes again: status unchanged, no new activity, version still 1."""
    path = csv_file(tmp_path, "station,ph\nA,7.1\n")
    first = publisher.publish(dataset, path, SCHEMA, "review-1")
    activities = ckan.action.package_activity_list(id=first.package_id)
    again = publisher.publish(
        dataset, csv_file(tmp_path, "station,ph\nA,7.1\n", "copy.csv"), SCHEMA, "r"
    )
    assert (again.status, again.version, again.package_id) == ("unchanged", 1, first.package_id)
    assert ckan.action.package_activity_list(id=first.package_id) == activities


def test_the_same_bytes_under_another_key_are_signed_again(ckan, publisher, dataset, tmp_path):
    """Republished by a publisher whose key another CA certified (or after a rotation), the
    same bytes become version 2 with a release of that key, which its CA verifies."""
    path = csv_file(tmp_path, "station,ph\nA,7.1\n")
    publisher.publish(dataset, path, SCHEMA, "review-1")
    other = CertificateAuthority.create("MA")
    key = ed25519.Ed25519PrivateKey.generate()
    registry = RELEASE_SIGNER.subsystem
    rotated = Publisher(
        URL,
        TOKEN_FILE.read_text("utf-8").strip(),
        signer=AuditSigner(registry, key, other.issue(registry, key.public_key())),
    )
    again = rotated.publish(dataset, path, SCHEMA, "review-1")
    assert (again.status, again.version) == ("updated", 2)
    report = Consumer(URL).pull(
        dataset["dataset_id"], tmp_path / "out", ca_certificate=other.certificate
    )
    assert report.ok, report.problems
    assert rotated.publish(dataset, path, SCHEMA, "review-1").status == "unchanged"


def test_new_bytes_make_a_new_version_and_keep_the_old_files(ckan, publisher, dataset, tmp_path):
    """New bytes: version 2 is current, with its own files and SHA-256s; version 1's files
    stay in the package and still serve their bytes; the activity stream has both."""
    old = csv_file(tmp_path, "station,ph\nA,7.1\n")
    first = publisher.publish(dataset, old, SCHEMA, "review-1")
    path = csv_file(tmp_path, "station,ph\nA,7.1\nC,8.0\n", "v2.csv")
    second = publisher.publish(dataset, path, SCHEMA, "review-2")
    assert (second.status, second.version, second.package_id) == ("updated", 2, first.package_id)

    package = ckan.action.package_show(id=second.name)
    extras = extras_of(package)
    assert package["version"] == "2"
    assert extras["sha256:data.csv"] == _sha(path.read_bytes())
    assert extras["approval_reference"] == "review-2"
    assert sorted(r["name"] for r in _current(package)) == FILES
    versions = sorted((r["tabadul_version"], r["name"]) for r in package["resources"])
    assert versions == [("1", n) for n in FILES] + [("2", n) for n in FILES]
    old_data = next(
        r for r in package["resources"] if (r["tabadul_version"], r["name"]) == ("1", "data.csv")
    )
    assert _get(old_data["url"]).content == old.read_bytes()
    assert old_data["url"].endswith("/data.v1.csv")  # each version's files have their own URL
    older = Consumer(URL).pull(
        dataset["dataset_id"], tmp_path / "v1", ca_certificate=CA_CERTIFICATE, version=1
    )
    assert older.ok, older.problems
    assert (older.version, older.release.release.approval) == (1, "review-1")
    assert (tmp_path / "v1" / "data.csv").read_bytes() == old.read_bytes()
    with pytest.raises(UnknownVersion) as unknown:
        Consumer(URL).pull(
            dataset["dataset_id"], tmp_path / "v9", ca_certificate=CA_CERTIFICATE, version=9
        )
    assert unknown.value.code == "unknown-version"

    seen = set()
    for activity in ckan.action.package_activity_list(id=second.package_id):
        shown = ckan.action.activity_show(id=activity["id"], include_data=True)
        seen.add((shown["data"].get("package") or {}).get("version"))
    assert {"1", "2"} <= seen


def test_invalid_data_is_not_published(ckan, publisher, dataset, tmp_path):
    """A CSV that fails its schema raises InvalidData with the report; nothing is created."""
    with pytest.raises(InvalidData) as caught:
        publisher.publish(dataset, csv_file(tmp_path, "station,ph\nA,acid\n"), SCHEMA, "review-1")
    assert caught.value.code == "invalid-data"
    assert caught.value.report.errors[0].field == "ph"
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=dataset["dataset_id"].lower().replace(".", "-"))


def test_withdraw_deletes_the_files_and_purges_the_package(ckan, publisher, dataset, tmp_path):
    """Withdrawal deletes every uploaded file from CKAN's storage, then purges: package_show
    says NotFound, search no longer finds it and the file URLs no longer serve."""
    publisher.publish(dataset, csv_file(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "review-1")
    result = publisher.publish(
        dataset, csv_file(tmp_path, "station,ph\nB,7.2\n", "v2.csv"), SCHEMA, "review-2"
    )
    package = ckan.action.package_show(id=result.name)
    stored = [_stored_file(r["id"]) for r in package["resources"]]
    assert all(f.is_file() for f in stored)
    assert ckan.action.package_search(q=f'name:"{result.name}"')["count"] == 1

    withdrawn = publisher.withdraw(dataset, "consent withdrawn")
    assert withdrawn.as_dict() == {
        "dataset_id": dataset["dataset_id"],
        "package_id": result.package_id,
        "name": result.name,
        "version": 2,
        "files_deleted": 8,
        "reason": "consent withdrawn",
    }
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=result.package_id)
    assert ckan.action.package_search(q=f'name:"{result.name}"', include_deleted=True)["count"] == 0
    assert [f for f in stored if f.exists()] == []
    assert {_get(r["url"]).status_code for r in package["resources"]} == {404}
    with pytest.raises(NotPublished) as caught:
        publisher.withdraw(dataset, "again")
    assert caught.value.code == "not-published"


def test_nothing_is_published_unsigned(ckan, dataset, tmp_path):
    """Without a key to sign its release, publishing is refused before the portal is
    touched: no-release-key."""
    token = TOKEN_FILE.read_text("utf-8").strip()
    with pytest.raises(NoReleaseKey) as caught:
        Publisher(URL, token).publish(
            dataset, csv_file(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "review-1"
        )
    assert caught.value.code == "no-release-key"
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=ckan_name(dataset["dataset_id"]))


def test_bad_token_is_a_portal_refusal(ckan, dataset, tmp_path):
    """CKAN's NotAuthorized comes back as PortalRefused (code portal-refused)."""
    with pytest.raises(PortalRefused) as caught:
        Publisher(URL, "not-a-token", signer=RELEASE_SIGNER).publish(
            dataset, csv_file(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "review-1"
        )
    assert caught.value.code == "portal-refused"
