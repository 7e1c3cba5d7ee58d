"""A whole bus in memory: a CA, subsystems with keys and certificates, and a signed directory.

Used by the demo, the benchmarks and the tests to set up parties quickly. Production setups go
through the CA folder, the key stores and the registry instead; the objects are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from exchange import (
    UNSPECIFIED_PURPOSE,
    CertificateAuthority,
    Directory,
    DirectoryDraft,
    Generation,
    KeyRing,
    KeyStore,
    LegalBasis,
    Recipient,
    SchemaRef,
    SendGrant,
    Service,
    Signer,
    SubscribeGrant,
    SubsystemId,
    fingerprint,
    load_directory,
    sign_directory,
    utcnow,
)


@dataclass(slots=True)
class Party:
    """One subsystem of the sandbox with its keys."""

    subsystem: SubsystemId
    keys: KeyRing

    @property
    def signer(self) -> Signer:
        key, cert = self.keys.signer()
        return Signer(self.subsystem, key, cert)


class Sandbox:
    """Build a bus: ``add`` subsystems, declare services and grants, then sign a directory."""

    def __init__(self, instance: str = "MA", ca: CertificateAuthority | None = None) -> None:
        self.instance = instance
        self.ca = ca or CertificateAuthority.create(instance)
        self.parties: dict[SubsystemId, Party] = {}
        self.draft = DirectoryDraft(instance, 1)

    def add(self, name: str, *, days: int = 365, now: datetime | None = None) -> Party:
        subsystem = SubsystemId.parse(name)
        party = Party(subsystem, KeyRing(subsystem))
        self.parties[subsystem] = party
        self.draft.members.setdefault(str(subsystem.member_id), subsystem.member)
        self.rotate(party, days=days, now=now)
        return party

    def rotate(
        self,
        party: Party,
        *,
        overlap: timedelta = timedelta(days=7),
        days: int = 365,
        now: datetime | None = None,
    ) -> Generation:
        """Give ``party`` a new generation of keys; older certificates retire after
        ``overlap``."""
        moment = now or utcnow()
        retire = moment + overlap
        retiring = set()
        for old in party.keys.generations:
            if old.retire_after is None:
                old.retire_after = retire
                retiring |= {old.signing_cert, old.encryption_cert}
        self.draft.certificates = [
            (cert, retire if cert in retiring else retire_at)
            for cert, retire_at in self.draft.certificates
        ]
        signing = ed25519.Ed25519PrivateKey.generate()
        encryption = x25519.X25519PrivateKey.generate()
        signing_cert = self.ca.issue(party.subsystem, signing.public_key(), days=days, now=now)
        encryption_cert = self.ca.issue(
            party.subsystem, encryption.public_key(), days=days, now=now
        )
        gen = Generation(
            n=len(party.keys.generations) + 1,
            signing_key=signing,
            encryption_key=encryption,
            created=moment,
            signing_cert=signing_cert,
            encryption_cert=encryption_cert,
        )
        party.keys.generations.append(gen)
        self.draft.certificates += [(signing_cert, None), (encryption_cert, None)]
        return gen

    def export_keys(self, party: Party, folder: Path, passphrase: bytes) -> KeyStore:
        """Write ``party``'s key generations to a key folder a connector can load."""
        store = KeyStore(folder, passphrase)
        for generation in party.keys.generations:
            store.import_generation(party.subsystem, generation)
        return store

    def revoke(self, party: Party) -> None:
        """Revoke the current signing certificate of ``party``."""
        cert = party.keys.current.signing_cert
        assert cert is not None
        self.draft.revoked_serials.append(cert.serial_number)

    def classify(
        self,
        message_type: str,
        classification: str,
        version: str = "1.0.0",
        digest: str = "sha256:" + "0" * 64,
    ) -> None:
        """List a schema version in the directory (tests may leave the digest out)."""
        self.draft.schemas.append(SchemaRef(message_type, version, digest, classification))

    def provide(self, provider: Party, request_type: str, response_type: str) -> None:
        self.draft.services.append(
            Service(provider.subsystem, request_type, "provides", response_type)
        )

    def accept(self, receiver: Party, message_type: str) -> None:
        self.draft.services.append(Service(receiver.subsystem, message_type, "accepts"))

    def publish(self, publisher: Party, topic: str) -> None:
        self.draft.services.append(Service(publisher.subsystem, topic, "publishes"))

    def grant(  # noqa: PLR0913 - a grant's fields
        self,
        sender: Party,
        message_type: str,
        recipient: Party,
        *,
        purpose: str = UNSPECIFIED_PURPOSE,
        legal_basis: LegalBasis | None = None,
        expires: datetime | None = None,
    ) -> None:
        self.draft.send_grants.append(
            SendGrant(
                sender.subsystem,
                message_type,
                recipient.subsystem,
                purpose,
                legal_basis or LegalBasis(),
                expires,
            )
        )

    def subscribe(
        self,
        subscriber: Party,
        topic: str,
        *,
        purpose: str = UNSPECIFIED_PURPOSE,
        legal_basis: LegalBasis | None = None,
        expires: datetime | None = None,
    ) -> None:
        self.draft.subscribe_grants.append(
            SubscribeGrant(
                subscriber.subsystem, topic, purpose, legal_basis or LegalBasis(), expires
            )
        )

    def sign(
        self, *, expires_in: timedelta = timedelta(days=1), now: datetime | None = None
    ) -> bytes:
        """The signed directory bytes; each call gets the next serial."""
        data = sign_directory(
            self.draft, self.ca, issued=now, expires=(now or utcnow()) + expires_in
        )
        self.draft.serial += 1
        return data

    def directory(self, *, now: datetime | None = None) -> Directory:
        return load_directory(self.sign(now=now), self.ca.certificate, now=now)

    def recipient(self, party: Party) -> Recipient:
        cert = party.keys.current.encryption_cert
        assert cert is not None
        key = cert.public_key()
        assert isinstance(key, x25519.X25519PublicKey)
        return Recipient(party.subsystem, key, fingerprint(cert))
