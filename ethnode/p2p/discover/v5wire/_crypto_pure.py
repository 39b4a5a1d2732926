"""Pure-Python twin of ``rust/src/discv5.rs``: discv5's per-packet crypto on raw bytes.

Same functions, bytes and results: header masking (AES-128-CTR keyed by the destination
id), AES-128-GCM sealing and opening (``cryptography``), and the handshake's ECDH
(libsecp256k1 through coincurve). Failures a peer can cause return None, never raise.
"""

from __future__ import annotations

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ethnode.crypto.keys import PrivateKey

KEY_LENGTH = 16
IV_LENGTH = 16  # masking IV
NONCE_LENGTH = 12  # GCM nonce
STATIC_HEADER_LENGTH = 23  # protocol-id, version, flag, nonce, authdata-size
STATIC_PACKET_LENGTH = IV_LENGTH + STATIC_HEADER_LENGTH
COMPRESSED_LENGTH = 33

_CTX = GLOBAL_CONTEXT.ctx  # coincurve's shared, randomized context, as ethnode.crypto.keys uses


def _key16(key: bytes, what: str) -> bytes:
    if len(key) < KEY_LENGTH:
        raise ValueError(f"{what} must be at least {KEY_LENGTH} bytes")
    return bytes(key[:KEY_LENGTH])


def _ctr(key: bytes, iv: bytes):  # type: ignore[no-untyped-def]
    return Cipher(algorithms.AES(key), modes.CTR(bytes(iv))).encryptor()


def v5_mask(dest_id: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CTR keyed by the first 16 bytes of ``dest_id``: masks (and unmasks) a header."""
    key = _key16(dest_id, "dest_id")
    if len(iv) != IV_LENGTH:
        raise ValueError(f"iv must be {IV_LENGTH} bytes")
    return _ctr(key, iv).update(bytes(data))


def v5_unmask_header(local_id: bytes, packet: bytes) -> bytes | None:
    """IV || static header || authdata of a received packet, unmasked.

    None when the packet cannot hold a static header; only IV || static header when the
    declared authdata size runs past the end (the caller reports that).
    """
    key = _key16(local_id, "local_id")
    if len(packet) < STATIC_PACKET_LENGTH:
        return None
    packet = bytes(packet)
    stream = _ctr(key, packet[:IV_LENGTH])
    head = stream.update(packet[IV_LENGTH:STATIC_PACKET_LENGTH])
    auth_size = int.from_bytes(head[21:23], "big")
    end = STATIC_PACKET_LENGTH + auth_size
    if end > len(packet):
        return packet[:IV_LENGTH] + head
    return packet[:IV_LENGTH] + head + stream.update(packet[STATIC_PACKET_LENGTH:end])


def _check_gcm(key: bytes, nonce: bytes) -> None:
    if len(key) != KEY_LENGTH:
        raise ValueError(f"key must be {KEY_LENGTH} bytes")
    if len(nonce) != NONCE_LENGTH:
        raise ValueError(f"nonce must be {NONCE_LENGTH} bytes")


def v5_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-128-GCM seal: ciphertext || 16-byte tag, ``aad`` authenticated (the unmasked header)."""
    _check_gcm(key, nonce)
    return AESGCM(bytes(key)).encrypt(bytes(nonce), bytes(plaintext), bytes(aad))


def v5_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
    """AES-128-GCM open; None when the tag does not verify (wrong key, tampered packet)."""
    _check_gcm(key, nonce)
    if len(ciphertext) < 16:
        return None
    try:
        return AESGCM(bytes(key)).decrypt(bytes(nonce), bytes(ciphertext), bytes(aad))
    except InvalidTag:
        return None


def v5_ecdh(secret: bytes, pubkey: bytes) -> bytes | None:
    """The discv5 ECDH secret: the compressed point ``secret * pubkey`` (33 bytes).

    ``pubkey`` is any SEC1 encoding; None when it is not a point on the curve.
    """
    checked = PrivateKey(secret).secret  # InvalidKeyError for a bad secret, as the Rust twin
    pubkey = bytes(pubkey)
    point = ffi.new("secp256k1_pubkey *")
    if not pubkey or not lib.secp256k1_ec_pubkey_parse(_CTX, point, pubkey, len(pubkey)):
        return None
    if not lib.secp256k1_ec_pubkey_tweak_mul(_CTX, point, checked):  # pragma: no cover - checked secret
        return None
    out = ffi.new(f"unsigned char[{COMPRESSED_LENGTH}]")
    out_len = ffi.new("size_t *", COMPRESSED_LENGTH)
    lib.secp256k1_ec_pubkey_serialize(_CTX, out, out_len, point, lib.SECP256K1_EC_COMPRESSED)
    return bytes(ffi.buffer(out, COMPRESSED_LENGTH))
