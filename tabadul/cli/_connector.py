"""``tabadul connector``: run one agency's connector from its configuration file, or check it.

``run`` composes the connector (keys, CA, directory, RabbitMQ, database, message log), hands
the types without a Python handler to the information system (webhook or pull inbox), starts
consuming, serves the local HTTP API, and on SIGTERM or SIGINT stops the API first (no new
calls), then the connector (in-flight deliveries and handlers finish, the log is flushed).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer
import uvicorn

from connectors import ConnectorError
from connectors._api import create_app
from connectors._config import (
    ConnectorConfig,
    build_connector,
    check_config,
    load_config,
)
from tabadul._risk_service import payment_handlers, payment_risk, risk_handlers
from tabadul.cli._output import console, fail, print_json, reporting, usage_error

if TYPE_CHECKING:
    from risk import PaymentRisk, RiskService

connector_app = typer.Typer(help="Run or check an agency's connector.", no_args_is_help=True)

CONFIG = typer.Option(..., "--config", "-c", help="The connector's TOML configuration file.")
JSON = typer.Option(False, "--json", help="Print JSON for scripts.")
API_START_TIMEOUT = 15.0  # seconds for the local API to start listening
API_STOP_TIMEOUT = 30.0  # seconds for the local API to finish the calls in progress


@contextmanager
def _reporting(*, as_json: bool = False) -> Iterator[None]:
    """The project's errors, the connector's included, as ``error [code]: message``; exit 2."""
    with reporting(as_json=as_json):
        try:
            yield
        except ConnectorError as exc:
            fail(exc, as_json=as_json)


def _load(path: Path, *, as_json: bool) -> ConnectorConfig:
    with _reporting(as_json=as_json):
        return load_config(path)
    raise AssertionError("unreachable: fail() exits")  # pragma: no cover - for mypy


@connector_app.command("check")
def check(config: Path = CONFIG, as_json: bool = JSON) -> None:
    """Validate the configuration and load the keys, CA certificate and directory (no broker)."""
    settings = _load(config, as_json=as_json)
    with _reporting(as_json=as_json):
        summary = check_config(settings).summary()
        settings.api_token()  # a named but unset token variable is a configuration error
        settings.access_logger()  # so is a connector holding personal data without its key
    if as_json:
        print_json({"ok": True, **summary})
        return
    directory = summary["directory"]
    console.print(f"{summary['subsystem']}: configuration {config} is valid")
    console.print(f"  agency handlers  {summary['agency'] or '(none: everything to the IS)'}")
    console.print(
        f"  keys             {summary['key_generations']} generation(s), certified to "
        f"{summary['signing_certificate_expires'][:10]}"
    )
    console.print(
        f"  directory        serial {directory['serial']}, expires {directory['expires']}"
        f"{'' if directory['fresh'] else ' (STALE)'}"
    )
    console.print(f"  subscribes       {', '.join(summary['subscribes']) or '-'}")
    console.print(f"  provides         {', '.join(summary['provides']) or '-'}")
    console.print(f"  broker           {', '.join(summary['broker_urls'])} (not contacted)")
    console.print(f"  database, log    {summary['database']}, {summary['log']}")
    console.print(f"  local API        {summary['api']}")
    console.print(f"  deliveries       {summary['webhook_url'] or 'pull inbox (GET /inbox)'}")


RISK_MODEL = typer.Option(
    None,
    "--risk-model",
    help="Serve the customs risk service's handlers (MA/GOV/MEF/CUSTOMS-RISK) with the model "
    "folder DIR (made by `tabadul risk train --for-bus`); its outcomes are kept there too.",
    metavar="DIR",
)


PAYMENT_MODEL = typer.Option(
    None,
    "--payment-model",
    help="Keep each tax.alert-verdict the treasury's connector receives in the ledger of the "
    "payment model folder DIR (made by `tabadul risk payments train`), where the anomaly "
    "score learns from it.",
    metavar="DIR",
)


@connector_app.command("run")
def run(
    config: Path = CONFIG,
    risk_model: Path | None = RISK_MODEL,
    payment_model: Path | None = PAYMENT_MODEL,
) -> None:
    """Run the connector and its local API until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pika").setLevel(logging.WARNING)  # it narrates every frame at INFO
    settings = _load(config, as_json=False)
    with _reporting():
        token = settings.api_token()
    if risk_model is not None and payment_model is not None:
        usage_error("bad-option", "--risk-model and --payment-model serve different connectors")
    service = _risk_service(risk_model) if risk_model is not None else None
    payments = _payment_risk(payment_model) if payment_model is not None else None
    listener = _listen(settings)  # before connecting: a taken port fails at once
    try:
        with _reporting():
            handlers = risk_handlers(service) if service is not None else None
            if payments is not None:
                handlers = payment_handlers(payments)
            connector = build_connector(settings, handlers)
    except BaseException:
        listener.close()
        for held in (service, payments):
            if held is not None:
                held.close()
        raise
    app = create_app(
        connector,
        token=token,
        webhook_url=settings.webhook_url,
        hosts=settings.api.hosts(),
        origins=settings.api.allowed_origins,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.api.host,
            port=settings.api.port,
            lifespan="off",
            log_level="info",
        )
    )
    done = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    # uvicorn installs no signal handlers off the main thread: this one decides when to stop
    api = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="local-api", daemon=True
    )
    try:
        with _reporting():
            connector.start()
        api.start()
        _wait_until_listening(server, api, settings)
        console.print(
            f"connector {settings.subsystem} running; local API on "
            f"http://{settings.api.host}:{settings.api.port}"
        )
        while not done.wait(0.5):
            if not api.is_alive():
                usage_error("api-stopped", "the local API stopped unexpectedly; see the log above")
    finally:
        server.should_exit = True
        if api.is_alive():
            api.join(API_STOP_TIMEOUT)
        connector.stop()
        app.state.inbox.close()
        listener.close()
        for held in (service, payments):
            if held is not None:
                held.close()
    console.print(f"connector {settings.subsystem} stopped")


def _risk_service(model_dir: Path) -> RiskService:
    """The risk service over ``model_dir``'s current model; exit 2 with its code when the
    model is missing, tampered with or not one for the bus."""
    from risk import ModelStore, RiskError, RiskService

    with reporting(also=(RiskError,)):
        return RiskService(ModelStore(model_dir))
    raise AssertionError("unreachable: fail() exits")  # pragma: no cover - for mypy


def _payment_risk(model_dir: Path) -> PaymentRisk:
    """The payment scorer over ``model_dir``; exit 2 with its code when the model is missing
    or tampered with."""
    from risk import RiskError

    with reporting(also=(RiskError,)):
        return payment_risk(model_dir)
    raise AssertionError("unreachable: fail() exits")  # pragma: no cover - for mypy


def _listen(settings: ConnectorConfig) -> socket.socket:
    """The API's listening socket on the configured host and port; exit 2 when it cannot."""
    host, port = settings.api.host, settings.api.port
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind, proto)
    except OSError as exc:
        usage_error("api-unavailable", f"the local API cannot listen on {host}:{port}: {exc}")
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        usage_error(
            "api-unavailable",
            f"the local API cannot listen on {host}:{port}: {exc.strerror or exc}",
        )
    return listener


def _wait_until_listening(
    server: uvicorn.Server, api: threading.Thread, settings: ConnectorConfig
) -> None:
    """Return once the API serves; exit 2 when uvicorn gave up (its log says why)."""
    for _ in range(int(API_START_TIMEOUT / 0.05)):
        if server.started:
            return
        if not api.is_alive():
            break
        api.join(0.05)
    usage_error(
        "api-unavailable",
        f"the local API on {settings.api.host}:{settings.api.port} did not start; see the log",
    )
