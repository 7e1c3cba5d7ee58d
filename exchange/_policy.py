"""Access rules as small composable policy objects.

A policy looks at an :class:`AccessRequest` (who sends what to whom, as the header says) and
returns ``None`` or raises :class:`Forbidden` with the reason. :class:`AllOf` and
:class:`AnyOf` combine them; :func:`directory_policy` is the rule set the receive pipeline
uses, built from the signed directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from exchange._directory import CLASSIFICATIONS, ENCRYPTED_CLASSIFICATIONS, Directory
from exchange._errors import Forbidden
from exchange._identity import SubsystemId


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A message as far as access control cares, seen by ``receiver``."""

    sender: SubsystemId
    message_type: str
    kind: str
    recipient: SubsystemId | None
    classification: str
    encrypted: bool
    receiver: SubsystemId


class AccessPolicy(Protocol):
    def check(self, request: AccessRequest) -> None:
        """Return if allowed; raise :class:`Forbidden` with the reason otherwise."""


@dataclass(frozen=True, slots=True)
class AllOf:
    policies: tuple[AccessPolicy, ...]

    def check(self, request: AccessRequest) -> None:
        for policy in self.policies:
            policy.check(request)


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Allowed when one of ``policies`` allows; otherwise the first refusal is raised."""

    policies: tuple[AccessPolicy, ...]

    def check(self, request: AccessRequest) -> None:
        first: Forbidden | None = None
        for policy in self.policies:
            try:
                policy.check(request)
            except Forbidden as exc:
                first = first or exc
            else:
                return
        raise first or Forbidden("no policy allows this message")


@dataclass(frozen=True, slots=True)
class ByKind:
    """Apply the policy registered for the message's kind; refuse kinds with none."""

    policies: dict[str, AccessPolicy]

    def check(self, request: AccessRequest) -> None:
        policy = self.policies.get(request.kind)
        if policy is None:
            raise Forbidden(f"no rule admits a message of kind {request.kind!r}")
        policy.check(request)


@dataclass(frozen=True, slots=True)
class AddressedToReceiver:
    """A message must be addressed to the subsystem that receives it (an event may go to
    every subscriber, with no recipient)."""

    def check(self, request: AccessRequest) -> None:
        broadcast = request.kind == "event" and request.recipient is None
        if not broadcast and request.recipient != request.receiver:
            raise Forbidden(
                f"message addressed to {request.recipient} arrived at {request.receiver}"
            )


@dataclass(frozen=True, slots=True)
class SendGranted:
    """Requests and one-way messages need a grant (sender, type, recipient)."""

    grants: frozenset[tuple[SubsystemId, str, SubsystemId]]

    def check(self, request: AccessRequest) -> None:
        if request.recipient is None or (
            (request.sender, request.message_type, request.recipient) not in self.grants
        ):
            raise Forbidden(
                f"{request.sender} has no grant to send {request.message_type} "
                f"to {request.recipient}"
            )


@dataclass(frozen=True, slots=True)
class SubscriptionGranted:
    """An event needs a sender that publishes its type and a receiver subscribed to it."""

    publishers: frozenset[tuple[SubsystemId, str]]
    subscriptions: frozenset[tuple[SubsystemId, str]]

    def check(self, request: AccessRequest) -> None:
        if (request.sender, request.message_type) not in self.publishers:
            raise Forbidden(f"{request.sender} is not a publisher of {request.message_type}")
        if (request.receiver, request.message_type) not in self.subscriptions:
            raise Forbidden(f"{request.receiver} has no subscription to {request.message_type}")


@dataclass(frozen=True, slots=True)
class ReplyGranted:
    """A response (or error) may go back from a provider to a subsystem granted to ask it."""

    # (provider, response type) -> request types it answers
    answers: dict[tuple[SubsystemId, str], frozenset[str]]
    grants: frozenset[tuple[SubsystemId, str, SubsystemId]]
    error_type: str = "tabadul.error"

    def check(self, request: AccessRequest) -> None:
        asker = request.recipient
        if request.message_type == self.error_type:
            provided = {
                t for (p, _), types in self.answers.items() if p == request.sender for t in types
            }
            allowed = any((asker, t, request.sender) in self.grants for t in provided)
        else:
            requests = self.answers.get((request.sender, request.message_type), frozenset())
            allowed = any((asker, t, request.sender) in self.grants for t in requests)
        if not allowed:
            raise Forbidden(f"{request.sender} may not answer {asker} with {request.message_type}")


@dataclass(frozen=True, slots=True)
class ClassificationHonoured:
    """A message is at least as classified as its type, and encrypted when that is
    RESTRICTED or above."""

    classification_of: Callable[[str], str | None]

    def check(self, request: AccessRequest) -> None:
        registered = self.classification_of(request.message_type)
        if registered is not None and CLASSIFICATIONS.index(
            request.classification
        ) < CLASSIFICATIONS.index(registered):
            raise Forbidden(
                f"{request.message_type} is {registered}; the message claims only "
                f"{request.classification}"
            )
        if request.classification in ENCRYPTED_CLASSIFICATIONS and not request.encrypted:
            raise Forbidden(f"a {request.classification} message must be encrypted end to end")


def directory_policy(directory: Directory, error_type: str = "tabadul.error") -> AccessPolicy:
    """The bus rules from the directory: addressed right, classification honoured, and a
    grant matching the kind of message."""
    grants = frozenset((g.sender, g.message_type, g.recipient) for g in directory.send_grants)
    publishers = frozenset(
        (s.subsystem, s.message_type) for s in directory.services if s.role == "publishes"
    )
    subscriptions = frozenset((g.subscriber, g.topic) for g in directory.subscribe_grants)
    answers: dict[tuple[SubsystemId, str], set[str]] = {}
    for service in directory.services:
        if service.role == "provides" and service.response_type:
            key = (service.subsystem, service.response_type)
            answers.setdefault(key, set()).add(service.message_type)
    send = SendGranted(grants)
    reply = ReplyGranted({k: frozenset(v) for k, v in answers.items()}, grants, error_type)
    return AllOf(
        (
            AddressedToReceiver(),
            ClassificationHonoured(directory.classification_of),
            ByKind(
                {
                    "request": send,
                    "message": send,
                    "event": SubscriptionGranted(publishers, subscriptions),
                    "response": reply,
                    "error": reply,
                }
            ),
        )
    )
