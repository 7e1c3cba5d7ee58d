"""The connector runtime's errors.

Every error raised by ``connectors`` derives from :class:`ConnectorError`; each has a stable
``code`` and a message::

    ConnectorError                 connector-error
    ├── ConfigError                config-invalid
    ├── TransportError             transport (the broker is unreachable, a publish was refused)
    │   └── NotConfirmed           not-confirmed (the broker did not confirm in time)
    ├── SendRefused                send-refused (the sender's own checks: schema, grant, keys)
    ├── RequestTimeout             request-timeout (no response in time)
    ├── RemoteError                remote-error (the provider answered with an error response)
    └── StoreError                 store (the connector's database failed)
        └── AlreadyFinished        already-finished (an inbox entry was finished meanwhile)

Errors of the exchange core and the schema registry keep their own types; transport and
database exceptions are caught where they happen and re-raised as these with ``from exc``.
"""

from __future__ import annotations

from typing import ClassVar


class ConnectorError(Exception):
    code: ClassVar[str] = "connector-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


class ConfigError(ConnectorError):
    code = "config-invalid"


class TransportError(ConnectorError):
    code = "transport"


class NotConfirmed(TransportError):
    code = "not-confirmed"


class SendRefused(ConnectorError):
    """The sending side refused before publishing; ``reason`` is the underlying code."""

    code = "send-refused"

    def __init__(
        self, message: str, reason: str, details: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details or []

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "reason": self.reason, "errors": self.details}


class RequestTimeout(ConnectorError):
    code = "request-timeout"


class RemoteError(ConnectorError):
    """The provider refused or failed the request; ``remote_code`` is its reject code."""

    code = "remote-error"

    def __init__(self, message: str, remote_code: str, details: list[object] | None = None) -> None:
        super().__init__(message)
        self.remote_code = remote_code
        self.details = details or []

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "remote_code": self.remote_code, "errors": self.details}


class StoreError(ConnectorError):
    code = "store"


class AlreadyFinished(StoreError):
    """An inbox entry to finish was finished meanwhile (by another replica, or an earlier
    run): what the transaction wrote is rolled back."""

    code = "already-finished"
