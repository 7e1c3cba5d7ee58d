"""Connectors in their own processes, as deployed: configuration files for a sandbox's
parties, and the files by which a child process tells its parent it is ready or done."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pika  # type: ignore[import-untyped]  # pika ships no type information
from cryptography.hazmat.primitives.serialization import Encoding

from connectors import Connector, build_connector, load_config
from exchange.sandbox import Party, Sandbox

PASSPHRASE = "bench-only-passphrase"  # noqa: S105 - throwaway keys of one run


def write_configs(
    folder: Path,
    sandbox: Sandbox,
    parties: Mapping[str, Party],
    *,
    runtime: str,
    broker_urls: Sequence[str] = (),
) -> dict[str, Path]:
    """Keys, CA certificate, directory and one configuration file per party (``NAME.toml``
    with database ``NAME.db`` and log ``NAME.log.sqlite``); ``runtime`` is the body of the
    ``[runtime]`` table."""
    (folder / "ca.pem").write_bytes(sandbox.ca.certificate.public_bytes(Encoding.PEM))
    (folder / "directory.json").write_bytes(sandbox.sign())
    brokers = "".join(f'broker_urls = ["{url}"]\n' for url in broker_urls[:1])
    if len(broker_urls) > 1:
        brokers = "broker_urls = [" + ", ".join(f'"{url}"' for url in broker_urls) + "]\n"
    configs = {}
    for name, party in parties.items():
        sandbox.export_keys(party, folder / "keys" / name, PASSPHRASE.encode())
        config = folder / f"{name}.toml"
        config.write_text(
            f'subsystem = "{party.subsystem}"\n'
            f'keys = "keys/{name}"\n'
            'ca_certificate = "ca.pem"\n'
            'directory = "directory.json"\n'
            f'database = "{name}.db"\n'
            f'log = "{name}.log.sqlite"\n'
            f"{brokers}"
            f"[runtime]\n{runtime}",
            encoding="utf-8",
        )
        configs[name] = config
    return configs


def connector_from(config: Path) -> Connector:
    """Build (not start) the connector of a configuration file written by write_configs."""
    os.environ["TABADUL_KEY_PASSPHRASE"] = PASSPHRASE
    return build_connector(load_config(config))


def signal_file(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: the waiting process reads it once it exists."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(text)
    partial.replace(path)


def wait_for(path: Path, timeout: float) -> str:
    """The text of ``path`` once it exists; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} did not appear within {timeout:g} s")
        time.sleep(0.02)
    return path.read_text()


def stop(children: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child, then wait for each to end."""
    ended = list(children)
    for child in ended:
        child.send_signal(signal.SIGTERM)
    for child in ended:
        child.wait(timeout=60)


def remove_queues(url: str, instance: str, paths: Iterable[str]) -> None:
    """:func:`delete_queues` through a connection of its own to the broker at ``url``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    delete_queues(connection.channel(), instance, paths)
    connection.close()


def delete_queues(channel: Any, instance: str, paths: Iterable[str]) -> None:
    """Delete the queues (main, dead-letter, retry) of ``instance``'s subsystems at ``paths``
    (e.g. ``GOV/MEF/TAX``) through a pika channel."""
    for path in paths:
        slug = f"{instance}/{path}".replace("/", ".")
        for kind in ("q", "dlq", "retry"):
            channel.queue_delete(f"tabadul.{kind}.{slug}")
