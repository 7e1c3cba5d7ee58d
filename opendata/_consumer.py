"""The open-data consumer's side: find what Tabadul published, pull it, and trust it only
after checking it against its signed release, with the bus CA's certificate alone.

``pull`` reads the current version's ``release.json`` first and verifies it
(:func:`governance.verify_release`): signed by a signing certificate the CA issued, valid
when the release was made, unchanged since. Then the portal's package must say what the
release says (dataset, package, version, the same files and SHA-256s in its metadata), every
downloaded file must have the size and SHA-256 the release names, and the data must match
the published schema. Only then do the files land under their names (with ``release.json``
beside them); if anything differs, nothing is kept as valid: every file downloaded is kept as
``<name>.rejected`` and the report gives the code and why. Whoever controls the portal can
serve other bytes, but not ones that pass.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from governance import RELEASE_FILE, Release, ReleaseError, SignedRelease, verify_release
from opendata._ckan import DEFAULT_TIMEOUT, CkanClient
from opendata._dcat import current_resources, dcat_catalog, resources_of_version
from opendata._errors import InvalidSchema, NotPublished, UnknownVersion
from opendata._hashing import file_sha256
from opendata._mapping import (
    EXTRA_DATASET,
    SHA256_PREFIX,
    ckan_name,
    extras_of,
    published_version,
)
from opendata._validate import DataReport, validate_resource

# Told the byte count of each chunk downloaded.
Downloaded = Callable[[int], None]
_PAGE = 100
MAX_RELEASE = 1 << 20  # bytes: a release names a handful of files
_OURS = f"extras_{EXTRA_DATASET}:*"  # CKAN indexes extras as extras_<key>


@dataclass(frozen=True, slots=True)
class Listing:
    """One published dataset, as search shows it."""

    name: str
    dataset_id: str
    title: str
    agency: str
    version: int
    url: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataset_id": self.dataset_id,
            "title": self.title,
            "agency": self.agency,
            "version": self.version,
            "url": self.url,
        }


@dataclass(frozen=True, slots=True)
class PulledFile:
    name: str
    path: str
    size: int
    sha256: str
    expected_sha256: str | None

    @property
    def verified(self) -> bool:
        return self.expected_sha256 is not None and self.sha256 == self.expected_sha256

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "expected_sha256": self.expected_sha256,
            "verified": self.verified,
        }


@dataclass(frozen=True, slots=True)
class PullReport:
    """What ``pull`` found; ``ok`` only when the release verified, every file matched it and
    the data is valid. ``code`` names the first reason it is not: ``release-unsigned`` (no
    release), the release's own (``release-invalid``, ``release-untrusted``,
    ``release-forged``), ``release-mismatch`` (a byte or a field differs from the release)
    or ``invalid-data``."""

    name: str
    version: int
    files: tuple[PulledFile, ...]
    validation: DataReport | None
    problems: tuple[str, ...] = field(default=())
    code: str | None = None
    release: SignedRelease | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "code": self.code,
            "name": self.name,
            "version": self.version,
            "release": self.release.as_dict() if self.release else None,
            "files": [f.as_dict() for f in self.files],
            "validation": self.validation.as_dict() if self.validation else None,
            "problems": list(self.problems),
        }


@dataclass
class _Findings:
    """What is wrong so far, and the code of the first."""

    problems: list[str] = field(default_factory=list)
    code: str | None = None

    def add(self, code: str, problem: str) -> None:
        self.problems.append(problem)
        self.code = self.code or code


def _against_release(
    release: Release,
    package: Mapping[str, Any],
    current: Mapping[str, Mapping[str, Any]],
    version: int,
) -> list[str]:
    """Where the portal's package (its files of ``version``) says something else than the
    signed release. The package's SHA-256 extras are the latest version's only."""
    extras = extras_of(package) if version == published_version(package) else {}
    found = []
    said: dict[str, object] = {
        "dataset": extras_of(package).get(EXTRA_DATASET, ""),
        "package": str(package.get("name")),
        "version": version,
    }
    signed: dict[str, object] = {
        "dataset": release.dataset_id,
        "package": release.package,
        "version": release.version,
    }
    for what, value in said.items():
        if value != signed[what]:
            found.append(f"the portal says {what} {value!r}, the signed release {signed[what]!r}")
    names = set(current) - {RELEASE_FILE}
    listed = {f.name for f in release.files}
    if names != listed:
        found.append(
            f"the portal's files ({', '.join(sorted(names))}) are not the release's "
            f"({', '.join(sorted(listed))})"
        )
    for entry in release.files:
        resource = current.get(entry.name, {})
        claims = {extras.get(SHA256_PREFIX + entry.name), resource.get("sha256")} - {None}
        if claims and claims != {entry.sha256}:
            found.append(f"{entry.name}: the portal's SHA-256 is not the signed release's")
    return found


class Consumer:
    """Reads the portal at ``ckan_url`` (anonymously unless given a ``token``)."""

    def __init__(
        self, ckan_url: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = ckan_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def _client(self) -> CkanClient:
        return CkanClient(self.url, self._token, timeout=self._timeout)

    def search(self, query: str, *, rows: int = 20) -> tuple[int, list[Listing]]:
        """Published Tabadul datasets matching ``query`` (CKAN search syntax): the total
        count and the first ``rows``."""
        with self._client() as ckan:
            found = ckan.search(query, rows=rows, fq=_OURS)
        return int(found["count"]), [self._listing(p) for p in found["results"]]

    def _listing(self, package: dict[str, Any]) -> Listing:
        extras = extras_of(package)
        return Listing(
            name=str(package["name"]),
            dataset_id=extras.get(EXTRA_DATASET, str(package["name"])),
            title=str(package.get("title") or ""),
            agency=extras.get("source_agency", ""),
            version=published_version(package),
            url=f"{self.url}/dataset/{package['name']}",
        )

    def package(self, dataset: str) -> dict[str, Any]:
        """The published package of ``dataset`` (a dataset id or package name); raises
        :class:`NotPublished` when the portal has none."""
        try:
            name = ckan_name(dataset)
        except ValueError as exc:  # no package can have such a name
            raise NotPublished(f"{dataset!r} is not published on {self.url}: {exc}") from exc
        with self._client() as ckan:
            found = ckan.package(name)
        if found is None or found.get("private") or found.get("state") != "active":
            raise NotPublished(f"{dataset} is not published on {self.url}")
        return found

    def pull(
        self,
        dataset: str,
        out_dir: Path | str,
        *,
        ca_certificate: x509.Certificate,
        version: int | None = None,
        progress: Downloaded | None = None,
    ) -> PullReport:
        """Download ``version`` of ``dataset`` (the current one by default) into ``out_dir``
        and check it against its signed release with ``ca_certificate`` (see the module
        docstring). Raises :class:`NotPublished` (:class:`UnknownVersion` for a version the
        package does not hold) or another :class:`PortalError` when the portal cannot give
        it; checks that fail are reported, with nothing kept as valid."""
        package = self.package(dataset)
        latest = published_version(package)
        wanted = latest if version is None else version
        # resources without a version mark count as the latest's (current_resources)
        chosen = (
            current_resources(package)
            if wanted == latest
            else resources_of_version(package, wanted)
        )
        current = {Path(str(r["name"])).name: r for r in chosen}
        if not current:
            raise UnknownVersion(
                f"{package['name']} has no version {wanted}: versions 1 to {latest} were "
                "published (withdrawn files are gone)"
            )
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        findings = _Findings()
        files: list[PulledFile] = []
        validation = None
        with tempfile.TemporaryDirectory(dir=out, prefix=".pull-") as tmp, self._client() as ckan:
            folder = Path(tmp)
            signed = self._release(
                ckan,
                current,
                folder=folder,
                ca_certificate=ca_certificate,
                findings=findings,
                progress=progress,
            )
            if signed is not None:
                for problem in _against_release(signed.release, package, current, wanted):
                    findings.add("release-mismatch", problem)
                for entry in signed.release.files:
                    resource = current.get(entry.name)
                    if resource is None:
                        continue  # reported above
                    part = folder / entry.name
                    size = ckan.download(str(resource["url"]), part, progress, at_most=entry.size)
                    digest = file_sha256(part)
                    if (size, digest) != (entry.size, entry.sha256):
                        findings.add(
                            "release-mismatch",
                            f"{entry.name}: {size} bytes with SHA-256 {digest}, not the "
                            f"{entry.size} bytes with SHA-256 {entry.sha256} of the signed "
                            "release",
                        )
                    files.append(PulledFile(entry.name, "", size, digest, entry.sha256))
                if not findings.problems:
                    validation = _validate(folder, findings)
            files = _place(folder, out, files, keep=not findings.problems)
        return PullReport(
            name=str(package["name"]),
            version=wanted,
            files=tuple(files),
            validation=validation,
            problems=tuple(findings.problems),
            code=findings.code,
            release=signed,
        )

    @staticmethod
    def _release(  # noqa: PLR0913 - the parts of one pull
        ckan: CkanClient,
        current: Mapping[str, Mapping[str, Any]],
        *,
        folder: Path,
        ca_certificate: x509.Certificate,
        findings: _Findings,
        progress: Downloaded | None,
    ) -> SignedRelease | None:
        """The current version's release, verified; None (with why) when there is none or
        it cannot be trusted."""
        resource = current.get(RELEASE_FILE)
        if resource is None:
            findings.add(
                "release-unsigned",
                f"the current version has no {RELEASE_FILE}: nothing says what was published",
            )
            return None
        path = folder / RELEASE_FILE
        if ckan.download(str(resource["url"]), path, progress, at_most=MAX_RELEASE) > MAX_RELEASE:
            findings.add("release-invalid", f"{RELEASE_FILE} is over {MAX_RELEASE} bytes")
            return None
        try:
            return verify_release(path.read_bytes(), ca_certificate)
        except ReleaseError as exc:
            findings.add(exc.code, f"{RELEASE_FILE}: {exc.message}")
            return None

    def catalog(self, *, title: str = "Tabadul open data") -> dict[str, Any]:
        """A DCAT-AP JSON-LD catalogue of every published Tabadul dataset."""
        packages: list[dict[str, Any]] = []
        with self._client() as ckan:
            while True:
                page = ckan.search("", rows=_PAGE, start=len(packages), fq=_OURS)
                packages.extend(page["results"])
                if not page["results"] or len(packages) >= int(page["count"]):
                    break
        return dcat_catalog(packages, portal_url=self.url, title=title)


def _validate(folder: Path, findings: _Findings) -> DataReport | None:
    """Check the data against the published schema (both already match the release)."""
    data, schema = folder / "data.csv", folder / "schema.json"
    if not (data.is_file() and schema.is_file()):
        findings.add("release-mismatch", "the release lacks data.csv or schema.json")
        return None
    try:
        report = validate_resource(data, json.loads(schema.read_text("utf-8")))
    except (ValueError, OSError, InvalidSchema) as exc:
        findings.add("invalid-data", f"schema.json cannot be used: {exc}")
        return None
    if not report.valid:
        findings.add(
            "invalid-data",
            f"data.csv does not match its published schema ({len(report.errors)} error(s))",
        )
    return report


def _place(folder: Path, out: Path, files: list[PulledFile], *, keep: bool) -> list[PulledFile]:
    """Move the downloads from ``folder`` to ``out``: under their names (and the release
    beside them) when ``keep``, else every one as ``<name>.rejected``."""
    placed = []
    for pulled in files:
        target = out / (pulled.name if keep else f"{pulled.name}.rejected")
        (folder / pulled.name).replace(target)
        placed.append(dataclasses.replace(pulled, path=str(target)))
    release = folder / RELEASE_FILE
    if release.is_file():
        release.replace(out / (RELEASE_FILE if keep else f"{RELEASE_FILE}.rejected"))
    return placed


__all__ = ["Consumer", "Listing", "PullReport", "PulledFile"]
