"""``tabadul ca`` (the operator's root CA) and ``tabadul keys`` (a subsystem's key folder)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from exchange import (
    CAStore,
    KeyStore,
    SubsystemId,
    issue_for,
    overlap_hours,
    parse_instance,
    validity_days,
)
from tabadul._services import CA_PASSPHRASE_ENV, load_ca
from tabadul.cli._output import console, print_json, reporting, usage_error

ca_app = typer.Typer(help="The operator's root certificate authority.", no_args_is_help=True)
keys_app = typer.Typer(help="A subsystem's signing and encryption keys.", no_args_is_help=True)

CA_DIR = typer.Option(Path("ca"), "--dir", help="The CA folder.")
KEYS_DIR = typer.Option(..., "--keys", help="The subsystem's key folder.")
JSON = typer.Option(False, "--json", help="Print JSON for scripts.")


def _passphrase(variable: str, what: str, *, confirm: bool = False) -> bytes:
    """From the environment variable, else asked on the terminal (never echoed)."""
    value = os.environ.get(variable)
    if value:
        return value.encode()
    if not os.isatty(0):
        usage_error(
            "passphrase-required",
            f"the {what} passphrase is read from ${variable} or asked on a terminal; "
            "neither is available",
        )
    text: str = typer.prompt(f"{what} passphrase", hide_input=True, confirmation_prompt=confirm)
    return text.encode()


def _ca_passphrase(*, confirm: bool = False) -> bytes:
    return _passphrase(CA_PASSPHRASE_ENV, "CA", confirm=confirm)


def _key_passphrase(*, confirm: bool = False) -> bytes:
    return _passphrase("TABADUL_KEY_PASSPHRASE", "key", confirm=confirm)


@ca_app.command("init")
def ca_init(
    instance: str = typer.Option(..., help="The bus instance, e.g. MA."),
    directory: Path = CA_DIR,
    days: int = typer.Option(3650, help="Validity of the root certificate (1 to 36500 days)."),
    as_json: bool = JSON,
) -> None:
    """Create the root CA: an Ed25519 key (encrypted, 0600) and its self-signed certificate."""
    with reporting(as_json=as_json):
        parse_instance(instance)  # refused before the passphrase is asked for
        validity_days(days)
        store = CAStore.init(directory, instance, _ca_passphrase(confirm=True), days=days)
    result = {
        "ok": True,
        "instance": instance,
        "certificate": str(directory / "ca.pem"),
        "fingerprint": store.ca.fingerprint,
    }
    if as_json:
        print_json(result)
    else:
        console.print(f"root CA for {instance} created in {directory}")
        console.print(f"fingerprint {store.ca.fingerprint}")


@ca_app.command("issue")
def ca_issue(
    keys: Path = KEYS_DIR,
    directory: Path = CA_DIR,
    subsystem: str | None = typer.Option(
        None, help="Generate keys for this subsystem first if the key folder is empty."
    ),
    days: int = typer.Option(
        365, help="Validity of the certificates (1 to 36500 days, never past the CA's)."
    ),
    as_json: bool = JSON,
) -> None:
    """Certify the newest keys of a subsystem (signing and encryption)."""
    with reporting(as_json=as_json):
        validity_days(days)  # refused before any key is generated
        store = KeyStore(keys, b"")
        if not (keys / "keys.json").exists():
            if subsystem is None:
                usage_error(
                    "no-keys",
                    f"{keys} holds no keys; run 'tabadul keys generate' there first "
                    "or pass --subsystem",
                    as_json=as_json,
                )
            KeyStore(keys, _key_passphrase(confirm=True)).generate(SubsystemId.parse(subsystem))
        ca = load_ca(directory, ask=_ca_passphrase)
        signing, encryption = issue_for(ca, store, days=days)
    result = {
        "ok": True,
        "signing": {
            "serial": f"{signing.serial_number:x}",
            "not_after": str(signing.not_valid_after_utc),
        },
        "encryption": {"serial": f"{encryption.serial_number:x}"},
    }
    if as_json:
        print_json(result)
    else:
        console.print(
            f"issued signing certificate {signing.serial_number:x} and encryption certificate "
            f"{encryption.serial_number:x}, valid until {signing.not_valid_after_utc:%Y-%m-%d}"
        )


@ca_app.command("revoke")
def ca_revoke(
    certificate: str = typer.Argument(..., help="Hex serial or sha256: fingerprint."),
    reason: str = typer.Option(..., help="Why (recorded)."),
    directory: Path = CA_DIR,
    as_json: bool = JSON,
) -> None:
    """Revoke a certificate; the next directory lists it as revoked."""
    with reporting(as_json=as_json):
        entry = load_ca(directory, ask=_ca_passphrase).revoke(certificate, reason)
    if as_json:
        print_json({"ok": True, "revoked": entry.as_dict()})
    else:
        console.print(f"revoked {entry.usage} certificate {entry.serial:x} of {entry.subject}")


@ca_app.command("list")
def ca_list(directory: Path = CA_DIR, as_json: bool = JSON) -> None:
    """The certificates this CA issued, with their state."""
    with reporting(as_json=as_json):
        issued = load_ca(directory, ask=_ca_passphrase).issued()
    if as_json:
        print_json([cert.as_dict() for cert in issued])
        return
    for cert in issued:
        state = f"revoked ({cert.reason})" if cert.revoked_at else f"valid to {cert.not_after}"
        console.print(f"{cert.serial:x}  {cert.subject:28} {cert.usage:10} {state}")


@keys_app.command("generate")
def keys_generate(
    subsystem: str = typer.Argument(..., help="INSTANCE/CLASS/MEMBER/SUBSYSTEM"),
    keys: Path = KEYS_DIR,
    as_json: bool = JSON,
) -> None:
    """Generate a subsystem's key pairs; the public halves go to the operator for `ca issue`."""
    with reporting(as_json=as_json):
        ident = SubsystemId.parse(subsystem)
        if (keys / "keys.json").exists():
            usage_error("keys-exist", f"{keys} already holds keys; use 'tabadul keys rotate'")
        generation = KeyStore(keys, _key_passphrase(confirm=True)).generate(ident)
    if as_json:
        print_json({"ok": True, "subsystem": subsystem, "generation": generation})
    else:
        console.print(f"keys of {subsystem} generated in {keys} (generation {generation})")


@keys_app.command("rotate")
def keys_rotate(
    keys: Path = KEYS_DIR,
    hours: float = typer.Option(
        168, "--overlap-hours", help="How long the old keys stay valid (0 to 8760 hours)."
    ),
    as_json: bool = JSON,
) -> None:
    """Start a new generation of keys; the old one retires after the overlap."""
    with reporting(as_json=as_json):
        overlap = overlap_hours(hours)
        store = KeyStore(keys, _key_passphrase())
        subsystem, *_ = store.public_keys()
        store.load()  # proves the passphrase before anything changes
        generation = store.generate(subsystem, overlap=overlap)
    if as_json:
        print_json({"ok": True, "generation": generation})
    else:
        console.print(
            f"generation {generation} created; have the operator run 'tabadul ca issue' for it"
        )
