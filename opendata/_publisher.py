"""Publish a validated dataset to CKAN, idempotently, and withdraw it for real.

A publication is two resources: the CSV data (``data.csv``) and its Table Schema
(``schema.json``). Their SHA-256s are kept in the package extras; publishing the same bytes
again changes nothing, new bytes make a new version (the ``version`` extra goes up and CKAN's
activity stream keeps the previous package, resources and extras).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from opendata._ckan import CkanClient
from opendata._errors import InvalidData, NotPublished
from opendata._mapping import (
    SHA256_PREFIX,
    ResourceInfo,
    ckan_name,
    extras_of,
    organization_dict,
    package_dict,
    published_version,
)
from opendata._validate import validate_resource

DATA_RESOURCE = "data.csv"
SCHEMA_RESOURCE = "schema.json"
Status = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What :meth:`Publisher.publish` did: ``created``, ``updated`` (a new version) or
    ``unchanged`` (the portal already holds these bytes)."""

    status: Status
    package_id: str
    name: str
    version: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "package_id": self.package_id,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, slots=True)
class WithdrawResult:
    """The record of a withdrawal: which package was purged, at which version, and why."""

    dataset_id: str
    package_id: str
    name: str
    version: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "package_id": self.package_id,
            "name": self.name,
            "version": self.version,
            "reason": self.reason,
        }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def schema_bytes(table_schema: Mapping[str, Any]) -> bytes:
    """The published form of a Table Schema: sorted keys, so equal schemas give equal bytes."""
    return json.dumps(table_schema, ensure_ascii=False, indent=2, sort_keys=True).encode()


def _unchanged(existing: Mapping[str, Any], resources: list[ResourceInfo]) -> bool:
    """The package holds every resource, each with the SHA-256 we would publish."""
    extras = extras_of(existing)
    present = {r.get("name") for r in existing.get("resources") or ()}
    return all(
        info.name in present and extras.get(SHA256_PREFIX + info.name) == info.sha256
        for info in resources
    )


class Publisher:
    """Publishes datasets to the CKAN at ``ckan_url`` with an API ``token``.

    ``dataset`` is a mapping with the fields of ``governance.Dataset`` (see
    :mod:`opendata._mapping`). Portal failures raise :class:`opendata.PortalError` subclasses.
    """

    def __init__(self, ckan_url: str, token: str) -> None:
        self._url = ckan_url
        self._token = token

    def publish(
        self,
        dataset: Mapping[str, Any],
        csv_path: Path | str,
        table_schema: Mapping[str, Any],
        approval_ref: str,
    ) -> PublishResult:
        """Validate, then publish ``csv_path`` and its schema as ``dataset``'s package.

        Raises :class:`opendata.InvalidData` (nothing sent) when the CSV does not match the
        schema, ``ValueError`` when the dataset cannot be mapped (see ``package_dict``).
        """
        csv_path = Path(csv_path)
        report = validate_resource(csv_path, table_schema)
        if not report.valid:
            raise InvalidData(
                f"{csv_path.name} does not match its Table Schema ({len(report.errors)} error(s))",
                report,
            )
        data_sha = _sha256(csv_path.read_bytes())
        schema_data = schema_bytes(table_schema)
        resources = [
            ResourceInfo(DATA_RESOURCE, "CSV", data_sha, "The data"),
            ResourceInfo(SCHEMA_RESOURCE, "JSON", _sha256(schema_data), "Its Table Schema"),
        ]
        name = ckan_name(str(dataset["dataset_id"]))
        with CkanClient(self._url, self._token) as ckan:
            existing = ckan.package(name)
            if existing is not None and existing.get("state") == "active":
                current = published_version(existing)
                if _unchanged(existing, resources):
                    return PublishResult("unchanged", existing["id"], name, current, data_sha)
                version = current + 1
            else:
                existing, version = None, 1
            package = package_dict(
                dataset, version=version, resources=resources, approval_ref=approval_ref
            )
            if existing is None:
                ckan.ensure_organization(organization_dict(str(dataset["owner_agency"])))
                # Created without its SHA-256s: until the uploads succeed it does not claim them.
                pending = package_dict(
                    dataset, version=version, resources=[], approval_ref=approval_ref
                )
                existing = ckan.create_package(pending)
            by_name = {r["name"]: r["id"] for r in existing.get("resources") or ()}
            with tempfile.TemporaryDirectory(prefix="tabadul-opendata-") as tmp:
                schema_path = Path(tmp) / SCHEMA_RESOURCE
                schema_path.write_bytes(schema_data)
                for info, path in ((resources[0], csv_path), (resources[1], schema_path)):
                    fields = {"name": info.name, "format": info.format}
                    fields["description"] = info.description
                    ckan.upload_resource(
                        package_id=existing["id"],
                        path=path,
                        fields=fields,
                        resource_id=by_name.get(info.name),
                    )
            # The metadata last: it claims the new bytes only once they are on the portal.
            changes = {k: v for k, v in package.items() if k != "name"}
            ckan.patch_package(existing["id"], changes)
        status: Status = "created" if version == 1 else "updated"
        return PublishResult(status, existing["id"], name, version, data_sha)

    def withdraw(self, dataset_id: str, reason: str) -> WithdrawResult:
        """Purge the dataset's package (delete for good): package_show then finds nothing and
        search no longer lists it. Raises :class:`opendata.NotPublished` when there is none."""
        if not reason.strip():
            raise ValueError("a withdrawal needs a reason")
        name = ckan_name(dataset_id)
        with CkanClient(self._url, self._token) as ckan:
            existing = ckan.package(name)
            if existing is None:
                raise NotPublished(f"{dataset_id} has no package {name!r} on the portal")
            ckan.purge_package(existing["id"])
        return WithdrawResult(dataset_id, existing["id"], name, published_version(existing), reason)
