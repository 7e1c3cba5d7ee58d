"""Key material on disk: the CA's folder and a subsystem's key ring.

CA folder::

    ca.key   the root key (PKCS#8, passphrase-encrypted, 0600)
    ca.pem   the root certificate
    ca.json  what was issued and revoked (serial, subject, usage, fingerprint, dates, revocation)
    issued/<serial>.pem

Subsystem key folder (one *generation* per key rotation; the newest signs, all decrypt)::

    keys.json                     {"subsystem": ..., "generations": [{"n": 1, "created": ...,
                                   "retire_after": null}, ...]}
    gen-<n>/signing.key           Ed25519, encrypted, 0600
    gen-<n>/encryption.key        X25519, encrypted, 0600
    gen-<n>/signing.pub.pem       public keys, for the CA
    gen-<n>/encryption.pub.pem
    gen-<n>/signing.pem           certificates, once the CA issued them
    gen-<n>/encryption.pem
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from exchange._errors import CertificateError, InvalidPeriod, KeyStoreError
from exchange._identity import SubsystemId
from exchange._pki import (
    CertificateAuthority,
    PublicKey,
    cert_from_pem,
    cert_to_pem,
    fingerprint,
    inspect_certificate,
    read_private_key,
    write_private_key,
)
from exchange._time import format_time, parse_time, utcnow

DEFAULT_OVERLAP = timedelta(days=7)
# Old keys keep decrypting for the overlap: a year covers any sensible handover.
OVERLAP_MAX = timedelta(days=365)
_SERIAL = re.compile(r"(?:0x)?0*[0-9a-f]{1,40}\Z")  # a serial has at most 20 bytes
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}\Z")


def _check_overlap(overlap: timedelta) -> timedelta:
    """``overlap`` if it is from none to :data:`OVERLAP_MAX`; raises :class:`InvalidPeriod`."""
    if not timedelta(0) <= overlap <= OVERLAP_MAX:
        raise InvalidPeriod(
            f"a key overlap of {overlap} is out of range: 0 to {OVERLAP_MAX.days} days"
        )
    return overlap


def overlap_hours(hours: float) -> timedelta:
    """A key overlap given in hours (what the CLI takes), as for :func:`_check_overlap`;
    NaN and infinities are refused too, with :class:`InvalidPeriod`."""
    limit = OVERLAP_MAX / timedelta(hours=1)
    if not (math.isfinite(hours) and 0 <= hours <= limit):
        raise InvalidPeriod(f"a key overlap of {hours} hours is out of range: 0 to {limit:g}")
    return timedelta(hours=hours)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KeyStoreError(f"{path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise KeyStoreError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise KeyStoreError(f"{path} is not a JSON object")
    return data


# --------------------------------------------------------------------------- CA folder


@dataclass(frozen=True, slots=True)
class IssuedCert:
    serial: int
    subject: str
    usage: str
    fingerprint: str
    not_before: str
    not_after: str
    revoked_at: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "serial": f"{self.serial:x}",
            "subject": self.subject,
            "usage": self.usage,
            "fingerprint": self.fingerprint,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "revoked_at": self.revoked_at,
            "reason": self.reason,
        }


class CAStore:
    """The CA's folder. Every method that changes state rewrites ``ca.json`` atomically."""

    def __init__(self, root: Path, ca: CertificateAuthority, state: dict[str, Any]) -> None:
        self.root = root
        self.ca = ca
        self._state = state

    @classmethod
    def init(cls, root: Path, instance: str, passphrase: bytes, *, days: int = 3650) -> CAStore:
        """Create a new CA in ``root``; refuses to overwrite an existing one."""
        if (root / "ca.key").exists():
            raise KeyStoreError(f"a CA already exists in {root}; refusing to overwrite it")
        ca = CertificateAuthority.create(instance, days=days)
        root.mkdir(parents=True, exist_ok=True)
        write_private_key(root / "ca.key", ca.key, passphrase)
        _write_text(root / "ca.pem", cert_to_pem(ca.certificate))
        store = cls(root, ca, {"instance": instance, "issued": []})
        store._save()
        return store

    @classmethod
    def open(cls, root: Path, passphrase: bytes) -> CAStore:
        key = read_private_key(root / "ca.key", passphrase)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyStoreError("ca.key is not an Ed25519 key")
        try:
            cert = cert_from_pem((root / "ca.pem").read_bytes())
        except OSError as exc:
            raise KeyStoreError(f"cannot read ca.pem in {root}: {exc.strerror}") from exc
        return cls(root, CertificateAuthority(key, cert), _read_json(root / "ca.json"))

    @property
    def instance(self) -> str:
        return str(self._state["instance"])

    def _save(self) -> None:
        _write_text(self.root / "ca.json", json.dumps(self._state, indent=2, sort_keys=True))

    def issued(self) -> list[IssuedCert]:
        return [
            IssuedCert(**{**entry, "serial": int(entry["serial"], 16)})
            for entry in self._state["issued"]
        ]

    def issue(
        self, subsystem: SubsystemId, public_key: PublicKey, *, days: int = 365
    ) -> x509.Certificate:
        """Issue and record a certificate; refuses identities of another instance."""
        if subsystem.instance != self.instance:
            raise CertificateError(
                f"{subsystem} belongs to instance {subsystem.instance!r}; "
                f"this CA serves {self.instance!r}"
            )
        cert = self.ca.issue(subsystem, public_key, days=days)
        info = inspect_certificate(cert, self.ca.certificate)
        (self.root / "issued").mkdir(exist_ok=True)
        _write_text(self.root / "issued" / f"{cert.serial_number:x}.pem", cert_to_pem(cert))
        entry = IssuedCert(
            serial=cert.serial_number,
            subject=str(subsystem),
            usage=info.usage,
            fingerprint=info.fingerprint,
            not_before=format_time(info.not_before),
            not_after=format_time(info.not_after),
        )
        self._state["issued"].append(entry.as_dict())
        self._save()
        return cert

    def revoke(self, serial_or_fingerprint: str, reason: str) -> IssuedCert:
        """Mark a certificate revoked (by hex serial or ``sha256:`` fingerprint). Raises
        :class:`CertificateError` for anything else, and for a certificate not issued here
        or already revoked."""
        needle = serial_or_fingerprint.strip().lower()
        if not (_SERIAL.match(needle) or _FINGERPRINT.match(needle)):
            raise CertificateError(
                f"{serial_or_fingerprint[:80]!r} is neither a hex serial nor a sha256: fingerprint"
            )
        serial = None if needle.startswith("sha256:") else int(needle.removeprefix("0x"), 16)
        for entry in self._state["issued"]:
            if needle == entry["fingerprint"] or serial == int(entry["serial"], 16):
                if entry["revoked_at"] is not None:
                    raise CertificateError(f"certificate {entry['serial']} is already revoked")
                entry["revoked_at"] = format_time(utcnow())
                entry["reason"] = reason
                self._save()
                return IssuedCert(**{**entry, "serial": int(entry["serial"], 16)})
        raise CertificateError(f"no certificate with serial or fingerprint {needle!r}")

    def revoked_serials(self) -> list[int]:
        return [c.serial for c in self.issued() if c.revoked_at is not None]


# --------------------------------------------------------------------------- key ring


@dataclass(slots=True)
class Generation:
    """One generation of a subsystem's keys (one rotation step)."""

    n: int
    signing_key: ed25519.Ed25519PrivateKey
    encryption_key: x25519.X25519PrivateKey
    created: datetime
    retire_after: datetime | None = None
    signing_cert: x509.Certificate | None = None
    encryption_cert: x509.Certificate | None = None


@dataclass(slots=True)
class KeyRing:
    """A subsystem's keys: the newest generation signs; every kept generation decrypts."""

    subsystem: SubsystemId
    generations: list[Generation] = field(default_factory=list)

    @property
    def current(self) -> Generation:
        if not self.generations:
            raise KeyStoreError(f"no keys for {self.subsystem}")
        return self.generations[-1]

    def decryption_keys(self) -> dict[str, x25519.X25519PrivateKey]:
        """Private X25519 keys by the fingerprint of their certificate (the envelope's kid)."""
        return {
            fingerprint(gen.encryption_cert): gen.encryption_key
            for gen in self.generations
            if gen.encryption_cert is not None
        }

    def signer(self) -> tuple[ed25519.Ed25519PrivateKey, x509.Certificate]:
        """The newest certified signing key (a new generation signs once it is certified)."""
        for gen in reversed(self.generations):
            if gen.signing_cert is not None:
                return gen.signing_key, gen.signing_cert
        raise KeyStoreError(
            f"no signing key of {self.subsystem} has a certificate yet; have the operator run "
            "'tabadul ca issue'"
        )


class KeyStore:
    """A subsystem's key folder (see the module docstring for the layout)."""

    def __init__(self, root: Path, passphrase: bytes) -> None:
        self.root = root
        self._passphrase = passphrase

    def generate(self, subsystem: SubsystemId, *, overlap: timedelta | None = None) -> int:
        """Create a new generation of keys; with keys already present, this is a rotation.
        The older generations keep signing until the new one is certified, and retire
        ``overlap`` (default 7 days; see :func:`_check_overlap`) after that."""
        kept_for = _check_overlap(DEFAULT_OVERLAP if overlap is None else overlap)
        manifest = self._manifest_or_new(subsystem)
        now = utcnow()
        manifest["overlap_s"] = kept_for.total_seconds()
        n = max((g["n"] for g in manifest["generations"]), default=0) + 1
        folder = self.root / f"gen-{n}"
        signing = ed25519.Ed25519PrivateKey.generate()
        encryption = x25519.X25519PrivateKey.generate()
        write_private_key(folder / "signing.key", signing, self._passphrase)
        write_private_key(folder / "encryption.key", encryption, self._passphrase)
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        for name, key in (("signing", signing), ("encryption", encryption)):
            pem = key.public_key().public_bytes(serialization.Encoding.PEM, pub)
            _write_text(folder / f"{name}.pub.pem", pem.decode("ascii"))
        manifest["generations"].append({"n": n, "created": format_time(now), "retire_after": None})
        self._save(manifest)
        return n

    def import_generation(self, subsystem: SubsystemId, generation: Generation) -> int:
        """Store an existing generation (keys and certificates) as the newest one, e.g. keys
        made elsewhere; returns its number here."""
        manifest = self._manifest_or_new(subsystem)
        n = max((g["n"] for g in manifest["generations"]), default=0) + 1
        folder = self.root / f"gen-{n}"
        write_private_key(folder / "signing.key", generation.signing_key, self._passphrase)
        write_private_key(folder / "encryption.key", generation.encryption_key, self._passphrase)
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        keys = (("signing", generation.signing_key), ("encryption", generation.encryption_key))
        for name, key in keys:
            pem = key.public_key().public_bytes(serialization.Encoding.PEM, pub)
            _write_text(folder / f"{name}.pub.pem", pem.decode("ascii"))
        retire = generation.retire_after
        manifest["generations"].append(
            {
                "n": n,
                "created": format_time(generation.created),
                "retire_after": format_time(retire) if retire else None,
            }
        )
        self._save(manifest)
        if generation.signing_cert is not None and generation.encryption_cert is not None:
            folder.joinpath("signing.pem").write_text(cert_to_pem(generation.signing_cert))
            folder.joinpath("encryption.pem").write_text(cert_to_pem(generation.encryption_cert))
        return n

    def public_keys(self, n: int | None = None) -> tuple[SubsystemId, int, PublicKey, PublicKey]:
        """(subsystem, generation, signing public key, encryption public key) for the CA."""
        manifest = self._manifest()
        gen = n or manifest["generations"][-1]["n"]
        folder = self.root / f"gen-{gen}"
        keys: list[PublicKey] = []
        for name in ("signing", "encryption"):
            try:
                key = serialization.load_pem_public_key((folder / f"{name}.pub.pem").read_bytes())
            except (OSError, ValueError) as exc:
                raise KeyStoreError(f"cannot read {name}.pub.pem of generation {gen}") from exc
            if not isinstance(key, ed25519.Ed25519PublicKey | x25519.X25519PublicKey):
                raise KeyStoreError(f"{name}.pub.pem has an unexpected key type")
            keys.append(key)
        return SubsystemId.parse(manifest["subsystem"]), gen, keys[0], keys[1]

    def store_certificates(
        self, n: int, signing_cert: x509.Certificate, encryption_cert: x509.Certificate
    ) -> None:
        """Store generation ``n``'s certificates; the older generations start their overlap."""
        folder = self.root / f"gen-{n}"
        _write_text(folder / "signing.pem", cert_to_pem(signing_cert))
        _write_text(folder / "encryption.pem", cert_to_pem(encryption_cert))
        manifest = self._manifest()
        retire = format_time(utcnow() + timedelta(seconds=manifest.get("overlap_s", 604800)))
        for gen in manifest["generations"]:
            if gen["n"] < n and gen["retire_after"] is None:
                gen["retire_after"] = retire
        self._save(manifest)

    def load(self) -> KeyRing:
        """Decrypt and load every generation that is not yet retired."""
        manifest = self._manifest()
        ring = KeyRing(SubsystemId.parse(manifest["subsystem"]))
        now = utcnow()
        for entry in manifest["generations"]:
            retire = entry["retire_after"]
            retire_at = parse_time(retire, "retire_after") if retire else None
            if retire_at is not None and retire_at < now:
                continue
            folder = self.root / f"gen-{entry['n']}"
            signing = read_private_key(folder / "signing.key", self._passphrase)
            encryption = read_private_key(folder / "encryption.key", self._passphrase)
            assert isinstance(signing, ed25519.Ed25519PrivateKey)
            assert isinstance(encryption, x25519.X25519PrivateKey)
            ring.generations.append(
                Generation(
                    n=entry["n"],
                    signing_key=signing,
                    encryption_key=encryption,
                    created=parse_time(entry["created"], "created"),
                    retire_after=retire_at,
                    signing_cert=_optional_cert(folder / "signing.pem"),
                    encryption_cert=_optional_cert(folder / "encryption.pem"),
                )
            )
        return ring

    def _manifest(self) -> dict[str, Any]:
        return _read_json(self.root / "keys.json")

    def _manifest_or_new(self, subsystem: SubsystemId) -> dict[str, Any]:
        if not (self.root / "keys.json").exists():
            return {"subsystem": str(subsystem), "generations": []}
        manifest = self._manifest()
        if manifest["subsystem"] != str(subsystem):
            raise KeyStoreError(f"{self.root} holds the keys of {manifest['subsystem']}")
        return manifest

    def _save(self, manifest: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_text(self.root / "keys.json", json.dumps(manifest, indent=2))


def _optional_cert(path: Path) -> x509.Certificate | None:
    return cert_from_pem(path.read_bytes()) if path.exists() else None


def issue_for(ca: CAStore, keys: KeyStore, *, days: int = 365) -> tuple[x509.Certificate, ...]:
    """Issue both certificates of the newest generation in ``keys`` and store them there."""
    subsystem, n, signing_pub, encryption_pub = keys.public_keys()
    signing_cert = ca.issue(subsystem, signing_pub, days=days)
    encryption_cert = ca.issue(subsystem, encryption_pub, days=days)
    keys.store_certificates(n, signing_cert, encryption_cert)
    return signing_cert, encryption_cert
