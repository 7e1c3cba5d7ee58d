"""A DCAT-AP catalogue, as JSON-LD, of the packages Tabadul published (pure mapping).

Each package becomes a ``dcat:Dataset`` (titles and descriptions in every language the
dataset has, publisher, keywords, licence, version, issued/modified) with one
``dcat:Distribution`` per current file, carrying its download URL and its SHA-256 as an
``spdx:checksum``: a harvester can check what it downloads exactly as ``tabadul opendata
pull`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opendata._mapping import (
    DISPLAY_LANGUAGES,
    EXTRA_DATASET,
    SHA256_PREFIX,
    extras_of,
    published_version,
)

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "owl": "http://www.w3.org/2002/07/owl#",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
MEDIA_TYPES = {"CSV": "text/csv", "JSON": "application/json"}
_SHA256_ALGORITHM = "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"


def current_resources(package: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The package's resources of its published version (older versions are kept beside
    them); a resource without a version mark counts as current."""
    version = str(published_version(package))
    return [
        dict(r)
        for r in package.get("resources") or ()
        if str(r.get("tabadul_version") or version) == version
    ]


def resources_of_version(package: Mapping[str, Any], version: int) -> list[dict[str, Any]]:
    """The package's resources marked with ``version``."""
    return [
        dict(r)
        for r in package.get("resources") or ()
        if str(r.get("tabadul_version")) == str(version)
    ]


def _texts(package: Mapping[str, Any], extras: Mapping[str, str], key: str) -> list[Any]:
    found = [
        {"@value": extras[f"{key}_{lang}"], "@language": lang}
        for lang in DISPLAY_LANGUAGES
        if extras.get(f"{key}_{lang}")
    ]
    fallback = package.get("title" if key == "title" else "notes")
    return found or ([fallback] if fallback else [])


def _date(value: object) -> dict[str, str] | None:
    if not value:
        return None
    return {"@value": str(value), "@type": "xsd:dateTime"}


def _distribution(resource: Mapping[str, Any], extras: Mapping[str, str]) -> dict[str, Any]:
    fmt = str(resource.get("format") or "").upper()
    sha = extras.get(SHA256_PREFIX + str(resource.get("name"))) or resource.get("sha256")
    dist: dict[str, Any] = {
        "@id": str(resource["url"]),
        "@type": "dcat:Distribution",
        "dct:title": str(resource.get("name") or ""),
        "dcat:accessURL": {"@id": str(resource["url"])},
        "dcat:downloadURL": {"@id": str(resource["url"])},
        "dct:format": fmt,
    }
    if fmt in MEDIA_TYPES:
        dist["dcat:mediaType"] = MEDIA_TYPES[fmt]
    if sha:
        dist["spdx:checksum"] = {
            "@type": "spdx:Checksum",
            "spdx:algorithm": {"@id": _SHA256_ALGORITHM},
            "spdx:checksumValue": str(sha),
        }
    return dist


def dcat_dataset(package: Mapping[str, Any], *, portal_url: str) -> dict[str, Any]:
    """One published CKAN package as a ``dcat:Dataset``."""
    extras = extras_of(package)
    organization = package.get("organization") or {}
    node: dict[str, Any] = {
        "@id": f"{portal_url.rstrip('/')}/dataset/{package['name']}",
        "@type": "dcat:Dataset",
        "dct:identifier": extras.get(EXTRA_DATASET, str(package["name"])),
        "dct:title": _texts(package, extras, "title"),
        "dct:description": _texts(package, extras, "notes"),
        "dct:publisher": {
            "@type": "foaf:Organization",
            "foaf:name": str(organization.get("title") or extras.get("source_agency", "")),
        },
        "dcat:keyword": [str(t["name"]) for t in package.get("tags") or ()],
        "owl:versionInfo": str(published_version(package)),
        "dcat:distribution": [
            _distribution(r, extras) for r in current_resources(package) if r.get("url")
        ],
    }
    if package.get("license_url") or package.get("license_id"):
        node["dct:license"] = str(package.get("license_url") or package["license_id"])
    for key, field in (("dct:issued", "metadata_created"), ("dct:modified", "metadata_modified")):
        if (stamp := _date(package.get(field))) is not None:
            node[key] = stamp
    return node


def dcat_catalog(
    packages: Iterable[Mapping[str, Any]], *, portal_url: str, title: str = "Tabadul open data"
) -> dict[str, Any]:
    """A DCAT-AP JSON-LD catalogue of ``packages`` (CKAN package dicts)."""
    return {
        "@context": CONTEXT,
        "@id": f"{portal_url.rstrip('/')}/catalog",
        "@type": "dcat:Catalog",
        "dct:title": title,
        "foaf:homepage": {"@id": portal_url},
        "dcat:dataset": [dcat_dataset(p, portal_url=portal_url) for p in packages],
    }


__all__ = ["current_resources", "dcat_catalog", "dcat_dataset"]
