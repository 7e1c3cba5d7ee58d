"""The operator's dead-letter desk over every managed connector (``settings.connectors``: their
configuration files), for the management API's ``/v1/dead-letters`` and the console.

Each connector's dead letters are its own (:mod:`connectors._dead_letters`: its database and
its dead-letter queue); this gathers them, names them ``<slug>/<n>``, and puts every action in
the governance audit log: a resend, a discard, and each reading of a payload (who read which
message's data). A connector that cannot be read is listed with why, never a failure of the
whole list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from connectors import (
    ConnectorError,
    DeadLetterDesk,
    DeadLetterPage,
    DeadLetterView,
    StoreError,
    dead_letter_desk,
    load_config,
)
from governance import AuditLog, GovernanceError

T = TypeVar("T")
logger = logging.getLogger("tabadul.dead_letters")
STORE_DETAIL = "the connector's database is unavailable; the server's log has the details"


def _shown(error: ConnectorError) -> dict[str, object]:
    """An error as listed: a database's own text (SQL, parameters) only in the log."""
    if isinstance(error, StoreError):
        logger.error("connector database failure: %s", error.message)
        return {"code": error.code, "message": STORE_DETAIL}
    return error.as_dict()


class UnknownConnector(ConnectorError):
    """No managed connector has this slug."""

    code = "unknown-connector"


@dataclass(frozen=True, slots=True)
class HolderLetters:
    """One connector's dead letters (or why they could not be read)."""

    source: str  # the configuration file's name
    subsystem: str | None
    slug: str | None
    page: DeadLetterPage = field(default_factory=lambda: DeadLetterPage(()))
    error: dict[str, object] | None = None

    @property
    def letters(self) -> tuple[DeadLetterView, ...]:
        return self.page.letters

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "subsystem": self.subsystem,
            "slug": self.slug,
            **self.page.as_dict(),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class DeadLetterOffice:
    """The dead letters of the connectors of ``configs``; actions audited in ``audit``."""

    configs: Sequence[Path]
    audit: AuditLog

    def everything(
        self,
        *,
        state: str | None = None,
        limit: int = 100,
        connector: str | None = None,
        after: int = 0,
    ) -> list[HolderLetters]:
        """Each connector's dead letters (``state`` only, at most ``limit`` each); with
        ``connector`` (a slug), that one's only, numbered after ``after``."""
        found = []
        for path in self.configs:
            try:
                config = load_config(path)
                if connector is not None and config.slug != connector:
                    continue
                with dead_letter_desk(config) as desk:
                    page = desk.list(state=state, limit=limit, after=after)
            except ConnectorError as exc:
                found.append(HolderLetters(path.name, None, None, error=_shown(exc)))
                continue
            found.append(HolderLetters(path.name, config.subsystem, config.slug, page))
        return found

    def show(self, slug: str, seq: int, *, actor: str, payload: bool = False) -> DeadLetterView:
        """Dead letter ``slug/seq``; its payload if ``payload`` (the reading is audited when
        a payload is shown)."""
        view = self._at(slug, lambda desk: desk.show(seq, payload=payload))
        if view.payload is not None:
            self._record(actor, "dead-letter.payload-read", slug, view, "")
        return view

    def resend(self, slug: str, seq: int, *, actor: str, reason: str) -> DeadLetterView:
        view = self._at(slug, lambda desk: desk.resend(seq, actor=actor, reason=reason))
        self._record(actor, "dead-letter.resend", slug, view, reason)
        return view

    def discard(self, slug: str, seq: int, *, actor: str, reason: str) -> DeadLetterView:
        view = self._at(slug, lambda desk: desk.discard(seq, actor=actor, reason=reason))
        self._record(actor, "dead-letter.discard", slug, view, reason)
        return view

    def _at(self, slug: str, act: Callable[[DeadLetterDesk], T]) -> T:
        for path in self.configs:
            try:
                config = load_config(path)
            except ConnectorError:
                continue
            if config.slug == slug:
                with dead_letter_desk(config) as desk:
                    return act(desk)
        raise UnknownConnector(f"no managed connector is {slug}")

    def _record(
        self, actor: str, action: str, slug: str, view: DeadLetterView, reason: str
    ) -> None:
        header = view.header or {}
        try:
            self.audit.append(
                actor=actor,
                action=action,
                subject=f"dead-letter:{slug}/{view.seq}",
                reason=reason,
                details={
                    "message_id": view.message_id,
                    "code": view.code,
                    "type": header.get("type"),
                    "sender": header.get("sender"),
                },
            )
        except GovernanceError:
            # done at the connector, which recorded who and why beside the dead letter; the
            # governance audit log's copy is missing and must be noticed
            logger.exception(
                "%s by %s of dead letter %s/%s NOT audited", action, actor, slug, view.seq
            )


__all__ = ["DeadLetterOffice", "HolderLetters", "UnknownConnector"]
