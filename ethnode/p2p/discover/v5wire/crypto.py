"""discv5 crypto: the per-packet primitives on a compiled backend, the handshake's key schedule.

Per packet (every message in and out) the work is header masking and AES-GCM; per
handshake an ECDH, an HKDF and an ID signature. The per-packet primitives and the ECDH
come from ``rust/src/discv5.rs`` when it is built, else from its pure twin
(``_crypto_pure``, same bytes); ``ethnode.backends()`` reports which as ``discv5``.
HKDF-SHA256 and the signature run once per handshake and stay in Python.
"""

from __future__ import annotations

import hashlib
import hmac
from types import ModuleType

from ethnode._native import RUST_MODULE, select
from ethnode._native import implementation as _implementation
from ethnode.crypto.keys import PrivateKey, PublicKey

_PURE = "ethnode.p2p.discover.v5wire._crypto_pure"
_impl = select("discv5", RUST_MODULE, _PURE)

mask = _impl.v5_mask
unmask_header = _impl.v5_unmask_header
encrypt_gcm = _impl.v5_encrypt
decrypt_gcm = _impl.v5_decrypt
ecdh = _impl.v5_ecdh

KEY_AGREEMENT_INFO = b"discovery v5 key agreement"
ID_PROOF_PREFIX = b"discovery v5 identity proof"
AES_KEY_SIZE = 16


def implementation(kind: str) -> ModuleType:
    """The ``"compiled"`` or ``"pure"`` primitives module (tests, benchmarks)."""
    return _implementation(kind, RUST_MODULE, _PURE)


def _hkdf_sha256(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.digest(salt, secret, "sha256")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes((counter,)), "sha256")
        out += block
        counter += 1
    return out[:length]


def derive_keys(shared: bytes, initiator_id: bytes, recipient_id: bytes, challenge: bytes) -> tuple[bytes, bytes]:
    """(initiator-key, recipient-key) from the ECDH secret; the challenge data is the salt.

    The initiator writes with the first and reads with the second; the recipient flips them.
    """
    info = KEY_AGREEMENT_INFO + initiator_id + recipient_id
    okm = _hkdf_sha256(shared, challenge, info, 2 * AES_KEY_SIZE)
    return okm[:AES_KEY_SIZE], okm[AES_KEY_SIZE:]


def id_nonce_hash(challenge: bytes, eph_pubkey: bytes, dest_id: bytes) -> bytes:
    return hashlib.sha256(ID_PROOF_PREFIX + challenge + eph_pubkey + dest_id).digest()


def make_id_signature(key: PrivateKey, challenge: bytes, eph_pubkey: bytes, dest_id: bytes) -> bytes:
    """64-byte r || s over the identity-proof hash: proves the handshake comes from ``key``."""
    return key.sign(id_nonce_hash(challenge, eph_pubkey, dest_id))[:64]


def verify_id_signature(pubkey: PublicKey, sig: bytes, challenge: bytes, eph_pubkey: bytes, dest_id: bytes) -> bool:
    if len(sig) != 64:
        return False
    return pubkey.verify(id_nonce_hash(challenge, eph_pubkey, dest_id), sig)


__all__ = [
    "mask", "unmask_header", "encrypt_gcm", "decrypt_gcm", "ecdh", "derive_keys", "make_id_signature",
    "verify_id_signature", "id_nonce_hash", "implementation",
]
