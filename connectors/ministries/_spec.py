"""What one ministry connector declares: who it is, what it handles, provides, publishes, calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from connectors._handlers import Handler


@dataclass(frozen=True, slots=True)
class AgencySpec:
    """The declarative description of one agency's connector.

    ``handlers`` maps every message type the agency accepts (requests it answers, events it
    subscribes to, one-way messages it receives) to its handler. ``provides`` maps each
    request type it answers to the response type it returns; ``publishes`` lists the event
    types it emits; ``subscribes`` the event topics it listens to; ``calls`` the
    ``(request or one-way message type, target agency key)`` pairs it sends; ``subjects``
    the requests it answers about data subjects (personal data), with the payload fields
    that identify them, for its access log.

    Raises :class:`ValueError` when a provided request or a subscribed topic has no handler:
    a spec that promises what it cannot do is refused at import time.
    """

    subsystem: str
    title: str
    handlers: Mapping[str, Handler]
    provides: Mapping[str, str]
    publishes: tuple[str, ...]
    subscribes: tuple[str, ...]
    calls: tuple[tuple[str, str], ...]
    subjects: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        unhandled = sorted(
            (set(self.provides) | set(self.subscribes)) - set(self.handlers),
        )
        if unhandled:
            raise ValueError(f"{self.subsystem}: no handler for {', '.join(unhandled)}")
        unprovided = sorted(set(self.subjects) - set(self.provides))
        if unprovided:
            raise ValueError(
                f"{self.subsystem}: subjects of requests it does not answer: {unprovided}"
            )
