"""Publish a validated dataset to CKAN, idempotently and without ever showing half of it,
and withdraw it for real.

A publication at version N is four files: the CSV data (``data.csv``), its Table Schema
(``schema.json``), a Frictionless ``datapackage.json`` naming the data's SHA-256, and the
signed release ``release.json`` (:mod:`governance._release`: the other three files' sizes and
SHA-256s, the dataset, version and approval, signed by the governance publishing key that the
bus CA certified), so that consumers trust the bytes, not the portal. Each resource carries
``tabadul_version`` and ``sha256`` fields; the package's ``version`` and its
``sha256:<name>`` extras say which version is current. Older versions' files stay in the
package (its history), each version's stored under names of their own (``data.v2.csv``);
consumers take the current ones, or any version with its own signed release.

Order of work, so that the public never sees a half publication:

1. a first publication creates the package **private**;
2. the files are uploaded (a retry reuses files of this version already uploaded);
3. one final ``package_patch`` claims them (version, SHA-256s) and makes the package public.

Until step 3 the package is private (first version) or still claims the previous, complete
version. Transient portal failures are retried with exponential backoff; if the portal stays
down, what this attempt uploaded is rolled back when possible, and otherwise left unclaimed
(or private) for the next publish to resume. Withdrawal deletes every uploaded file from the
portal's storage, then purges the package.

Only Tabadul's own package of a dataset is ever patched, uploaded into or purged: one in the
agency's organisation, created by the account Tabadul publishes with, marked with the
dataset's id from its creation on, and (once governance recorded a publication) the very
package recorded. Anything else under the dataset's name raises
:class:`opendata.PackageNotOurs` before any change (see ``not_ours``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography import x509

from governance import RELEASE_FILE, AuditSigner, ReleaseFile, new_release, sign_release
from opendata._ckan import DEFAULT_TIMEOUT, CkanClient
from opendata._dcat import current_resources, resources_of_version
from opendata._errors import (
    InvalidData,
    NoReleaseKey,
    NotPublished,
    PackageNotOurs,
    PortalError,
    PortalRejected,
    PortalUnavailable,
    PublishInterrupted,
)
from opendata._hashing import file_sha256
from opendata._mapping import (
    EXTRA_DATASET,
    SHA256_PREFIX,
    ResourceInfo,
    ckan_name,
    datapackage_dict,
    extras_of,
    not_ours,
    organization_dict,
    package_dict,
    published_version,
)
from opendata._validate import DataReport, validate_resource

DATA_RESOURCE = "data.csv"
SCHEMA_RESOURCE = "schema.json"
DATAPACKAGE_RESOURCE = "datapackage.json"
Status = Literal["created", "updated", "unchanged"]
# Told the name of each step as it starts (for progress bars and fault-injection tests).
StepHook = Callable[[str], None]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and how patiently, a call that found the portal unavailable is tried."""

    attempts: int = 4
    first_delay: float = 0.5
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        """The pauses between attempts (one fewer than the attempts)."""
        delay = self.first_delay
        for _ in range(self.attempts - 1):
            yield delay
            delay *= self.factor


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
    """The record of a withdrawal: which package was purged, at which version, how many
    uploaded files were deleted, and why."""

    dataset_id: str
    package_id: str
    name: str
    version: int
    files_deleted: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "package_id": self.package_id,
            "name": self.name,
            "version": self.version,
            "files_deleted": self.files_deleted,
            "reason": self.reason,
        }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def versioned_name(name: str, version: int) -> str:
    """The name a version's file is stored and served under: ``data.v2.csv`` (each version's
    files have URLs of their own; the resource keeps its plain name)."""
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.v{version}.{suffix}" if dot else f"{name}.v{version}"


def schema_bytes(table_schema: Mapping[str, Any]) -> bytes:
    """The published form of a Table Schema: sorted keys, so equal schemas give equal bytes."""
    return json.dumps(table_schema, ensure_ascii=False, indent=2, sort_keys=True).encode()


def _unchanged(existing: Mapping[str, Any], resources: list[ResourceInfo]) -> bool:
    """The package's current version holds every resource with the SHA-256 we would publish."""
    extras = extras_of(existing)
    present = {r.get("name"): r.get("sha256") for r in current_resources(existing)}
    return all(
        present.get(info.name) == info.sha256
        and extras.get(SHA256_PREFIX + info.name) == info.sha256
        for info in resources
    )


class Publisher:
    """Publishes datasets to the CKAN at ``ckan_url`` with an API ``token``.

    ``dataset`` is a mapping with the fields of ``governance.Dataset`` (see
    :mod:`opendata._mapping`). Portal failures raise :class:`opendata.PortalError` subclasses;
    a publication the portal interrupted raises :class:`opendata.PublishInterrupted`.
    """

    def __init__(  # noqa: PLR0913 - keyword-only tuning knobs
        self,
        ckan_url: str,
        token: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        on_step: StepHook | None = None,
        signer: AuditSigner | None = None,
    ) -> None:
        """``signer`` signs each release (the governance publishing key); without one,
        :meth:`publish` refuses (:class:`opendata.NoReleaseKey`)."""
        self.url = ckan_url
        self.signer = signer
        self._token = token
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._sleep = sleep
        self._on_step = on_step
        # organisations known to exist on the portal (each is checked once per publisher)
        self._organizations: set[str] = set()
        self._account: str | None = None  # the user id behind the token, asked once

    def _client(self) -> CkanClient:
        return CkanClient(self.url, self._token, timeout=self._timeout)

    def _retrying(self, step: str, call: Callable[[], _T]) -> _T:
        """Run ``call``; while the portal is unavailable, retry with backoff."""
        if self._on_step is not None:
            self._on_step(step)
        delays = self._retry.delays()
        while True:
            try:
                return call()
            except PortalUnavailable:
                delay = next(delays, None)
                if delay is None:
                    raise
                self._sleep(delay)

    def _check_ours(
        self,
        ckan: CkanClient,
        package: Mapping[str, Any],
        dataset: Mapping[str, Any],
        package_id: str | None,
    ) -> None:
        """Raise :class:`PackageNotOurs` unless ``package`` is Tabadul's own package of
        ``dataset`` (see ``not_ours``)."""
        if self._account is None:
            self._account = self._retrying("account", ckan.account)
        reasons = not_ours(
            package,
            dataset_id=str(dataset["dataset_id"]),
            organization=organization_dict(str(dataset["owner_agency"]))["name"],
            account=self._account,
            package_id=package_id,
        )
        if reasons:
            name = str(package.get("name"))
            raise PackageNotOurs(
                f"the portal's package {name!r} is not Tabadul's package of dataset "
                f"{dataset['dataset_id']}: {'; '.join(reasons)}. Nothing was changed on the "
                "portal: have its owner rename or remove it",
                package=name,
                reasons=reasons,
            )

    def publish(  # noqa: PLR0913 - the publication, then keyword-only facts about it
        self,
        dataset: Mapping[str, Any],
        csv_path: Path | str,
        table_schema: Mapping[str, Any],
        approval_ref: str,
        *,
        validated: DataReport | None = None,
        package_id: str | None = None,
        approvers: Sequence[str] = (),
    ) -> PublishResult:
        """Validate, then publish ``csv_path``, its schema and a datapackage.json as
        ``dataset``'s package (see the module's docstring for the order of work).
        ``validated``: the report of an earlier validation of these very bytes against this
        schema (the governed pipeline keeps one with each review); validation runs again
        unless it says valid. ``package_id``: the package governance recorded for the dataset
        (None before its first recorded publication); a package of the dataset's name must be
        that one.

        Raises :class:`opendata.InvalidData` (nothing sent) when the CSV does not match the
        schema, ``ValueError`` when the dataset cannot be mapped (see ``package_dict``),
        :class:`opendata.PackageNotOurs` (nothing changed) when the package of that name is
        not Tabadul's, :class:`opendata.PublishInterrupted` when the portal stayed
        unavailable part way.
        """
        signer = self.signer
        if signer is None:
            raise NoReleaseKey(
                "no key signs releases here: set TABADUL_GOVERNANCE_KEYS to the governance "
                "key folder (certified by the bus CA); nothing was sent"
            )
        csv_path = Path(csv_path)
        report = validated
        if report is None or not report.valid:
            report = validate_resource(csv_path, table_schema)
        if not report.valid:
            raise InvalidData(
                f"{csv_path.name} does not match its Table Schema ({len(report.errors)} error(s))",
                report,
            )
        data = ResourceInfo(DATA_RESOURCE, "CSV", file_sha256(csv_path), "The data (CSV)")
        schema_data = schema_bytes(table_schema)
        name = ckan_name(str(dataset["dataset_id"]))
        with self._client() as ckan:
            existing = self._retrying("look up", lambda: ckan.package(name))
            if existing is not None:
                self._check_ours(ckan, existing, dataset, package_id)
            claimed = 0
            if existing is not None and not existing.get("private"):
                claimed = published_version(existing)
            version = claimed + 1
            package_data = json.dumps(
                datapackage_dict(dataset, version=version, table_schema=table_schema, data=data),
                ensure_ascii=False,
                indent=2,
            ).encode()
            resources = [
                data,
                ResourceInfo(SCHEMA_RESOURCE, "JSON", _sha256(schema_data), "Its Table Schema"),
                ResourceInfo(
                    DATAPACKAGE_RESOURCE,
                    "JSON",
                    _sha256(package_data),
                    "Frictionless Data Package: the data's SHA-256 and schema",
                ),
            ]
            if (
                existing is not None
                and claimed
                and _unchanged(existing, resources[:2])
                and self._signed_by(ckan, existing, signer)
            ):
                return PublishResult("unchanged", existing["id"], name, claimed, data.sha256)
            release = new_release(
                dataset_id=str(dataset["dataset_id"]),
                package=name,
                version=version,
                files=[
                    ReleaseFile(DATA_RESOURCE, csv_path.stat().st_size, data.sha256),
                    ReleaseFile(SCHEMA_RESOURCE, len(schema_data), resources[1].sha256),
                    ReleaseFile(DATAPACKAGE_RESOURCE, len(package_data), resources[2].sha256),
                ],
                schema_sha256=resources[1].sha256,
                approval=approval_ref,
                approvers=approvers,
            )
            release_data = sign_release(release, signer)
            resources.append(
                ResourceInfo(
                    RELEASE_FILE,
                    "JSON",
                    _sha256(release_data),
                    "Signed release: every file's size and SHA-256, the approval, the signer",
                )
            )
            package = package_dict(
                dataset, version=version, resources=resources, approval_ref=approval_ref
            )
            with tempfile.TemporaryDirectory(prefix="tabadul-opendata-") as tmp:
                files = {DATA_RESOURCE: csv_path}
                contents = (schema_data, package_data, release_data)
                for info, content in zip(resources[1:], contents, strict=True):
                    files[info.name] = Path(tmp) / info.name
                    files[info.name].write_bytes(content)
                package_id = self._stage_and_claim(
                    ckan,
                    dataset=dataset,
                    existing=existing,
                    package=package,
                    resources=resources,
                    files=files,
                )
        status: Status = "created" if version == 1 else "updated"
        return PublishResult(status, package_id, name, version, data.sha256)

    def _signed_by(self, ckan: CkanClient, package: Mapping[str, Any], signer: AuditSigner) -> bool:
        """Whether the current version's release was signed with ``signer``'s certificate:
        the same bytes under a release signed otherwise (none at all, another key, another
        CA) are published again as a new version, signed now."""
        release = next(
            (r for r in current_resources(package) if r.get("name") == RELEASE_FILE), None
        )
        if release is None:
            return False
        with tempfile.TemporaryDirectory(prefix="tabadul-release-") as tmp:
            path = Path(tmp) / RELEASE_FILE
            try:
                self._retrying("read release", partial(ckan.download, str(release["url"]), path))
                document = json.loads(path.read_bytes())
                certificate = x509.load_pem_x509_certificate(str(document["certificate"]).encode())
            except (NotPublished, ValueError, TypeError, KeyError):
                return False
        return certificate == signer.certificate

    def _create(
        self, ckan: CkanClient, package: Mapping[str, Any], dataset: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create the package; if a timed-out earlier try did create it, take that one (and
        nothing someone else made meanwhile)."""
        try:
            return ckan.create_package(package)
        except PortalRejected:
            found = ckan.package(str(package["name"]))
            if found is None:
                raise
            self._check_ours(ckan, found, dataset, None)
            return found

    def _stage_and_claim(  # noqa: PLR0913 - the parts of one publication
        self,
        ckan: CkanClient,
        *,
        dataset: Mapping[str, Any],
        existing: dict[str, Any] | None,
        package: dict[str, Any],
        resources: list[ResourceInfo],
        files: Mapping[str, Path],
    ) -> str:
        """Steps 1-3 of the module's docstring; on failure, roll back or leave it resumable."""
        version = int(package["version"])
        created = False
        uploaded: list[str] = []
        try:
            if existing is None:
                org = organization_dict(str(dataset["owner_agency"]))
                if org["name"] not in self._organizations:
                    self._retrying("organisation", lambda: ckan.ensure_organization(org))
                    self._organizations.add(org["name"])
                # marked from the start, so that a resumed first publication knows it is ours
                mark = {"key": EXTRA_DATASET, "value": str(dataset["dataset_id"])}
                private = {**package, "private": True, "extras": [mark]}
                existing = self._retrying("create", partial(self._create, ckan, private, dataset))
                created = True
            package_id = str(existing["id"])
            staged = resources_of_version(existing, version)
            for info in resources:
                keep = next((r for r in staged if r.get("sha256") == info.sha256), None)
                for stale in staged:
                    if stale.get("name") == info.name and stale is not keep:
                        self._retrying(
                            f"remove {info.name}", partial(ckan.delete_upload, str(stale["id"]))
                        )
                if keep is not None:
                    continue
                fields = {
                    "name": info.name,
                    "format": info.format,
                    "description": f"{info.description}, version {version}",
                    "tabadul_version": str(version),
                    "sha256": info.sha256,
                }
                upload = partial(
                    ckan.upload_resource,
                    package_id=package_id,
                    path=files[info.name],
                    fields=fields,
                    stored_as=versioned_name(info.name, version),
                )
                made = self._retrying(f"upload {info.name}", upload)
                uploaded.append(str(made["id"]))
            changes = {k: v for k, v in package.items() if k != "name"}
            claim = {**changes, "private": False}
            self._retrying("claim", lambda: ckan.patch_package(package_id, claim))
        except PortalError as exc:
            undone = self._roll_back(ckan, existing, created=created, uploaded=uploaded)
            if not isinstance(exc, PortalUnavailable):
                raise
            left = (
                "what was uploaded has been rolled back"
                if undone
                else "what was uploaded is private or unclaimed and the next publish resumes it"
            )
            raise PublishInterrupted(
                f"publishing {package['name']} version {version} was interrupted: "
                f"{exc.message}; nothing new was made public and {left}"
            ) from exc
        return package_id

    def _roll_back(
        self,
        ckan: CkanClient,
        existing: Mapping[str, Any] | None,
        *,
        created: bool,
        uploaded: list[str],
    ) -> bool:
        """Best effort: purge a package this attempt created (still private), or delete the
        files it uploaded. False when the portal did not let us."""
        try:
            if created and existing is not None:
                for resource_id in uploaded:
                    ckan.clear_upload(resource_id)
                ckan.purge_package(str(existing["id"]))
            else:
                for resource_id in uploaded:
                    ckan.delete_upload(resource_id)
        except PortalError:
            return False
        return True

    def withdraw(
        self, dataset: Mapping[str, Any], reason: str, *, package_id: str | None = None
    ) -> WithdrawResult:
        """Delete every uploaded file of ``dataset``'s package from the portal's storage, then
        purge the package: package_show finds nothing, search lists nothing and the file
        URLs no longer serve. ``package_id``: the package governance recorded, as for
        :meth:`publish`. Raises :class:`opendata.NotPublished` when there is none, and
        :class:`opendata.PackageNotOurs` (nothing deleted) when the package of the dataset's
        name is not Tabadul's."""
        if not reason.strip():
            raise ValueError("a withdrawal needs a reason")
        dataset_id = str(dataset["dataset_id"])
        name = ckan_name(dataset_id)
        with self._client() as ckan:
            existing = self._retrying("look up", lambda: ckan.package(name))
            if existing is None:
                raise NotPublished(f"{dataset_id} has no package {name!r} on the portal")
            self._check_ours(ckan, existing, dataset, package_id)
            uploads = [
                str(r["id"])
                for r in existing.get("resources") or ()
                if r.get("url_type") == "upload"
            ]
            for resource_id in uploads:
                self._retrying("delete file", partial(ckan.clear_upload, resource_id))
            self._retrying("purge", lambda: ckan.purge_package(str(existing["id"])))
        return WithdrawResult(
            dataset_id, existing["id"], name, published_version(existing), len(uploads), reason
        )


__all__ = [
    "DATAPACKAGE_RESOURCE",
    "DATA_RESOURCE",
    "RELEASE_FILE",
    "SCHEMA_RESOURCE",
    "PublishResult",
    "Publisher",
    "RetryPolicy",
    "WithdrawResult",
    "versioned_name",
]
