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
import hmac
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ethnode.crypto.errors import ECIESDecryptError, InvalidKeyError
from ethnode.crypto.keys import NODE_ID_LENGTH, PrivateKey, PublicKey

KEY_LENGTH = 16  # AES-128 key and pre-hash MAC key halves, geth ECIES_AES128_SHA256
IV_LENGTH = 16  # AES block size
TAG_LENGTH = 32  # HMAC-SHA256
PUBKEY_LENGTH = 1 + NODE_ID_LENGTH  # 0x04 || x || y
OVERHEAD = PUBKEY_LENGTH + IV_LENGTH + TAG_LENGTH  # 113 bytes, geth rlpx eciesOverhead

_UNCOMPRESSED = 0x04


def concat_kdf(secret: bytes, length: int, shared_info: bytes = b"") -> bytes:
    """NIST SP 800-56 concatenation KDF over SHA-256: H(counter_be32 || secret || info)..."""
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += hashlib.sha256(counter.to_bytes(4, "big") + secret + shared_info).digest()
        counter += 1
    return bytes(out[:length])


def _derive_keys(shared_x: bytes) -> tuple[bytes, bytes]:
    material = concat_kdf(shared_x, 2 * KEY_LENGTH)
    return material[:KEY_LENGTH], hashlib.sha256(material[KEY_LENGTH:]).digest()


def _aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    # CTR is symmetric; cryptography's CTR increments the whole 128-bit block like Go's.
    ctx = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return ctx.update(data) + ctx.finalize()


def _tag(mac_key: bytes, iv_and_ciphertext: bytes, shared_mac_data: bytes) -> bytes:
    return hmac.new(mac_key, iv_and_ciphertext + shared_mac_data, hashlib.sha256).digest()


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
    iv = os.urandom(IV_LENGTH) if iv is None else bytes(iv)
    if len(iv) != IV_LENGTH:
        raise ValueError(f"iv must be {IV_LENGTH} bytes")
    enc_key, mac_key = _derive_keys(ephemeral.ecdh(remote))
    body = iv + _aes_ctr(enc_key, iv, bytes(plaintext))
    return bytes([_UNCOMPRESSED]) + ephemeral.node_id + body + _tag(mac_key, body, bytes(shared_mac_data))


def decrypt(key: PrivateKey, message: bytes, shared_mac_data: bytes = b"") -> bytes:
    """Open an ECIES ``message`` sent to ``key``; any failure is an ``ECIESDecryptError``.

    The tag is checked (in constant time) before decrypting anything, as geth does.
    """
    message = bytes(message)
    if len(message) < OVERHEAD:
        raise ECIESDecryptError(f"ECIES message too short ({len(message)} < {OVERHEAD} bytes)")
    if message[0] != _UNCOMPRESSED:
        raise ECIESDecryptError("ECIES message does not start with an uncompressed public key")
    try:
        ephemeral = PublicKey(message[1:PUBKEY_LENGTH])
    except InvalidKeyError as exc:
        raise ECIESDecryptError("ECIES ephemeral public key is invalid") from exc
    enc_key, mac_key = _derive_keys(key.ecdh(ephemeral))
    body = message[PUBKEY_LENGTH:-TAG_LENGTH]
    if not hmac.compare_digest(_tag(mac_key, body, bytes(shared_mac_data)), message[-TAG_LENGTH:]):
        raise ECIESDecryptError("ECIES message authentication failed (bad MAC or wrong key)")
    return _aes_ctr(enc_key, body[:IV_LENGTH], body[IV_LENGTH:])


__all__ = ["encrypt", "decrypt", "concat_kdf", "OVERHEAD"]
