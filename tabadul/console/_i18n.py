"""The console's languages: one message catalogue per language, read once, and the pure rule
that picks a request's language (``?lang=``, then the cookie, then ``Accept-Language``, then
French).

A catalogue is a flat JSON object of ``"dotted.key": "text"``; texts may hold ``{name}``
placeholders filled by :meth:`Translator.__call__`. Every catalogue has the same keys (a test
checks it), so a missing text is a bug found before release, not a blank on a page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final

LANGUAGES: Final = ("ar", "fr", "en")
DEFAULT_LANGUAGE: Final = "fr"
RTL: Final = frozenset({"ar"})


def load_catalogues() -> dict[str, dict[str, str]]:
    """Every language's catalogue from ``tabadul/console/locales/<lang>.json``. Raises
    ``ValueError`` for a catalogue that is not a flat object of texts."""
    folder = resources.files("tabadul.console") / "locales"
    catalogues: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        data = json.loads((folder / f"{lang}.json").read_text("utf-8"))
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise ValueError(f"locales/{lang}.json must be a flat object of texts")
        catalogues[lang] = data
    return catalogues


def _accepted(header: str) -> list[tuple[float, int, str]]:
    """The languages of an ``Accept-Language`` header as (-quality, position, primary tag)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary and quality > 0:
            ranked.append((-quality, position, primary))
    return sorted(ranked)


def choose_language(
    query: str | None, cookie: str | None, accept_language: str | None
) -> tuple[str, bool]:
    """The language to show and whether it came from ``?lang=`` (then it is remembered in
    the cookie). Unknown values are ignored, in each source, in that order."""
    if query in LANGUAGES:
        return query, True
    if cookie in LANGUAGES:
        return cookie, False
    for _, _, primary in _accepted(accept_language or ""):
        if primary in LANGUAGES:
            return primary, False
    return DEFAULT_LANGUAGE, False


@dataclass(frozen=True, slots=True)
class Translator:
    """The texts of one language: ``t("key", name=value)``."""

    lang: str
    catalogue: Mapping[str, str]

    @property
    def direction(self) -> str:
        return "rtl" if self.lang in RTL else "ltr"

    def __call__(self, key: str, /, **params: object) -> str:
        """The text of ``key`` with its placeholders filled; the key itself when the
        catalogue lacks it (the catalogue test keeps that from shipping)."""
        text = self.catalogue.get(key)
        if text is None:
            return key
        return text.format(**params) if params else text

    def has(self, key: str) -> bool:
        return key in self.catalogue


__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "RTL",
    "Translator",
    "choose_language",
    "load_catalogues",
]
