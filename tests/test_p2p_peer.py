"""The devp2p base protocol: Hello, capability matching, Ping/Pong, Disconnect, routing,
between two p2p Servers on loopback (the Server's own rules are in test_p2p_server.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from p2p_support import local_server, run_checked
from shared_support import load_vector

from ethnode import rlp
from ethnode.commands.logformat import plain_text
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.p2p.disconnect import DisconnectRequested, DiscReason
from ethnode.p2p.peer import BASE_PROTOCOL_VERSION, Hello, Peer, check_hello, default_client_id
from ethnode.p2p.protocol import Capability, Protocol, ProtocolChannel, find_protocol, match_protocols
from ethnode.p2p.server import Server

# ---------------------------------------------------------------------------------------
# DiscReason


def test_disc_reason_codes_and_geth_descriptions() -> None:
    assert [int(r) for r in DiscReason if r is not DiscReason.INVALID] == [*range(0x0C), 0x10]
    # geth p2p/peer_error.go discReasonToString
    assert DiscReason.REQUESTED.description == "disconnect requested"
    assert DiscReason.USELESS_PEER.description == "useless peer"
    assert str(DiscReason.INCOMPATIBLE_VERSION) == "incompatible p2p protocol version"
    assert str(DiscReason.READ_TIMEOUT) == "read timeout"
    assert str(DiscReason.SUBPROTOCOL_ERROR) == "subprotocol error"


@pytest.mark.parametrize("reason", [r for r in DiscReason if r is not DiscReason.INVALID])
def test_disc_reason_round_trip(reason: DiscReason) -> None:
    payload = reason.encode_payload()
    assert rlp.decode(payload) == [rlp.decode(rlp.encode(int(reason)))]
    assert DiscReason.decode_payload(payload) is reason


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\xc1\x03", DiscReason.USELESS_PEER),  # the specified form, [reason]
        (b"\x03", DiscReason.USELESS_PEER),  # legacy bare integer (older geth)
        (b"\x80", DiscReason.REQUESTED),  # legacy bare zero
        (b"\xc1\x80", DiscReason.REQUESTED),
        (b"\xc2\x10\x05", DiscReason.SUBPROTOCOL_ERROR),  # extra elements ignored
        (b"\xc0", DiscReason.INVALID),  # empty list
        (b"\xc1\x0c", DiscReason.INVALID),  # a code geth does not name
        (b"\xc3\x82\x01\x00", DiscReason.INVALID),  # over a uint8
        (b"\xc1\x00", DiscReason.INVALID),  # non-canonical zero
        (b"\xc2\xc1\x01", DiscReason.INVALID),  # a list where the integer goes
        (b"", DiscReason.INVALID),
        (b"\xff\xff", DiscReason.INVALID),
    ],
)
def test_disc_reason_lenient_decoding(payload: bytes, expected: DiscReason) -> None:
    assert DiscReason.decode_payload(payload) is expected


def test_invalid_reason_is_never_sent() -> None:
    with pytest.raises(ValueError):
        DiscReason.INVALID.encode_payload()


# ---------------------------------------------------------------------------------------
# Hello


def test_hello_eip8_vector_with_extra_fields() -> None:
    vector = load_vector("rlpx", "eip8_handshake.json")["devp2p_hello_eip8"]
    hello = Hello.decode(bytes.fromhex(vector["hex"]))
    decoded = vector["decoded_derived"]
    assert hello.version == decoded["protocolVersion"]
    assert hello.client_name == decoded["clientId"]
    assert hello.caps == [Capability(n, v) for n, v in decoded["capabilities"]]
    assert hello.listen_port == decoded["listenPort"]
    assert hello.node_id.hex() == decoded["nodeId"]


def test_hello_create_round_trip() -> None:
    key = PrivateKey.generate()
    hello = Hello.create("ethnode/test", [Capability("eth", 69), Capability("snap", 1)], 30303, key.node_id)
    again = Hello.decode(hello.encode())
    assert again == hello
    assert again.version == BASE_PROTOCOL_VERSION == 5
    assert again.caps == [Capability("eth", 69), Capability("snap", 1)]
    with pytest.raises(ValueError):  # peers refuse a Hello over 2 KiB
        Hello.create("x" * 2000, [], 0, key.node_id)


def test_default_client_id_shape() -> None:
    assert re.fullmatch(r"ethnode/v[\d.]+/\w+-\w+/python3\.\d+", default_client_id())
    assert default_client_id("box").startswith("ethnode/box/v")


def _proto(name: str, version: int, length: int = 4) -> Protocol:
    return Protocol(name, version, length, lambda channel: _Recorder(channel))


def test_check_hello_identity_rules() -> None:
    key = PrivateKey.generate()
    good = Hello.create("x", [Capability("eth", 69)], 0, key.node_id)
    assert check_hello(good, key.node_id, [_proto("eth", 69)]) is None
    assert check_hello(good.replace(node_id=bytes(64)), key.node_id, [])[0] is DiscReason.INVALID_IDENTITY
    assert check_hello(good.replace(node_id=key.node_id[:63]), None, [])[0] is DiscReason.INVALID_IDENTITY
    other = PrivateKey.generate().node_id
    assert check_hello(good, other, [])[0] is DiscReason.UNEXPECTED_IDENTITY
    assert check_hello(good, key.node_id, [_proto("les", 4)])[0] is DiscReason.USELESS_PEER
    assert check_hello(good, key.node_id, []) is None  # a node with no protocols takes anyone


# ---------------------------------------------------------------------------------------
# Capability matching (cases modelled on geth p2p/peer_test.go TestMatchProtocols)


def _layout(ours: list[Protocol], theirs: list[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    matched = match_protocols(ours, [Capability(n, v) for n, v in theirs])
    return {m.protocol.name: (m.protocol.version, m.offset) for m in matched}


def test_match_nothing_in_common() -> None:
    assert _layout([_proto("a", 1)], [("b", 1)]) == {}
    assert _layout([_proto("a", 1)], [("a", 2)]) == {}


def test_match_offsets_follow_sorted_names_not_order_given() -> None:
    ours = [_proto("c", 1, 3), _proto("a", 1, 2), _proto("b", 1, 5)]
    assert _layout(ours, [("b", 1), ("c", 1), ("a", 1)]) == {"a": (1, 0x10), "b": (1, 0x12), "c": (1, 0x17)}


def test_match_highest_common_version_wins() -> None:
    ours = [_proto("eth", 68, 17), _proto("eth", 69, 18), _proto("snap", 1, 8)]
    theirs = [("eth", 67), ("eth", 68), ("eth", 69), ("eth", 70), ("snap", 1)]
    assert _layout(ours, theirs) == {"eth": (69, 0x10), "snap": (1, 0x10 + 18)}
    assert _layout(ours, [("eth", 68), ("snap", 1)]) == {"eth": (68, 0x10), "snap": (1, 0x10 + 17)}


def test_match_ignores_unknown_and_duplicate_caps() -> None:
    ours = [_proto("eth", 69, 18)]
    assert _layout(ours, [("zzz", 1), ("eth", 69), ("eth", 69), ("aaa", 9)]) == {"eth": (69, 0x10)}


def test_find_protocol_by_absolute_code() -> None:
    theirs = [Capability("a", 1), Capability("b", 1)]
    matched = match_protocols([_proto("a", 1, 2), _proto("b", 1, 3)], theirs)
    owners = [find_protocol(matched, code) for code in range(0x0F, 0x16)]
    assert [m.protocol.name if m else None for m in owners] == [None, "a", "a", "b", "b", "b", None]


def test_protocol_validation() -> None:
    with pytest.raises(ValueError):
        Protocol("", 1, 1, _Recorder)
    with pytest.raises(ValueError):
        Protocol("eth", 1, 0, _Recorder)


# ---------------------------------------------------------------------------------------
# Two ethnode peers over loopback


class _Recorder:
    """A sub-protocol handler that records what it gets and answers code 0 with code 1."""

    instances: list[_Recorder] = []

    def __init__(self, channel: ProtocolChannel) -> None:
        self.channel = channel
        self.got: list[tuple[int, bytes]] = []
        self.arrived = asyncio.Event()
        _Recorder.instances.append(self)

    async def handle(self, code: int, payload: bytes) -> None:
        self.got.append((code, payload))
        self.arrived.set()
        if code == 0:
            await self.channel.send(1, payload)


async def _pair(
    protocols_a: list[Protocol], protocols_b: list[Protocol], **kwargs: Any
) -> tuple[Server, Server, Peer, Peer]:
    """A listens, B dials; returns both servers and (B's peer, A's peer) once Hello is done."""
    inbound: asyncio.Queue[Peer] = asyncio.Queue(maxsize=4)
    a = local_server(protocols_a, on_peer=inbound.put_nowait, **kwargs)
    b = local_server(protocols_b, **kwargs)
    await a.start()
    await b.start()
    out = await b.dial(a.enode)
    into = await asyncio.wait_for(inbound.get(), 5)
    await asyncio.wait_for(asyncio.gather(out.wait_ready(), into.wait_ready()), 5)
    return a, b, out, into


def test_hello_exchange_and_subprotocol_routing() -> None:
    async def scenario() -> None:
        _Recorder.instances.clear()
        protos = [_proto("zed", 1, 2), _proto("abc", 2, 3), _proto("abc", 1, 3)]
        a, b, out, into = await _pair(protos, [_proto("zed", 1, 2), _proto("abc", 1, 3)])
        try:
            assert out.client_id == into.client_id == default_client_id()
            assert out.remote_id == a.node_id and into.remote_id == b.node_id
            assert into.remote_hello.listen_port == b.port and out.remote_hello.listen_port == a.port
            assert out.conn.snappy and into.conn.snappy
            for peer in (out, into):
                layout = [(m.protocol.name, m.protocol.version, m.offset) for m in peer.matched]
                assert layout == [("abc", 1, 0x10), ("zed", 1, 0x13)]
            # B sends zed code 0 -> A's zed handler echoes it as zed code 1 -> B's zed handler.
            zed_out = out.handlers["zed"]
            await zed_out.channel.send(0, rlp.encode([b"hello", 7]))
            await asyncio.wait_for(zed_out.arrived.wait(), 5)
            assert zed_out.got == [(1, rlp.encode([b"hello", 7]))]
            assert into.handlers["zed"].got == [(0, rlp.encode([b"hello", 7]))]
            assert into.handlers["abc"].got == [] and out.handlers["abc"].got == []
            with pytest.raises(ValueError):
                await zed_out.channel.send(2, b"\xc0")  # zed has two codes
        finally:
            out.disconnect(DiscReason.REQUESTED)
            assert await asyncio.wait_for(out.wait_ended(), 5) is DiscReason.REQUESTED
            assert await asyncio.wait_for(into.wait_ended(), 5) is DiscReason.REQUESTED
            assert into.remote_requested and not out.remote_requested
            await a.stop()
            await b.stop()

    run_checked(scenario)


def test_ping_pong_keeps_peers_alive() -> None:
    async def scenario() -> None:
        a, b, out, into = await _pair([], [], ping_interval=0.05)
        try:
            await asyncio.sleep(0.4)  # eight ping intervals
            assert out.reason is None and into.reason is None
            assert out.last_pong is not None and into.last_pong is not None
            now = asyncio.get_running_loop().time()
            assert now - out.last_pong < 0.2 and now - into.last_pong < 0.2
        finally:
            await a.stop()
            await b.stop()
        assert out.reason is DiscReason.QUITTING or into.reason is DiscReason.QUITTING

    run_checked(scenario)


def test_every_reason_is_surfaced_on_the_other_side() -> None:
    async def scenario() -> None:
        a, b, first, _ = await _pair([], [])
        try:
            first.disconnect(DiscReason.REQUESTED)  # one connection per node pair: make room for the next
            await asyncio.wait_for(first.wait_ended(), 5)
            for reason in (DiscReason.TOO_MANY_PEERS, DiscReason.SUBPROTOCOL_ERROR, DiscReason.SELF):
                inbound: asyncio.Queue[Peer] = asyncio.Queue(maxsize=1)
                a.on_peer = inbound.put_nowait
                out = await b.dial(a.enode)
                into = await asyncio.wait_for(inbound.get(), 5)
                await out.wait_ready()
                into.disconnect(reason)
                assert await asyncio.wait_for(out.wait_ended(), 5) is reason
                assert out.remote_requested
                assert await asyncio.wait_for(into.wait_ended(), 5) is reason
        finally:
            await a.stop()
            await b.stop()

    run_checked(scenario)


class _Runner:
    """A handler with a ``run`` that does what the test tells it to."""

    behaviour: Callable[[], Any] = staticmethod(lambda: None)

    def __init__(self, channel: ProtocolChannel) -> None:
        self.channel = channel

    async def handle(self, code: int, payload: bytes) -> None:
        if payload == b"\x81\xff":
            raise rlp.DecodingError("handler could not decode")
        if payload == b"\x81\xfe":
            raise KeyError("a bug in a handler")

    async def run(self) -> None:
        result = type(self).behaviour()
        if asyncio.iscoroutine(result):
            await result


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("return", DiscReason.QUITTING),  # geth: a protocol that returns ends the peer
        ("useless", DiscReason.USELESS_PEER),
        ("ethnode-error", DiscReason.SUBPROTOCOL_ERROR),
    ],
)
def test_handler_run_outcome_decides_the_reason(behaviour: str, expected: DiscReason) -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    def act() -> Any:
        if behaviour == "useless":
            raise DisconnectRequested(DiscReason.USELESS_PEER, "wrong network")
        if behaviour == "ethnode-error":
            raise EthnodeError("status mismatch")
        return None

    class Acting(_Runner):
        behaviour = staticmethod(act)

    class Waiting(_Runner):
        behaviour = staticmethod(forever)

    async def scenario() -> None:
        a, b, out, into = await _pair([Protocol("p", 1, 1, Acting)], [Protocol("p", 1, 1, Waiting)])
        try:
            assert await asyncio.wait_for(into.wait_ended(), 5) is expected
            assert await asyncio.wait_for(out.wait_ended(), 5) is expected
            assert out.remote_requested
        finally:
            await a.stop()
            await b.stop()

    run_checked(scenario)


@pytest.mark.parametrize(
    ("payload", "level"), [(b"\x81\xff", "DEBUG"), (b"\x81\xfe", "ERROR")], ids=["decoding", "bug"]
)
def test_handler_errors_become_subprotocol_error(payload: bytes, level: str, caplog: Any) -> None:
    class Waiting(_Runner):
        behaviour = staticmethod(lambda: asyncio.Event().wait())

    async def scenario() -> None:
        a, b, out, into = await _pair([Protocol("p", 1, 1, Waiting)], [Protocol("p", 1, 1, Waiting)])
        try:
            caplog.clear()
            await out.send(0x10, payload)
            assert await asyncio.wait_for(into.wait_ended(), 5) is DiscReason.SUBPROTOCOL_ERROR
            assert await asyncio.wait_for(out.wait_ended(), 5) is DiscReason.SUBPROTOCOL_ERROR
        finally:
            await a.stop()
            await b.stop()

    with caplog.at_level("DEBUG", logger="ethnode.p2p"):
        run_checked(scenario)
    messages = [(r, plain_text(r)) for r in caplog.records]  # the message with its fields, as a log line shows them
    ended = [r for r, text in messages if 'reason="subprotocol error"' in text and "side=local" in text]
    assert [r.levelname for r in ended] == [level]
    assert (ended[0].exc_info is not None) == (level == "ERROR")


def test_server_stop_sends_quitting_and_leaves_nothing_behind() -> None:
    async def scenario() -> None:
        a, b, out, into = await _pair([], [])
        await a.stop()
        assert into.reason is DiscReason.QUITTING
        assert await asyncio.wait_for(out.wait_ended(), 5) is DiscReason.QUITTING
        assert out.remote_requested
        assert not a.peers()
        await b.stop()
        assert not b.peers()

    run_checked(scenario)


def test_dialing_a_node_that_is_not_there() -> None:
    async def scenario() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        node = local_server()
        await node.start()
        try:
            with pytest.raises(OSError):
                await node.dial(f"enode://{PrivateKey.generate().node_id.hex()}@127.0.0.1:{port}")
        finally:
            await node.stop()

    run_checked(scenario)
