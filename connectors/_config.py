"""A connector's configuration: one TOML file, validated with pydantic, then composed into a
:class:`~connectors.Connector` (the only place that wires the real collaborators together).

A minimal file (every other setting has a default)::

    subsystem = "MA/GOV/MEF/TAX"
    keys = "keys"                    # the key folder; passphrase in $TABADUL_KEY_PASSPHRASE
    ca_certificate = "ca.pem"
    directory = "https://registry.example/directory.json"   # or a file path

Relative paths resolve against the folder of the configuration file, not the working
directory, so a deployment folder can be moved as a whole.

:func:`load_config` raises :class:`~connectors.ConfigError` naming each invalid field;
:func:`check_config` proves the keys, the CA certificate and the directory without a broker;
:func:`build_connector` also connects to RabbitMQ and opens the databases.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Self

from cryptography import x509
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from connectors._access_log import SUBJECT_KEY_ENV, Access, AccessLog, SubjectKey
from connectors._dead_letters import DeadLetterDesk
from connectors._errors import ConfigError, StoreError
from connectors._handlers import Handler
from connectors._pika import DEFAULT_URL, PikaTransport, pika_parameters, take_dead_letters
from connectors._store import ConnectorStore
from connectors._witness import Witnessing
from connectors.runtime import (
    Connector,
    DirectorySource,
    MessageStatus,
    RuntimeSettings,
    message_status,
)
from exchange import (
    Directory,
    DirectoryError,
    IdentityError,
    KeyRing,
    KeyStore,
    LogError,
    SubsystemId,
    cert_from_pem,
    load_directory,
)
from exchange.log import MessageLog, open_store
from schemas import default_registry

DEFAULT_PASSPHRASE_ENV = "TABADUL_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
DIRECTORY_TIMEOUT = 10.0  # seconds to fetch the directory over HTTP(S)
DIRECTORY_MAX_BYTES = 16 * 1024 * 1024  # a directory far larger than this is not one
MIN_API_TOKEN = 16  # characters; a shorter bearer token is guessable
_DATABASE_URLS = ("postgresql://", "postgresql+psycopg://", "postgres://", "sqlite:")
_HTTP = ("http://", "https://")

PositiveInt = Annotated[int, Field(ge=1)]


def _amqp_url(url: str) -> str:
    if not url.startswith(("amqp://", "amqps://")):
        raise ValueError(f"{_without_credentials(url)!r} is not an amqp:// or amqps:// URL")
    return url


def _without_credentials(url: str) -> str:
    """What follows the ``user:password@`` part, to repeat a URL in a message safely."""
    return url.rpartition("@")[2]


AmqpUrl = Annotated[str, AfterValidator(_amqp_url)]


DEFAULT_API_TOKEN_ENV = "TABADUL_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class ApiConfig(BaseModel):
    """The local HTTP API for the agency's information system (``[api]`` table).

    The API holds decrypted deliveries, so it requires a bearer token unless
    ``allow_no_token`` says otherwise, which is only accepted on a loopback ``host`` (local
    development). Whatever the token, requests whose ``Host`` is not the API's own
    (``host``, the loopback names, or ``allowed_hosts``) or whose ``Origin`` is not in
    ``allowed_origins`` are refused: a web page cannot reach it by DNS rebinding.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    token_env: str = Field(
        default=DEFAULT_API_TOKEN_ENV,
        min_length=1,
        description="Environment variable holding the bearer token the API requires.",
    )
    allow_no_token: bool = Field(
        default=False, description="Serve without a token (only on a loopback host)."
    )
    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list,
        description="Further names the IS may use in Host (e.g. the connector's DNS name).",
    )
    allowed_origins: list[Annotated[str, Field(min_length=1, max_length=2048)]] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (none by default).",
    )

    @field_validator("allow_no_token")
    @classmethod
    def _only_on_loopback(cls, value: bool, info: ValidationInfo) -> bool:  # noqa: FBT001
        host = info.data.get("host")
        if value and host not in _LOOPBACK:
            raise ValueError(
                f"allow_no_token is only accepted on a loopback host (127.0.0.1, ::1, "
                f"localhost), not {host!r}: set token_env instead"
            )
        return value

    def hosts(self) -> frozenset[str]:
        """The ``Host`` names (without port) the API answers to."""
        return _LOOPBACK | {self.host} | set(self.allowed_hosts)


class AccessLogConfig(BaseModel):
    """The access log of a connector holding personal data (``[access_log]`` table): for
    each request it answers about a data subject, who asked, for which purpose, on which
    legal basis (see :mod:`connectors._access_log`). The agency's built-in handlers name
    their subjects; ``subjects`` adds request types and the payload fields identifying them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_env: str = Field(default=SUBJECT_KEY_ENV, min_length=1)
    subjects: dict[str, list[Annotated[str, Field(min_length=1)]]] = Field(default_factory=dict)


class WitnessingConfig(BaseModel):
    """Witnessed heads (``[witnessing]`` table): how often this connector publishes its
    message log's head for the others to cosign (0: only when asked). It always witnesses
    the heads it is sent, as the directory grants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    publish_every: float = Field(default=300.0, ge=0, le=86400)


class RuntimeConfig(BaseModel):
    """Tuning of the runtime (``[runtime]`` table); see :class:`~connectors.RuntimeSettings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefetch: PositiveInt = 512
    batch: PositiveInt = 256
    handler_workers: PositiveInt = 4
    max_attempts: PositiveInt = 5
    request_timeout: float = Field(default=10.0, gt=0, le=600)
    directory_poll: float = Field(default=5.0, gt=0, le=3600)
    takeover_after: float = Field(default=120.0, gt=0, le=86400)


class ConnectorConfig(BaseModel):
    """One connector's settings. Paths are absolute once returned by :func:`load_config`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subsystem: str
    agency: str | None = None
    keys: Path
    key_passphrase_env: str = DEFAULT_PASSPHRASE_ENV
    ca_certificate: Path
    directory: str
    broker_urls: list[AmqpUrl] = Field(default_factory=lambda: [DEFAULT_URL], min_length=1)
    database: str | None = None
    log: str | None = None
    api: ApiConfig = Field(default_factory=ApiConfig)
    webhook_url: str | None = None
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    access_log: AccessLogConfig = Field(default_factory=AccessLogConfig)
    witnessing: WitnessingConfig = Field(default_factory=WitnessingConfig)

    @field_validator("subsystem")
    @classmethod
    def _subsystem_id(cls, value: str) -> str:
        return str(_parse_subsystem(value))

    @field_validator("agency")
    @classmethod
    def _known_agency(cls, value: str | None, info: ValidationInfo) -> str | None:
        from connectors.ministries import AGENCIES  # noqa: PLC0415 - only with an agency

        if value is None:
            return None
        if value not in AGENCIES:
            raise ValueError(f"unknown agency {value!r}; one of {', '.join(sorted(AGENCIES))}")
        expected = AGENCIES[value].subsystem
        subsystem = info.data.get("subsystem")  # absent when the subsystem itself is invalid
        if subsystem is not None and subsystem != expected:
            raise ValueError(f"agency {value!r} is the connector of {expected}, not {subsystem}")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_HTTP):
            raise ValueError("the webhook must be an http:// or https:// URL")
        return value

    @field_validator("directory")
    @classmethod
    def _directory_location(cls, value: str) -> str:
        if "://" in value and not value.startswith(_HTTP):
            raise ValueError("the directory is a file path or an http(s):// URL")
        return value

    @property
    def subsystem_id(self) -> SubsystemId:
        return SubsystemId.parse(self.subsystem)

    @property
    def slug(self) -> str:
        return self.subsystem_id.slug

    def resolved(self, base: Path) -> Self:
        """This configuration with relative paths made absolute against ``base`` and the
        database and log defaults (``var/<slug>.db``, ``var/<slug>.log.sqlite``) filled in."""
        database = self.database or f"var/{self.slug}.db"
        log = self.log or f"var/{self.slug}.log.sqlite"
        return self.model_copy(
            update={
                "keys": base / self.keys,
                "ca_certificate": base / self.ca_certificate,
                "directory": self.directory
                if self.directory.startswith(_HTTP)
                else str(base / self.directory),
                "database": database
                if database.startswith(_DATABASE_URLS)
                else str(base / database),
                "log": log if log.startswith(_DATABASE_URLS) else str(base / log),
            }
        )

    def subjects(self) -> dict[str, tuple[str, ...]]:
        """The request types this connector logs access for, with their subject fields: the
        agency's, then the configuration's."""
        found: dict[str, tuple[str, ...]] = {}
        if self.agency is not None:
            from connectors.ministries import AGENCIES  # noqa: PLC0415 - only with an agency

            found.update(AGENCIES[self.agency].subjects)
        found.update({t: tuple(fields) for t, fields in self.access_log.subjects.items()})
        return found

    def access_logger(self) -> AccessLog | None:
        """The access log when this connector answers requests about data subjects (its key
        from ``access_log.key_env``; :class:`ConfigError` when unset), else ``None``."""
        subjects = self.subjects()
        if not subjects:
            return None
        return AccessLog(SubjectKey.from_env(self.access_log.key_env), subjects)

    def api_token(self) -> str | None:
        """The API's bearer token from ``api.token_env``; ``None`` only when
        ``api.allow_no_token`` is set. Raises :class:`ConfigError` when the variable is
        unset, empty or too short to be a secret."""
        if self.api.allow_no_token:
            return None
        token = os.environ.get(self.api.token_env, "")
        if len(token) < MIN_API_TOKEN:
            state = "is not set" if not token else f"holds fewer than {MIN_API_TOKEN} characters"
            raise ConfigError(
                f"the local API needs a bearer token: ${self.api.token_env} {state}; set it to "
                "a random secret (e.g. `openssl rand -hex 32`), or for development on "
                "localhost only, set allow_no_token = true in [api]"
            )
        return token

    def passphrase(self) -> bytes:
        """The key passphrase from ``$<key_passphrase_env>``; raises :class:`ConfigError`."""
        value = os.environ.get(self.key_passphrase_env)
        if not value:
            raise ConfigError(
                f"the key passphrase is read from ${self.key_passphrase_env}, which is not set"
            )
        return value.encode()

    def settings(self) -> RuntimeSettings:
        tuning = self.runtime
        return RuntimeSettings(
            prefetch=tuning.prefetch,
            batch=tuning.batch,
            handler_workers=tuning.handler_workers,
            max_attempts=tuning.max_attempts,
            request_timeout=tuning.request_timeout,
            directory_poll=tuning.directory_poll,
            takeover_after=timedelta(seconds=tuning.takeover_after),
        )


def _parse_subsystem(value: str) -> SubsystemId:
    try:
        return SubsystemId.parse(value)
    except IdentityError as exc:
        # pydantic reports a ValueError as the field's error, with this message
        raise ValueError(f"{exc.message} (expected INSTANCE/CLASS/MEMBER/SUBSYSTEM)") from exc


def load_config(path: Path | str) -> ConnectorConfig:
    """Read and validate the TOML file at ``path``. Raises :class:`ConfigError` when the file
    cannot be read or parsed, or listing every invalid field (``api.port: ...``)."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file} is not UTF-8 text: {exc.reason}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from exc
    try:
        config = ConnectorConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration {file}:\n{_describe(exc)}") from exc
    return config.resolved(file.resolve().parent)


def _describe(error: ValidationError) -> str:
    """One line per invalid field: ``  - api.port: Input should be ...``."""
    lines = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(file)"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (misspelt?)"
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- composition


def directory_source(location: str) -> DirectorySource:
    """A callable returning the signed directory bytes from a file or an http(s) URL.
    Failures raise :class:`~exchange.DirectoryError` (the runtime keeps its current
    directory and tries again at the next poll)."""
    if location.startswith(_HTTP):
        return _url_source(location)
    path = Path(location)

    def read_file() -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DirectoryError(f"cannot read the directory {path}: {exc.strerror}") from exc

    return read_file


def _url_source(url: str) -> Callable[[], bytes]:
    def fetch() -> bytes:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked above: http(s) only
        try:
            with urllib.request.urlopen(request, timeout=DIRECTORY_TIMEOUT) as response:  # noqa: S310 - same
                data: bytes = response.read(DIRECTORY_MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise DirectoryError(f"cannot fetch the directory from {url}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DirectoryError(f"cannot fetch the directory from {url}: {reason}") from exc
        if len(data) > DIRECTORY_MAX_BYTES:
            raise DirectoryError(f"the directory at {url} is larger than {DIRECTORY_MAX_BYTES} B")
        return data

    return fetch


@dataclass(frozen=True, slots=True)
class Checked:
    """What :func:`check_config` proved: the keys, the CA certificate and the directory."""

    config: ConnectorConfig
    keys: KeyRing
    ca_certificate: x509.Certificate
    directory: Directory

    def summary(self) -> dict[str, Any]:
        """For people and scripts: what the connector would run as."""
        me = self.config.subsystem_id
        _, signing = self.keys.signer()
        expires: datetime = self.directory.expires
        return {
            "subsystem": str(me),
            "agency": self.config.agency,
            "key_generations": len(self.keys.generations),
            "signing_certificate_expires": signing.not_valid_after_utc.isoformat(),
            "directory": {
                "serial": self.directory.serial,
                "expires": expires.isoformat(),
                "fresh": not self.directory.is_stale(),
            },
            "subscribes": sorted(
                g.topic for g in self.directory.subscribe_grants if g.subscriber == me
            ),
            "provides": sorted(
                s.message_type
                for s in self.directory.services
                if s.subsystem == me and s.role == "provides"
            ),
            "broker_urls": [_without_credentials(url) for url in self.config.broker_urls],
            "database": _hide_password(self.config.database or ""),
            "log": _hide_password(self.config.log or ""),
            "api": f"http://{self.config.api.host}:{self.config.api.port}",
            "webhook_url": self.config.webhook_url,
        }


def _hide_password(location: str) -> str:
    if "://" in location and "@" in location:
        scheme, rest = location.split("://", 1)
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return location


def check_config(config: ConnectorConfig) -> Checked:
    """Load the keys, the CA certificate and the directory, and check they belong together;
    touches no broker and no database. Raises :class:`ConfigError` or the exchange core's
    errors (``KeyStoreError``, ``CertificateError``, ``DirectoryError``...)."""
    keys = KeyStore(config.keys, config.passphrase()).load()
    if keys.subsystem != config.subsystem_id:
        raise ConfigError(
            f"{config.keys} holds the keys of {keys.subsystem}, not of {config.subsystem}"
        )
    keys.signer()  # raises when no generation is certified yet
    try:
        ca_pem = config.ca_certificate.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the CA certificate {config.ca_certificate}: {exc.strerror}"
        ) from exc
    ca_certificate = cert_from_pem(ca_pem)
    directory = load_directory(directory_source(config.directory)(), ca_certificate)
    return Checked(config, keys, ca_certificate, directory)


def subject_accesses(config: ConnectorConfig, subject_id: str) -> list[Access]:
    """Who consulted the data subject ``subject_id`` at the connector of ``config``, newest
    first, read from its database (which is never created here). Raises
    :class:`ConfigError` when the connector keeps no access log, its key is unset, or its
    database does not exist; :class:`~connectors.StoreError` when it cannot be read."""
    log = config.access_logger()
    if log is None:
        raise ConfigError(f"{config.subsystem} answers no request about data subjects")
    assert config.database is not None  # filled in by resolved()
    if not config.database.startswith(_DATABASE_URLS) and not Path(config.database).is_file():
        raise ConfigError(f"{config.subsystem} has no database at {config.database} yet")
    store = ConnectorStore(config.database)
    try:
        return store.accesses(log.key.hash(subject_id))
    finally:
        store.close()


@contextlib.contextmanager
def dead_letter_desk(config: ConnectorConfig) -> Iterator[DeadLetterDesk]:
    """The dead letters of the connector of ``config``: its database (never created here;
    the connector may be running) and its dead-letter queue on the first broker that
    answers. Raises :class:`ConfigError` when the database does not exist yet."""
    assert config.database is not None  # filled in by resolved()
    if not config.database.startswith(_DATABASE_URLS) and not Path(config.database).is_file():
        raise ConfigError(f"{config.subsystem} has no database at {config.database} yet")
    parameters = [pika_parameters(url) for url in config.broker_urls]
    slug = config.slug
    store = ConnectorStore(config.database, remember_seen=False)
    try:
        yield DeadLetterDesk(store, lambda keep: take_dead_letters(parameters, slug, keep))
    finally:
        store.close()


def sent_message_status(config: ConnectorConfig, message_id: str) -> MessageStatus | None:
    """What became of ``message_id``, sent by the connector of ``config``: read from its
    database and message log (neither is created here; the connector may be running).
    Raises :class:`ConfigError` when they do not exist yet, :class:`StoreError` when they
    cannot be read."""
    assert config.database is not None  # filled in by resolved()
    assert config.log is not None
    for what, location in (("database", config.database), ("message log", config.log)):
        if not location.startswith(_DATABASE_URLS) and not Path(location).is_file():
            raise ConfigError(f"{config.subsystem} has no {what} at {location} yet")
    store = ConnectorStore(config.database)
    try:
        log = MessageLog(open_store(config.log, create=False), log_id=str(config.subsystem_id))
    except LogError as exc:
        store.close()
        raise StoreError(f"cannot read the message log of {config.subsystem}: {exc}") from exc
    try:
        return message_status(store, log, message_id)
    except LogError as exc:
        raise StoreError(f"cannot read the message log of {config.subsystem}: {exc}") from exc
    finally:
        log.close()
        store.close()


def build_connector(
    config: ConnectorConfig, handlers: Mapping[str, Handler] | None = None
) -> Connector:
    """The connector ``config`` describes, not started: keys, CA certificate and directory
    (checked first, so a bad one fails before any connection), RabbitMQ, the connector's
    database and its message log, the schema registry, the agency's handlers (and
    ``handlers``, composed by the caller, over them), and witnessing of its message log
    (:class:`~connectors.Witnessing`).

    Raises :class:`ConfigError`, :class:`~connectors.TransportError` (broker unreachable),
    :class:`~connectors.StoreError`, or the exchange core's errors."""
    checked = check_config(config)
    composed: dict[str, Handler] = {}
    if config.agency is not None:
        from connectors.ministries import AGENCIES  # noqa: PLC0415 - only with an agency

        composed = dict(AGENCIES[config.agency].handlers)
    composed.update(handlers or {})
    assert config.database is not None  # filled in by resolved()
    assert config.log is not None
    for location in (config.database, config.log):
        if not location.startswith(_DATABASE_URLS):
            Path(location).parent.mkdir(parents=True, exist_ok=True)
    signing_key, _ = checked.keys.signer()
    transport = PikaTransport(config.broker_urls, name=config.slug)
    closers: list[Callable[[], None]] = [transport.close]
    try:
        store = ConnectorStore(config.database)
        closers.append(store.close)
        log = MessageLog(
            open_store(config.log), log_id=str(config.subsystem_id), signing_key=signing_key
        )
        closers.append(log.close)
        connector = Connector(
            subsystem=config.subsystem_id,
            keys=checked.keys,
            ca_certificate=checked.ca_certificate,
            directory_source=directory_source(config.directory),
            transport=transport,
            store=store,
            log=log,
            registry=default_registry(),
            handlers=composed,
            settings=config.settings(),
            access_log=config.access_logger(),
        )
        Witnessing(connector).install(publish_every=config.witnessing.publish_every)
    except BaseException:
        for close in reversed(closers):
            with contextlib.suppress(Exception):  # the first error is the one to report
                close()
        raise
    return connector
