"""RLPx handshakes per second and loopback message streaming, compiled vs pure.

- handshake, sans-IO: Initiator and Recipient in one process, no sockets, compiled and
  pure handshake crypto. Both sides' curve work: 8 ECDH (static-static and ephemeral-
  ephemeral on each side, one per ECIES seal and open), 3 public keys (two ECIES
  ephemerals, the recipient's ephemeral), 1 signature, 1 recovery: ~270 µs of
  libsecp256k1 here, so ~3,600/s is the ceiling on one core;
- handshake, loopback: TCP connect + handshake + close, both sides on one event loop;
- streaming: geth's ``BenchmarkThroughput`` (p2p/rlpx/rlpx_test.go) in Python: one
  loopback connection, snappy on, the same random 1 KiB payload written as fast as the
  socket takes it and read by the one reader; MB/s counts payload bytes (geth:
  ``b.SetBytes(1024)`` per message read). geth runs writer and reader on two goroutines
  (two cores here); ethnode runs both on one event loop thread.

    PYTHONPATH=. python benches/bench_handshake.py            # prints a summary table
    PYTHONPATH=. python -m pytest benches/bench_handshake.py --benchmark-only -q
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from ethnode.crypto import ecies
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.rlpx import handshake, transport
from ethnode.p2p.rlpx.frame import frame_implementation
from ethnode.p2p.rlpx.handshake import Initiator, Recipient

MESSAGE_SIZE = 1024
STREAM_MESSAGES = 20_000
LOOPBACK_HANDSHAKES = 200
LOOPBACK_PER_CALL = 20


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


@pytest.mark.parametrize("kind", ["compiled", "pure"])
def test_handshake_sans_io(benchmark: Any, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Both sides of one handshake, with the compiled or the pure handshake crypto + ECIES."""
    try:
        monkeypatch.setattr(handshake, "_crypto", handshake.handshake_crypto_implementation(kind))
        monkeypatch.setattr(ecies, "_impl", ecies.ecies_implementation(kind))
    except ImportError as exc:
        pytest.skip(f"compiled handshake crypto unavailable: {exc}")
    a, b = PrivateKey.generate(), PrivateKey.generate()
    benchmark.group = "rlpx handshake sans-IO, both sides"
    benchmark.extra_info.update(impl=kind)
    benchmark(sans_io_handshake, a, b)


def test_handshake_loopback(benchmark: Any) -> None:
    benchmark.group = f"rlpx handshake loopback TCP, both sides ({LOOPBACK_PER_CALL} per call)"
    benchmark.extra_info.update(impl="compiled", items=LOOPBACK_PER_CALL)
    benchmark.pedantic(lambda: p2p_loop.run(_loopback_handshakes(LOOPBACK_PER_CALL)), rounds=5, iterations=1)


@pytest.mark.parametrize("kind", ["compiled", "pure"])
def test_stream_1kib(benchmark: Any, kind: str) -> None:
    """geth's BenchmarkThroughput: one connection, snappy on, 1 KiB random payloads."""
    codec = _codec(kind)
    benchmark.group = f"loopback stream, snappy, {STREAM_MESSAGES} x 1 KiB messages"
    benchmark.extra_info.update(impl=kind, items=STREAM_MESSAGES, message_size=MESSAGE_SIZE)
    benchmark.pedantic(lambda: p2p_loop.run(_stream(codec, STREAM_MESSAGES, MESSAGE_SIZE, snappy=True)), rounds=3)


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
