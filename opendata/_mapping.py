"""Pure mapping from a governed dataset to the dicts CKAN's action API takes.

No I/O here (STYLE rule 7): :mod:`opendata._ckan` makes the calls. A dataset is any mapping
with the fields of ``governance.Dataset``: ``dataset_id``, ``owner_agency``, ``steward``,
``title`` and ``description`` (``{"ar": ..., "fr": ..., "en": ...}``, at least one language),
``licence``, ``tags`` and ``classification`` (a level name, a mapping with ``level``, or None).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from governance import RFC4180

NAME_MIN, NAME_MAX = 2, 100
_NOT_NAME = re.compile(r"[^a-z0-9_-]+")
# CKAN shows one title and one description; French first, then English, then Arabic.
DISPLAY_LANGUAGES = ("fr", "en", "ar")
EXTRA_DATASET = "tabadul_dataset_id"
SHA256_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """One file of a publication: its CKAN resource name, format and SHA-256 (hex)."""

    name: str
    format: str
    sha256: str
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "description": self.description,
            "sha256": self.sha256,
        }


def ckan_name(identifier: str) -> str:
    """A CKAN-valid name (lowercase ``a-z0-9-_``, 2 to 100 characters) for ``identifier``.

    Other characters become ``-``; runs of them collapse and are trimmed at the ends; a
    one-character name gets a ``ds-`` prefix; a longer-than-100 one is cut and ends with eight
    hex digits of the identifier's SHA-256, so distinct identifiers stay distinct. Raises
    ``ValueError`` when nothing usable is left (an identifier with no ASCII letter or digit).
    """
    name = _NOT_NAME.sub("-", identifier.strip().lower()).strip("-")
    if not name:
        raise ValueError(f"{identifier!r} has no character usable in a CKAN name")
    if len(name) < NAME_MIN:
        return f"ds-{name}"
    if len(name) > NAME_MAX:
        # Truncation alone could map two long identifiers to one name: keep a digest of it.
        digest = hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:8]
        return f"{name[: NAME_MAX - 9].rstrip('-')}-{digest}"
    return name


def _pick(texts: Mapping[str, str], what: str) -> tuple[str, str]:
    """The language and text shown by CKAN, from the first display language present."""
    for language in DISPLAY_LANGUAGES:
        text = (texts.get(language) or "").strip()
        if text:
            return language, text
    raise ValueError(f"the dataset has no {what} in any of {', '.join(DISPLAY_LANGUAGES)}")


def _classification(value: Any) -> str:
    if value is None:
        raise ValueError("the dataset is not classified; an unclassified dataset is not published")
    level = value.get("level") if isinstance(value, Mapping) else getattr(value, "level", value)
    return str(level.value if isinstance(level, Enum) else level)


def organization_dict(agency: str, *, title: str | None = None) -> dict[str, Any]:
    """The CKAN organisation of an agency: its slug as name, the agency code as title."""
    return {"name": ckan_name(agency), "title": title or agency}


def package_dict(
    dataset: Mapping[str, Any],
    *,
    version: int,
    resources: Sequence[ResourceInfo],
    approval_ref: str,
) -> dict[str, Any]:
    """The CKAN package (without its resources) publishing ``dataset`` at ``version``.

    ``title``/``notes`` come from French, else English, else Arabic; every language's title and
    description is also kept in the extras (``title_ar``, ``notes_en``...). The extras record the
    classification, steward, approval reference, source agency, the quality score when the
    dataset has one (out of 100) and one ``sha256:<resource name>`` per resource; the
    version is CKAN's own ``version`` field.
    Raises ``ValueError`` for a dataset that cannot be published as is (no title,
    unclassified, version below 1, no approval reference).
    """
    if version < 1:
        raise ValueError(f"version must be 1 or more, not {version}")
    if not approval_ref.strip():
        raise ValueError("an approval reference is required to publish")
    titles: Mapping[str, str] = dataset["title"]
    descriptions: Mapping[str, str] = dataset.get("description") or {}
    _, title = _pick(titles, "title")
    notes = _pick(descriptions, "description")[1] if any(descriptions.values()) else ""
    agency = str(dataset["owner_agency"])
    extras: dict[str, str] = {
        EXTRA_DATASET: str(dataset["dataset_id"]),
        "classification": _classification(dataset.get("classification")),
        "steward": str(dataset["steward"]),
        "approval_reference": approval_ref,
        "source_agency": agency,
    }
    for language in DISPLAY_LANGUAGES:
        for key, texts in (("title", titles), ("notes", descriptions)):
            if (texts.get(language) or "").strip():
                extras[f"{key}_{language}"] = texts[language]
    for resource in resources:
        extras[SHA256_PREFIX + resource.name] = resource.sha256
    if dataset.get("quality_score") is not None:
        extras["quality_score"] = str(dataset["quality_score"])
    return {
        "name": ckan_name(str(dataset["dataset_id"])),
        "title": title,
        "notes": notes,
        "owner_org": ckan_name(agency),
        # CKAN refuses a "version" extra (it is a core field): the version goes there.
        "version": str(version),
        "license_id": str(dataset["licence"]),
        "tags": [{"name": str(tag)} for tag in dataset.get("tags") or ()],
        "extras": [{"key": key, "value": value} for key, value in sorted(extras.items())],
    }


def extras_of(package: Mapping[str, Any]) -> dict[str, str]:
    """A CKAN package's extras as a plain dict."""
    return {str(e["key"]): str(e["value"]) for e in package.get("extras") or ()}


def not_ours(
    package: Mapping[str, Any],
    *,
    dataset_id: str,
    organization: str,
    account: str,
    package_id: str | None = None,
) -> list[str]:
    """Why ``package`` is not one Tabadul published for ``dataset_id`` (empty when it is).

    Tabadul's package is in the agency's ``organization`` (its name), carries the dataset's
    mark (the ``tabadul_dataset_id`` extra, set when the package is created), was created
    by Tabadul's portal ``account`` (the user id behind its token; CKAN sets
    ``creator_user_id`` itself, so no one else can claim it) and, once governance has
    recorded the publication, is that very ``package_id``. A mark alone can be copied by
    anyone who can create a package; the creator and the recorded id cannot.
    """
    reasons = []
    found_org = (package.get("organization") or {}).get("name")
    if found_org != organization:
        reasons.append(f"it belongs to organisation {found_org!r}, not {organization!r}")
    if package.get("creator_user_id") != account:
        reasons.append("it was not created by the portal account Tabadul publishes with")
    if extras_of(package).get(EXTRA_DATASET) != dataset_id:
        reasons.append(f"it does not carry Tabadul's mark for dataset {dataset_id}")
    if package_id is not None and package.get("id") != package_id:
        reasons.append(f"it is not package {package_id}, which governance recorded for it")
    return reasons


def published_version(package: Mapping[str, Any]) -> int:
    """The version a package was published at (0 when it carries none)."""
    value = str(package.get("version") or "0")
    return int(value) if value.isdigit() else 0


def datapackage_dict(
    dataset: Mapping[str, Any],
    *,
    version: int,
    table_schema: Mapping[str, Any],
    data: ResourceInfo,
) -> dict[str, Any]:
    """The Frictionless Data Package descriptor published beside the data: the data resource
    with its dialect (every option, so nothing is sniffed), SHA-256 and inline Table Schema,
    so ``frictionless validate datapackage.json`` checks a download on its own."""
    titles: Mapping[str, str] = dataset["title"]
    return {
        "name": ckan_name(str(dataset["dataset_id"])),
        "title": _pick(titles, "title")[1],
        "version": str(version),
        "licenses": [{"name": str(dataset["licence"])}],
        "keywords": [str(tag) for tag in dataset.get("tags") or ()],
        "resources": [
            {
                "name": "data",
                "path": data.name,
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "dialect": RFC4180.as_dict(),
                "hash": f"sha256:{data.sha256}",
                "schema": dict(table_schema),
            }
        ],
    }
