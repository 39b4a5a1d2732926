"""discv5 packets: masked headers, WHOAREYOU challenges, handshakes and sealed messages.

Wire form (devp2p discv5-wire): ``masking-iv(16) || masked(static-header(23) || authdata)
|| message``. The header is masked with AES-128-CTR keyed by the first 16 bytes of the
*recipient's* id, so only the recipient finds where packets start, and the unmasked
header is the AES-GCM associated data of the message. Three flags:

- 0, message: authdata is the sender's id; the message is sealed with the session's
  write key. Without a session we send 20 random bytes instead, which the recipient
  cannot open and answers with WHOAREYOU;
- 1, WHOAREYOU: authdata is a random id-nonce and the highest record seq we know of the
  sender; its whole unmasked header is the "challenge data" both sides derive keys from;
- 2, handshake: authdata carries our id, the signature over the challenge, our ephemeral
  key and (when the challenger's copy is older) our record; the keys come from
  HKDF(ECDH(ephemeral, their static key), salt=challenge data), and the message rides in
  the same packet.

``Codec`` is sans-IO and single-threaded, like geth's: ``encode`` and ``decode`` only
touch its session cache. Errors a peer can cause are ``PacketError``s; ``InvalidHeader``
ones mean "not discv5 at all" (so the shared socket can try another protocol).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from ethnode.crypto.errors import InvalidKeyError
from ethnode.crypto.keys import PrivateKey, PublicKey
from ethnode.errors import EthnodeError
from ethnode.p2p.discover.v5wire import crypto
from ethnode.p2p.discover.v5wire.messages import UNKNOWN, WHOAREYOU, Message, MessageError, decode_message
from ethnode.p2p.discover.v5wire.session import Session, SessionCache
from ethnode.p2p.enode import Node
from ethnode.p2p.enr import ENR, ENRError

PROTOCOL_ID = b"discv5"
VERSION = 1
MIN_VERSION = 1
FLAG_MESSAGE = 0
FLAG_WHOAREYOU = 1
FLAG_HANDSHAKE = 2

MASKING_IV_SIZE = 16
STATIC_HEADER_SIZE = 23
STATIC_PACKET_SIZE = MASKING_IV_SIZE + STATIC_HEADER_SIZE  # 39
MESSAGE_AUTH_SIZE = 32  # source id
WHOAREYOU_AUTH_SIZE = 24  # id-nonce(16) || enr-seq(8)
HANDSHAKE_AUTH_SIZE = 34  # source id || sig-size || eph-key-size
MIN_PACKET_SIZE = 63  # geth minPacketSize
MAX_PACKET_SIZE = 1280  # geth maxPacketSize
MIN_MESSAGE_SIZE = 48  # geth minMessageSize: data after the static header of message/handshake packets
RANDOM_PACKET_MSG_SIZE = 20  # geth randomPacketMsgSize
GCM_TAG_SIZE = 16


class PacketError(EthnodeError, ValueError):
    """A datagram that is not an acceptable discv5 packet."""


class InvalidHeader(PacketError):
    """Not discv5 at all (geth IsInvalidHeader): too short, wrong protocol id, no room for a message."""


@dataclass
class Whoareyou:
    """A handshake challenge; ``challenge_data`` is its unmasked header once encoded or decoded."""

    nonce: bytes  # the nonce of the packet being challenged
    id_nonce: bytes = b"\x00" * 16
    record_seq: int = 0  # the highest seq we know of the challenged node's record
    node: Node | None = None  # the recipient as we know it (its record, for the handshake)
    challenge_data: bytes = b""
    sent: float = 0.0

    TYPE = WHOAREYOU
    NAME = "WHOAREYOU/v5"


@dataclass
class Unknown:
    """A message packet we could not decrypt: the sender needs a WHOAREYOU."""

    nonce: bytes

    TYPE = UNKNOWN
    NAME = "UNKNOWN/v5"


Packet = Message | Whoareyou | Unknown


@dataclass
class Header:
    iv: bytes
    flag: int
    nonce: bytes
    auth: bytes = b""

    def encode(self, protocol_id: bytes) -> bytes:
        return b"".join((self.iv, protocol_id, VERSION.to_bytes(2, "big"), bytes((self.flag,)), self.nonce,
                         len(self.auth).to_bytes(2, "big"), self.auth))


@dataclass
class Codec:
    """Encodes and decodes the packets of one local node; holds its sessions.

    ``local_record`` returns our current signed record (sent in handshakes when the
    challenger's copy is older). Addresses are any hashable naming the remote endpoint.
    """

    key: PrivateKey
    local_id: bytes
    local_record: Callable[[], ENR]
    protocol_id: bytes = PROTOCOL_ID
    sc: SessionCache = field(default_factory=SessionCache)

    # -- encoding ------------------------------------------------------------------------

    def encode(self, dest_id: bytes, addr: Hashable, packet: Packet,
               challenge: Whoareyou | None = None) -> tuple[bytes, bytes]:
        """(datagram, nonce). ``challenge``: the WHOAREYOU to answer with a handshake."""
        if isinstance(packet, Whoareyou):
            return self._encode_whoareyou(dest_id, addr, packet)
        if challenge is not None:
            head, session = self._handshake_header(dest_id, addr, challenge)
        else:
            session = self.sc.session(dest_id, addr)
            if session is None:  # no keys: random content, which draws a WHOAREYOU
                head = Header(self.sc.masking_iv_gen(), FLAG_MESSAGE, os.urandom(12), self.local_id)
                return self._masked(dest_id, head.encode(self.protocol_id)) + os.urandom(
                    RANDOM_PACKET_MSG_SIZE), head.nonce
            head = Header(self.sc.masking_iv_gen(), FLAG_MESSAGE, self.sc.next_nonce(session), self.local_id)
        header = head.encode(self.protocol_id)
        sealed = crypto.encrypt_gcm(session.write_key, head.nonce, packet.encode(), header)
        return self._masked(dest_id, header) + sealed, head.nonce

    def _masked(self, dest_id: bytes, header: bytes) -> bytes:
        return header[:MASKING_IV_SIZE] + crypto.mask(dest_id, header[:MASKING_IV_SIZE], header[MASKING_IV_SIZE:])

    def _encode_whoareyou(self, dest_id: bytes, addr: Hashable, w: Whoareyou) -> tuple[bytes, bytes]:
        if w.challenge_data:  # a resend: the same challenge, byte for byte
            return self._masked(dest_id, w.challenge_data), w.nonce
        auth = w.id_nonce + w.record_seq.to_bytes(8, "big")
        header = Header(self.sc.masking_iv_gen(), FLAG_WHOAREYOU, w.nonce, auth).encode(self.protocol_id)
        w.challenge_data = header
        self.sc.store_sent_handshake(dest_id, addr, w)
        return self._masked(dest_id, header), w.nonce

    def _handshake_header(self, dest_id: bytes, addr: Hashable, challenge: Whoareyou) -> tuple[Header, Session]:
        if challenge.node is None:
            raise PacketError("can't find secp256k1 key for recipient")
        remote = PublicKey(challenge.node.pubkey)  # an enode:// bootnode has a key but no record
        eph = self.sc.ephemeral_key_gen()
        eph_pub = eph.public_key.to_compressed()
        sig = crypto.make_id_signature(self.key, challenge.challenge_data, eph_pub, dest_id)
        record = self.local_record()
        rec_bytes = record.encode() if challenge.record_seq < record.seq else b""
        shared = crypto.ecdh(eph.secret, remote.to_compressed())
        if shared is None:  # pragma: no cover - a record's key is a checked point
            raise PacketError("key derivation failed")
        write, read = crypto.derive_keys(shared, self.local_id, challenge.node.id, challenge.challenge_data)
        session = Session(write, read)
        nonce = self.sc.next_nonce(session)
        # geth stores the session now, before the remote confirmed it by answering
        self.sc.store_session(dest_id, addr, session, challenge.node)
        auth = b"".join((self.local_id, bytes((len(sig), len(eph_pub))), sig, eph_pub, rec_bytes))
        return Header(self.sc.masking_iv_gen(), FLAG_HANDSHAKE, nonce, auth), session

    def current_challenge(self, node_id: bytes, addr: Hashable) -> Whoareyou | None:
        return self.sc.get_handshake(node_id, addr)

    def session_node(self, node_id: bytes, addr: Hashable) -> Node | None:
        s = self.sc.session(node_id, addr)
        return s.node if s is not None else None

    # -- decoding ------------------------------------------------------------------------

    def decode(self, data: bytes, addr: Hashable) -> tuple[bytes, Node | None, Packet]:
        """(source id, node from a completed handshake or None, packet); PacketError otherwise.

        The source id is all zeros for WHOAREYOU, which does not name its sender.
        """
        if len(data) < MIN_PACKET_SIZE:
            raise InvalidHeader("packet too short")
        if len(data) > MAX_PACKET_SIZE:  # geth reads into a 1280-byte buffer; more is no discv5 packet
            raise PacketError("packet too large")
        header = crypto.unmask_header(self.local_id, data)
        if header is None:  # pragma: no cover - MIN_PACKET_SIZE covers the static header
            raise InvalidHeader("packet too short")
        if header[16:22] != self.protocol_id:
            raise InvalidHeader("invalid packet header")
        if int.from_bytes(header[22:24], "big") < MIN_VERSION:
            raise PacketError("version of packet header below minimum")
        flag = header[24]
        nonce = header[25:37]
        auth_size = int.from_bytes(header[37:39], "big")
        remaining = len(data) - STATIC_PACKET_SIZE
        if flag != FLAG_WHOAREYOU and remaining < MIN_MESSAGE_SIZE:
            raise InvalidHeader("message/handshake packet below minimum size")
        if auth_size > remaining:
            raise PacketError("declared auth size is beyond packet length")
        auth = header[STATIC_PACKET_SIZE:]
        msg_data = data[STATIC_PACKET_SIZE + auth_size:]
        self.sc.handshake_gc()  # before decoding, so a timed-out handshake cannot complete
        if flag == FLAG_WHOAREYOU:
            if auth_size != WHOAREYOU_AUTH_SIZE:
                raise PacketError(f"invalid auth size {auth_size} for WHOAREYOU")
            w = Whoareyou(nonce, auth[:16], int.from_bytes(auth[16:24], "big"), challenge_data=header)
            return bytes(32), None, w
        if flag == FLAG_HANDSHAKE:
            return self._decode_handshake(addr, header, nonce, auth, msg_data)
        if flag == FLAG_MESSAGE:
            if auth_size != MESSAGE_AUTH_SIZE:
                raise PacketError(f"invalid auth size {auth_size} for message packet")
            src = auth
            session = self.sc.session(src, addr)
            plain = None if session is None else crypto.decrypt_gcm(session.read_key, nonce, msg_data, header)
            if plain is None:
                return src, None, Unknown(nonce)
            return src, None, self._message(plain)
        raise PacketError("invalid flag value in header")

    @staticmethod
    def _message(plain: bytes) -> Message:
        try:
            return decode_message(plain)
        except MessageError as exc:
            raise PacketError(str(exc)) from exc

    def _decode_handshake(self, addr: Hashable, header: bytes, nonce: bytes, auth: bytes,
                          msg_data: bytes) -> tuple[bytes, Node | None, Packet]:
        if len(auth) < HANDSHAKE_AUTH_SIZE:
            raise PacketError(f"header authsize {len(auth)} too low for handshake")
        src, sig_size, key_size = auth[:32], auth[32], auth[33]
        var = auth[HANDSHAKE_AUTH_SIZE:]
        if len(var) < sig_size + key_size:
            raise PacketError("packet too short")
        sig, eph_pub, rec = var[:sig_size], var[sig_size:sig_size + key_size], var[sig_size + key_size:]
        try:
            challenge = self.sc.get_handshake(src, addr)
            if challenge is None:
                raise PacketError("unexpected auth response, not in handshake")
            node = self._handshake_node(challenge.node, src, rec)
            assert node.record is not None
            if node.record.identity_scheme != b"v4":
                raise PacketError(f"can't verify ID nonce signature against scheme {node.record.identity_scheme!r}")
            if not crypto.verify_id_signature(node.record.public_key, sig, challenge.challenge_data, eph_pub,
                                              self.local_id):
                raise PacketError("invalid ID nonce signature")
            if len(eph_pub) != 33:
                raise PacketError("invalid ephemeral pubkey")
            shared = crypto.ecdh(self.key.secret, eph_pub)
            if shared is None:
                raise PacketError("invalid ephemeral pubkey")
            initiator_key, recipient_key = crypto.derive_keys(shared, src, self.local_id, challenge.challenge_data)
            session = Session(write_key=recipient_key, read_key=initiator_key)
            plain = crypto.decrypt_gcm(session.read_key, nonce, msg_data, header)
            if plain is None:
                raise PacketError("cannot decrypt message")
            msg = self._message(plain)
        except PacketError:
            self.sc.delete_handshake(src, addr)
            raise
        self.sc.store_session(src, addr, session, node)
        self.sc.delete_handshake(src, addr)
        return src, node, msg

    @staticmethod
    def _handshake_node(known: Node | None, want_id: bytes, rec: bytes) -> Node:
        """The sender: its record from the handshake when newer than ours, else what we knew."""
        node = known
        if rec:
            try:
                record = ENR.decode(rec)
            except ENRError as exc:
                raise PacketError(f"invalid node record: {exc}") from None
            if known is None or known.seq < record.seq:
                try:
                    candidate = Node.from_enr(record)
                except (ENRError, InvalidKeyError, ValueError) as exc:
                    raise PacketError(f"invalid node record: {exc}") from None
                if candidate.id != want_id:
                    raise PacketError(f"record in handshake has wrong ID: {candidate.id.hex()}")
                node = candidate
        if node is None or node.record is None:
            raise PacketError("expected ENR in handshake but none sent")
        return node


__all__ = [
    "Codec", "Whoareyou", "Unknown", "Header", "Packet", "PacketError", "InvalidHeader", "PROTOCOL_ID",
    "MIN_PACKET_SIZE", "MAX_PACKET_SIZE",
]
