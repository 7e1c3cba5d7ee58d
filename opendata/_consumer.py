"""The open-data consumer's side: find what Tabadul published, pull it, and trust it only
after checking it.

``pull`` downloads the current version's files, checks each SHA-256 against the package's
metadata (the ``sha256:<name>`` extras and the resource's own ``sha256``) and the data
against the published Table Schema. Files that check out land under their names; a file that
does not is kept beside them as ``<name>.rejected`` and the report says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opendata._ckan import DEFAULT_TIMEOUT, CkanClient
from opendata._dcat import current_resources, dcat_catalog
from opendata._errors import InvalidSchema, NotPublished
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
    """What ``pull`` found; ``ok`` only when every file verified and the data is valid."""

    name: str
    version: int
    files: tuple[PulledFile, ...]
    validation: DataReport | None
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "name": self.name,
            "version": self.version,
            "files": [f.as_dict() for f in self.files],
            "validation": self.validation.as_dict() if self.validation else None,
            "problems": list(self.problems),
        }


def _check(
    name: str, digest: str, extras: dict[str, str], resource: dict[str, Any]
) -> tuple[str | None, str | None]:
    """The SHA-256 the portal publishes for a file, and what is wrong with the download
    (None when it is exactly what was published)."""
    claims = {c for c in (extras.get(SHA256_PREFIX + name), resource.get("sha256")) if c}
    if not claims:
        return None, f"{name}: the portal publishes no SHA-256 for it"
    if len(claims) > 1:
        return None, f"{name}: the package and the resource disagree on its SHA-256"
    expected = str(claims.pop())
    if digest != expected:
        return expected, (
            f"{name}: SHA-256 {digest} does not match the published {expected}: the download "
            f"is not what was published (kept as {name}.rejected)"
        )
    return expected, None


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
        self, dataset: str, out_dir: Path | str, *, progress: Downloaded | None = None
    ) -> PullReport:
        """Download the current version of ``dataset`` into ``out_dir`` and check it (see
        the module docstring). Raises :class:`NotPublished` or another
        :class:`PortalError` when the portal cannot give it; checks that fail are reported."""
        package = self.package(dataset)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        extras = extras_of(package)
        files: list[PulledFile] = []
        problems: list[str] = []
        with self._client() as ckan:
            for resource in current_resources(package):
                name = Path(str(resource["name"])).name
                part = out / f".{name}.part"
                size = ckan.download(str(resource["url"]), part, progress)
                digest = file_sha256(part)
                expected, problem = _check(name, digest, extras, resource)
                target = out / (name if problem is None else f"{name}.rejected")
                part.replace(target)
                if problem is not None:
                    problems.append(problem)
                files.append(PulledFile(name, str(target), size, digest, expected))
        validation = self._validate(out, files, problems)
        return PullReport(
            name=str(package["name"]),
            version=published_version(package),
            files=tuple(files),
            validation=validation,
            problems=tuple(problems),
        )

    @staticmethod
    def _validate(out: Path, files: list[PulledFile], problems: list[str]) -> DataReport | None:
        """Check the data against the published schema, when both verified."""
        by_name = {f.name: f for f in files}
        data, schema = by_name.get("data.csv"), by_name.get("schema.json")
        if data is None or schema is None:
            problems.append("the package lacks data.csv or schema.json")
            return None
        if not (data.verified and schema.verified):
            return None
        try:
            table_schema = json.loads((out / "schema.json").read_text("utf-8"))
            report = validate_resource(out / "data.csv", table_schema)
        except (ValueError, OSError, InvalidSchema) as exc:
            problems.append(f"schema.json cannot be used: {exc}")
            return None
        if not report.valid:
            problems.append(
                f"data.csv does not match its published schema ({len(report.errors)} error(s))"
            )
        return report

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


__all__ = ["Consumer", "Listing", "PullReport", "PulledFile"]
