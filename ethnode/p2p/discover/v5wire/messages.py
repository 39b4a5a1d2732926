"""discv5 messages: the six the node speaks, their RLP bodies, and their decoding rules.

A message plaintext is ``message-type || rlp(fields)``; it travels AES-GCM-sealed in a
message or handshake packet. Decoding follows geth's (``v5wire.DecodeMessage``): exact
field counts, canonical integers of the declared widths, and request ids of at most 8
bytes (a longer one is ``InvalidRequestID``, which the node answers with silence).
WHOAREYOU and "unknown" (a message packet we could not decrypt) are packets, not
messages, and have no RLP body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ethnode import rlp
from ethnode.errors import EthnodeError
from ethnode.p2p.enr import ENR, ENRError

PING = 0x01
PONG = 0x02
FINDNODE = 0x03
NODES = 0x04
TALKREQ = 0x05
TALKRESP = 0x06
WHOAREYOU = 0xFE  # geth WhoareyouPacket
UNKNOWN = 0xFF  # geth UnknownPacket: any non-decryptable message packet

MAX_REQUEST_ID = 8  # bytes; the spec's limit


class MessageError(EthnodeError, ValueError):
    """A decrypted message that is not an acceptable discv5 message."""


class InvalidRequestID(MessageError):
    """geth ErrInvalidReqID."""

    def __init__(self) -> None:
        super().__init__("request ID larger than 8 bytes")


def _uint(value: Any, bits: int, what: str) -> int:
    if not isinstance(value, bytes):
        raise MessageError(f"{what}: expected an integer, got a list")
    if len(value) > bits // 8 or (value and value[0] == 0):
        raise MessageError(f"{what}: non-canonical or too large integer")
    return int.from_bytes(value, "big")


def _bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise MessageError(f"{what}: expected a byte string, got a list")
    return value


@dataclass
class Message:
    """Base of the six messages; ``req_id`` is the caller's opaque request id."""

    TYPE: ClassVar[int]
    NAME: ClassVar[str]
    req_id: bytes

    def fields(self) -> list[Any]:
        raise NotImplementedError

    def encode(self) -> bytes:
        return bytes((self.TYPE,)) + rlp.encode(self.fields())


@dataclass
class Ping(Message):
    TYPE: ClassVar[int] = PING
    NAME: ClassVar[str] = "PING/v5"
    enr_seq: int = 0

    def fields(self) -> list[Any]:
        return [self.req_id, self.enr_seq]


@dataclass
class Pong(Message):
    TYPE: ClassVar[int] = PONG
    NAME: ClassVar[str] = "PONG/v5"
    enr_seq: int = 0
    to_ip: bytes = b""  # the PING's source address as the answering node saw it (4 or 16 bytes)
    to_port: int = 0

    def fields(self) -> list[Any]:
        return [self.req_id, self.enr_seq, self.to_ip, self.to_port]


@dataclass
class Findnode(Message):
    TYPE: ClassVar[int] = FINDNODE
    NAME: ClassVar[str] = "FINDNODE/v5"
    distances: list[int] = field(default_factory=list)

    def fields(self) -> list[Any]:
        return [self.req_id, list(self.distances)]


@dataclass
class Nodes(Message):
    TYPE: ClassVar[int] = NODES
    NAME: ClassVar[str] = "NODES/v5"
    resp_count: int = 1  # how many NODES packets answer this request
    records: list[ENR] = field(default_factory=list)

    def fields(self) -> list[Any]:
        return [self.req_id, self.resp_count, [rlp.decode(r.encode()) for r in self.records]]

    def encode(self) -> bytes:
        # records are spliced in as encoded, so their bytes (and signatures) are kept exactly
        body = rlp.encode(self.req_id) + rlp.encode(self.resp_count)
        inner = b"".join(r.encode() for r in self.records)
        return bytes((self.TYPE,)) + _list(body + _list(inner))


@dataclass
class TalkRequest(Message):
    TYPE: ClassVar[int] = TALKREQ
    NAME: ClassVar[str] = "TALKREQ/v5"
    protocol: bytes = b""
    message: bytes = b""

    def fields(self) -> list[Any]:
        return [self.req_id, self.protocol, self.message]


@dataclass
class TalkResponse(Message):
    TYPE: ClassVar[int] = TALKRESP
    NAME: ClassVar[str] = "TALKRESP/v5"
    message: bytes = b""

    def fields(self) -> list[Any]:
        return [self.req_id, self.message]


def _list(payload: bytes) -> bytes:
    n = len(payload)
    if n < 56:
        return bytes((0xC0 + n,)) + payload
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(size),)) + size + payload


_ARITY = {PING: 2, PONG: 4, FINDNODE: 2, NODES: 3, TALKREQ: 3, TALKRESP: 2}


def decode_message(data: bytes) -> Message:
    """A message from its plaintext (type byte and RLP body); MessageError if it is not one."""
    if not data:
        raise MessageError("message contains no data")
    mtype = data[0]
    arity = _ARITY.get(mtype)
    if arity is None:
        raise MessageError(f"unknown packet type {mtype}")
    try:
        items = rlp.decode(data[1:])
    except rlp.DecodingError as exc:
        raise MessageError(f"invalid message RLP: {exc}") from None
    if not isinstance(items, list):
        raise MessageError("message body is not a list")
    if len(items) != arity:
        raise MessageError(f"message has {len(items)} fields, want {arity}")
    req_id = _bytes(items[0], "request id")
    if len(req_id) > MAX_REQUEST_ID:
        raise InvalidRequestID()
    if mtype == PING:
        return Ping(req_id, _uint(items[1], 64, "enr-seq"))
    if mtype == PONG:
        ip = _bytes(items[2], "recipient-ip")
        if len(ip) not in (0, 4, 16):
            raise MessageError(f"invalid IP length {len(ip)}")
        return Pong(req_id, _uint(items[1], 64, "enr-seq"), ip, _uint(items[3], 16, "recipient-port"))
    if mtype == FINDNODE:
        if not isinstance(items[1], list):
            raise MessageError("distances: expected a list")
        return Findnode(req_id, [_uint(d, 64, "distance") for d in items[1]])
    if mtype == NODES:
        if not isinstance(items[2], list):
            raise MessageError("nodes: expected a list")
        records = []
        for item in items[2]:
            if not isinstance(item, list):
                raise MessageError("node record is not a list")
            try:
                records.append(ENR.decode(rlp.encode(item)))
            except ENRError:
                continue  # one bad record costs only itself, as in geth's verifyResponseNode
        return Nodes(req_id, _uint(items[1], 8, "total"), records)
    if mtype == TALKREQ:
        return TalkRequest(req_id, _bytes(items[1], "protocol"), _bytes(items[2], "request"))
    return TalkResponse(req_id, _bytes(items[1], "response"))


__all__ = [
    "Message", "Ping", "Pong", "Findnode", "Nodes", "TalkRequest", "TalkResponse", "MessageError",
    "InvalidRequestID", "decode_message", "PING", "PONG", "FINDNODE", "NODES", "TALKREQ", "TALKRESP",
    "WHOAREYOU", "UNKNOWN", "MAX_REQUEST_ID",
]
