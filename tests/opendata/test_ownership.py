"""Publishing and withdrawing only touch packages Tabadul made for the dataset, on the real
CKAN: a package of the same name made by someone else (in another organisation, or in the
agency's own with a forged mark), moved away, or not the one governance recorded, is refused
with ``package-not-ours`` and left exactly as it was."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import ckanapi
import pytest

from opendata import PackageNotOurs, Publisher, ckan_name
from tests.opendata.conftest import URL, csv_file

SCHEMA = {"fields": [{"name": "station", "type": "string"}, {"name": "ph", "type": "number"}]}


@dataclass
class Intruder:
    """Another CKAN account, editor of its own organisation, with its own API token."""

    remote: ckanapi.RemoteCKAN
    user: str
    organization: str
    packages: list[str] = field(default_factory=list)

    def create_package(self, name: str, owner_org: str, **fields: Any) -> dict[str, Any]:
        self.packages.append(name)
        package: dict[str, Any] = self.remote.action.package_create(
            name=name, owner_org=owner_org, title="Not Tabadul's", **fields
        )
        self.remote.action.resource_create(
            package_id=package["id"], name="theirs", url="https://example.org/theirs.csv"
        )
        return package


@pytest.fixture
def intruder(ckan: ckanapi.RemoteCKAN) -> Iterator[Intruder]:
    tag = uuid.uuid4().hex[:10]
    user = f"intruder-{tag}"
    ckan.action.user_create(name=user, email=f"{user}@example.org", password=f"pw-{tag}-{tag}")
    token = ckan.action.api_token_create(user=user, name="tests")["token"]
    organization = f"intruders-{tag}"
    ckan.action.organization_create(name=organization)
    ckan.action.organization_member_create(id=organization, username=user, role="editor")
    with ckanapi.RemoteCKAN(URL, apikey=token, user_agent="tabadul-tests") as remote:
        made = Intruder(remote, user, organization)
        yield made
    for name in made.packages:
        with contextlib.suppress(ckanapi.NotFound):
            ckan.action.dataset_purge(id=name)
    with contextlib.suppress(ckanapi.NotFound):
        ckan.action.organization_purge(id=organization)
    ckan.action.user_delete(id=user)


def _snapshot(ckan: ckanapi.RemoteCKAN, name: str) -> dict[str, Any]:
    package: dict[str, Any] = ckan.action.package_show(id=name)
    return package


def _refused_and_untouched(
    ckan: ckanapi.RemoteCKAN,
    publisher: Publisher,
    dataset: dict[str, Any],
    tmp_path: Any,
    *,
    package_id: str | None = None,
) -> PackageNotOurs:
    """Publish and withdraw both raise PackageNotOurs; the package is byte for byte as it was
    (same modification time, owner, title, resources, extras)."""
    name = ckan_name(dataset["dataset_id"])
    before = _snapshot(ckan, name)
    path = csv_file(tmp_path, f"station,ph\nA,{uuid.uuid4().int % 14}.5\n", "new.csv")
    with pytest.raises(PackageNotOurs) as published:
        publisher.publish(dataset, path, SCHEMA, "review-9", package_id=package_id)
    with pytest.raises(PackageNotOurs) as withdrawn:
        publisher.withdraw(dataset, "taken down", package_id=package_id)
    assert _snapshot(ckan, name) == before
    for caught in (published, withdrawn):
        assert caught.value.code == "package-not-ours"
        assert caught.value.reasons
        assert caught.value.as_dict()["package"] == name
    return published.value


def test_a_package_of_another_organisation_is_neither_adopted_nor_purged(
    ckan, publisher, dataset, intruder, tmp_path
):
    """Another organisation's package with the dataset's name: refused, left as it was."""
    intruder.create_package(ckan_name(dataset["dataset_id"]), intruder.organization)
    refused = _refused_and_untouched(ckan, publisher, dataset, tmp_path)
    assert any("organisation" in reason for reason in refused.reasons)


def test_a_forged_mark_in_the_agencys_own_organisation_is_refused(
    ckan, publisher, dataset, intruder, tmp_path
):
    """An editor of the agency's organisation makes a package that carries every extra
    Tabadul writes (dataset id, version, SHA-256s): it was not made by Tabadul's account, so
    it is refused and left as it was."""
    agency_org = ckan_name(dataset["owner_agency"])
    ckan.action.organization_create(name=agency_org)
    ckan.action.organization_member_create(id=agency_org, username=intruder.user, role="editor")
    forged = {
        "tabadul_dataset_id": dataset["dataset_id"],
        "source_agency": dataset["owner_agency"],
        "approval_reference": "review:1",
        "sha256:data.csv": "0" * 64,
    }
    intruder.create_package(
        ckan_name(dataset["dataset_id"]),
        agency_org,
        version="1",
        extras=[{"key": k, "value": v} for k, v in forged.items()],
    )
    refused = _refused_and_untouched(ckan, publisher, dataset, tmp_path)
    assert any("account" in reason for reason in refused.reasons)


def test_an_unmarked_package_of_tabadul_s_own_account_is_refused(
    ckan, publisher, dataset, tmp_path
):
    """A package Tabadul's account made by hand, without the dataset's mark: refused."""
    agency_org = ckan_name(dataset["owner_agency"])
    ckan.action.organization_create(name=agency_org)
    ckan.action.package_create(name=ckan_name(dataset["dataset_id"]), owner_org=agency_org)
    refused = _refused_and_untouched(ckan, publisher, dataset, tmp_path)
    assert any("mark" in reason for reason in refused.reasons)


def test_a_package_moved_to_another_organisation_is_refused(
    ckan, publisher, dataset, intruder, tmp_path
):
    """Tabadul's own package, moved to another organisation on the portal: refused."""
    first = publisher.publish(dataset, csv_file(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "r-1")
    ckan.action.package_patch(id=first.package_id, owner_org=intruder.organization)
    intruder.packages.append(first.name)
    _refused_and_untouched(ckan, publisher, dataset, tmp_path, package_id=first.package_id)


def test_only_the_recorded_package_is_published_into_or_withdrawn(
    ckan, publisher, dataset, tmp_path
):
    """Given the package id governance recorded, another package of the same name (even one
    Tabadul's account made) is refused; the recorded one is withdrawn."""
    first = publisher.publish(dataset, csv_file(tmp_path, "station,ph\nA,7.1\n"), SCHEMA, "r-1")
    ckan.action.dataset_purge(id=first.package_id)
    second = publisher.publish(dataset, csv_file(tmp_path, "station,ph\nB,7\n"), SCHEMA, "r-2")
    assert second.package_id != first.package_id
    refused = _refused_and_untouched(
        ckan, publisher, dataset, tmp_path, package_id=first.package_id
    )
    assert any(first.package_id in reason for reason in refused.reasons)
    withdrawn = publisher.withdraw(dataset, "superseded", package_id=second.package_id)
    assert withdrawn.package_id == second.package_id
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=second.package_id)
