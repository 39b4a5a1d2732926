"""One look at a node over TCP: RLPx handshake, Hello, the eth Status it sends, then goodbye.

Nothing of ours is sent beyond Hello: a Status would need the remote's network, which is
what we came to learn. Every eth node sends its Status right after Hello, so we read it,
answer Pings meanwhile, and leave with Disconnect "disconnect requested". Every failure
becomes a short reason for the census (``ProbeResult.error``), never an exception.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ethnode.core.forkid import ForkID
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.eth.protocols.eth.handshake import HANDSHAKE_TIMEOUT as STATUS_TIMEOUT
from ethnode.eth.protocols.eth.protocol import ETH68, PROTOCOL_NAME, STATUS, SUPPORTED_VERSIONS, Status68, Status69
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.enode import Node
from ethnode.p2p.peer import (
    BASE_PROTOCOL_MAX_MSG_SIZE,
    DISCONNECT,
    HELLO,
    HELLO_TIMEOUT,
    PING,
    PONG,
    SNAPPY_PROTOCOL_VERSION,
    Hello,
)
from ethnode.p2p.protocol import Capability
from ethnode.p2p.rlpx import transport
from ethnode.p2p.rlpx.handshake import HandshakeError
from ethnode.p2p.rlpx.transport import HandshakeTimeoutError, ReadTimeoutError, TransportError
from ethnode.rlp.errors import DecodingError

DIAL_TIMEOUT = 5.0  # TCP connect; shorter than the node's 15 s, a crawl has many more to see
ETH_OFFSET = 0x10  # eth is the only capability we offer: its codes follow the base protocol's 16
_EMPTY_LIST = b"\xc0"


@dataclass
class ProbeResult:
    """What one probe learned; ``error`` is None when it got as far as the eth Status."""

    error: str | None = None
    client_id: str | None = None
    caps: list[str] = field(default_factory=list)
    eth_version: int | None = None
    network_id: int | None = None
    genesis: bytes | None = None
    fork_id: ForkID | None = None
    head: bytes | None = None  # eth/68: the head hash; eth/69+: the latest block's hash
    latest: int | None = None  # eth/69+: the latest block number

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dial": self.error or "ok"}
        if self.client_id is not None:
            out["client"] = self.client_id
            out["caps"] = self.caps
        if self.eth_version is not None:
            out["eth"] = self.eth_version
        if self.network_id is not None:
            assert self.genesis is not None and self.fork_id is not None and self.head is not None
            out["networkId"] = self.network_id
            out["genesis"] = "0x" + self.genesis.hex()
            out["forkId"] = fork_id_text(self.fork_id)
            out["head"] = "0x" + self.head.hex()
            if self.latest is not None:
                out["latest"] = self.latest
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ProbeResult:
        """Back from the census file (a resumed crawl keeps what earlier runs learned)."""
        r = cls(error=None if obj.get("dial") == "ok" else str(obj.get("dial")))
        r.client_id = obj.get("client")
        r.caps = list(obj.get("caps", []))
        r.eth_version = obj.get("eth")
        if "networkId" in obj:
            r.network_id = int(obj["networkId"])
            r.genesis = bytes.fromhex(obj["genesis"][2:])
            fork_hash, _, nxt = obj["forkId"].partition("/")
            r.fork_id = ForkID(bytes.fromhex(fork_hash[2:]), int(nxt))
            r.head = bytes.fromhex(obj["head"][2:])
            r.latest = obj.get("latest")
        return r


def fork_id_text(fork_id: ForkID) -> str:
    """``0xHASH/NEXT``: the fork hash and the next fork (0: none announced)."""
    return f"0x{bytes(fork_id.hash).hex()}/{fork_id.next}"


def _eth_version(caps: list[Capability]) -> int | None:
    theirs = {c.version for c in caps if c.name == PROTOCOL_NAME}
    common = theirs.intersection(SUPPORTED_VERSIONS)
    return max(common) if common else None


async def probe(node: Node, key: PrivateKey, client_id: str, *, dial_timeout: float = DIAL_TIMEOUT,
                handshake_timeout: float = transport.HANDSHAKE_TIMEOUT) -> ProbeResult:
    """Dial ``node`` (its IP and TCP port) and learn its Hello and eth Status."""
    result = ProbeResult()
    if node.ip is None or not node.tcp:
        result.error = "no TCP endpoint"
        return result
    try:
        conn = await transport.dial(str(node.ip), node.tcp, key, node.pubkey, dial_timeout=dial_timeout,
                                    handshake_timeout=handshake_timeout)
    except (TimeoutError, HandshakeTimeoutError):
        result.error = "dial: timeout"
        return result
    except ConnectionRefusedError:
        result.error = "dial: connection refused"
        return result
    except OSError as exc:
        result.error = f"dial: {(exc.strerror or type(exc).__name__).lower()}"
        return result
    except (HandshakeError, TransportError, EthnodeError) as exc:
        result.error = f"rlpx handshake: {type(exc).__name__}"
        return result
    reason = DiscReason.REQUESTED
    try:
        await _greet(conn, key, client_id, result)
    except _Failed as exc:
        result.error = str(exc)
        reason = exc.reason
    except (TransportError, EthnodeError, OSError) as exc:  # a write failed mid-greeting
        result.error = f"session: {type(exc).__name__}"
    finally:
        await _leave(conn, reason)
    return result


class _Failed(Exception):
    def __init__(self, message: str, reason: DiscReason = DiscReason.REQUESTED) -> None:
        super().__init__(message)
        self.reason = reason


async def _read(conn: transport.Connection, timeout: float, stage: str) -> tuple[int, bytes]:
    try:
        return await conn.read_message(timeout=timeout)
    except ReadTimeoutError:
        raise _Failed(f"{stage}: timeout") from None
    except (TransportError, EthnodeError, OSError) as exc:
        raise _Failed(f"{stage}: {type(exc).__name__}", DiscReason.PROTOCOL_ERROR) from None


async def _greet(conn: transport.Connection, key: PrivateKey, client_id: str, result: ProbeResult) -> None:
    ours = Hello.create(client_id, [Capability(PROTOCOL_NAME, v) for v in SUPPORTED_VERSIONS], 0, key.node_id)
    conn.max_frame_size = BASE_PROTOCOL_MAX_MSG_SIZE + 9
    try:
        await conn.write_message(HELLO, ours.encode())
    except (TransportError, OSError):
        pass  # prefer what the remote said before it closed
    code, payload = await _read(conn, HELLO_TIMEOUT, "hello")
    if code == DISCONNECT:
        raise _Failed(f"disconnected: {DiscReason.decode_payload(payload).description}")
    if code != HELLO:
        raise _Failed(f"hello: unexpected message {code:#x}", DiscReason.PROTOCOL_ERROR)
    try:
        hello = Hello.decode(payload)
    except DecodingError:
        raise _Failed("hello: malformed", DiscReason.PROTOCOL_ERROR) from None
    if hello.version >= SNAPPY_PROTOCOL_VERSION:
        conn.snappy = True
    caps = hello.caps
    result.client_id = hello.client_name
    result.caps = sorted({str(c) for c in caps})
    version = _eth_version(caps)
    if version is None:
        raise _Failed("no common eth version", DiscReason.USELESS_PEER)
    result.eth_version = version
    conn.max_frame_size = 1 << 20
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STATUS_TIMEOUT
    while True:
        code, payload = await _read(conn, max(deadline - loop.time(), 0.0), "status")
        if code == DISCONNECT:
            raise _Failed(f"disconnected: {DiscReason.decode_payload(payload).description}")
        if code == PING:
            await conn.write_message(PONG, _EMPTY_LIST)
        elif code == ETH_OFFSET + STATUS:
            break
    try:
        if version == ETH68:
            s68 = Status68.decode(payload)
            result.head, result.fork_id, result.genesis = bytes(s68.head), s68.fork_id, bytes(s68.genesis)
            result.network_id = s68.network_id
        else:
            s69 = Status69.decode(payload)
            result.head, result.fork_id, result.genesis = bytes(s69.latest_hash), s69.fork_id, bytes(s69.genesis)
            result.network_id, result.latest = s69.network_id, s69.latest
    except DecodingError:
        result.network_id = result.genesis = result.fork_id = result.head = result.latest = None
        raise _Failed("status: malformed", DiscReason.SUBPROTOCOL_ERROR) from None


async def _leave(conn: transport.Connection, reason: DiscReason) -> None:
    try:
        if not conn.closed:
            await conn.write_message(DISCONNECT, reason.encode_payload(), timeout=1.0)
    except (TransportError, EthnodeError, OSError):
        pass
    finally:
        conn.close()


__all__ = ["probe", "ProbeResult", "fork_id_text", "DIAL_TIMEOUT"]
