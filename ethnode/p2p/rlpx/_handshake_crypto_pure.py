"""Pure-Python twin of ``rust/src/handshake.rs``: the curve-heavy RLPx handshake steps.

Same functions, bytes and errors, on raw key bytes; ``handshake.py`` keeps the state
machine, packet formats and RLP and calls one of these per step. Deterministic: RFC 6979
signatures, no randomness drawn here.
"""

from __future__ import annotations

from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey, PublicKey, recover_public_key

NONCE_LENGTH = 32


def _nonce(nonce: bytes) -> bytes:
    nonce = bytes(nonce)
    if len(nonce) != NONCE_LENGTH:
        raise ValueError(f"nonce must be {NONCE_LENGTH} bytes")
    return nonce


def _signed_value(static_secret: bytes, remote_node_id: bytes, nonce: bytes) -> bytes:
    """ecdh(static, remote)[:32] ^ nonce: what the initiator's ephemeral key signs."""
    shared = PrivateKey(static_secret).ecdh(PublicKey(remote_node_id))
    return (int.from_bytes(shared, "big") ^ int.from_bytes(nonce, "big")).to_bytes(NONCE_LENGTH, "big")


def rlpx_auth_signature(
    static_secret: bytes, remote_node_id: bytes, ephemeral_secret: bytes, initiator_nonce: bytes
) -> bytes:
    """The auth signature: sign(ephemeral, ecdh(static, remote static) ^ initiator nonce), r || s || v."""
    value = _signed_value(static_secret, remote_node_id, _nonce(initiator_nonce))
    return PrivateKey(ephemeral_secret).sign(value)


def rlpx_auth_recover(static_secret: bytes, remote_node_id: bytes, initiator_nonce: bytes, signature: bytes) -> bytes:
    """The initiator's ephemeral node id, recovered from the auth signature by the recipient."""
    value = _signed_value(static_secret, remote_node_id, _nonce(initiator_nonce))
    return recover_public_key(value, bytes(signature)).node_id


def rlpx_derive(
    ephemeral_secret: bytes, remote_ephemeral_id: bytes, initiator_nonce: bytes, recipient_nonce: bytes
) -> tuple[bytes, bytes]:
    """(aes-secret, mac-secret) from the ephemeral ECDH and both nonces (devp2p rlpx.md)."""
    initiator_nonce, recipient_nonce = _nonce(initiator_nonce), _nonce(recipient_nonce)
    ephemeral_shared = PrivateKey(ephemeral_secret).ecdh(PublicKey(remote_ephemeral_id))
    shared = keccak256(ephemeral_shared + keccak256(recipient_nonce + initiator_nonce))
    aes = keccak256(ephemeral_shared + shared)
    mac = keccak256(ephemeral_shared + aes)
    return aes, mac
