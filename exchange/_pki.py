"""Keys and certificates: the operator's root CA and the subsystems' certificates.

The root CA is a self-signed Ed25519 X.509 certificate. Each subsystem holds two key pairs: an
Ed25519 signing key and an X25519 encryption key, each certified by the CA with the subsystem
identity as subject common name (``CN=MA/GOV/MEF/CUSTOMS``). A certificate's usage is told by
its key type and its KeyUsage extension (digitalSignature or keyAgreement).

Private keys on disk are PKCS#8, encrypted with a passphrase (``BestAvailableEncryption``) and
written with mode 0600.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.x509.oid import NameOID
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from exchange._errors import CertificateError, IdentityError, InvalidPeriod, KeyStoreError
from exchange._identity import SubsystemId, parse_instance
from exchange._time import utcnow

Usage = Literal["signing", "encryption"]
PrivateKey = ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey
PublicKey = ed25519.Ed25519PublicKey | x25519.X25519PublicKey
# X.509's upper bound on a common name (RFC 5280, ub-common-name).
COMMON_NAME_MAX = 64
CA_NAME_PREFIX = "Tabadul Root CA "
# A century: longer is no validity a person means (and a few thousand years overflow dates).
VALIDITY_MAX_DAYS = 36500
SIGNATURE_BYTES = 64  # Ed25519


def fingerprint(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the certificate's DER encoding: how envelopes name a certificate."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def cert_to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def cert_from_pem(pem: str | bytes) -> x509.Certificate:
    """Parse a PEM certificate; raises :class:`CertificateError`."""
    try:
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:  # UnicodeEncodeError is a ValueError
        raise CertificateError(f"not a PEM X.509 certificate: {exc}") from exc


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What the exchange needs to know of a subsystem certificate once it is checked."""

    subsystem: SubsystemId
    usage: Usage
    serial: int
    fingerprint: str
    not_before: datetime
    not_after: datetime
    public_key: PublicKey
    _verifier: VerifyKey | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.public_key, ed25519.Ed25519PublicKey):
            # libsodium verifies Ed25519 in about half the time of OpenSSL through cryptography
            # (docs/benchmarks.md); the key is loaded once, with the directory
            object.__setattr__(self, "_verifier", VerifyKey(self.public_key.public_bytes_raw()))

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is this signing certificate's key's Ed25519 signature of
        ``data`` (False for an encryption certificate)."""
        if self._verifier is None or len(signature) != SIGNATURE_BYTES:
            return False
        try:
            self._verifier.verify(data, signature)
        except BadSignatureError:
            return False
        return True


def inspect_certificate(cert: x509.Certificate, ca_cert: x509.Certificate) -> CertInfo:
    """Check that ``cert`` was issued by ``ca_cert`` and describe it.

    Validity dates are reported, not enforced: the receive pipeline decides what an expired
    certificate means at the time of a message. Raises :class:`CertificateError` when the CA's
    signature does not verify, the subject is not a subsystem identity, or the key type is
    not Ed25519 or X25519.
    """
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError(
            f"certificate serial {cert.serial_number:x} was not issued by this CA"
        ) from exc
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise CertificateError("certificate subject must have exactly one common name")
    try:
        subsystem = SubsystemId.parse(str(names[0].value))
    except IdentityError as exc:
        raise CertificateError(f"certificate subject is not a subsystem: {exc.message}") from exc
    key = cert.public_key()
    usage: Usage
    if isinstance(key, ed25519.Ed25519PublicKey):
        usage = "signing"
    elif isinstance(key, x25519.X25519PublicKey):
        usage = "encryption"
    else:
        raise CertificateError(f"unsupported key type {type(key).__name__} in certificate")
    _check_extensions(cert, usage)
    return CertInfo(
        subsystem=subsystem,
        usage=usage,
        serial=cert.serial_number,
        fingerprint=fingerprint(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        public_key=key,
    )


def _check_extensions(cert: x509.Certificate, usage: Usage) -> None:
    """A subsystem certificate is no CA and its KeyUsage matches its key (protocol.md §2)."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertificateError(f"certificate lacks a required extension: {exc}") from exc
    if constraints.ca:
        raise CertificateError("a subsystem certificate must not be a CA certificate")
    wanted = key_usage.digital_signature if usage == "signing" else key_usage.key_agreement
    if not wanted:
        raise CertificateError(f"the KeyUsage of this {usage} certificate does not allow it")


def write_private_key(path: Path, key: PrivateKey, passphrase: bytes) -> None:
    """Write ``key`` encrypted with ``passphrase``, mode 0600, atomically (temp file + rename)."""
    if not passphrase:
        raise KeyStoreError("a passphrase is required to store a private key")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover could carry wider permissions or be a symlink
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise KeyStoreError(f"cannot create {tmp.name}: {exc.strerror}") from exc
    os.fchmod(fd, 0o600)  # whatever the umask
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def read_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    """Read a key written by :func:`write_private_key`; raises :class:`KeyStoreError` when the
    file is missing, the passphrase is wrong or the key is not Ed25519/X25519."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read private key {path.name}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(
            f"cannot decrypt private key {path.name}: wrong passphrase or damaged file"
        ) from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey):
        raise KeyStoreError(f"{path.name} holds a {type(key).__name__}, not Ed25519 or X25519")
    return key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def validity_days(days: int) -> timedelta:
    """``days`` as a certificate's validity: a whole number of days from 1 to
    :data:`VALIDITY_MAX_DAYS`. Raises :class:`InvalidPeriod` otherwise (0 days would make a
    certificate that is expired when issued)."""
    if isinstance(days, bool) or not isinstance(days, int):
        raise InvalidPeriod(f"a validity is a whole number of days, not {days!r}")
    if not 1 <= days <= VALIDITY_MAX_DAYS:
        raise InvalidPeriod(
            f"a validity of {days} days is out of range: 1 to {VALIDITY_MAX_DAYS} days"
        )
    return timedelta(days=days)


def _ca_name(instance: str) -> x509.Name:
    """The root's name for ``instance``; raises :class:`IdentityError` for an instance code
    that is no identity part, or too long for a common name once prefixed."""
    common_name = CA_NAME_PREFIX + parse_instance(instance)
    if len(common_name) > COMMON_NAME_MAX:
        raise IdentityError(
            f"instance code {instance!r} has {len(instance)} characters; at most "
            f"{COMMON_NAME_MAX - len(CA_NAME_PREFIX)}, so that the root certificate's name "
            f"'{CA_NAME_PREFIX}<instance>' holds in {COMMON_NAME_MAX}"
        )
    return _name(common_name)


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """The operator's root CA: its key and self-signed certificate.

    Pure: it issues certificates from public keys; keeping state (what was issued, what was
    revoked) and storing files is the job of :mod:`exchange._castore`.
    """

    key: ed25519.Ed25519PrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(
        cls, instance: str, *, days: int = 3650, now: datetime | None = None
    ) -> CertificateAuthority:
        """A new root CA for ``instance`` (e.g. ``MA``), valid for ``days``. Raises
        :class:`IdentityError` for a bad instance code, :class:`InvalidPeriod` for a bad
        validity (see :func:`validity_days`)."""
        name = _ca_name(instance)
        validity = validity_days(days)
        start = now or utcnow()
        key = ed25519.Ed25519PrivateKey.generate()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - timedelta(minutes=5))
            .not_valid_after(start + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, None)
        )
        return cls(key, cert)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    def issue(
        self,
        subsystem: SubsystemId,
        public_key: PublicKey,
        *,
        days: int = 365,
        now: datetime | None = None,
    ) -> x509.Certificate:
        """Certify ``public_key`` (Ed25519 for signing, X25519 for encryption) for
        ``subsystem``. The validity (see :func:`validity_days`) never outlasts the CA's own."""
        validity = validity_days(days)
        start = now or utcnow()
        end = min(start + validity, self.certificate.not_valid_after_utc)
        if end <= start:
            raise CertificateError("the CA certificate has expired; renew the CA first")
        signing = isinstance(public_key, ed25519.Ed25519PublicKey)
        if not signing and not isinstance(public_key, x25519.X25519PublicKey):
            raise CertificateError("only Ed25519 and X25519 keys can be certified")
        return (
            x509.CertificateBuilder()
            .subject_name(_name(str(subsystem)))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - timedelta(minutes=5))
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signature=signing, agreement=not signing), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, None)
        )


def _key_usage(
    *, signature: bool = False, agreement: bool = False, cert_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=agreement,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def new_passphrase() -> str:
    """A random passphrase for generated keys (demo and tests)."""
    return secrets.token_urlsafe(24)
