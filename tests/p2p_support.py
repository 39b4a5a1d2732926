"""Test plumbing for the p2p tests: a checked event-loop runner and a scriptable raw peer.

``run_checked`` runs a coroutine on the preferred loop (uvloop when installed) with a
hard time bound, and fails the test if any exception reached the loop's exception
handler or any task outlived the coroutine: "no exception escaping, no task left behind".

``RawPeer`` speaks RLPx from the sans-IO pieces directly over asyncio streams, so a test
can misbehave in ways ethnode's own Connection never would: garbage, corrupt MACs,
half frames, snappy bombs, second Hellos.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from ethnode import rlp
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.config import ServerConfig
from ethnode.p2p.peer import BASE_PROTOCOL_VERSION, DISCONNECT, HELLO, PING, PONG, Hello, HelloCapability, Peer
from ethnode.p2p.protocol import Capability, Protocol
from ethnode.p2p.rlpx import snappy
from ethnode.p2p.rlpx.frame import FrameCodec
from ethnode.p2p.rlpx.handshake import Initiator
from ethnode.p2p.server import Server

STEP_TIMEOUT = 10.0  # bound on any single wait in a test


def run_checked(make: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, loop: str = "default") -> Any:
    """Run ``make()`` to completion; fail on escaped exceptions or leftover tasks."""
    escaped: list[dict[str, Any]] = []

    async def main() -> Any:
        running = asyncio.get_running_loop()
        running.set_exception_handler(lambda _loop, context: escaped.append(context))
        result = await asyncio.wait_for(make(), timeout)
        for _ in range(3):  # let done-callbacks run
            await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not left, f"tasks left behind: {left}"
        return result

    if loop == "asyncio":
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            result = runner.run(main())
    else:
        result = p2p_loop.run(main())
    assert not escaped, f"exceptions reached the event loop: {escaped}"
    return result


class RawPeer:
    """A hand-driven RLPx initiator for adversarial tests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: PrivateKey) -> None:
        self.reader, self.writer, self.key = reader, writer, key
        self.codec: Any = None
        self.snappy = False

    @classmethod
    async def open(cls, host: str, port: int) -> RawPeer:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, PrivateKey.generate())

    @classmethod
    async def connect(cls, host: str, port: int, remote_id: bytes) -> RawPeer:
        """TCP + a correct RLPx handshake."""
        self = await cls.open(host, port)
        side = Initiator(self.key, remote_id)
        self.writer.write(side.auth_message())
        buf = b""
        while len(buf) < (need := side.packet_size(buf)):
            buf += await asyncio.wait_for(self.reader.readexactly(need - len(buf)), STEP_TIMEOUT)
        secrets = side.receive_ack(buf)
        self.codec = FrameCodec(secrets.aes, secrets.mac, secrets.egress_mac_seed, secrets.ingress_mac_seed)
        return self

    def frame(self, code: int, payload: bytes) -> bytes:
        if self.snappy:
            payload = snappy.compress(payload)
        return bytes(self.codec.write(code, payload))

    async def send(self, code: int, payload: bytes) -> None:
        self.writer.write(self.frame(code, payload))
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self, timeout: float = STEP_TIMEOUT) -> tuple[int, bytes]:
        """The next message; raises asyncio.IncompleteReadError at EOF."""
        header = await asyncio.wait_for(self.reader.readexactly(32), timeout)
        need = self.codec.read_header(header)
        body = await asyncio.wait_for(self.reader.readexactly(need), timeout)
        code, payload = self.codec.read_body(body)
        if self.snappy and code != HELLO:
            payload = snappy.decompress(payload)
        return code, payload

    def hello(self, caps: list[Capability], *, node_id: bytes | None = None, client: str = "raw/v1") -> bytes:
        """A Hello payload, unchecked (it may be over the size limit on purpose)."""
        wire_caps = [HelloCapability(c.name.encode(), c.version) for c in caps]
        node_id = self.key.node_id if node_id is None else node_id
        return Hello(BASE_PROTOCOL_VERSION, client.encode(), wire_caps, 0, node_id).encode()

    async def exchange_hello(self, caps: list[Capability], **kwargs: Any) -> Hello:
        """Send our Hello, read theirs, switch snappy on (both sides are v5)."""
        await self.send(HELLO, self.hello(caps, **kwargs))
        code, payload = await self.read()
        assert code == HELLO, f"expected Hello, got {code:#x}"
        self.snappy = True
        return Hello.decode(payload)

    async def read_until_eof(
        self, timeout: float = STEP_TIMEOUT, *, pong: bool = False
    ) -> list[tuple[int, Any]]:
        """Every message until the peer closes; Disconnect payloads decoded to their reason code."""
        got: list[tuple[int, Any]] = []
        try:
            while True:
                code, payload = await self.read(timeout)
                if code == DISCONNECT:
                    got.append((code, rlp.decode(payload)))
                else:
                    got.append((code, payload))
                if pong and code == PING:
                    await self.send(PONG, b"\xc0")
        except (asyncio.IncompleteReadError, ConnectionError):
            return got

    async def at_eof(self, timeout: float = STEP_TIMEOUT) -> bytes:
        """Whatever raw bytes arrive until the peer closes."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    def close(self) -> None:
        self.writer.close()


def local_server(protocols: list[Protocol] | None = None, on_peer: Callable[[Peer], Any] | None = None,
                 **config: Any) -> Server:
    """A Server on a free loopback port, no discovery; ``config`` overrides ServerConfig fields."""
    cfg = ServerConfig(listen_addr="127.0.0.1:0", no_discovery=True, **config)
    return Server(PrivateKey.generate(), cfg, protocols=protocols or [], on_peer=on_peer)


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def reason_of(messages: list[tuple[int, Any]]) -> int | None:
    """The reason in the last Disconnect received, if any."""
    for code, payload in reversed(messages):
        if code == DISCONNECT:
            return int.from_bytes(payload[0], "big") if payload else None
    return None
