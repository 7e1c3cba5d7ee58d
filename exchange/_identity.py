"""Identities on the bus, X-Road style: ``INSTANCE/CLASS/MEMBER/SUBSYSTEM``.

``MA/GOV/MEF/CUSTOMS`` is the customs subsystem of member ``MEF`` (class ``GOV``) in instance
``MA``. A member is the first three parts; a subsystem (what runs a connector and holds keys)
is all four.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from exchange._errors import IdentityError

_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?\Z")
_PART_NAMES = ("instance", "member class", "member code", "subsystem code")
# A subsystem identity is its certificates' common name, which X.509 limits to 64 characters.
SUBSYSTEM_MAX = 64


def _check_parts(text: str, parts: list[str], expected: int, what: str) -> None:
    if len(parts) != expected:
        shape = "/".join(name.upper().replace(" ", "_") for name in _PART_NAMES[:expected])
        raise IdentityError(
            f"{what} {text!r} must have {expected} parts separated by '/' ({shape}); "
            f"it has {len(parts)}"
        )
    for name, part in zip(_PART_NAMES, parts, strict=False):
        _check_part(part, name, f"{what} {text!r}: ")


def _check_part(part: str, name: str, where: str = "") -> None:
    if not _PART.match(part):
        raise IdentityError(
            f"{where}{name} {part!r} must be 1-64 letters, digits, '-', '_' or '.', starting "
            "and ending with a letter or digit"
        )


def parse_instance(text: str) -> str:
    """An instance code (the first part of every identity, e.g. ``MA``), checked like any
    identity part; raises :class:`IdentityError` naming what is wrong."""
    if not isinstance(text, str):
        raise IdentityError(f"an instance code must be a string, not {type(text).__name__}")
    _check_part(text, "instance code")
    return text


@dataclass(frozen=True, slots=True, order=True)
class MemberId:
    """A member (a ministry or agency): ``INSTANCE/CLASS/MEMBER``."""

    instance: str
    member_class: str
    member: str

    @classmethod
    def parse(cls, text: str) -> MemberId:
        """Parse ``INSTANCE/CLASS/MEMBER``; raises :class:`IdentityError` with the reason."""
        parts = text.split("/")
        _check_parts(text, parts, 3, "member identity")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.instance}/{self.member_class}/{self.member}"


@dataclass(frozen=True, slots=True, order=True)
class SubsystemId:
    """A subsystem, the unit that runs a connector: ``INSTANCE/CLASS/MEMBER/SUBSYSTEM``."""

    instance: str
    member_class: str
    member: str
    subsystem: str

    @classmethod
    def parse(cls, text: str) -> SubsystemId:
        """Parse ``INSTANCE/CLASS/MEMBER/SUBSYSTEM``; raises :class:`IdentityError`."""
        if not isinstance(text, str):
            raise IdentityError(f"subsystem identity must be a string, not {type(text).__name__}")
        return _parse_subsystem(text)

    @property
    def member_id(self) -> MemberId:
        return MemberId(self.instance, self.member_class, self.member)

    def __str__(self) -> str:
        return f"{self.instance}/{self.member_class}/{self.member}/{self.subsystem}"

    @property
    def slug(self) -> str:
        """A file- and queue-name-safe form: ``MA.GOV.MEF.CUSTOMS``."""
        return str(self).replace("/", ".")


@lru_cache(maxsize=4096)
def _parse_subsystem(text: str) -> SubsystemId:
    # identities repeat on every message; parsing each once keeps the pipeline fast
    parts = text.split("/")
    _check_parts(text, parts, 4, "subsystem identity")
    if len(text) > SUBSYSTEM_MAX:
        raise IdentityError(
            f"subsystem identity {text[:SUBSYSTEM_MAX]!r}… has {len(text)} characters; at most "
            f"{SUBSYSTEM_MAX} (it is the common name of the subsystem's certificates)"
        )
    return SubsystemId(*parts)
