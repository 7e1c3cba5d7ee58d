"""Witnessed tree heads: other parties countersign a log's heads, so that even whoever holds
the log's database *and* its signing key cannot rewrite or cut its history unnoticed.

A log's keeper signs tree heads (:class:`~exchange.log.SignedTreeHead`). A *witness* that
receives a new head checks, before countersigning, that it extends every head it cosigned
before for that log (an RFC 6962 consistency proof from its last size), and refuses a head
that is smaller (:class:`LogRollback`) or that does not extend it (:class:`LogSplitView`).
Its :class:`Cosignature` is Ed25519 by the witness's signing key over::

    b"tabadul/1 cosignature\\n" + canonical({"v": 1, "log", "size", "root", "at",
                                             "witness", "witnessed_at"})

Verifying a log against cosignatures (:func:`check_witnessed`) proves the stored tree still
has, at each cosigned size, the root the witness saw: a rewrite of any record up to that
size, even re-signed with the keeper's own key, is a split view; a log now shorter than a
cosigned size was rolled back. Each cosignature carries the witness's certificate, so all of
this verifies offline with the CA certificate alone.

Log ids: the keeper's subsystem identity (a connector's message log), optionally followed by
``#name`` for another log it keeps (``MA/GOV/DNUM/REGISTRY#audit``, the governance audit log).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from exchange._canonical import canonical
from exchange._directory import LegalBasis
from exchange._errors import CertificateError, ExchangeError, LogError, LogRollback, LogSplitView
from exchange._pki import cert_from_pem, inspect_certificate
from exchange.log._log import ConsistencyProof, verify_head_signature
from exchange.log._records import SignedTreeHead, check_timestamp

COSIGNATURE_CONTEXT = b"tabadul/1 cosignature\n"
# The message types that carry witnessing over the bus (protocol.md, "Witnessed heads")
LOG_HEAD_TYPE = "bus.log-head"
CONSISTENCY_TYPE = "bus.log-consistency.request"
CONSISTENCY_REPLY_TYPE = "bus.log-consistency.response"
COSIGNATURE_TYPE = "bus.log-cosignature"
WITNESS_PURPOSE = "log-witnessing"
WITNESS_BASIS = LegalBasis(
    "Non-repudiation of the exchanges: every log is witnessed by the other agencies",
    "Tabadul protocol, section 10 (witnessed heads)",
)
COSIGNATURE_VERSION = 1


def log_keeper(log_id: str) -> str:
    """The subsystem that keeps log ``log_id`` (what precedes an optional ``#name``)."""
    return log_id.split("#", 1)[0]


@dataclass(frozen=True, slots=True)
class Cosignature:
    """``witness`` saw ``head`` at ``witnessed_at``, consistent with all it saw before."""

    head: SignedTreeHead
    witness: str
    witnessed_at: str
    signature: bytes
    certificate: str = ""  # PEM of the witness's signing certificate, for offline checks

    def signed_bytes(self) -> bytes:
        return cosigned_bytes(self.head, self.witness, self.witnessed_at)

    def as_dict(self) -> dict[str, Any]:
        """The cosignature as JSON: the head's fields, the witness, its signature (hex), the
        keeper's signature of the head (hex) and the witness's certificate."""
        return {
            "log": self.head.log_id,
            "size": self.head.size,
            "root": self.head.root_hash.hex(),
            "at": self.head.timestamp,
            "head_signature": self.head.signature.hex(),
            "witness": self.witness,
            "witnessed_at": self.witnessed_at,
            "signature": self.signature.hex(),
            "certificate": self.certificate,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cosignature:
        """Parse :meth:`as_dict`'s form; raises :class:`LogError` naming what is malformed."""
        try:
            head = SignedTreeHead(
                size=_size(data["size"]),
                root_hash=_hex(data["root"], 32, "root"),
                timestamp=check_timestamp(data["at"]),
                log_id=_text(data["log"], "log"),
                signature=_hex(data.get("head_signature") or "", None, "head_signature"),
            )
            return cls(
                head=head,
                witness=_text(data["witness"], "witness"),
                witnessed_at=check_timestamp(data["witnessed_at"]),
                signature=_hex(data["signature"], 64, "signature"),
                certificate=str(data.get("certificate") or ""),
            )
        except (KeyError, TypeError) as exc:
            raise LogError(f"not a cosignature: {exc!r} is missing or malformed") from exc

    def verify(self, ca_certificate: x509.Certificate | None = None) -> None:
        """Check the witness's signature with the key of its certificate; with
        ``ca_certificate``, also that the CA issued that certificate to ``witness`` for
        signing. Raises :class:`LogError` naming what does not hold."""
        if not self.certificate:
            raise LogError(f"the cosignature of {self.witness} carries no certificate")
        try:
            cert = cert_from_pem(self.certificate)
            key = cert.public_key()
            if ca_certificate is not None:
                info = inspect_certificate(cert, ca_certificate)
                if str(info.subsystem) != self.witness or info.usage != "signing":
                    raise LogError(
                        f"the cosignature's certificate is not a signing certificate of "
                        f"{self.witness}"
                    )
        except CertificateError as exc:
            raise LogError(f"the certificate of witness {self.witness}: {exc.message}") from exc
        if not isinstance(key, Ed25519PublicKey) or not verify_cosignature(self, key):
            raise LogError(
                f"the cosignature of {self.witness} for {self.head.log_id} at size "
                f"{self.head.size} does not verify"
            )


def cosigned_bytes(head: SignedTreeHead, witness: str, witnessed_at: str) -> bytes:
    """What a witness signs for ``head``."""
    return COSIGNATURE_CONTEXT + canonical(
        {
            "v": COSIGNATURE_VERSION,
            "log": head.log_id,
            "size": head.size,
            "root": head.root_hash.hex(),
            "at": head.timestamp,
            "witness": witness,
            "witnessed_at": witnessed_at,
        }
    )


def cosign(
    head: SignedTreeHead,
    witness: str,
    key: Ed25519PrivateKey,
    *,
    witnessed_at: str,
    certificate: str = "",
) -> Cosignature:
    """The witness's cosignature of ``head`` (check it first with :func:`check_extends`)."""
    signature = key.sign(cosigned_bytes(head, witness, witnessed_at))
    return Cosignature(head, witness, witnessed_at, signature, certificate)


def verify_cosignature(cosignature: Cosignature, key: Ed25519PublicKey) -> bool:
    """Whether ``key`` made ``cosignature``'s signature."""
    try:
        key.verify(cosignature.signature, cosignature.signed_bytes())
    except (InvalidSignature, ValueError, ExchangeError):
        return False
    return True


def check_extends(
    previous: SignedTreeHead | None,
    head: SignedTreeHead,
    keeper_keys: Sequence[Ed25519PublicKey],
    proof: ConsistencyProof | None = None,
) -> None:
    """What a witness checks before cosigning ``head``: it is signed by one of the keeper's
    ``keeper_keys``, for a log of the same id as ``previous`` (the last head it cosigned,
    ``None`` for the first), and ``proof`` shows that ``previous`` is a prefix of it.

    Raises :class:`LogError` for a bad signature or proof that is not about these two heads,
    :class:`LogRollback` for a head smaller than ``previous``, :class:`LogSplitView` for one
    that does not extend it (another root at the same size, or a failing proof)."""
    if not any(verify_head_signature(head, key) for key in keeper_keys):
        raise LogError(f"the head of {head.log_id} at size {head.size} is not signed by its keeper")
    if previous is None:
        return
    if previous.log_id != head.log_id:
        raise LogError(f"a head of {head.log_id} cannot follow one of {previous.log_id}")
    if head.size < previous.size:
        raise LogRollback(
            f"{head.log_id} now claims {head.size} records; {previous.size} were witnessed at "
            f"{previous.timestamp}",
            previous.size,
        )
    if head.size == previous.size:
        if head.root_hash != previous.root_hash:
            raise LogSplitView(
                f"{head.log_id} shows another root for size {head.size} than the one witnessed "
                f"at {previous.timestamp}",
                head.size,
            )
        return
    if proof is None or (proof.old_size, proof.new_size) != (previous.size, head.size):
        raise LogError(f"a consistency proof from {previous.size} to {head.size} is needed")
    if (proof.old_root, proof.new_root) != (previous.root_hash, head.root_hash) or not (
        proof.verify()
    ):
        raise LogSplitView(
            f"{head.log_id} at size {head.size} does not extend the head of size "
            f"{previous.size} witnessed at {previous.timestamp}",
            previous.size,
        )


@dataclass(frozen=True, slots=True)
class WitnessReport:
    """Which cosignatures a log was checked against: how many, by whom, up to what size."""

    cosignatures: int
    witnesses: tuple[str, ...]
    witnessed_size: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "cosignatures": self.cosignatures,
            "witnesses": list(self.witnesses),
            "witnessed_size": self.witnessed_size,
        }


def check_witnessed(
    log_id: str,
    size: int,
    root_at: Callable[[Iterable[int]], Mapping[int, bytes]],
    cosignatures: Iterable[Cosignature],
    *,
    ca_certificate: x509.Certificate | None = None,
) -> WitnessReport:
    """Check a log of ``size`` records against ``cosignatures`` of its heads (others' are
    ignored): each must verify (:meth:`Cosignature.verify`), and the log's root at each
    cosigned size (``root_at(sizes)`` returns them) must be the cosigned root.

    Raises :class:`LogRollback` when a witness saw more records than the log holds,
    :class:`LogSplitView` when the log's root at a cosigned size differs (it was rewritten,
    whatever key re-signed it) or two witnesses cosigned different roots for one size, and
    :class:`LogError` for a cosignature that does not verify."""
    mine = [c for c in cosignatures if c.head.log_id == log_id]
    for cosignature in mine:
        cosignature.verify(ca_certificate)
    seen: dict[int, Cosignature] = {}
    for cosignature in sorted(mine, key=lambda c: c.head.size):
        head = cosignature.head
        other = seen.setdefault(head.size, cosignature)
        if other.head.root_hash != head.root_hash:
            raise LogSplitView(
                f"{other.witness} and {cosignature.witness} cosigned different roots of "
                f"{log_id} at size {head.size}: the keeper showed them different logs",
                head.size,
            )
        if head.size > size:
            raise LogRollback(
                f"{cosignature.witness} witnessed {head.size} records of {log_id} at "
                f"{cosignature.witnessed_at}; only {size} are stored (records were removed)",
                size,
            )
    roots = root_at(sorted(seen)) if seen else {}
    for witnessed, cosignature in seen.items():
        if roots.get(witnessed) != cosignature.head.root_hash:
            raise LogSplitView(
                f"{log_id} at size {witnessed} is not the log {cosignature.witness} witnessed "
                f"at {cosignature.witnessed_at} (its records up to there were rewritten)",
                witnessed,
            )
    return WitnessReport(
        cosignatures=len(mine),
        witnesses=tuple(sorted({c.witness for c in mine})),
        witnessed_size=max(seen, default=0),
    )


def _size(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise LogError(f"a size is a non-negative integer, not {value!r}")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise LogError(f"{what} must be a non-empty string")
    return value


def _hex(value: object, length: int | None, what: str) -> bytes:
    try:
        data = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        data = None
    if data is None or (length is not None and len(data) != length):
        raise LogError(f"{what} must be {length or 'some'} bytes in hex")
    return data
