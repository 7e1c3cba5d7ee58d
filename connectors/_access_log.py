"""Who consulted whose data: the access log of a connector holding personal data.

For every request it answers about a data subject (a request type listed in ``subjects``,
with the payload fields that identify the subject), the receiving connector records, in the
same transaction as the answer: the subject's identifier as a keyed hash (HMAC-SHA256 under a
per-deployment secret, never the identifier itself), the requester, the purpose the request
stated and the legal basis of the grant it invoked, the time and the outcome. A citizen
portal (or the data-protection officer) asks with the identifier; the same key turns it into
the same hash. Estonia's Data Tracker does this on top of X-Road.

:class:`SubjectKey` is the keyed hash, :class:`AccessLog` decides what a request's subjects
are, :class:`Access` is one record; the connector's store keeps them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors._errors import ConfigError

SUBJECT_KEY_ENV = "TABADUL_SUBJECT_KEY"
MIN_KEY_BYTES = 32  # the key is a secret of at least 256 bits
SUBJECT_MAX = 128  # characters of an identifier; anything longer is no identifier


@dataclass(frozen=True, slots=True)
class SubjectKey:
    """The per-deployment secret that turns a subject's identifier into its keyed hash."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise ConfigError(
                f"the subject key must hold at least {MIN_KEY_BYTES} bytes "
                "(e.g. `openssl rand -hex 32`)"
            )

    @classmethod
    def from_env(cls, variable: str = SUBJECT_KEY_ENV) -> SubjectKey:
        """The key in ``$variable``; :class:`ConfigError` when unset or too short."""
        value = os.environ.get(variable, "")
        if not value:
            raise ConfigError(
                f"${variable} is not set: it holds the secret that hashes data subjects' "
                "identifiers in the access log (the same on every connector and on the "
                "management API)"
            )
        return cls(value.encode("utf-8"))

    def hash(self, identifier: str) -> str:
        """The hex HMAC-SHA256 of the normalised identifier (case, width, spaces folded)."""
        return hmac.new(
            self.secret, normalise(identifier).encode("utf-8"), hashlib.sha256
        ).hexdigest()


def normalise(identifier: str) -> str:
    """An identifier as compared: NFKC, upper case, without spaces, dots or dashes
    (``be 123.456`` and ``BE123456`` are the same card)."""
    folded = unicodedata.normalize("NFKC", identifier).upper()
    return "".join(ch for ch in folded if ch not in " .-\u00a0\u202f\t")


@dataclass(frozen=True, slots=True)
class Access:
    """One consultation of one data subject's record, as the holder logged it."""

    holder: str
    subject: str
    at: str
    requester: str
    message_type: str
    purpose: str
    legal_basis: str
    legal_reference: str
    message_id: str
    outcome: str

    def as_dict(self) -> dict[str, Any]:
        """The record for JSON output (the subject's hash is left out: the caller knows it)."""
        return {
            "at": self.at,
            "holder": self.holder,
            "requester": self.requester,
            "message_type": self.message_type,
            "purpose": self.purpose,
            "legal_basis": {"text": self.legal_basis, "reference": self.legal_reference},
            "message_id": self.message_id,
            "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class AccessLog:
    """Which requests concern data subjects: ``subjects`` maps a request type to the payload
    fields that identify the subject (each one present is recorded)."""

    key: SubjectKey
    subjects: Mapping[str, Sequence[str]]

    def subjects_of(self, message_type: str, payload: Any) -> list[str]:
        """The keyed hashes of the subjects a request of ``message_type`` is about."""
        fields = self.subjects.get(message_type, ())
        if not fields or not isinstance(payload, dict):
            return []
        found = []
        for name in fields:
            value = payload.get(name)
            if isinstance(value, str) and 0 < len(value) <= SUBJECT_MAX and normalise(value):
                found.append(self.key.hash(value))
        return sorted(set(found))
