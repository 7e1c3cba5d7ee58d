"""Access rules as small composable policy objects.

A policy looks at an :class:`AccessRequest` (who sends what to whom, for which purpose, as the
header says, and when) and returns ``None`` or raises :class:`Forbidden` (or its
``PurposeMismatch`` and ``GrantExpired``) with the reason. :class:`AllOf` and
:class:`AnyOf` combine them; :func:`directory_policy` is the rule set the receive pipeline
uses, built from the signed directory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from exchange._directory import (
    CLASSIFICATIONS,
    ENCRYPTED_CLASSIFICATIONS,
    UNSPECIFIED_PURPOSE,
    Directory,
    SendGrant,
    SubscribeGrant,
)
from exchange._errors import Forbidden, GrantExpired, PurposeMismatch
from exchange._identity import SubsystemId
from exchange._time import format_time


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A message as far as access control cares, seen by ``receiver`` at ``at``.
    ``purpose`` is what the message states (``None``: nothing, i.e. the unspecified
    purpose)."""

    sender: SubsystemId
    message_type: str
    kind: str
    recipient: SubsystemId | None
    classification: str
    encrypted: bool
    receiver: SubsystemId
    at: datetime
    purpose: str | None = None


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


GrantKey = tuple[SubsystemId, str, SubsystemId]


@dataclass(frozen=True, slots=True)
class SendGranted:
    """Requests and one-way messages need a grant (sender, type, recipient) in force for the
    purpose they state: none at all is ``forbidden``; only expired ones ``grant-expired``;
    none for that purpose ``purpose-mismatch``."""

    grants: Mapping[GrantKey, tuple[SendGrant, ...]]

    def check(self, request: AccessRequest) -> None:
        found: tuple[SendGrant, ...] = ()
        if request.recipient is not None:
            found = self.grants.get((request.sender, request.message_type, request.recipient), ())
        if not found:
            raise Forbidden(
                f"{request.sender} has no grant to send {request.message_type} "
                f"to {request.recipient}"
            )
        live = [g for g in found if g.live(request.at)]
        if not live:
            ended = max(g.expires for g in found if g.expires is not None)
            raise GrantExpired(
                f"the grant for {request.sender} to send {request.message_type} to "
                f"{request.recipient} expired at {format_time(ended)}"
            )
        purpose = request.purpose or UNSPECIFIED_PURPOSE
        if all(g.purpose != purpose for g in live):
            allowed = ", ".join(sorted({g.purpose for g in live}))
            raise PurposeMismatch(
                f"{request.sender} may send {request.message_type} to {request.recipient} "
                f"only for {allowed}, not for {purpose}"
            )


@dataclass(frozen=True, slots=True)
class SubscriptionGranted:
    """An event needs a sender that publishes its type and a receiver subscribed to it (a
    subscription past its expiry is ``grant-expired``)."""

    publishers: frozenset[tuple[SubsystemId, str]]
    subscriptions: Mapping[tuple[SubsystemId, str], SubscribeGrant]

    def check(self, request: AccessRequest) -> None:
        if (request.sender, request.message_type) not in self.publishers:
            raise Forbidden(f"{request.sender} is not a publisher of {request.message_type}")
        grant = self.subscriptions.get((request.receiver, request.message_type))
        if grant is None:
            raise Forbidden(f"{request.receiver} has no subscription to {request.message_type}")
        if not grant.live(request.at):
            assert grant.expires is not None
            raise GrantExpired(
                f"the subscription of {request.receiver} to {request.message_type} expired "
                f"at {format_time(grant.expires)}"
            )


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
class ReceiptAllowed:
    """A receipt goes back from a receiver to a subsystem that may send it something: a
    grant to send it a type (in force or not, for any purpose), or an event type it
    subscribes to and the sender publishes."""

    # (receiver, sender): who may send receipts to whom
    pairs: frozenset[tuple[SubsystemId, SubsystemId]]

    def check(self, request: AccessRequest) -> None:
        if (request.sender, request.recipient) not in self.pairs:
            raise Forbidden(f"{request.sender} received nothing {request.recipient} may send it")


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
    by_key: dict[GrantKey, list[SendGrant]] = {}
    for grant in directory.send_grants:
        by_key.setdefault((grant.sender, grant.message_type, grant.recipient), []).append(grant)
    grants = frozenset(by_key)
    publishers = frozenset(
        (s.subsystem, s.message_type) for s in directory.services if s.role == "publishes"
    )
    subscriptions = {(g.subscriber, g.topic): g for g in directory.subscribe_grants}
    answers: dict[tuple[SubsystemId, str], set[str]] = {}
    for service in directory.services:
        if service.role == "provides" and service.response_type:
            key = (service.subsystem, service.response_type)
            answers.setdefault(key, set()).add(service.message_type)
    send = SendGranted({key: tuple(found) for key, found in by_key.items()})
    # an answer goes back to whoever holds a grant, in force or not, for any purpose: the
    # request was judged when it arrived
    reply = ReplyGranted({k: frozenset(v) for k, v in answers.items()}, grants, error_type)
    senders_of = {(recipient, sender) for sender, _, recipient in grants}
    publishers_of = {t: {s for s, pt in publishers if pt == t} for _, t in publishers}
    senders_of |= {
        (subscriber, publisher)
        for subscriber, topic in subscriptions
        for publisher in publishers_of.get(topic, ())
    }
    receipts = ReceiptAllowed(frozenset(senders_of))
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
                    "receipt": receipts,
                }
            ),
        )
    )
