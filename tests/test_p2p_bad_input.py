"""Hostile and broken peers against a listening ethnode.

Every case must end in a clean disconnect (with the right reason, when the stream still
allows sending one) or a plain close, with exactly one log line from ethnode.p2p, no
exception reaching the event loop and no task left behind (``run_checked``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from p2p_support import STEP_TIMEOUT, RawPeer, reason_of, run_checked

from ethnode.commands.logformat import plain_text
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.p2p.config import ServerConfig
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.peer import DISCONNECT, HELLO, PING, Peer
from ethnode.p2p.protocol import Capability, Protocol
from ethnode.p2p.rlpx import transport
from ethnode.p2p.server import Server

HOST = "127.0.0.1"
OURS = Capability("test", 1)
HANDSHAKE_TIMEOUT = 0.5  # short, so stalled handshakes end quickly here


class _Sink:
    def __init__(self, channel: Any) -> None:
        self.channel = channel

    async def handle(self, code: int, payload: bytes) -> None:
        pass


@dataclass
class Outcome:
    observed: Any = None
    peer: Peer | None = None
    reason: DiscReason | None = None
    elapsed: float = 0.0
    log: list[str] = field(default_factory=list)


def attack(
    caplog: Any, scenario: Callable[[Server], Awaitable[Any]], **server_config: Any
) -> Outcome:
    """Run ``scenario`` against a fresh server; collect what ethnode did about it."""
    outcome = Outcome()

    async def main() -> None:
        peers: list[Peer] = []
        kwargs: dict[str, Any] = {"handshake_timeout": HANDSHAKE_TIMEOUT, **server_config}
        config = ServerConfig(listen_addr=f"{HOST}:0", no_discovery=True, **kwargs)
        node = Server(PrivateKey.generate(), config, protocols=[Protocol("test", 1, 4, _Sink)],
                      on_peer=peers.append)
        await node.start()
        caplog.clear()
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            outcome.observed = await scenario(node)
            if peers:
                outcome.peer = peers[0]
                outcome.reason = await asyncio.wait_for(peers[0].wait_ended(), STEP_TIMEOUT)
            else:
                # handshake failures: the inbound task ends right after its log line
                await asyncio.wait_for(_until(lambda: not node._tasks), STEP_TIMEOUT)
            outcome.elapsed = loop.time() - start
        finally:
            await node.stop()

    # the logger's own level too: other tests may have set "ethnode" to INFO in this process
    with caplog.at_level("DEBUG"), caplog.at_level("DEBUG", logger="ethnode.p2p"):
        run_checked(main)
    # the server's "Adding p2p peer" bookkeeping line is not about the failure
    outcome.log = [plain_text(r) for r in caplog.records
                   if r.name.startswith("ethnode.p2p") and not r.getMessage().startswith("Adding p2p peer")]
    stray = [r.getMessage() for r in caplog.records if not r.name.startswith("ethnode")]
    assert not stray, f"unexpected log records: {stray}"
    assert len(outcome.log) == 1, f"expected one log line, got {outcome.log}"
    return outcome


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def _connect(node: Server) -> RawPeer:
    return await RawPeer.connect(HOST, node.port, node.node_id)


async def _after_hello(node: Server) -> RawPeer:
    raw = await _connect(node)
    hello = await raw.exchange_hello([OURS])
    assert hello.caps == [OURS]
    return raw


# ---------------------------------------------------------------------------------------
# Before and during the RLPx handshake


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xff" + bytes(300),  # declares a 64 KiB auth: refused from the size alone
        b"\x01\x00" + b"\x5a" * 256,  # a well-sized packet that is not ECIES
        b"\x04" + b"\x11" * 306,  # the size of a pre-EIP-8 auth, but garbage
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # someone else's protocol
    ],
    ids=["oversize-prefix", "not-ecies", "legacy-sized", "http"],
)
def test_garbage_instead_of_auth(caplog: Any, garbage: bytes) -> None:
    async def scenario(node: Server) -> bytes:
        raw = await RawPeer.open(HOST, node.port)
        await raw.send_raw(garbage)
        try:
            return await raw.at_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.observed == b""  # closed without a word: there is no channel to speak on
    assert outcome.peer is None
    assert "handshake failed" in outcome.log[0]


@pytest.mark.parametrize(
    "sent", [b"", b"\x01", b"\x01\x00" + bytes(100)], ids=["silent", "1-byte", "half-auth"]
)
def test_stalled_handshake_times_out(caplog: Any, sent: bytes) -> None:
    async def scenario(node: Server) -> bytes:
        raw = await RawPeer.open(HOST, node.port)
        await raw.send_raw(sent)
        try:
            return await raw.at_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.observed == b""
    assert HANDSHAKE_TIMEOUT * 0.8 < outcome.elapsed < HANDSHAKE_TIMEOUT + 3
    assert "HandshakeTimeoutError" in outcome.log[0]


def test_connection_dropped_mid_auth(caplog: Any) -> None:
    async def scenario(node: Server) -> None:
        raw = await RawPeer.open(HOST, node.port)
        await raw.send_raw(b"\x01\x00" + bytes(50))
        raw.close()

    outcome = attack(caplog, scenario)
    assert "ConnectionClosedError" in outcome.log[0]


def test_garbage_ack_fails_the_dial_cleanly(caplog: Any) -> None:
    """The outbound side: a 'node' that answers our auth with junk."""

    async def junk_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\x00\x80" + bytes(128))
        await writer.drain()
        await reader.read()  # until the dialer gives up
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(junk_server, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(EthnodeError):
                await transport.dial(HOST, port, PrivateKey.generate(), PrivateKey.generate().public_key)
        finally:
            server.close()
            await server.wait_closed()

    run_checked(main)


# ---------------------------------------------------------------------------------------
# Framing: MACs, sizes, stalls


@pytest.mark.parametrize("where", [0, 20, 40, -1], ids=["header", "header-mac", "body", "frame-mac"])
def test_bad_mac(caplog: Any, where: int) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _after_hello(node)
        frame = bytearray(raw.frame(0x10, b"\xc3\x01\x02\x03" * 8))
        frame[where] ^= 0x01
        await raw.send_raw(bytes(frame))
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.PROTOCOL_ERROR
    assert reason_of(outcome.observed) == DiscReason.PROTOCOL_ERROR
    assert "MACMismatchError" in outcome.log[0]


def test_oversize_frame_before_hello_is_refused_from_its_header(caplog: Any) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _connect(node)
        frame = raw.frame(HELLO, bytes(1024 * 1024))
        await raw.send_raw(frame[:32])  # the header alone: the body is never awaited
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.PROTOCOL_ERROR
    assert [code for code, _ in outcome.observed] == [HELLO, DISCONNECT]
    assert reason_of(outcome.observed) == DiscReason.PROTOCOL_ERROR
    assert outcome.elapsed < 2
    assert "MessageTooLargeError" in outcome.log[0]


def test_hello_over_2kib(caplog: Any) -> None:
    """A Hello just over 2 KiB still fits the pre-Hello frame limit; the Hello check catches it."""

    async def scenario(node: Server) -> list[Any]:
        raw = await _connect(node)
        hello = raw.hello([OURS], client="x" * 1970)
        assert 2048 < len(hello) < 2060
        await raw.send(HELLO, hello)
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.PROTOCOL_ERROR
    assert reason_of(outcome.observed) == DiscReason.PROTOCOL_ERROR
    assert "over the limit" in outcome.log[0]


@pytest.mark.parametrize("before_hello", [False, True], ids=["after-hello", "mid-hello"])
def test_peer_stalls_mid_frame(caplog: Any, monkeypatch: Any, before_hello: bool) -> None:
    monkeypatch.setattr(transport, "FRAME_READ_TIMEOUT", 0.5)

    async def scenario(node: Server) -> list[Any]:
        if before_hello:
            raw = await _connect(node)
            frame = raw.frame(HELLO, raw.hello([OURS]))
        else:
            raw = await _after_hello(node)
            frame = raw.frame(0x10, b"\xc1\x01" * 100)
        await raw.send_raw(frame[:32 + 16])  # header and one block of a longer body
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    # geth: a failed read, its timeout included, is DiscNetworkError and nothing is sent
    assert outcome.reason is DiscReason.NETWORK_ERROR
    assert reason_of(outcome.observed) is None
    assert 0.4 < outcome.elapsed < 4
    assert "read timed out" in outcome.log[0]


def test_peer_closes_mid_frame(caplog: Any) -> None:
    async def scenario(node: Server) -> None:
        raw = await _after_hello(node)
        await raw.send_raw(raw.frame(0x10, bytes(200))[:60])
        raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.NETWORK_ERROR  # nothing to send it on
    assert not outcome.peer.remote_requested


# ---------------------------------------------------------------------------------------
# The base protocol


def test_hello_with_no_shared_capability(caplog: Any) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _connect(node)
        # Both sides are v5, so snappy is on once the Hellos are exchanged; like geth, the
        # node turns it on before deciding the peer is useless, so the Disconnect is compressed.
        await raw.exchange_hello([Capability("test", 2), Capability("other", 1)])
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.USELESS_PEER
    assert [code for code, _ in outcome.observed] == [DISCONNECT]
    assert reason_of(outcome.observed) == 0x03
    assert "no shared capability" in outcome.log[0]


def test_second_hello(caplog: Any) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _after_hello(node)
        await raw.send(HELLO, raw.hello([OURS]))
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.PROTOCOL_ERROR
    assert reason_of(outcome.observed) == DiscReason.PROTOCOL_ERROR
    assert "second Hello" in outcome.log[0]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"\x80\x80\x80\x10" + bytes(20), "PlainMessageTooLargeError"),  # declares 32 MiB
        (b"\xff\xff\xff\xff\x0f" + bytes(20), "PlainMessageTooLargeError"),  # declares 4 GiB
        (b"\xff" * 11, "SnappyError"),  # a length varint that never ends
        (b"\x0a\xff\xff\xff", "SnappyError"),  # a sane length, then corrupt data
    ],
    ids=["32MiB", "4GiB", "bad-varint", "corrupt"],
)
def test_snappy_bomb(caplog: Any, payload: bytes, needle: str) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _after_hello(node)
        await raw.send_raw(raw.codec.write(0x10, payload))  # bypass our own compression
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.PROTOCOL_ERROR
    assert reason_of(outcome.observed) == DiscReason.PROTOCOL_ERROR
    assert needle in outcome.log[0]


def test_no_pong_drops_the_peer(caplog: Any) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _after_hello(node)
        try:
            return await raw.read_until_eof()  # reads the Pings, never answers
        finally:
            raw.close()

    outcome = attack(caplog, scenario, ping_interval=0.2)
    assert outcome.reason is DiscReason.READ_TIMEOUT
    assert [code for code, _ in outcome.observed] == [PING, DISCONNECT]
    assert reason_of(outcome.observed) == DiscReason.READ_TIMEOUT
    assert "no Pong" in outcome.log[0]


def test_answered_pings_keep_the_peer(caplog: Any) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _after_hello(node)
        reading = asyncio.ensure_future(raw.read_until_eof(pong=True))
        await asyncio.sleep(1.0)  # five ping intervals
        await raw.send(DISCONNECT, DiscReason.REQUESTED.encode_payload())
        try:
            return await reading
        finally:
            raw.close()

    outcome = attack(caplog, scenario, ping_interval=0.2)
    assert outcome.reason is DiscReason.REQUESTED and outcome.peer.remote_requested
    assert [code for code, _ in outcome.observed].count(PING) >= 3


def test_a_busy_peer_whose_pong_is_queued_is_kept(caplog: Any) -> None:
    """A pipelining peer's Pong waits behind the requests it sent first (one message per turn),
    so it arrives late though the peer answered at once: a peer that keeps sending is alive."""

    async def scenario(node: Server) -> list[Any]:
        raw = await _after_hello(node)
        reading = asyncio.ensure_future(raw.read_until_eof())  # never answers a Ping
        for _ in range(10):  # five ping intervals of traffic (a reserved base code: read and ignored)
            await raw.send(0x0F, b"\xc0")
            await asyncio.sleep(0.1)
        await raw.send(DISCONNECT, DiscReason.REQUESTED.encode_payload())
        try:
            return await reading
        finally:
            raw.close()

    outcome = attack(caplog, scenario, ping_interval=0.2)
    assert outcome.reason is DiscReason.REQUESTED and outcome.peer.remote_requested
    assert [code for code, _ in outcome.observed].count(PING) >= 3


@pytest.mark.parametrize(
    ("node_id", "expected"),
    [(bytes(64), DiscReason.INVALID_IDENTITY), (b"\x01" * 63, DiscReason.INVALID_IDENTITY), (None, None)],
    ids=["zero", "short", "someone-else"],
)
def test_hello_identity(caplog: Any, node_id: bytes | None, expected: DiscReason | None) -> None:
    expected = expected or DiscReason.UNEXPECTED_IDENTITY

    async def scenario(node: Server) -> list[Any]:
        raw = await _connect(node)
        other = node_id if node_id is not None else PrivateKey.generate().node_id
        await raw.send(HELLO, raw.hello([OURS], node_id=other))
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is expected
    assert reason_of(outcome.observed) == expected


@pytest.mark.parametrize(
    ("code", "payload", "needle"),
    [
        (HELLO, b"\xc3\x05\x80\x80", "malformed Hello"),
        (HELLO, b"\xff\x00", "malformed Hello"),
        (0x10, b"\xc0", "expected Hello"),
        (PING, b"\xc0", "expected Hello"),
    ],
    ids=["short-hello", "not-rlp", "subprotocol-first", "ping-first"],
)
def test_bad_first_message(caplog: Any, code: int, payload: bytes, needle: str) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _connect(node)
        await raw.send(code, payload)
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.PROTOCOL_ERROR
    assert reason_of(outcome.observed) == DiscReason.PROTOCOL_ERROR
    assert needle in outcome.log[0]


def test_message_code_outside_every_protocol(caplog: Any) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _after_hello(node)
        await raw.send(0x05, b"\xc0")  # reserved base code: ignored, as geth does
        await raw.send(0x10 + 4, b"\xc0")  # test/1 has four codes: 0x10-0x13
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.PROTOCOL_ERROR
    assert "0x14" in outcome.log[0]


def test_disconnect_before_hello_is_surfaced(caplog: Any) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _connect(node)
        await raw.send(DISCONNECT, DiscReason.TOO_MANY_PEERS.encode_payload())
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.TOO_MANY_PEERS and outcome.peer.remote_requested
    assert [code for code, _ in outcome.observed] == [HELLO]  # no Disconnect echoed back
    assert "too many peers" in outcome.log[0]


def test_garbage_disconnect_reason(caplog: Any) -> None:
    async def scenario(node: Server) -> list[Any]:
        raw = await _after_hello(node)
        await raw.send(DISCONNECT, b"\xc2\xc0\xc0")
        try:
            return await raw.read_until_eof()
        finally:
            raw.close()

    outcome = attack(caplog, scenario)
    assert outcome.reason is DiscReason.INVALID and outcome.peer.remote_requested
