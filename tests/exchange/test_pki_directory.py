import json
import stat
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchange import (
    CAStore,
    CertificateAuthority,
    CertificateError,
    DirectoryError,
    DirectoryExpiredError,
    DirectoryRollbackError,
    DirectorySignatureError,
    KeyStore,
    KeyStoreError,
    SubsystemId,
    inspect_certificate,
    issue_for,
    load_directory,
    read_private_key,
    utcnow,
)
from exchange.sandbox import Sandbox

PASS = b"correct horse battery staple"
CUSTOMS = SubsystemId.parse("MA/GOV/MEF/CUSTOMS")


def test_ca_folder_keys_are_encrypted_and_private(tmp_path):
    """`ca init` writes the root key encrypted, mode 0600, and refuses to overwrite it."""
    CAStore.init(tmp_path / "ca", "MA", PASS)
    key_file = tmp_path / "ca" / "ca.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        read_private_key(key_file, b"not the passphrase")
    with pytest.raises(KeyStoreError, match="already exists"):
        CAStore.init(tmp_path / "ca", "MA", PASS)


def test_issue_certifies_both_keys_of_a_subsystem(tmp_path):
    """The CA certifies the Ed25519 signing and X25519 encryption keys with the identity as
    subject; the subsystem's key store gets the certificates."""
    ca = CAStore.init(tmp_path / "ca", "MA", PASS)
    keys = KeyStore(tmp_path / "customs", b"agency secret")
    keys.generate(CUSTOMS)
    signing, encryption = issue_for(CAStore.open(tmp_path / "ca", PASS), keys)
    sig_info = inspect_certificate(signing, ca.ca.certificate)
    enc_info = inspect_certificate(encryption, ca.ca.certificate)
    assert (sig_info.subsystem, sig_info.usage) == (CUSTOMS, "signing")
    assert (enc_info.subsystem, enc_info.usage) == (CUSTOMS, "encryption")
    ring = keys.load()
    assert ring.signer()[1] == signing
    assert list(ring.decryption_keys()) == [enc_info.fingerprint]
    for name in ("signing.key", "encryption.key"):
        path = tmp_path / "customs" / "gen-1" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ca_refuses_foreign_instance_and_records_revocation(tmp_path):
    """A CA issues only for its instance; a revocation is recorded once, with its reason."""
    ca = CAStore.init(tmp_path / "ca", "MA", PASS)
    keys = KeyStore(tmp_path / "k", b"x")
    keys.generate(SubsystemId.parse("TN/GOV/MF/TAX"))
    with pytest.raises(CertificateError, match="instance 'TN'"):
        issue_for(ca, keys)
    keys2 = KeyStore(tmp_path / "k2", b"x")
    keys2.generate(CUSTOMS)
    signing, _ = issue_for(ca, keys2)
    revoked = ca.revoke(f"{signing.serial_number:x}", "key compromised")
    assert revoked.reason == "key compromised"
    assert CAStore.open(tmp_path / "ca", PASS).revoked_serials() == [signing.serial_number]
    with pytest.raises(CertificateError, match="already revoked"):
        ca.revoke(revoked.fingerprint, "again")
    with pytest.raises(CertificateError, match="no certificate"):
        ca.revoke("abcdef", "unknown")


def test_certificate_from_another_ca_is_refused():
    """A certificate signed by another CA does not inspect as ours."""
    ours = CertificateAuthority.create("MA")
    theirs = CertificateAuthority.create("MA")
    cert = theirs.issue(CUSTOMS, ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CertificateError, match="not issued by this CA"):
        inspect_certificate(cert, ours.certificate)


def test_rotation_keeps_old_generation_until_overlap_ends(tmp_path):
    """After a rotation the new keys sign, both generations decrypt, and the old one is
    marked to retire after the overlap."""
    ca = CAStore.init(tmp_path / "ca", "MA", PASS)
    keys = KeyStore(tmp_path / "customs", b"s")
    keys.generate(CUSTOMS)
    issue_for(ca, keys)
    keys.generate(CUSTOMS, overlap=timedelta(hours=2))
    new_signing, _ = issue_for(ca, keys)
    ring = keys.load()
    assert [g.n for g in ring.generations] == [1, 2]
    assert ring.signer()[1] == new_signing
    assert len(ring.decryption_keys()) == 2
    retire = ring.generations[0].retire_after
    assert retire is not None
    assert timedelta(hours=1, minutes=59) < retire - utcnow() <= timedelta(hours=2)


def test_directory_round_trip(bus):
    """A signed directory loads with its certificates, grants and classifications."""
    directory = bus.sandbox.directory()
    assert len(directory.certificates) == 8
    assert directory.classification_of("treasury.suspicious-transaction-alert") == "RESTRICTED"
    assert directory.subscribers("customs.declaration-lodged") == [bus.tax.subsystem]
    assert bus.civil.subsystem in directory.subsystems()


def test_directory_tampered_body_fails_signature(bus):
    """Changing anything in the signed body (here: adding a grant) breaks the signature."""
    doc = json.loads(bus.sandbox.sign())
    doc["directory"]["grants"].append(
        {"sender": "MA/GOV/MEF/CUSTOMS", "type": "x.y", "recipient": "MA/GOV/MOI/CIVIL"}
    )
    with pytest.raises(DirectorySignatureError, match="does not verify"):
        load_directory(json.dumps(doc).encode(), bus.sandbox.ca.certificate)


def test_directory_signed_by_another_ca_is_refused(bus):
    """A directory is trusted only under the CA the connector holds."""
    with pytest.raises(DirectorySignatureError):
        load_directory(bus.sandbox.sign(), CertificateAuthority.create("MA").certificate)


def test_directory_expired_and_rollback_refused(bus):
    """An expired snapshot and one older than the held serial are refused."""
    now = utcnow()
    old = bus.sandbox.sign(now=now, expires_in=timedelta(minutes=1))
    with pytest.raises(DirectoryExpiredError, match="expired"):
        load_directory(old, bus.sandbox.ca.certificate, now=now + timedelta(minutes=2))
    newer = load_directory(bus.sandbox.sign(), bus.sandbox.ca.certificate)
    with pytest.raises(DirectoryRollbackError, match="older"):
        load_directory(old, bus.sandbox.ca.certificate, held_serial=newer.serial)
    same = load_directory(old, bus.sandbox.ca.certificate, held_serial=newer.serial - 1)
    assert same.serial == newer.serial - 1


def test_directory_garbage_is_a_clear_error(bus):
    """Bytes that are not a directory document give a DirectoryError, not a traceback."""
    for data in (b"", b"[]", b'{"directory": {}, "signature": "!!"}'):
        with pytest.raises(DirectoryError):
            load_directory(data, bus.sandbox.ca.certificate)


def test_keys_made_elsewhere_can_be_imported(tmp_path):
    """A generation (keys and certificates) imported into a key folder loads back the same,
    with private keys encrypted and private."""
    sandbox = Sandbox()
    party = sandbox.add("MA/GOV/MEF/TAX")
    store = sandbox.export_keys(party, tmp_path / "tax", b"secret")
    ring = store.load()
    assert ring.signer()[1] == party.keys.signer()[1]
    assert ring.decryption_keys().keys() == party.keys.decryption_keys().keys()
    key_file = tmp_path / "tax" / "gen-1" / "signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeyStore(tmp_path / "tax", b"wrong").load()


def test_a_signing_certificate_verifies_what_its_key_signed_and_nothing_else(tmp_path):
    """The certificate's verifier (libsodium) accepts the key's signature (made with
    cryptography) and refuses a changed byte, a changed message, a truncated or padded
    signature; an encryption certificate verifies nothing."""
    ca = CAStore.init(tmp_path / "ca", "MA", PASS)
    keys = KeyStore(tmp_path / "customs", b"agency secret")
    keys.generate(CUSTOMS)
    signing, encryption = issue_for(CAStore.open(tmp_path / "ca", PASS), keys)
    info = inspect_certificate(signing, ca.ca.certificate)
    private = keys.load().signer()[0]
    data = b"tabadul/1 envelope\n" + bytes(range(256))
    signature = private.sign(data)
    assert info.verifies(signature, data)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    for bad_signature, bad_data in [
        (flipped, data),
        (signature, data + b"x"),
        (signature[:-1], data),
        (signature + b"\0", data),
        (b"", data),
    ]:
        assert not info.verifies(bad_signature, bad_data)
    assert not inspect_certificate(encryption, ca.ca.certificate).verifies(signature, data)
