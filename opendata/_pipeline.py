"""The governed open-data pipeline: the one code path the CLI, the API, the console and the
demo call to submit, publish and withdraw a dataset.

``submit`` keeps the offered bytes in a content-addressed :class:`DataFiles` store, screens
them for PII and validates them with Frictionless; invalid data is refused (nothing is
submitted), valid data goes to review with both reports kept with it. ``publish`` sends
exactly the bytes that were approved (a copy of the stored file, hashed as it is made: a
file changed in the store since approval is refused, nothing sent), then records the
publication. ``withdraw`` purges the package and records the withdrawal, with
its reason, in the audit log.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance import (
    RFC4180,
    ChangedSinceApproval,
    Dataset,
    FileTooLarge,
    IllegalTransition,
    InvalidInput,
    Review,
    State,
    TableLimits,
    User,
    Workflow,
    check_action,
    check_publishable,
    quality,
)
from governance.pii import PiiReport, scan_csv
from opendata._errors import InvalidData, MissingFile, NotPublished, PackageNotOurs
from opendata._hashing import Progress, file_sha256
from opendata._mapping import ckan_name
from opendata._publisher import Publisher, PublishResult, WithdrawResult
from opendata._validate import DataReport, validate_resource

_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


class DataFiles:
    """Submitted files kept by their SHA-256 under ``root`` (``<sha256>.csv``): what was
    reviewed is exactly what gets published, whatever happens to the original file. No file
    over ``max_bytes`` is kept."""

    def __init__(self, root: Path | str, *, max_bytes: int = TableLimits().max_bytes) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def put(self, source: Path | str, progress: Progress | None = None) -> str:
        """Copy ``source`` into the store (atomically, hashing it on the way: one read) and
        return its SHA-256. Raises :class:`MissingFile` when ``source`` cannot be read (or is
        not a regular file), :class:`governance.FileTooLarge` (nothing kept) when it is over
        ``max_bytes``."""
        source = Path(source)
        if not source.is_file():
            raise MissingFile(f"cannot read {source}: no such file")
        size = source.stat().st_size
        if size > self.max_bytes:
            raise FileTooLarge(
                f"{source.name} is {size:,} bytes: more than the {self.max_bytes:,} allowed"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        tmp = Path(name)
        try:
            with os.fdopen(handle, "wb") as copy:
                try:
                    digest = file_sha256(source, progress, copy_to=copy)
                except OSError as exc:
                    raise MissingFile(f"cannot read {source}: {exc.strerror or exc}") from exc
            # Always replace: a file already under this name may no longer hold these bytes
            # (changed in the store), and what is screened and validated next must be them.
            tmp.replace(self.root / f"{digest}.csv")
        finally:
            tmp.unlink(missing_ok=True)
        return digest

    def copy_out(self, sha256: str, target: Path) -> str:
        """Copy the stored file of ``sha256`` to ``target`` (hashing it on the way: one read)
        and return the SHA-256 of the bytes copied. The caller compares it with ``sha256``:
        a file changed in the store keeps its name but not its hash. Raises
        :class:`MissingFile` when the store lacks it or it cannot be read."""
        stored = self.path(sha256)
        try:
            with target.open("wb") as copy:
                return file_sha256(stored, copy_to=copy)
        except OSError as exc:
            raise MissingFile(f"cannot read {stored}: {exc.strerror or exc}") from exc

    def path(self, sha256: str) -> Path:
        """The stored file of ``sha256``; :class:`MissingFile` when the store lacks it."""
        if not _SHA256.match(sha256):
            raise MissingFile(f"{sha256!r} is not a SHA-256")
        found = self.root / f"{sha256}.csv"
        if not found.is_file():
            raise MissingFile(
                f"the file with SHA-256 {sha256[:12]}… is not in the data store {self.root}"
            )
        return found


@dataclass(frozen=True, slots=True)
class Submission:
    """What ``submit`` did: the review opened, and the two reports kept with it."""

    review: Review
    pii: PiiReport
    validation: DataReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.review.dataset_id,
            "review_id": self.review.review_id,
            "sha256": self.review.content_sha256,
            "findings": [f.finding_id for f in self.review.findings],
            "pii": self.pii.as_dict(),
            "validation": self.validation.as_dict(),
        }


def _recorded_package(ds: Dataset) -> str | None:
    """The CKAN id of the package governance recorded for ``ds`` (its publication reference
    is ``<package id>@<version>``), or None before any recorded publication."""
    package_id, at, version = (ds.publication_reference or "").rpartition("@")
    return package_id if at and package_id and version.isdigit() else None


def dataset_fields(ds: Dataset) -> dict[str, Any]:
    """A governed dataset as the mapping the CKAN mapping reads."""
    return {
        "dataset_id": ds.dataset_id,
        "owner_agency": ds.owner_agency,
        "steward": ds.steward,
        "title": dict(ds.title),
        "description": dict(ds.description),
        "licence": ds.licence,
        "tags": list(ds.tags),
        "classification": ds.classification.level.value if ds.classification else None,
        "quality_score": quality(ds).score,
    }


class OpenData:
    """The pipeline over one governance workflow, one data store and one portal. Submitted
    files are read as the platform publishes them (RFC 4180: commas, double quotes, UTF-8, a
    header row), by screening and validation alike, within ``limits``."""

    def __init__(
        self,
        workflow: Workflow,
        files: DataFiles,
        portal: Publisher,
        *,
        limits: TableLimits | None = None,
    ) -> None:
        self.workflow = workflow
        self.files = files
        self.portal = portal
        self.limits = limits or TableLimits()

    def submit(
        self,
        actor: User | str,
        dataset_id: str,
        csv_path: Path | str,
        *,
        reason: str = "",
        progress: Progress | None = None,
    ) -> Submission:
        """Keep, validate and screen ``csv_path``, then submit it for review with its PII
        findings (formula cells included) and both reports. Raises :class:`InvalidData`
        (nothing submitted) when it does not match the dataset's Table Schema, its header
        first (a file in another dialect among them: ``dialect-mismatch`` in the report);
        a :class:`governance.TooLarge` kind when it is over the limits; workflow refusals as
        governance raises them (checked first, before any work)."""
        ds = self.workflow.dataset(dataset_id)
        check_action("submit_for_review", self._user(actor), ds)
        check_publishable("submit_for_review", ds)
        digest = self.files.put(csv_path, progress)
        stored = self.files.path(digest)
        name = Path(csv_path).name
        validation = validate_resource(
            stored, ds.table_schema, dialect=RFC4180, limits=self.limits, name=name
        )
        if not validation.valid:
            raise InvalidData(
                f"{Path(csv_path).name} does not match the Table Schema of dataset "
                f"{dataset_id} ({len(validation.errors)} error(s)); nothing was submitted",
                validation,
            )
        pii = scan_csv(stored, dialect=RFC4180, limits=self.limits, name=name)
        review = self.workflow.submit_for_review(
            actor,
            dataset_id,
            content_sha256=digest,
            pii_findings=[f.id for f in pii.findings],
            reports={"pii": pii.as_dict(), "validation": validation.as_dict()},
            reason=reason,
        )
        return Submission(review, pii, validation)

    def publish(self, actor: User | str, dataset_id: str) -> PublishResult:
        """Publish the approved bytes of an APPROVED dataset to the portal, then record it
        (APPROVED -> PUBLISHED, the CKAN package id and version as the reference). Only into
        the package recorded by an earlier publication, if there was one."""
        ds = self.workflow.dataset(dataset_id)
        check_action("mark_published", self._user(actor), ds)
        check_publishable("mark_published", ds)
        review = self.workflow.review(dataset_id)
        if review is None or review.decision != "approved":
            raise IllegalTransition(
                f"dataset {dataset_id} has no approved review to publish",
                action="mark_published",
                dataset_id=dataset_id,
            )
        approved = review.content_sha256
        checked = review.reports.get("validation")
        stored = self.files.path(approved)  # MissingFile first, before any copy is made
        with tempfile.TemporaryDirectory(dir=stored.parent, prefix=".publish-") as tmp:
            # Send a private copy, hashed as it was made: the stored file may have changed
            # since approval (its name is the approved SHA-256, its bytes need not be), and
            # the copy cannot change while it is uploaded.
            copy = Path(tmp) / f"{approved}.csv"
            offered = self.files.copy_out(approved, copy)
            if offered != approved:
                raise ChangedSinceApproval(
                    f"the data store's file for dataset {dataset_id} (SHA-256 {approved[:12]}…) "
                    f"now holds other bytes (SHA-256 {offered[:12]}…) than were approved; "
                    "nothing was sent: submit the data again for a new review",
                    action="mark_published",
                    dataset_id=dataset_id,
                    approved=approved,
                    offered=offered,
                )
            result = self.portal.publish(
                dataset_fields(ds),
                copy,
                ds.table_schema,
                approval_ref=f"review:{review.review_id}",
                # the review's report is of these very bytes (checked just above)
                validated=DataReport.from_dict(checked) if checked else None,
                package_id=_recorded_package(ds),
                approvers=[review.decided_by] if review.decided_by else [],
            )
        self.workflow.mark_published(
            actor,
            dataset_id,
            content_sha256=approved,
            reference=f"{result.package_id}@{result.version}",
        )
        return result

    def withdraw(self, actor: User | str, dataset_id: str, *, reason: str) -> WithdrawResult:
        """Purge the dataset's package from the portal and record the withdrawal (with its
        reason and what was purged) in the audit log: PUBLISHED -> WITHDRAWN. A package of
        the dataset's name that is not Tabadul's raises :class:`PackageNotOurs`: nothing is
        purged and nothing recorded."""
        if not reason.strip():
            raise InvalidInput("a withdrawal needs a reason (it is kept in the audit log)")
        ds = self.workflow.dataset(dataset_id)
        check_action("withdraw", self._user(actor), ds)
        if ds.state is not State.PUBLISHED and ds.published_sha256 is None:
            raise IllegalTransition(
                f"dataset {dataset_id} is {ds.state}: only a published dataset is withdrawn",
                action="withdraw",
                dataset_id=dataset_id,
            )
        try:
            result = self.portal.withdraw(
                dataset_fields(ds), reason, package_id=_recorded_package(ds)
            )
        except PackageNotOurs:
            raise  # someone else's package has the name: nothing is purged, nothing recorded
        except NotPublished:
            # Already gone (an earlier attempt purged it but could not record it): record it.
            reference = ds.publication_reference or ""
            result = WithdrawResult(dataset_id, reference, ckan_name(dataset_id), 0, 0, reason)
        self.workflow.withdraw(actor, dataset_id, reason=reason)
        return result

    def _user(self, actor: User | str) -> User:
        return self.workflow.user(actor if isinstance(actor, str) else actor.user_id)


__all__ = ["DataFiles", "OpenData", "Progress", "Submission", "dataset_fields", "file_sha256"]
