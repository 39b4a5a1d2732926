"""RLPx handshakes per second and loopback message streaming, compiled vs pure frame codec.

- handshake, sans-IO: Initiator and Recipient in one process, no sockets (the crypto:
  ECIES both ways, ECDH x4, one signature and one recovery);
- handshake, loopback: TCP connect + handshake + close, both sides on one event loop;
- streaming: one loopback connection, 1 KiB messages written as fast as the socket takes
  them and read by the one reader; MB/s and msgs/s for each frame codec.

    PYTHONPATH=. python benches/bench_handshake.py            # prints a summary table
    PYTHONPATH=. python -m pytest benches/bench_handshake.py --benchmark-only -q
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from ethnode.crypto.keys import PrivateKey
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.rlpx import transport
from ethnode.p2p.rlpx.frame import frame_implementation
from ethnode.p2p.rlpx.handshake import Initiator, Recipient

MESSAGE_SIZE = 1024
STREAM_MESSAGES = 20_000
LOOPBACK_HANDSHAKES = 200


def sans_io_handshake(a: PrivateKey, b: PrivateKey) -> None:
    initiator = Initiator(a, b.public_key)
    recipient = Recipient(b)
    recipient.receive_auth(initiator.auth_message())
    ack = recipient.ack_message()
    assert initiator.receive_ack(ack).aes == recipient.secrets().aes


async def _loopback_handshakes(count: int, codec: type | None = None) -> float:
    """Seconds for ``count`` sequential dial + handshake + close over loopback."""
    server_key, client_key = PrivateKey.generate(), PrivateKey.generate()
    tasks: set[asyncio.Task[Any]] = set()

    def accepted(conn: transport.Connection) -> None:
        async def serve() -> None:
            try:
                await conn.respond(server_key)
            finally:
                conn.close()

        task = asyncio.ensure_future(serve())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await transport.start_server("127.0.0.1", 0, accepted, frame_codec=codec)
    port = server.sockets[0].getsockname()[1]
    start = time.perf_counter()
    for _ in range(count):
        conn = await transport.dial("127.0.0.1", port, client_key, server_key.public_key, frame_codec=codec)
        conn.close()
    elapsed = time.perf_counter() - start
    await asyncio.gather(*tasks)
    server.close()
    await server.wait_closed()
    return elapsed


async def _stream(codec: type, count: int, size: int, snappy: bool = False) -> float:
    """Seconds to push ``count`` messages of ``size`` bytes through one loopback connection."""
    server_key, client_key = PrivateKey.generate(), PrivateKey.generate()
    accepted: asyncio.Queue[transport.Connection] = asyncio.Queue(maxsize=1)
    server = await transport.start_server("127.0.0.1", 0, accepted.put_nowait, frame_codec=codec)
    port = server.sockets[0].getsockname()[1]
    dialing = asyncio.ensure_future(
        transport.dial("127.0.0.1", port, client_key, server_key.public_key, frame_codec=codec)
    )
    inbound = await accepted.get()
    await inbound.respond(server_key)
    outbound = await dialing
    outbound.snappy = inbound.snappy = snappy
    payload = os.urandom(size)

    async def write_all() -> None:
        write = outbound.write_message
        for _ in range(count):
            await write(0x10, payload)

    start = time.perf_counter()
    writer = asyncio.ensure_future(write_all())
    read = inbound.read_message
    for _ in range(count):
        await read()
    await writer
    elapsed = time.perf_counter() - start
    outbound.abort()
    inbound.abort()
    server.close()
    await server.wait_closed()
    return elapsed


def _codec(kind: str) -> type:
    try:
        return frame_implementation(kind)
    except ImportError as exc:
        pytest.skip(f"compiled frame codec unavailable: {exc}")


def test_handshake_sans_io(benchmark: Any) -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()
    benchmark.group = "rlpx handshake"
    benchmark(sans_io_handshake, a, b)


def test_handshake_loopback(benchmark: Any) -> None:
    benchmark.group = "rlpx handshake"
    benchmark.pedantic(lambda: p2p_loop.run(_loopback_handshakes(20)), rounds=5, iterations=1)


@pytest.mark.parametrize("kind", ["compiled", "pure"])
def test_stream_1kib(benchmark: Any, kind: str) -> None:
    codec = _codec(kind)
    benchmark.group = f"loopback stream of {STREAM_MESSAGES} x 1 KiB messages"
    benchmark.pedantic(lambda: p2p_loop.run(_stream(codec, STREAM_MESSAGES, MESSAGE_SIZE)), rounds=3)


def main() -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()
    n = 300
    start = time.perf_counter()
    for _ in range(n):
        sans_io_handshake(a, b)
    print(f"event loop: {p2p_loop.loop_implementation()}")
    print(f"handshake, sans-IO, both sides:      {n / (time.perf_counter() - start):8.0f} /s")
    elapsed = p2p_loop.run(_loopback_handshakes(LOOPBACK_HANDSHAKES))
    print(f"handshake, loopback TCP, both sides: {LOOPBACK_HANDSHAKES / elapsed:8.0f} /s")
    for kind in ("compiled", "pure"):
        try:
            codec = frame_implementation(kind)
        except ImportError as exc:
            print(f"stream {kind}: unavailable ({exc})")
            continue
        for snappy in (False, True):
            best = min(p2p_loop.run(_stream(codec, STREAM_MESSAGES, MESSAGE_SIZE, snappy)) for _ in range(3))
            mb = STREAM_MESSAGES * MESSAGE_SIZE / best / 1e6
            label = f"stream 1 KiB, {kind:8} codec{', snappy' if snappy else ''}:"
            print(f"{label:38} {mb:7.1f} MB/s {STREAM_MESSAGES / best:9.0f} msgs/s")


if __name__ == "__main__":
    main()
