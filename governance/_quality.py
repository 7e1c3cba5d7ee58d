"""A quality score per dataset, after data.gouv.fr's metadata quality: a few plain criteria a
steward can act on, each met or not with why, and the share met as a score out of 100.

- ``description``: described in every language it has a title in, one description at least
  ``MIN_DESCRIPTION`` characters long;
- ``languages``: a title in each of the government's languages (ar, fr, en);
- ``licence``: an open licence of the register below (free text splits a portal's facets);
- ``schema``: a Table Schema whose every field has a type and a description or title;
- ``tags``: at least one tag (how people find it);
- ``frequency``: an update frequency declared and kept (the last update within its period;
  ``irregular`` and ``never`` are kept by definition).

Pure: the dataset and the time in, a :class:`QualityReport` out (for the console, the portal's
metadata and the indicators).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from exchange import ExchangeError, parse_time, utcnow
from governance._workflow import LANGUAGES, Dataset

MIN_DESCRIPTION = 40
OPEN_LICENCES = frozenset(
    {
        "cc-by",
        "cc-by-4.0",
        "cc-by-sa",
        "cc-by-sa-4.0",
        "cc-zero",
        "cc0-1.0",
        "odc-by",
        "odc-odbl",
        "odc-pddl",
        "etalab-2.0",
    }
)
# How long a declared frequency may go without an update (a grace beyond the period).
PERIODS = {
    "continuous": timedelta(days=2),
    "daily": timedelta(days=2),
    "weekly": timedelta(days=10),
    "monthly": timedelta(days=35),
    "quarterly": timedelta(days=100),
    "yearly": timedelta(days=380),
}


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    met: bool
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "met": self.met, "why": self.why}


@dataclass(frozen=True, slots=True)
class QualityReport:
    dataset_id: str
    criteria: tuple[Criterion, ...]

    @property
    def score(self) -> int:
        """The share of criteria met, out of 100."""
        return round(100 * sum(c.met for c in self.criteria) / len(self.criteria))

    @property
    def missing(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if not c.met)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "score": self.score,
            "criteria": [c.as_dict() for c in self.criteria],
        }


def _met(name: str, why: str) -> Criterion:
    return Criterion(name, met=True, why=why)


def _unmet(name: str, why: str) -> Criterion:
    return Criterion(name, met=False, why=why)


def quality(dataset: Dataset, now: datetime | None = None) -> QualityReport:
    """The quality of ``dataset`` at ``now`` (the current time by default)."""
    at = now or utcnow()
    return QualityReport(
        dataset.dataset_id,
        (
            _description(dataset.title, dataset.description),
            _languages(dataset.title),
            _licence(dataset.licence),
            _schema(dataset.table_schema),
            _met("tags", f"{len(dataset.tags)} tag(s)")
            if dataset.tags
            else _unmet("tags", "no tags: add one or more"),
            _frequency(dataset.update_frequency, dataset.updated_at, at),
        ),
    )


def _description(title: Mapping[str, str], description: Mapping[str, str]) -> Criterion:
    undescribed = sorted(lang for lang in title if not description.get(lang, "").strip())
    longest = max((len(text.strip()) for text in description.values()), default=0)
    if undescribed:
        return _unmet("description", f"no description in {', '.join(undescribed)}")
    if longest < MIN_DESCRIPTION:
        return _unmet("description", f"the description is under {MIN_DESCRIPTION} characters")
    return _met("description", "described in every language of its title")


def _languages(title: Mapping[str, str]) -> Criterion:
    lacking = [lang for lang in LANGUAGES if not title.get(lang, "").strip()]
    if lacking:
        return _unmet("languages", f"no title in {', '.join(lacking)}")
    return _met("languages", f"titled in {', '.join(LANGUAGES)}")


def _licence(licence: str) -> Criterion:
    if licence.strip().lower() in OPEN_LICENCES:
        return _met("licence", f"open licence {licence}")
    return _unmet("licence", f"{licence!r} is not a licence id of the register (e.g. cc-by-4.0)")


def _schema(table_schema: Mapping[str, Any]) -> Criterion:
    fields = table_schema.get("fields")
    if not isinstance(fields, list) or not fields:
        return _unmet("schema", "no Table Schema fields")
    bare = [
        str(f.get("name")) if isinstance(f, Mapping) else repr(f)
        for f in fields
        if not isinstance(f, Mapping)
        or f.get("type") in (None, "any")
        or not (str(f.get("description") or "").strip() or str(f.get("title") or "").strip())
    ]
    if bare:
        return _unmet("schema", f"fields without a type or a description: {', '.join(bare)}")
    return _met("schema", f"{len(fields)} fields typed and described")


def _frequency(frequency: str, updated_at: str, at: datetime) -> Criterion:
    if not frequency:
        return _unmet("frequency", "no update frequency declared")
    period = PERIODS.get(frequency)
    if period is None:  # irregular, never: nothing to keep
        return _met("frequency", f"declared {frequency}")
    try:
        since = at - parse_time(updated_at, "updated_at")
    except ExchangeError:
        return _unmet("frequency", "the last update's time is unknown")
    if since > period:
        return _unmet(
            "frequency",
            f"declared {frequency}, last updated {since.days} days ago",
        )
    return _met("frequency", f"declared {frequency} and kept")


__all__ = ["OPEN_LICENCES", "Criterion", "QualityReport", "quality"]
