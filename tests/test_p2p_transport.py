"""The asyncio RLPx transport: handshake over TCP, framed messages, timeouts, flow control."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from p2p_support import run_checked

from ethnode.crypto.errors import ECIESDecryptError
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.rlpx import transport
from ethnode.p2p.rlpx.frame import frame_implementation
from ethnode.p2p.rlpx.snappy import PlainMessageTooLargeError
from ethnode.p2p.rlpx.transport import (
    Connection,
    ConnectionClosedError,
    HandshakeTimeoutError,
    MessageTooLargeError,
    ReadTimeoutError,
    TransportError,
    WriteTimeoutError,
)

HOST = "127.0.0.1"


def codec_class(kind: str) -> type:
    try:
        return frame_implementation(kind)
    except ImportError as exc:
        pytest.skip(f"compiled frame codec unavailable: {exc}")


@asynccontextmanager
async def connected_pair(
    frame_codec: type | None = None, server_key: PrivateKey | None = None
) -> AsyncIterator[tuple[Connection, Connection]]:
    """(dialer, listener) connections over loopback, both handshaken; closed afterwards."""
    server_key = server_key or PrivateKey.generate()
    client_key = PrivateKey.generate()
    accepted: asyncio.Queue[Connection] = asyncio.Queue(maxsize=1)
    server = await transport.start_server(HOST, 0, accepted.put_nowait, frame_codec=frame_codec)
    port = server.sockets[0].getsockname()[1]
    conns: list[Connection] = []
    try:
        dialing = asyncio.ensure_future(
            transport.dial(HOST, port, client_key, server_key.public_key, frame_codec=frame_codec)
        )
        inbound = await accepted.get()
        conns.append(inbound)
        await asyncio.gather(inbound.respond(server_key), dialing)
        outbound = dialing.result()
        conns.append(outbound)
        assert outbound.remote_id == server_key.node_id
        assert inbound.remote_id == client_key.node_id
        yield outbound, inbound
    finally:
        for conn in conns:
            conn.abort()
        for conn in conns:
            await conn.wait_closed()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("loop", ["default", "asyncio"])
@pytest.mark.parametrize("kind", ["compiled", "pure"])
def test_round_trip_both_ways(kind: str, loop: str) -> None:
    codec = codec_class(kind)

    async def scenario() -> None:
        async with connected_pair(codec) as (a, b):
            for size in (0, 1, 15, 16, 17, 1024, 70_000):
                payload = os.urandom(size)
                await a.write_message(0x10 + size % 7, payload)
                assert await b.read_message() == (0x10 + size % 7, payload)
                await b.write_message(0x22, payload)
                assert await a.read_message() == (0x22, payload)

    run_checked(scenario, loop=loop)


def test_snappy_round_trip_and_limits() -> None:
    async def scenario() -> None:
        async with connected_pair() as (a, b):
            a.snappy = b.snappy = True
            payload = b"\x00" * 300_000 + os.urandom(1000)
            await a.write_message(0x11, payload)
            assert await b.read_message() == (0x11, payload)
            with pytest.raises(PlainMessageTooLargeError):  # a local error; the connection lives on
                await a.write_message(0x11, bytes(0x1000000))
            await a.write_message(0x12, b"still fine")
            assert await b.read_message() == (0x12, b"still fine")

    run_checked(scenario)


def test_message_larger_than_read_high_water() -> None:
    """A 10 MiB frame is read even though the receive buffer pauses the socket at 4 MiB."""

    async def scenario() -> None:
        async with connected_pair() as (a, b):
            big = os.urandom(10 * 1024 * 1024)
            writing = asyncio.ensure_future(a.write_message(0x10, big))
            assert await b.read_message() == (0x10, big)
            await writing

    run_checked(scenario)


def test_concurrent_writers_are_serialized() -> None:
    """Many tasks writing at once: every frame arrives intact and each writer's order holds."""

    async def scenario() -> None:
        async with connected_pair() as (a, b):
            writers, per_writer = 20, 50

            async def writer(n: int) -> None:
                for i in range(per_writer):
                    await a.write_message(0x10 + n, i.to_bytes(2, "big") + os.urandom(3000))

            tasks = [asyncio.ensure_future(writer(n)) for n in range(writers)]
            seen: dict[int, list[int]] = {}
            for _ in range(writers * per_writer):
                code, payload = await b.read_message()
                seen.setdefault(code - 0x10, []).append(int.from_bytes(payload[:2], "big"))
            await asyncio.gather(*tasks)
            assert seen == {n: list(range(per_writer)) for n in range(writers)}

    run_checked(scenario)


def test_writer_waits_while_peer_does_not_read_then_times_out() -> None:
    async def scenario() -> None:
        async with connected_pair() as (a, _b):
            a.write_timeout = 0.3
            chunk = bytes(1024 * 1024)
            with pytest.raises(WriteTimeoutError):
                for _ in range(512):  # far beyond the kernel's socket buffers
                    await a.write_message(0x10, chunk)
            assert a.closed
            with pytest.raises(ConnectionClosedError):
                await a.write_message(0x10, b"x")

    run_checked(scenario)


def test_write_timeout_also_bounds_the_wait_behind_another_writer() -> None:
    """A Disconnect queued behind a stuck writer still gives up at its own deadline."""

    async def scenario() -> None:
        async with connected_pair() as (a, _b):
            a.write_timeout = 10
            chunk = bytes(1024 * 1024)

            async def fill() -> None:
                for _ in range(256):  # far beyond what the kernel and the reader buffer
                    await a.write_message(0x10, chunk)

            stuck = asyncio.ensure_future(fill())  # ends up waiting for the drain, holding the lock
            await asyncio.sleep(0.3)
            assert a._write_lock.locked()
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(WriteTimeoutError):
                await a.write_message(0x01, b"\xc1\x08", timeout=0.2)
            assert loop.time() - start < 2
            with pytest.raises(ConnectionClosedError):  # the abort releases the stuck writer too
                await stuck

    run_checked(scenario)


def test_read_timeout_when_nothing_arrives() -> None:
    async def scenario() -> None:
        async with connected_pair() as (a, b):
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(ReadTimeoutError):
                await b.read_message(timeout=0.2)
            assert 0.15 < loop.time() - start < 2
            with pytest.raises(TransportError):  # every read error is final
                await b.read_message()
            del a

    run_checked(scenario)


def test_frames_buffered_before_close_are_still_read() -> None:
    async def scenario() -> None:
        async with connected_pair() as (a, b):
            for i in range(3):
                await a.write_message(0x10, bytes([i]))
            a.close()
            for i in range(3):
                assert await b.read_message() == (0x10, bytes([i]))
            with pytest.raises(ConnectionClosedError):
                await b.read_message()

    run_checked(scenario)


def test_cancelling_a_read_mid_frame_makes_the_connection_unusable() -> None:
    """The only way to abandon a half-read frame is to give up on the connection."""

    async def scenario() -> None:
        async with connected_pair() as (a, b):
            frame = a._codec.write(0x10, b"y" * 100)
            a._stream.transport.write(frame[:40])  # header and a bit of body
            reading = asyncio.ensure_future(b.read_message())
            await asyncio.sleep(0.05)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            assert b.closed
            with pytest.raises(TransportError):
                await b.read_message()

    run_checked(scenario)


def test_cancelling_a_read_between_frames_is_harmless() -> None:
    async def scenario() -> None:
        async with connected_pair() as (a, b):
            reading = asyncio.ensure_future(b.read_message())
            await asyncio.sleep(0.02)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            await a.write_message(0x10, b"after")
            assert await b.read_message() == (0x10, b"after")

    run_checked(scenario)


def test_frame_over_the_current_limit_is_refused_before_its_body() -> None:
    async def scenario() -> None:
        async with connected_pair() as (a, b):
            b.max_frame_size = 100
            frame = a._codec.write(0x10, bytes(5000))
            a._stream.transport.write(frame[:32])  # the header alone announces the size
            with pytest.raises(MessageTooLargeError):
                await b.read_message(timeout=2)

    run_checked(scenario)


def test_handshake_timeout_on_silent_peer() -> None:
    async def scenario() -> None:
        key = PrivateKey.generate()
        accepted: asyncio.Queue[Connection] = asyncio.Queue(maxsize=1)
        server = await transport.start_server(HOST, 0, accepted.put_nowait)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(HOST, port)
        conn = await accepted.get()
        try:
            writer.write(b"\x01\x00abc")  # the start of a 256-byte auth that never completes
            with pytest.raises(HandshakeTimeoutError):
                await conn.respond(key, timeout=0.2)
        finally:
            conn.abort()
            writer.close()
            await conn.wait_closed()
            server.close()
            await server.wait_closed()
        del reader

    run_checked(scenario)


def test_dial_to_the_wrong_key_fails_cleanly() -> None:
    """The listener cannot decrypt an auth sealed to another key; the dialer sees the close."""

    async def scenario() -> None:
        key = PrivateKey.generate()
        accepted: asyncio.Queue[Connection] = asyncio.Queue(maxsize=1)
        server = await transport.start_server(HOST, 0, accepted.put_nowait)
        port = server.sockets[0].getsockname()[1]
        try:
            dialing = asyncio.ensure_future(
                transport.dial(HOST, port, PrivateKey.generate(), PrivateKey.generate().public_key)
            )
            inbound = await accepted.get()
            with pytest.raises(ECIESDecryptError):
                await inbound.respond(key)
            inbound.abort()
            with pytest.raises((EthnodeError, ConnectionError)):
                await dialing
            await inbound.wait_closed()
        finally:
            server.close()
            await server.wait_closed()

    run_checked(scenario)


def test_dial_refused_raises_os_error() -> None:
    async def scenario() -> None:
        probe = await asyncio.start_server(lambda r, w: None, HOST, 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        with pytest.raises(OSError):
            await transport.dial(HOST, port, PrivateKey.generate(), PrivateKey.generate().public_key)

    run_checked(scenario)


def test_loop_helper_prefers_uvloop_when_installed() -> None:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert p2p_loop.loop_implementation() == "asyncio"
    else:
        expected = "asyncio" if os.environ.get("ETHNODE_NO_UVLOOP") else "uvloop"
        assert p2p_loop.loop_implementation() == expected
    assert p2p_loop.run(asyncio.sleep(0, result=7)) == 7
