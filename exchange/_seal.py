"""End-to-end payload encryption: X25519 + HKDF-SHA256 + AES-256-GCM.

The sender makes an ephemeral X25519 key, agrees a secret with the recipient's certified
encryption key, and derives a one-time AES-256 key and nonce with HKDF-SHA256
(salt = ephemeral public key || recipient public key, info = ``tabadul/1 payload``). The
envelope header (without its payload digest, which depends on the ciphertext) is the AEAD's
associated data, so a ciphertext cannot be moved under another header. The structure is that
of HPKE's base mode (RFC 9180) with a fixed suite; protocol.md gives the exact bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from exchange._errors import Undecryptable

ALGORITHM = "X25519-HKDF-SHA256-A256GCM"
_INFO = b"tabadul/1 payload"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def _derive(shared: bytes, epk: bytes, recipient: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=epk + recipient, info=_INFO).derive(
        shared
    )
    return okm[:32], okm[32:]


def encryption_info(kid: str) -> tuple[x25519.X25519PrivateKey, dict[str, str]]:
    """A fresh ephemeral key and the header's ``encryption`` object for recipient key ``kid``."""
    ephemeral = x25519.X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes(*_RAW)
    return ephemeral, {"alg": ALGORITHM, "kid": kid, "epk": base64.b64encode(epk).decode()}


def seal(
    plaintext: bytes,
    ephemeral: x25519.X25519PrivateKey,
    recipient: x25519.X25519PublicKey,
    aad: bytes,
) -> bytes:
    """Encrypt ``plaintext`` to ``recipient``; ``aad`` is authenticated, not encrypted."""
    epk = ephemeral.public_key().public_bytes(*_RAW)
    key, nonce = _derive(ephemeral.exchange(recipient), epk, recipient.public_bytes(*_RAW))
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(
    ciphertext: bytes,
    info: Mapping[str, object],
    keys: Mapping[str, x25519.X25519PrivateKey],
    aad: bytes,
) -> bytes:
    """Decrypt with the private key named by ``info['kid']``.

    Raises :class:`Undecryptable` for an unknown algorithm, a key this subsystem does not hold,
    or a ciphertext or header that was changed.
    """
    if info.get("alg") != ALGORITHM:
        raise Undecryptable(f"unsupported encryption algorithm {info.get('alg')!r}")
    kid = info.get("kid")
    private = keys.get(kid) if isinstance(kid, str) else None
    if private is None:
        raise Undecryptable(f"payload is encrypted to key {kid!r}, which this subsystem lacks")
    try:
        epk = base64.b64decode(str(info.get("epk")), validate=True)
        peer = x25519.X25519PublicKey.from_public_bytes(epk)
        shared = private.exchange(peer)
    except (ValueError, binascii.Error) as exc:
        raise Undecryptable("the ephemeral key in the header is not a valid X25519 key") from exc
    recipient = private.public_key().public_bytes(*_RAW)
    key, nonce = _derive(shared, epk, recipient)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise Undecryptable("decryption failed: ciphertext or header was altered") from exc
