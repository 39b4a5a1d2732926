"""The RLPx handshake as plain objects: bytes in, bytes and secrets out, no sockets.

The initiator sends ``auth``, the recipient answers with ``ack``; both then derive the
same frame secrets (devp2p rlpx.md, "Initial Handshake"). Packets are EIP-8: a 2-byte
big-endian size prefix, which is also the ECIES shared MAC data, then an ECIES-sealed
RLP list followed by random padding. Extra list elements and unknown versions are
ignored, which is what lets the format evolve.

The pre-EIP-8 fixed-size form (307-byte auth, 210-byte ack) is still read, and answered
in kind, the way geth did before dropping it: a packet that starts with 0x04 is first
tried as a fixed-size message, since an old packet always starts with the ECIES 0x04
key prefix and an EIP-8 one starting with 0x04 declares at least 1024 bytes.

Decryption failures surface as ``ECIESDecryptError`` (usually: the peer is not the node
we meant to dial); every other protocol violation as ``HandshakeError``. Both derive
from ``EthnodeError``.
"""

from __future__ import annotations

import os
import secrets as _random
from dataclasses import dataclass, field
from types import ModuleType

from ethnode._native import RUST_MODULE, implementation, select
from ethnode.crypto import ecies
from ethnode.crypto.errors import ECIESDecryptError, InvalidKeyError, InvalidSignatureError
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import NODE_ID_LENGTH, SIGNATURE_LENGTH, PrivateKey, PublicKey
from ethnode.errors import EthnodeError
from ethnode.rlp.errors import DecodingError
from ethnode.rlp.sedes import FixedBytes, Record, hash32, uint64

HANDSHAKE_VERSION = 4  # auth-vsn / ack-vsn, geth rlpx authMsgV4/authRespV4 Version
NONCE_LENGTH = 32
SIZE_PREFIX_LENGTH = 2
MAX_PACKET_SIZE = 2048  # declared EIP-8 size limit, geth p2p/rlpx baseProtocolMaxMsgSize = 2 * 1024
# geth sealEIP8 pads with mrand.Intn(100) + 100 bytes; at least 100 keeps an EIP-8 packet
# longer than any pre-EIP-8 one.
MIN_PADDING = 100
PADDING_SPREAD = 100

# Pre-EIP-8 plaintexts: auth = sig || keccak256(ephemeral-pubk) || pubk || nonce || token-flag,
# ack = ephemeral-pubk || nonce || token-flag.
LEGACY_AUTH_PLAINTEXT = SIGNATURE_LENGTH + 32 + NODE_ID_LENGTH + NONCE_LENGTH + 1  # 194
LEGACY_ACK_PLAINTEXT = NODE_ID_LENGTH + NONCE_LENGTH + 1  # 97
LEGACY_AUTH_SIZE = LEGACY_AUTH_PLAINTEXT + ecies.OVERHEAD  # 307, geth encAuthMsgLen
LEGACY_ACK_SIZE = LEGACY_ACK_PLAINTEXT + ecies.OVERHEAD  # 210, geth encAuthRespLen

_ECIES_PREFIX = 0x04

# The curve-heavy steps (ECDH + sign, ECDH + recover, ECDH + secrets), one call each: Rust
# when built, else the pure twin. With both sides in one process a handshake is 8 ECDH,
# 3 public keys (two ECIES ephemerals, the recipient's ephemeral), 1 sign and 1 recover.
_crypto = select("rlpx_handshake_crypto", RUST_MODULE, "ethnode.p2p.rlpx._handshake_crypto_pure")


def handshake_crypto_implementation(kind: str) -> ModuleType:
    """The ``"compiled"`` or ``"pure"`` module of handshake crypto steps, for tests and benchmarks."""
    return implementation(kind, RUST_MODULE, "ethnode.p2p.rlpx._handshake_crypto_pure")


class HandshakeError(EthnodeError):
    """The remote side broke the handshake protocol (other than by failing ECIES)."""


class AuthBody(Record):
    """EIP-8 auth plaintext: [sig, initiator-pubk, initiator-nonce, auth-vsn, ...]."""

    fields = (
        ("signature", FixedBytes(SIGNATURE_LENGTH)),
        ("pubkey", FixedBytes(NODE_ID_LENGTH)),
        ("nonce", hash32),
        ("version", uint64),
    )
    allow_extra = True


class AckBody(Record):
    """EIP-8 ack plaintext: [recipient-ephemeral-pubk, recipient-nonce, ack-vsn, ...]."""

    fields = (
        ("ephemeral_pubkey", FixedBytes(NODE_ID_LENGTH)),
        ("nonce", hash32),
        ("version", uint64),
    )
    allow_extra = True


@dataclass(frozen=True, slots=True)
class Secrets:
    """What the frame codec needs: the AES and MAC secrets and both MAC states' seeds.

    A MAC seed is ``(mac-secret ^ nonce) || packet`` with the packet exactly as it went
    over the wire (size prefix included for EIP-8): feeding it to a fresh keccak256 gives
    the initial egress/ingress MAC state.
    """

    remote_pubkey: bytes
    aes: bytes = field(repr=False)
    mac: bytes = field(repr=False)
    egress_mac_seed: bytes = field(repr=False)
    ingress_mac_seed: bytes = field(repr=False)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _derive(
    ephemeral_key: PrivateKey,
    remote_ephemeral_id: bytes,
    initiator_nonce: bytes,
    recipient_nonce: bytes,
    auth: bytes,
    ack: bytes,
) -> tuple[bytes, bytes, bytes, bytes]:
    """(aes, mac, initiator-egress seed, recipient-egress seed), per devp2p rlpx.md."""
    aes, mac = _crypto.rlpx_derive(ephemeral_key.secret, remote_ephemeral_id, initiator_nonce, recipient_nonce)
    return aes, mac, _xor(mac, recipient_nonce) + auth, _xor(mac, initiator_nonce) + ack


def _check_nonce(nonce: bytes | None) -> bytes:
    if nonce is None:
        return os.urandom(NONCE_LENGTH)
    nonce = bytes(nonce)
    if len(nonce) != NONCE_LENGTH:
        raise ValueError(f"nonce must be {NONCE_LENGTH} bytes")
    return nonce


def _first_list(plaintext: bytes) -> bytes:
    """The leading RLP list of a plaintext followed by padding (the decoder rejects trailing bytes)."""
    if not plaintext or plaintext[0] < 0xC0:
        raise HandshakeError("handshake body is not an RLP list")
    prefix = plaintext[0]
    if prefix <= 0xF7:
        end = 1 + prefix - 0xC0
    else:
        ll = prefix - 0xF7
        end = 1 + ll + int.from_bytes(plaintext[1 : 1 + ll], "big")
    if end > len(plaintext):
        raise HandshakeError("handshake body list runs past the end of the plaintext")
    return plaintext[:end]


def _seal_eip8(remote: PublicKey, body: bytes) -> bytes:
    plaintext = body + os.urandom(MIN_PADDING + _random.randbelow(PADDING_SPREAD))
    prefix = (len(plaintext) + ecies.OVERHEAD).to_bytes(SIZE_PREFIX_LENGTH, "big")
    return prefix + ecies.encrypt(remote, plaintext, prefix)


class _Side:
    """What both sides share: our keys and nonce, and reading a packet in either format."""

    _legacy_size: int

    def __init__(self, privkey: PrivateKey, ephemeral_key: PrivateKey | None, nonce: bytes | None) -> None:
        self.privkey = privkey
        self.ephemeral_key = ephemeral_key if ephemeral_key is not None else PrivateKey.generate()
        self.nonce = _check_nonce(nonce)
        # The last fixed-size candidate tried and its plaintext (None: not a legacy packet),
        # so that packet_size followed by receive_* decrypts only once.
        self._legacy_probe: tuple[bytes, bytes | None] | None = None

    def _try_legacy(self, candidate: bytes) -> bytes | None:
        if self._legacy_probe is None or self._legacy_probe[0] != candidate:
            try:
                plaintext: bytes | None = ecies.decrypt(self.privkey, candidate)
            except ECIESDecryptError:
                plaintext = None
            self._legacy_probe = (candidate, plaintext)
        return self._legacy_probe[1]

    def packet_size(self, buffer: bytes | bytearray | memoryview) -> int:
        """How many bytes the packet at the start of ``buffer`` spans.

        While ``buffer`` is too short to tell, the answer is a lower bound that never
        reaches past the packet: read until ``len(buffer) >= packet_size(buffer)``,
        asking again after each read. A declared size over ``MAX_PACKET_SIZE`` is
        rejected at once, before anything more is read.
        """
        if len(buffer) < SIZE_PREFIX_LENGTH:
            return SIZE_PREFIX_LENGTH
        declared = int.from_bytes(buffer[:SIZE_PREFIX_LENGTH], "big")
        if declared > MAX_PACKET_SIZE:
            raise HandshakeError(f"handshake packet of {declared} bytes exceeds {MAX_PACKET_SIZE}")
        if buffer[0] == _ECIES_PREFIX:
            if len(buffer) < self._legacy_size:
                return self._legacy_size
            if self._try_legacy(bytes(buffer[: self._legacy_size])) is not None:
                return self._legacy_size
        return SIZE_PREFIX_LENGTH + declared

    def _open(self, packet: bytes) -> tuple[bytes, bool]:
        """(plaintext, is_eip8) of one complete packet."""
        size = self.packet_size(packet)
        if size != len(packet):
            if len(packet) == self._legacy_size and packet[0] == _ECIES_PREFIX:
                ecies.decrypt(self.privkey, packet)  # raises why the fixed-size reading failed
            raise HandshakeError(f"handshake packet is {len(packet)} bytes, its size says {size}")
        if size == self._legacy_size and packet[0] == _ECIES_PREFIX:
            # packet_size only answers the fixed size for a 0x04 packet that decrypted as one.
            plaintext = self._try_legacy(packet)
            assert plaintext is not None
            return plaintext, False
        prefix = packet[:SIZE_PREFIX_LENGTH]
        return ecies.decrypt(self.privkey, packet[SIZE_PREFIX_LENGTH:], prefix), True


class Initiator(_Side):
    """The dialing side: ``auth_message()`` to send, then ``receive_ack(packet)``."""

    _legacy_size = LEGACY_ACK_SIZE

    def __init__(
        self,
        privkey: PrivateKey,
        remote_pubkey: PublicKey | bytes,
        *,
        ephemeral_key: PrivateKey | None = None,
        nonce: bytes | None = None,
    ) -> None:
        super().__init__(privkey, ephemeral_key, nonce)
        if not isinstance(remote_pubkey, PublicKey):
            remote_pubkey = PublicKey.from_bytes(remote_pubkey)
        self.remote_pubkey = remote_pubkey
        self._auth: bytes | None = None

    def auth_message(self) -> bytes:
        """The EIP-8 auth packet, built once (its bytes seed the egress MAC)."""
        if self._auth is None:
            signature = _crypto.rlpx_auth_signature(
                self.privkey.secret, self.remote_pubkey.node_id, self.ephemeral_key.secret, self.nonce
            )
            body = AuthBody(signature, self.privkey.node_id, self.nonce, HANDSHAKE_VERSION).encode()
            self._auth = _seal_eip8(self.remote_pubkey, body)
        return self._auth

    def receive_ack(self, packet: bytes | bytearray | memoryview) -> Secrets:
        """Read the recipient's ack (exactly one packet, see ``packet_size``) and derive secrets."""
        if self._auth is None:
            raise RuntimeError("receive_ack before auth_message")
        packet = bytes(packet)
        plaintext, eip8 = self._open(packet)
        if eip8:
            try:
                ack = AckBody.decode(_first_list(plaintext))
            except DecodingError as exc:
                raise HandshakeError(f"malformed ack: {exc}") from exc
            remote_ephemeral_id, recipient_nonce = ack.ephemeral_pubkey, ack.nonce
        else:
            remote_ephemeral_id = plaintext[:NODE_ID_LENGTH]
            recipient_nonce = plaintext[NODE_ID_LENGTH : NODE_ID_LENGTH + NONCE_LENGTH]
        try:
            aes, mac, egress, ingress = _derive(
                self.ephemeral_key, remote_ephemeral_id, self.nonce, recipient_nonce, self._auth, packet
            )
        except InvalidKeyError as exc:
            raise HandshakeError(f"ack carries an invalid ephemeral key: {exc}") from exc
        return Secrets(self.remote_pubkey.node_id, aes, mac, egress, ingress)


class Recipient(_Side):
    """The listening side: ``receive_auth(packet)``, then ``ack_message()`` and ``secrets()``."""

    _legacy_size = LEGACY_AUTH_SIZE

    def __init__(
        self,
        privkey: PrivateKey,
        *,
        ephemeral_key: PrivateKey | None = None,
        nonce: bytes | None = None,
    ) -> None:
        super().__init__(privkey, ephemeral_key, nonce)
        self.remote_pubkey: PublicKey | None = None
        self._remote_ephemeral_id: bytes | None = None
        self._initiator_nonce = b""
        self._auth: bytes | None = None
        self._auth_eip8 = True
        self._ack: bytes | None = None

    def receive_auth(self, packet: bytes | bytearray | memoryview) -> bytes:
        """Read the initiator's auth (exactly one packet); returns the initiator's node id.

        The caller may vet the node id (e.g. against a blocklist) before answering.
        """
        if self._auth is not None:
            raise RuntimeError("receive_auth called twice")
        packet = bytes(packet)
        plaintext, eip8 = self._open(packet)
        if eip8:
            try:
                auth = AuthBody.decode(_first_list(plaintext))
            except DecodingError as exc:
                raise HandshakeError(f"malformed auth: {exc}") from exc
            signature, pubkey_id, initiator_nonce = auth.signature, auth.pubkey, auth.nonce
            ephemeral_hash = None
        else:
            offset = SIGNATURE_LENGTH
            signature = plaintext[:offset]
            ephemeral_hash = plaintext[offset : offset + 32]
            offset += 32
            pubkey_id = plaintext[offset : offset + NODE_ID_LENGTH]
            offset += NODE_ID_LENGTH
            initiator_nonce = plaintext[offset : offset + NONCE_LENGTH]
        try:
            remote = PublicKey(pubkey_id)
            remote_ephemeral_id = _crypto.rlpx_auth_recover(self.privkey.secret, pubkey_id, initiator_nonce, signature)
        except (InvalidKeyError, InvalidSignatureError) as exc:
            raise HandshakeError(f"auth: {exc}") from exc
        if ephemeral_hash is not None and keccak256(remote_ephemeral_id) != ephemeral_hash:
            raise HandshakeError("auth: ephemeral key hash does not match the signature")
        self.remote_pubkey = remote
        self._remote_ephemeral_id = remote_ephemeral_id
        self._initiator_nonce = initiator_nonce
        self._auth_eip8 = eip8
        self._auth = packet
        return remote.node_id

    def ack_message(self) -> bytes:
        """The ack, built once, in the auth's format (EIP-8 unless the auth was pre-EIP-8)."""
        if self._auth is None or self.remote_pubkey is None:
            raise RuntimeError("ack_message before receive_auth")
        if self._ack is None:
            ephemeral_id = self.ephemeral_key.node_id
            if self._auth_eip8:
                body = AckBody(ephemeral_id, self.nonce, HANDSHAKE_VERSION).encode()
                self._ack = _seal_eip8(self.remote_pubkey, body)
            else:
                plaintext = ephemeral_id + self.nonce + b"\x00"  # token-flag: no session token
                self._ack = ecies.encrypt(self.remote_pubkey, plaintext)
        return self._ack

    def secrets(self) -> Secrets:
        """The frame secrets; the ack must be built first since its bytes seed the egress MAC."""
        if self._ack is None or self._auth is None or self._remote_ephemeral_id is None:
            raise RuntimeError("secrets before ack_message")
        assert self.remote_pubkey is not None
        aes, mac, ingress, egress = _derive(
            self.ephemeral_key, self._remote_ephemeral_id, self._initiator_nonce, self.nonce, self._auth, self._ack
        )
        return Secrets(self.remote_pubkey.node_id, aes, mac, egress, ingress)


__all__ = [
    "Initiator", "Recipient", "Secrets", "HandshakeError", "AuthBody", "AckBody",
    "MAX_PACKET_SIZE", "LEGACY_AUTH_SIZE", "LEGACY_ACK_SIZE", "HANDSHAKE_VERSION", "handshake_crypto_implementation",
]
