"""ECIES exactly as devp2p's RLPx handshake uses it (geth crypto/ecies, ECIES_AES128_SHA256).

The bytes must match geth's bit for bit, so every parameter is fixed rather than
negotiable: secp256k1, NIST SP 800-56 concatenation KDF with SHA-256 and no shared
info, AES-128-CTR with a random IV, and HMAC-SHA256 keyed with SHA-256 of the second KDF
half. The message layout is::

    0x04 || ephemeral-pubkey (64) || iv (16) || ciphertext || tag (32)

with ``tag = HMAC-SHA256(mac-key, iv || ciphertext || shared_mac_data)``. EIP-8 puts the
2-byte size prefix of a handshake packet in ``shared_mac_data`` so it is authenticated.
"""

from __future__ import annotations

import hashlib
import os
from types import ModuleType

from ethnode._native import RUST_MODULE, implementation, select
from ethnode.crypto._ecies_pure import IV_LENGTH, KEY_LENGTH, OVERHEAD, PUBKEY_LENGTH, TAG_LENGTH
from ethnode.crypto.errors import InvalidKeyError
from ethnode.crypto.keys import PrivateKey, PublicKey

# One call per message (curve work, KDF, AES, HMAC): Rust when built, else the pure twin.
_impl = select("ecies", RUST_MODULE, "ethnode.crypto._ecies_pure")


def concat_kdf(secret: bytes, length: int, shared_info: bytes = b"") -> bytes:
    """NIST SP 800-56 concatenation KDF over SHA-256: H(counter_be32 || secret || info)..."""
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += hashlib.sha256(counter.to_bytes(4, "big") + secret + shared_info).digest()
        counter += 1
    return bytes(out[:length])


def ecies_implementation(kind: str) -> ModuleType:
    """The ``"compiled"`` or ``"pure"`` module with ``ecies_encrypt``/``ecies_decrypt``, for tests."""
    return implementation(kind, RUST_MODULE, "ethnode.crypto._ecies_pure")


def encrypt(
    remote: PublicKey,
    plaintext: bytes,
    shared_mac_data: bytes = b"",
    *,
    ephemeral_key: PrivateKey | None = None,
    iv: bytes | None = None,
) -> bytes:
    """Seal ``plaintext`` for ``remote``; ``ephemeral_key`` and ``iv`` are injectable for tests only."""
    if not isinstance(remote, PublicKey):
        raise InvalidKeyError("ECIES needs a PublicKey recipient")
    ephemeral = ephemeral_key if ephemeral_key is not None else PrivateKey.generate()
    iv = os.urandom(IV_LENGTH) if iv is None else iv
    return _impl.ecies_encrypt(remote.node_id, plaintext, shared_mac_data, ephemeral.secret, iv)  # type: ignore[no-any-return]


def decrypt(key: PrivateKey, message: bytes, shared_mac_data: bytes = b"") -> bytes:
    """Open an ECIES ``message`` sent to ``key``; any failure is an ``ECIESDecryptError``.

    The tag is checked (in constant time) before decrypting anything, as geth does.
    """
    return _impl.ecies_decrypt(key.secret, message, shared_mac_data)  # type: ignore[no-any-return]


__all__ = ["encrypt", "decrypt", "concat_kdf", "ecies_implementation", "OVERHEAD", "KEY_LENGTH", "IV_LENGTH",
           "TAG_LENGTH", "PUBKEY_LENGTH"]
