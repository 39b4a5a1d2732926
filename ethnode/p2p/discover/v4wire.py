"""discv4 packets, sans-IO: typed messages, signing, decoding with every check.

Wire form: ``hash(32) || signature(65) || packet-type(1) || rlp(data) [|| junk]`` where
the signature is over ``keccak256(type || data || junk)`` and the hash is
``keccak256(signature || type || data || junk)``. The hash protects nothing (anyone can
recompute it) but identifies the packet: a Pong echoes its Ping's hash, an
ENRResponse its request's.

EIP-8 forward compatibility: extra list elements after the known fields are ignored,
and so is anything after the RLP list. EIP-868 put an optional enr-seq integer right after
the expiration of Ping and Pong. Two of the EIP-8 test packets (written before EIP-868)
put a *list* in that position. geth rejects them (its decoder reads a uint64 there);
ethnode accepts them and reads enr-seq as absent: a list cannot be a sequence number, so
it can only be an extension element EIP-8 tells us to skip, and an absent enr-seq only
means "no ENR hint", which is harmless. A byte string in that position *is* an enr-seq and
must be a canonical uint64, or the packet is rejected.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar

from ethnode import rlp
from ethnode.crypto import keccak256
from ethnode.crypto.errors import InvalidSignatureError
from ethnode.crypto.keys import PrivateKey, recover
from ethnode.errors import EthnodeError
from ethnode.p2p.enode import IPAddress, Node
from ethnode.rlp.sedes import Bytes, FixedBytes, List, Optional, Record, binary, raw, uint16, uint64

MAX_PACKET_SIZE = 1280  # geth maxPacketSize: discovery packets are defined to be no larger
EXPIRATION = 20  # seconds; geth expiration
MAX_NEIGHBORS = 12  # geth v4wire.MaxNeighbors: nodes per Neighbors packet, keeps it below 1280 bytes
MAC_SIZE = 32
SIG_SIZE = 65
HEAD_SIZE = MAC_SIZE + SIG_SIZE  # geth headSize
VERSION = 4

PING = 1
PONG = 2
FINDNODE = 3
NEIGHBORS = 4
ENR_REQUEST = 5
ENR_RESPONSE = 6

_INT64_SIGN = 1 << 63
_UINT64 = 1 << 64

ip_bytes = Bytes(0, 16)  # geth decodes net.IP from any string; its length is checked where it is used


class PacketError(EthnodeError, ValueError):
    """A datagram that is not an acceptable discv4 packet."""


class PacketTooSmallError(PacketError):
    pass


class PacketTooLargeError(PacketError):
    pass


class BadHashError(PacketError):
    pass


class BadSignatureError(PacketError):
    pass


class UnknownPacketError(PacketError):
    pass


class MalformedPacketError(PacketError):
    pass


class Endpoint(Record):
    """Where a node listens: IP (4 or 16 bytes), UDP and TCP port."""

    fields = (("ip", ip_bytes), ("udp", uint16), ("tcp", uint16))


class WireNode(Record):
    """One entry of a Neighbors packet (geth v4wire.Node)."""

    fields = (("ip", ip_bytes), ("udp", uint16), ("tcp", uint16), ("id", FixedBytes(64)))


class Packet(Record):
    TYPE: ClassVar[int] = 0
    NAME: ClassVar[str] = ""
    allow_extra = True  # EIP-8


class Ping(Packet):
    TYPE = PING
    NAME = "PING/v4"
    fields = (
        ("version", uint64), ("from_", Endpoint), ("to", Endpoint), ("expiration", uint64),
        ("enr_seq", Optional(uint64)),  # EIP-868
    )


class Pong(Packet):
    TYPE = PONG
    NAME = "PONG/v4"
    fields = (("to", Endpoint), ("ping_hash", binary), ("expiration", uint64), ("enr_seq", Optional(uint64)))


class FindNode(Packet):
    TYPE = FINDNODE
    NAME = "FINDNODE/v4"
    fields = (("target", FixedBytes(64)), ("expiration", uint64))


class Neighbors(Packet):
    TYPE = NEIGHBORS
    NAME = "NEIGHBORS/v4"
    fields = (("nodes", List(WireNode)), ("expiration", uint64))


class ENRRequest(Packet):
    TYPE = ENR_REQUEST
    NAME = "ENRREQUEST/v4"
    fields = (("expiration", uint64),)


class ENRResponse(Packet):
    TYPE = ENR_RESPONSE
    NAME = "ENRRESPONSE/v4"
    fields = (("request_hash", binary), ("record", raw))  # record: full RLP, checked by ENR.decode


class _PingLoose(Packet):
    fields = Ping.fields[:4] + (("enr_seq", Optional(raw)),)


class _PongLoose(Packet):
    fields = Pong.fields[:3] + (("enr_seq", Optional(raw)),)


PACKET_TYPES: dict[int, type[Packet]] = {
    cls.TYPE: cls for cls in (Ping, Pong, FindNode, Neighbors, ENRRequest, ENRResponse)
}
_LOOSE: dict[int, tuple[type[Packet], type[Packet]]] = {PING: (_PingLoose, Ping), PONG: (_PongLoose, Pong)}


def expiration_from_now(now: float | None = None) -> int:
    return int((time.time() if now is None else now) + EXPIRATION)


def expired(ts: int, now: float | None = None) -> bool:
    """geth v4wire.Expired: the timestamp read as a signed int64 lies in the past.

    Reading it as signed matters: geth's conformance suite sends ``-t`` as a uint64
    (a huge number) and expects it to count as expired.
    """
    if ts >= _INT64_SIGN:
        ts -= _UINT64
    return ts < (time.time() if now is None else now)


def make_endpoint(ip: IPAddress | None, udp: int, tcp: int) -> Endpoint:
    return Endpoint(ip.packed if ip is not None else b"", udp, tcp)


def node_to_wire(node: Node) -> WireNode:
    return WireNode(node.ip.packed if node.ip is not None else b"", node.udp, node.tcp, node.pubkey)


def encode(key: PrivateKey, packet: Packet) -> tuple[bytes, bytes]:
    """(datagram, hash); raises PacketTooLargeError past 1280 bytes rather than send a truncated packet."""
    body = bytes([packet.TYPE]) + packet.encode()
    sig = key.sign(keccak256(body))
    mac = keccak256(sig + body)
    data = mac + sig + body
    if len(data) > MAX_PACKET_SIZE:
        raise PacketTooLargeError(f"{packet.NAME} of {len(data)} bytes exceeds {MAX_PACKET_SIZE}")
    return data, mac


def decode(data: bytes | bytearray | memoryview) -> tuple[Packet, bytes, bytes]:
    """(packet, sender public key (64 bytes), packet hash), or a PacketError."""
    data = bytes(data)
    if len(data) < HEAD_SIZE + 1:
        raise PacketTooSmallError(f"packet of {len(data)} bytes is too small")
    if len(data) > MAX_PACKET_SIZE:
        raise PacketTooLargeError(f"packet of {len(data)} bytes exceeds {MAX_PACKET_SIZE}")
    mac = data[:MAC_SIZE]
    if keccak256(data[MAC_SIZE:]) != mac:
        raise BadHashError("bad hash")
    ptype = data[HEAD_SIZE]
    cls = PACKET_TYPES.get(ptype)
    if cls is None:
        raise UnknownPacketError(f"unknown packet type {ptype}")
    try:
        pubkey = recover(keccak256(data[HEAD_SIZE:]), data[MAC_SIZE:HEAD_SIZE])
    except InvalidSignatureError as exc:
        raise BadSignatureError(f"bad signature: {exc}") from None
    return _decode_body(cls, data, HEAD_SIZE + 1), pubkey, mac


def _decode_body(cls: type[Packet], data: bytes, start: int) -> Packet:
    try:
        is_list, _, end = rlp.item_header(data, start, len(data))
    except rlp.DecodingError as exc:
        raise MalformedPacketError(f"{cls.NAME}: {exc}") from None
    if not is_list:
        raise MalformedPacketError(f"{cls.NAME}: packet data is not a list")
    item = data[start:end]  # anything after the list is ignored (EIP-8)
    try:
        return cls.decode(item)  # type: ignore[no-any-return]
    except rlp.DecodingError as exc:
        loose = _LOOSE.get(cls.TYPE)
        if loose is not None:
            packet = _decode_loose(loose[0], loose[1], item)
            if packet is not None:
                return packet
        raise MalformedPacketError(f"{cls.NAME}: {exc}") from None


def _decode_loose(loose: type[Packet], strict: type[Packet], item: bytes) -> Packet | None:
    """A Ping/Pong whose enr-seq slot holds a list (pre-EIP-868 extension): enr_seq None."""
    try:
        packet: Any = loose.decode(item)
    except rlp.DecodingError:
        return None
    seq = packet[-1]
    if seq is None or seq[0] < 0xC0:  # absent or a byte string: the strict error stands
        return None
    return strict(*packet[:-1], None)


def neighbors_packets(nodes: Iterable[WireNode], expiration: int) -> list[Neighbors]:
    """Nodes split into packets of at most MAX_NEIGHBORS; always at least one (possibly empty).

    geth answers a FindNode even when it knows nobody, and conformance tests rely on it.
    """
    packets: list[Neighbors] = []
    chunk: list[WireNode] = []
    for n in nodes:
        chunk.append(n)
        if len(chunk) == MAX_NEIGHBORS:
            packets.append(Neighbors(chunk, expiration))
            chunk = []
    if chunk or not packets:
        packets.append(Neighbors(chunk, expiration))
    return packets


__all__ = [
    "Packet", "Ping", "Pong", "FindNode", "Neighbors", "ENRRequest", "ENRResponse", "Endpoint", "WireNode",
    "PacketError", "PacketTooSmallError", "PacketTooLargeError", "BadHashError", "BadSignatureError",
    "UnknownPacketError", "MalformedPacketError",
    "encode", "decode", "expired", "expiration_from_now", "make_endpoint", "node_to_wire",
    "neighbors_packets",
    "MAX_PACKET_SIZE", "MAX_NEIGHBORS", "EXPIRATION", "PACKET_TYPES", "VERSION",
    "PING", "PONG", "FINDNODE", "NEIGHBORS", "ENR_REQUEST", "ENR_RESPONSE",
]
