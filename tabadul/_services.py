"""The composition root's wiring: settings read once, and the objects every front end (the
management API, the console, the CLI, the demo) works through.

Settings come from arguments or ``TABADUL_*`` environment variables::

    TABADUL_GOVERNANCE_DB     SQLite file or postgresql:// URL   (var/governance.sqlite)
    TABADUL_GOVERNANCE_SCHEMA PostgreSQL schema of the governance tables
    TABADUL_DATA_DIR          the content-addressed store of submitted files (var/data)
    TABADUL_CKAN_URL          the CKAN portal                     (http://127.0.0.1:5000)
    TABADUL_CKAN_TOKEN        its API token (or TABADUL_CKAN_TOKEN_FILE, a file holding it)
    TABADUL_CA_DIR            the operator's CA folder (to sign the directory)
    TABADUL_CA_PASSPHRASE     its key's passphrase, read when the CA is opened (:func:`load_ca`)
    TABADUL_METRICS_URLS      connectors' /metrics URLs, comma-separated (traffic figures)
    TABADUL_SIGN_IN_LIMIT     failed sign-ins a client may make in a minute (10)
    TABADUL_GOVERNANCE_KEYS   key folder of the governance subsystem (`tabadul keys generate`,
                              certified by the CA): it signs the audit log's tree heads
    TABADUL_GOVERNANCE_KEY_PASSPHRASE  its passphrase (else $TABADUL_KEY_PASSPHRASE)
    TABADUL_ACCESS_LOGS       configuration files of the connectors holding personal data,
                              separated by the path separator (':'): whose access logs
                              `GET /v1/subjects/{id}/accesses` reads (with $TABADUL_SUBJECT_KEY)
    TABADUL_CONNECTORS        configuration files of the connectors whose dead letters the
                              operator manages (`/v1/dead-letters`, the console), separated
                              by the path separator (':')
    TABADUL_TRUSTED_PROXIES   proxies whose X-Forwarded-For / -Proto are believed: addresses
                              or networks, comma-separated (none)
    TABADUL_MAX_BODY_BYTES    a request's body, uploads aside, in bytes (1 MiB)
    TABADUL_MAX_FIELD_CHARS   any text of a request (a label, a name, a reason, a title...),
                              in characters (10000)
    TABADUL_MAX_UPLOAD_BYTES  an uploaded file, in bytes (100 MiB)
    TABADUL_UPLOAD_DIR        where uploads are written while they are handled (the system's
                              temporary folder)

A value that cannot be read raises :class:`BadSetting` (code ``bad-setting``) naming it.
    TABADUL_CSV_MAX_BYTES     bytes of one submitted or scanned CSV file (2 GiB)
    TABADUL_CSV_MAX_LINE      characters of one CSV record (1 Mi)
    TABADUL_CSV_MAX_CELL      characters of one CSV cell (128 Ki)
    TABADUL_CSV_MAX_COLUMNS   columns of a CSV header or row (1024)
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from exchange import CAStore, KeyStore
from governance import (
    SIGN_IN_LIMIT,
    AuditSigner,
    GovernanceStore,
    Registry,
    TableLimits,
    Tokens,
    Workflow,
)
from opendata import DataFiles, OpenData, Publisher

DEFAULT_CKAN_URL = "http://127.0.0.1:5000"
DEFAULT_DB = "var/governance.sqlite"
DEFAULT_DATA_DIR = "var/data"
MAX_BODY_BYTES = 1024 * 1024
MAX_FIELD_CHARS = 10_000
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
CA_PASSPHRASE_ENV = "TABADUL_CA_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
_TABLE_LIMITS_ENV = {
    "max_bytes": "TABADUL_CSV_MAX_BYTES",
    "max_line": "TABADUL_CSV_MAX_LINE",
    "max_cell": "TABADUL_CSV_MAX_CELL",
    "max_columns": "TABADUL_CSV_MAX_COLUMNS",
}


def table_limits_from_env(env: Mapping[str, str] | None = None) -> TableLimits:
    """The bounds of reading CSV files from ``TABADUL_CSV_*`` (``os.environ`` by default),
    the defaults of :class:`governance.TableLimits` for those unset. Raises
    :class:`BadSetting` for a value that is not a positive whole number."""
    env = os.environ if env is None else env
    defaults = TableLimits()
    return TableLimits(
        **{
            limit: _count(env, variable, getattr(defaults, limit))
            for limit, variable in _TABLE_LIMITS_ENV.items()
        }
    )


@dataclass(frozen=True, slots=True)
class Settings:
    governance_db: str = DEFAULT_DB
    governance_schema: str | None = None
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    ckan_url: str = DEFAULT_CKAN_URL
    ckan_token: str = ""
    ca_dir: Path | None = None
    metrics_urls: tuple[str, ...] = field(default=())
    sign_in_limit: int = SIGN_IN_LIMIT
    access_logs: tuple[Path, ...] = field(default=())
    connectors: tuple[Path, ...] = field(default=())
    governance_keys: Path | None = None
    # Peers whose forwarding headers name the client (the throttle counts by client); from
    # anyone else X-Forwarded-For is ignored, so a client cannot pass for many.
    trusted_proxies: tuple[str, ...] = field(default=())
    max_body_bytes: int = MAX_BODY_BYTES
    max_field_chars: int = MAX_FIELD_CHARS
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    upload_dir: Path | None = None
    table_limits: TableLimits = field(default_factory=TableLimits)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``TABADUL_*`` variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        token = env.get("TABADUL_CKAN_TOKEN", "")
        token_file = env.get("TABADUL_CKAN_TOKEN_FILE")
        if not token and token_file and Path(token_file).is_file():
            token = Path(token_file).read_text("utf-8").strip()
        ca_dir = env.get("TABADUL_CA_DIR")
        urls = env.get("TABADUL_METRICS_URLS", "")
        upload_dir = env.get("TABADUL_UPLOAD_DIR")
        return cls(
            governance_db=env.get("TABADUL_GOVERNANCE_DB", DEFAULT_DB),
            governance_schema=env.get("TABADUL_GOVERNANCE_SCHEMA") or None,
            data_dir=Path(env.get("TABADUL_DATA_DIR", DEFAULT_DATA_DIR)),
            ckan_url=env.get("TABADUL_CKAN_URL", DEFAULT_CKAN_URL),
            ckan_token=token,
            ca_dir=Path(ca_dir) if ca_dir else None,
            metrics_urls=tuple(u.strip() for u in urls.split(",") if u.strip()),
            governance_keys=Path(keys) if (keys := env.get("TABADUL_GOVERNANCE_KEYS")) else None,
            access_logs=_paths(env, "TABADUL_ACCESS_LOGS"),
            connectors=_paths(env, "TABADUL_CONNECTORS"),
            sign_in_limit=_count(env, "TABADUL_SIGN_IN_LIMIT", SIGN_IN_LIMIT),
            trusted_proxies=_networks(env, "TABADUL_TRUSTED_PROXIES"),
            max_body_bytes=_count(env, "TABADUL_MAX_BODY_BYTES", MAX_BODY_BYTES),
            max_field_chars=_count(env, "TABADUL_MAX_FIELD_CHARS", MAX_FIELD_CHARS),
            max_upload_bytes=_count(env, "TABADUL_MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES),
            upload_dir=Path(upload_dir) if upload_dir else None,
            table_limits=table_limits_from_env(env),
        )


class BadSetting(ValueError):
    """A ``TABADUL_*`` variable whose value cannot be used; ``code`` is ``bad-setting``."""

    code = "bad-setting"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


def _paths(env: Mapping[str, str], name: str) -> tuple[Path, ...]:
    return tuple(Path(p) for p in env.get(name, "").split(os.pathsep) if p)


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number from ``env[name]`` (``default`` when unset or empty)."""
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise BadSetting(f"{name} must be a whole number above 0, not {text!r}")
    return int(text)


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (``10.0.0.0/8``) from ``env[name]``."""
    entries = tuple(e.strip() for e in env.get(name, "").split(",") if e.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry)
        except ValueError:
            raise BadSetting(
                f"{name} lists addresses or networks (e.g. 10.0.0.1, 10.0.0.0/8), not {entry!r}"
            ) from None
    return entries


class CaUnavailable(Exception):
    """The operator's CA cannot be opened before its key is even tried. ``code`` is stable:
    ``no-ca`` (the folder holds no CA) or ``ca-passphrase`` (no passphrase to open it with)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


def load_ca(ca_dir: Path, *, ask: Callable[[], bytes] | None = None) -> CAStore:
    """The operator's CA in ``ca_dir``, opened with the passphrase of $TABADUL_CA_PASSPHRASE,
    else the one ``ask`` returns (the CLI asks on a terminal); ``ask`` is only called once the
    folder is known to hold a CA.

    Raises :class:`CaUnavailable` (``no-ca``, ``ca-passphrase``), or the
    :class:`~exchange.KeyStoreError` of :meth:`~exchange.CAStore.open` for a wrong passphrase
    or unreadable files.
    """
    if not (ca_dir / "ca.key").exists():
        raise CaUnavailable("no-ca", f"{ca_dir} holds no CA; create one with 'tabadul ca init'")
    passphrase = os.environ.get(CA_PASSPHRASE_ENV, "").encode()
    if not passphrase:
        if ask is None:
            raise CaUnavailable("ca-passphrase", f"set {CA_PASSPHRASE_ENV} to the CA's passphrase")
        passphrase = ask()
    return CAStore.open(ca_dir, passphrase)


GOVERNANCE_KEY_PASSPHRASE_ENV = "TABADUL_GOVERNANCE_KEY_PASSPHRASE"  # noqa: S105 - a name


def load_audit_signer(folder: Path) -> AuditSigner:
    """The governance signing key in the key folder ``folder`` (its passphrase in
    $TABADUL_GOVERNANCE_KEY_PASSPHRASE, else $TABADUL_KEY_PASSPHRASE), certified by the CA.
    Raises :class:`CaUnavailable` (``governance-key``) without a passphrase, or the
    :class:`~exchange.KeyStoreError` of the key folder."""
    passphrase = os.environ.get(GOVERNANCE_KEY_PASSPHRASE_ENV) or os.environ.get(
        "TABADUL_KEY_PASSPHRASE", ""
    )
    if not passphrase:
        raise CaUnavailable(
            "governance-key",
            f"set {GOVERNANCE_KEY_PASSPHRASE_ENV} to the passphrase of the governance key "
            f"folder {folder}",
        )
    keys = KeyStore(folder, passphrase.encode()).load()
    key, certificate = keys.signer()
    return AuditSigner(keys.subsystem, key, certificate)


class Services:
    """The governance store and what works over it; ``close`` releases the database."""

    def __init__(self, settings: Settings, store: GovernanceStore) -> None:
        self.settings = settings
        self.store = store
        self.workflow = Workflow(store)
        self.registry = Registry(store)
        self.tokens = Tokens(store, sign_in_limit=settings.sign_in_limit)
        limits = settings.table_limits
        self.files = DataFiles(settings.data_dir, max_bytes=limits.max_bytes)
        self.opendata = OpenData(
            self.workflow,
            self.files,
            Publisher(settings.ckan_url, settings.ckan_token, signer=store.audit_signer),
            limits=limits,
        )

    @classmethod
    def open(cls, settings: Settings, *, create: bool = True) -> Self:
        """Open (and migrate) the governance database named by ``settings``; without
        ``create`` it must already exist (see :meth:`GovernanceStore.open`). With
        ``governance_keys``, its audit log's heads are signed (:func:`load_audit_signer`)."""
        signer = load_audit_signer(settings.governance_keys) if settings.governance_keys else None
        if create and "://" not in settings.governance_db:
            Path(settings.governance_db).parent.mkdir(parents=True, exist_ok=True)
        store = GovernanceStore.open(
            settings.governance_db, schema=settings.governance_schema, create=create
        )
        store.audit_signer = signer
        return cls(settings, store)

    def close(self) -> None:
        self.store.close()


__all__ = [
    "CA_PASSPHRASE_ENV",
    "BadSetting",
    "CaUnavailable",
    "Services",
    "Settings",
    "load_ca",
    "table_limits_from_env",
]
