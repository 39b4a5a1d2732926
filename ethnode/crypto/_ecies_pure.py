"""Pure-Python twin of ``rust/src/ecies.rs``: devp2p's ECIES on raw key bytes.

Same functions, bytes and errors. The curve work is ``ethnode.crypto.keys`` (coincurve's
libsecp256k1), then the concat KDF (SHA-256), AES-128-CTR and HMAC-SHA256 that geth's
ECIES_AES128_SHA256 runs. Randomness (ephemeral secret, IV) is passed in, so both twins
are deterministic functions of their arguments and can be compared byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ethnode.crypto.errors import ECIESDecryptError, InvalidKeyError
from ethnode.crypto.keys import NODE_ID_LENGTH, PrivateKey, PublicKey

KEY_LENGTH = 16  # AES-128 key and pre-hash MAC key halves, geth ECIES_AES128_SHA256
IV_LENGTH = 16  # AES block size
TAG_LENGTH = 32  # HMAC-SHA256
PUBKEY_LENGTH = 1 + NODE_ID_LENGTH  # 0x04 || x || y
OVERHEAD = PUBKEY_LENGTH + IV_LENGTH + TAG_LENGTH  # 113 bytes, geth rlpx eciesOverhead

_UNCOMPRESSED_PREFIX = b"\x04"
_KDF_COUNTER_1 = (1).to_bytes(4, "big")


def _derive_keys(shared_x: bytes) -> tuple[bytes, bytes]:
    """(AES key, HMAC key): one concat-KDF block H(00000001 || x), the MAC half hashed again."""
    material = hashlib.sha256(_KDF_COUNTER_1 + shared_x).digest()
    return material[:KEY_LENGTH], hashlib.sha256(material[KEY_LENGTH:]).digest()


def _aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    # CTR is symmetric; cryptography's CTR increments the whole 128-bit block like Go's.
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update(data)


def ecies_encrypt(
    remote_node_id: bytes, plaintext: bytes, shared_mac_data: bytes, ephemeral_secret: bytes, iv: bytes
) -> bytes:
    """0x04 || ephemeral pubkey || iv || AES-128-CTR(plaintext) || HMAC-SHA256(iv || ct || shared_mac_data)."""
    remote = PublicKey(remote_node_id)
    ephemeral = PrivateKey(ephemeral_secret)
    iv = bytes(iv)
    if len(iv) != IV_LENGTH:
        raise ValueError(f"iv must be {IV_LENGTH} bytes")
    enc_key, mac_key = _derive_keys(ephemeral.ecdh(remote))
    body = iv + _aes_ctr(enc_key, iv, bytes(plaintext))
    tag = hmac.digest(mac_key, body + bytes(shared_mac_data), "sha256")
    return b"".join((_UNCOMPRESSED_PREFIX, ephemeral.node_id, body, tag))


def ecies_decrypt(secret: bytes, message: bytes, shared_mac_data: bytes) -> bytes:
    """Open a message sealed to ``secret``; the tag is checked (constant time) before decrypting."""
    key = PrivateKey(secret)
    message = bytes(message)
    if len(message) < OVERHEAD:
        raise ECIESDecryptError(f"ECIES message too short ({len(message)} < {OVERHEAD} bytes)")
    if message[0] != _UNCOMPRESSED_PREFIX[0]:
        raise ECIESDecryptError("ECIES message does not start with an uncompressed public key")
    try:
        ephemeral = PublicKey(message[1:PUBKEY_LENGTH])
    except InvalidKeyError as exc:
        raise ECIESDecryptError("ECIES ephemeral public key is invalid") from exc
    enc_key, mac_key = _derive_keys(key.ecdh(ephemeral))
    body = message[PUBKEY_LENGTH:-TAG_LENGTH]
    expected = hmac.digest(mac_key, body + bytes(shared_mac_data), "sha256")
    if not hmac.compare_digest(expected, message[-TAG_LENGTH:]):
        raise ECIESDecryptError("ECIES message authentication failed (bad MAC or wrong key)")
    return _aes_ctr(enc_key, body[:IV_LENGTH], body[IV_LENGTH:])
