"""``tabadul log`` (check a message log, prove a message) and ``tabadul evidence``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from exchange import (
    Directory,
    EvidenceError,
    LogError,
    LogIntegrityError,
    RejectError,
    cert_from_pem,
    load_directory,
    parse_envelope,
)
from exchange.log import (
    Cosignature,
    LogStore,
    MessageLog,
    SignedTreeHead,
    evidence_bundle,
    open_store,
    verify_evidence,
    verify_head_signature,
    verify_log,
)
from tabadul.cli._output import console, fail, print_json, reporting, usage_error
from tabadul.cli._witness import CosignatureFiles, WitnessDbs, gathered

log_app = typer.Typer(help="Check a connector's message log.", no_args_is_help=True)


def _public_key(path: Path, *, as_json: bool) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        usage_error("bad-key", f"cannot read a public key from {path}: {exc}", as_json=as_json)
    if not isinstance(key, Ed25519PublicKey):
        usage_error("bad-key", f"{path} does not hold an Ed25519 public key", as_json=as_json)
    return key


@log_app.command("verify")
def verify(
    log: Annotated[str, typer.Argument(help="SQLite file of the log, or a postgresql:// URL.")],
    name: Annotated[
        str, typer.Option("--name", help="Schema of the log in PostgreSQL.")
    ] = "message_log",
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="PEM Ed25519 key to check the head signatures; repeat it for a log that "
            "spans key rotations (each head must be signed by one of them).",
        ),
    ] = None,
    log_id: Annotated[
        str | None, typer.Option("--log-id", help="The log id every signed head must carry.")
    ] = None,
    witness: WitnessDbs = None,
    cosignatures: CosignatureFiles = None,
    ca: Annotated[
        Path | None,
        typer.Option("--ca", help="The CA certificate (PEM): the witnesses' must be its."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-hash every record and check it against the signed tree heads and, with
    --witness or --cosignatures (and --log-id), against the heads other connectors
    cosigned: a rewrite or a cut even by the log's own key is then caught.

    Exit 0 when intact, 1 with the first bad position when not, 2 if it cannot be read.
    """
    keys = [_public_key(path, as_json=as_json) for path in public_key or []]
    ca_certificate = cert_from_pem(_read(ca, "CA certificate", as_json=as_json)) if ca else None
    cosigned: list[Cosignature] = []
    if witness or cosignatures:
        if log_id is None:
            usage_error("log-id-required", "checking cosignatures needs --log-id", as_json=as_json)
        cosigned = gathered(witness, cosignatures, log_id, as_json=as_json)
    store: LogStore | None = None
    try:
        store = open_store(log, name=name, create=False)
        report = verify_log(
            store,
            public_key=keys,
            log_id=log_id,
            cosignatures=cosigned,
            ca_certificate=ca_certificate,
        )
    except LogIntegrityError as exc:
        fail(exc, as_json=as_json, exit_code=1)
    except LogError as exc:
        fail(exc, as_json=as_json, exit_code=2)
    finally:
        if store is not None:
            store.close()
    if as_json:
        print_json({"ok": True, **report.as_dict()})
        return
    console.print(f"[bold green]intact[/] {report.size} records, root {report.root.hex()}")
    unsigned = report.size - report.signed_size
    console.print(
        f"{report.heads} signed heads, latest covers {report.signed_size} records"
        + (f" ({unsigned} appended since)" if unsigned else "")
        + ("" if report.signatures_checked else "; signatures not checked (no --public-key)"),
        highlight=False,
    )
    if report.witnessed is not None:
        witnessed = report.witnessed
        console.print(
            f"witnessed: {witnessed.cosignatures} cosignatures by "
            f"{', '.join(witnessed.witnesses) or 'nobody'}, up to {witnessed.witnessed_size} "
            "records",
            highlight=False,
        )


def _read(path: Path, what: str, *, as_json: bool) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        usage_error("unreadable", f"cannot read the {what} {path}: {exc.strerror}", as_json=as_json)


def _keeper_certificate(directory: Directory, head: SignedTreeHead) -> x509.Certificate | None:
    """The keeper's signing certificate whose key signed ``head`` (rotation may list several)."""
    for entry in directory.certificates.values():
        key = entry.info.public_key
        if (
            str(entry.info.subsystem) == head.log_id
            and isinstance(key, Ed25519PublicKey)
            and verify_head_signature(head, key)
        ):
            return cert_from_pem(entry.pem)
    return None


@log_app.command("proof")
def proof(
    log: Annotated[str, typer.Argument(help="SQLite file of the log, or a postgresql:// URL.")],
    message_id: Annotated[str, typer.Argument(help="The message to prove.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the bundle.")],
    directory_file: Annotated[
        Path, typer.Option("--directory", help="A signed directory listing the certificates.")
    ],
    ca: Annotated[Path, typer.Option("--ca", help="The operator's CA certificate (PEM).")],
    name: Annotated[
        str, typer.Option("--name", help="Schema of the log in PostgreSQL.")
    ] = "message_log",
    direction: Annotated[
        str | None, typer.Option(help="sent, received or rejected, if the id appears twice.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write an evidence bundle for one message: envelope, record, audit path, signed head
    and certificates, checkable offline with `tabadul evidence verify`."""
    ca_cert_data = _read(ca, "CA certificate", as_json=as_json)
    directory_data = _read(directory_file, "directory", as_json=as_json)
    with reporting(as_json=as_json):
        ca_cert = cert_from_pem(ca_cert_data)
        directory = load_directory(directory_data, ca_cert, allow_expired=True)
        store = open_store(log, name=name, create=False)
        try:
            heads = store.read_heads()
            if not heads:
                usage_error("no-signed-head", "the log has no signed tree head", as_json=as_json)
            message_log = MessageLog(store, log_id=heads[-1].log_id)
            inclusion = message_log.inclusion_proof(message_id, direction=direction, head=heads[-1])
        finally:
            store.close()
        keeper = _keeper_certificate(directory, heads[-1])
        if keeper is None:
            usage_error(
                "no-keeper-certificate",
                f"directory {directory.serial} lists no certificate of {heads[-1].log_id} "
                "that verifies the log's signed head",
                as_json=as_json,
            )
        sender = None
        try:
            signer = parse_envelope(inclusion.record.envelope).header.signer
            entry = directory.certificate(signer)
            sender = cert_from_pem(entry.pem) if entry else None
        except RejectError:
            sender = None  # a rejected, malformed message: the bundle proves its receipt only
        bundle = evidence_bundle(inclusion, keeper, sender)
    try:
        output.write_bytes(bundle)
    except OSError as exc:
        usage_error("unwritable", f"cannot write {output}: {exc.strerror}", as_json=as_json)
    if as_json:
        print_json({"ok": True, "bundle": str(output), "position": inclusion.index})
    else:
        console.print(
            f"evidence for {message_id} (record {inclusion.index} of {inclusion.size}) "
            f"written to {output}"
        )


evidence_app = typer.Typer(help="Check evidence bundles offline.", no_args_is_help=True)


@evidence_app.command("verify")
def evidence_verify(
    bundle: Annotated[Path, typer.Argument(help="The evidence bundle (JSON).")],
    ca: Annotated[Path, typer.Option("--ca", help="The operator's CA certificate (PEM).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Verify a bundle with only the CA certificate. Exit 0 valid, 1 invalid, 2 unreadable."""
    data = _read(bundle, "bundle", as_json=as_json)
    with reporting(as_json=as_json):
        ca_cert = cert_from_pem(_read(ca, "CA certificate", as_json=as_json))
    try:
        report = verify_evidence(data, ca_cert)
    except EvidenceError as exc:
        fail(exc, as_json=as_json, exit_code=1)
    if as_json:
        print_json({"ok": True, **report.as_dict()})
        return
    console.print(
        f"[bold green]valid[/] message {report.message_id} ({report.direction}, "
        f"recorded {report.recorded_at}) is record {report.position} of {report.tree_size} "
        f"in log {report.log_id}, head signed {report.head_signed_at}",
        highlight=False,
    )
    console.print(f"sender {report.sender}: signature {report.sender_signature}", highlight=False)
