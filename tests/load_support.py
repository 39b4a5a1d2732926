"""Load plumbing shared by the slow load tests and ``benches/bench_load.py``.

The node under load is a real ``ethnode-fast run`` process holding the ethtest chain
(imported with ``--noexec``: serving needs headers, bodies and receipts of empty blocks, not
state), with its monitoring server on so that its event-loop lag histogram can be read.
Its peers live in the driving process as ``LightPeer``s: RLPx spoken from the sans-IO
pieces (no p2p Server per peer), so one process can hold a thousand of them. A light peer
answers Ping and any request with an empty reply, echoes the node's own Status (same chain,
so it is accepted), and can probe (one small request, its round trip timed) or pipeline
(many large requests written at once, replies read and discarded).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli_support import RunProcess
from shared_support import SHARED
from shared_support import subprocess_env as child_env

from ethnode import rlp
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_BODIES,
    BLOCK_HEADERS,
    ETH69,
    GET_BLOCK_BODIES,
    GET_BLOCK_HEADERS,
    GET_POOLED_TRANSACTIONS,
    GET_RECEIPTS,
    POOLED_TRANSACTIONS,
    RECEIPTS,
    STATUS,
    HeaderQuery,
    encode_origin,
    message,
)
from ethnode.p2p.peer import BASE_PROTOCOL_VERSION, DISCONNECT, HELLO, PING, PONG, Hello, HelloCapability
from ethnode.p2p.rlpx import snappy
from ethnode.p2p.rlpx.frame import FrameCodec
from ethnode.p2p.rlpx.handshake import Initiator, Recipient

HOST = "127.0.0.1"
ETH_OFFSET = 0x10  # eth is the only capability: its codes follow the base protocol's 16
STEP = 15.0  # bound on one handshake or one request
START_TIMEOUT = 30.0
ENODE_LINE = re.compile(r'Started P2P networking +self="?(enode://([0-9a-f]{128})@[\d.]+:(\d+))')
METRICS_LINE = re.compile(r"Starting metrics server +addr=http://[\d.]+:(\d+)/metrics")
LAG_FAMILY = "event_loop_lag_seconds_distribution"
_EMPTY_LIST = b"\xc0"
_RESPONSES = frozenset((BLOCK_HEADERS, BLOCK_BODIES, RECEIPTS, POOLED_TRANSACTIONS))
_REPLIES = {GET_BLOCK_HEADERS: BLOCK_HEADERS, GET_BLOCK_BODIES: BLOCK_BODIES, GET_RECEIPTS: RECEIPTS,
            GET_POOLED_TRANSACTIONS: POOLED_TRANSACTIONS}


def _request_id(payload: bytes) -> int:
    """The request id of ``[request-id, ...]`` without decoding the rest of the list."""
    first = payload[0]
    offset = 1 if first <= 0xF7 else 1 + (first - 0xF7)
    head = payload[offset]
    if head < 0x80:
        return head
    size = head - 0x80
    return int.from_bytes(payload[offset + 1:offset + 1 + size], "big")


def shared_chain() -> Path | None:
    """``../shared/chains/ethtest`` (or under ``ETHNODE_SHARED``), None when absent."""
    chain = SHARED / "chains" / "ethtest"
    return chain if (chain / "chain.rlp").is_file() else None


def prepare_datadir(datadir: Path, chain: Path, env: dict[str, str] | None = None) -> None:
    """``init`` + ``import --noexec`` of the ethtest chain into ``datadir``."""
    env = env or child_env()
    for args in (["init", str(chain / "genesis.json")], ["import", "--noexec", str(chain / "chain.rlp")]):
        out = subprocess.run([sys.executable, "-m", "ethnode", *args, "--datadir", str(datadir)],
                             capture_output=True, text=True, env=env, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stderr}")


class NodeProcess:
    """``ethnode-fast run`` on loopback (a ``RunProcess``) with its monitoring on: RSS, CPU and lag readable."""

    def __init__(self, datadir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.run = RunProcess(["--datadir", str(datadir), "--port", "0", "--listenaddr", HOST, "--nodiscover",
                               "--nat", "none", "--authrpc.port", "0", "--metrics", "--metrics.port", "0", *extra],
                              env=env or child_env())
        self.proc = self.run.proc
        match = self.run.wait_for_line(ENODE_LINE, START_TIMEOUT)
        self.enode, self.node_id, self.port = match.group(1), bytes.fromhex(match.group(2)), int(match.group(3))
        self.metrics_port = int(self.run.wait_for_line(METRICS_LINE, START_TIMEOUT).group(1))

    def rss(self) -> int:
        """Resident set size in bytes (/proc)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> str:
        url = f"http://{HOST}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()  # type: ignore[no-any-return]

    def gauge(self, name: str) -> float:
        """One unlabelled sample of the node's metrics (0 when absent)."""
        for line in self.metrics().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def lag(self) -> LagHistogram:
        return LagHistogram.parse(self.metrics())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class LagHistogram:
    """The node's cumulative loop-lag histogram: bucket bound → samples at or under it."""

    buckets: dict[float, float]
    count: float
    max: float

    @classmethod
    def parse(cls, text: str) -> LagHistogram:
        buckets: dict[float, float] = {}
        count = 0.0
        peak = 0.0
        for line in text.splitlines():
            if line.startswith(LAG_FAMILY + "_bucket"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
            elif line.startswith(LAG_FAMILY + "_count"):
                count = float(line.rsplit(" ", 1)[1])
            elif line.startswith("event_loop_lag_max_seconds "):
                peak = float(line.rsplit(" ", 1)[1])
        return cls(buckets, count, peak)

    def since(self, before: LagHistogram) -> LagHistogram:
        """The samples taken between ``before`` and this reading (max: this reading's window max)."""
        return LagHistogram({le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()},
                            self.count - before.count, self.max)

    def quantile_bound(self, q: float) -> float:
        """The smallest bucket bound holding at least ``q`` of the samples."""
        if self.count <= 0:
            return 0.0
        for le in sorted(self.buckets):
            if self.buckets[le] >= q * self.count:
                return le
        return float("inf")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class LightPeer:
    """One eth/69 peer over raw RLPx (see the module docstring)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    codec: Any
    status: bytes = b""
    received: int = 0  # messages read after the handshake
    disconnect_reason: int | None = None
    sink: bool = False  # replies are counted, not decoded (see _run)
    _waiters: dict[int, asyncio.Future[float]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _next_id: int = 1

    @classmethod
    async def connect(cls, port: int, node_id: bytes, *, host: str = HOST,
                      key: PrivateKey | None = None, buffer: int = 16 * 1024 * 1024) -> LightPeer:
        """Handshaken (RLPx, Hello, Status); ``buffer`` bounds what is read ahead of the reader task."""
        key = key or PrivateKey.generate()
        async with asyncio.timeout(STEP):
            reader, writer = await asyncio.open_connection(host, port, limit=buffer)
            side = Initiator(key, node_id)
            writer.write(side.auth_message())
            buf = b""
            while len(buf) < (need := side.packet_size(buf)):
                buf += await reader.readexactly(need - len(buf))
            secrets = side.receive_ack(buf)
            codec = FrameCodec(secrets.aes, secrets.mac, secrets.egress_mac_seed, secrets.ingress_mac_seed)
            self = cls(reader, writer, codec)
            await self._hello_and_status(key)
        return self

    @classmethod
    async def accept(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: PrivateKey) -> LightPeer:
        """The listening side of a connection the node dialed."""
        async with asyncio.timeout(STEP):
            side = Recipient(key)
            buf = b""
            while len(buf) < (need := side.packet_size(buf)):
                buf += await reader.readexactly(need - len(buf))
            side.receive_auth(buf)
            writer.write(side.ack_message())
            secrets = side.secrets()
            codec = FrameCodec(secrets.aes, secrets.mac, secrets.egress_mac_seed, secrets.ingress_mac_seed)
            self = cls(reader, writer, codec)
            await self._hello_and_status(key)
        return self

    async def _hello_and_status(self, key: PrivateKey) -> None:
        caps = [HelloCapability(b"eth", ETH69)]
        hello = Hello(BASE_PROTOCOL_VERSION, b"light/v1", caps, 0, key.node_id).encode()
        self.writer.write(bytes(self.codec.write(HELLO, hello)))
        code, _ = await self._read_raw()
        if code != HELLO:
            raise ConnectionError(f"expected Hello, got {code:#x}")
        while True:  # their Status first (the node sends it unasked), then ours: the same one back
            code, payload = await self._read()
            if code == ETH_OFFSET + STATUS:
                break
            if code == DISCONNECT:
                raise ConnectionError(f"disconnected during handshake: {rlp.decode(payload)}")
        self.status = payload
        self.send(STATUS, payload)

    async def _read_raw(self) -> tuple[int, bytes]:
        header = await self.reader.readexactly(32)
        body = await self.reader.readexactly(self.codec.read_header(header))
        code, payload = self.codec.read_body(body)
        return code, bytes(payload)

    async def _read(self) -> tuple[int, bytes]:
        code, payload = await self._read_raw()
        return code, snappy.decompress(payload)

    def send(self, eth_code: int, payload: bytes) -> None:
        self._write(ETH_OFFSET + eth_code, payload)

    def _write(self, code: int, payload: bytes) -> None:
        self.writer.write(bytes(self.codec.write(code, snappy.compress(payload))))

    def start(self) -> None:
        """Serve the connection: answer Ping and requests, settle probes, count the rest."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                code, payload = await self._read_raw()
                self.received += 1
                if self.sink and code - ETH_OFFSET in _RESPONSES:
                    continue  # a pipelining peer only counts replies: decoding them would pace it
                payload = snappy.decompress(payload)
                if code == PING:
                    self._write(PONG, _EMPTY_LIST)
                elif code == DISCONNECT:
                    decoded = rlp.decode(payload)
                    item = decoded[0] if isinstance(decoded, list) and decoded else decoded
                    self.disconnect_reason = int.from_bytes(item, "big") if isinstance(item, bytes) else -1
                    return
                elif code - ETH_OFFSET in _REPLIES:
                    rid = rlp.decode(payload)[0]
                    self.send(_REPLIES[code - ETH_OFFSET], rlp.encode([rid, []]))
                elif code - ETH_OFFSET == BLOCK_HEADERS:
                    rid = _request_id(payload)
                    waiter = self._waiters.pop(rid, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(time.perf_counter())
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return

    def _header_request(self, origin: int, amount: int) -> tuple[int, bytes]:
        rid = self._next_id
        self._next_id += 1
        msg = message(ETH69, GET_BLOCK_HEADERS)
        assert msg is not None
        return rid, msg.encode(HeaderQuery(encode_origin(origin), amount, 0, False), rid)

    async def probe(self, origin: int = 1, amount: int = 1, timeout: float = STEP) -> float:
        """Round trip in seconds of one GetBlockHeaders (the reader task must be running)."""
        rid, payload = self._header_request(origin, amount)
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters[rid] = done
        sent = time.perf_counter()
        self.send(GET_BLOCK_HEADERS, payload)
        await self.writer.drain()
        async with asyncio.timeout(timeout):
            return await done - sent

    async def pipeline(self, count: int, origin: int = 0, amount: int = 1024) -> None:
        """Write ``count`` GetBlockHeaders at once, without waiting for any reply."""
        for _ in range(count):
            self.send(GET_BLOCK_HEADERS, self._header_request(origin, amount)[1])
        await self.writer.drain()

    async def wait_closed(self, timeout: float) -> None:
        if self._task is not None:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class LightListener:
    """Light peers the node dials: one listening socket per key, each an ``enode://`` for StaticNodes."""

    def __init__(self) -> None:
        self.peers: list[LightPeer] = []
        self.failed = 0
        self._servers: list[asyncio.base_events.Server] = []
        self.enodes: list[str] = []

    async def open(self, count: int) -> list[str]:
        for _ in range(count):
            key = PrivateKey.generate()
            server = await asyncio.start_server(
                lambda r, w, key=key: self._accept(r, w, key), HOST, 0, limit=16 * 1024 * 1024)
            port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
            self.enodes.append(f"enode://{key.node_id.hex()}@{HOST}:{port}")
        return self.enodes

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: PrivateKey) -> None:
        try:
            peer = await LightPeer.accept(reader, writer, key)
        except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError, EthnodeError):
            self.failed += 1
            writer.close()
            return
        peer.start()
        self.peers.append(peer)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        await asyncio.gather(*(p.close() for p in self.peers))
        for server in self._servers:
            await server.wait_closed()


async def connect_many(count: int, port: int, node_id: bytes, *, parallel: int = 32,
                       tolerate: bool = False) -> list[LightPeer]:
    """``count`` started light peers, handshaken ``parallel`` at a time.

    With ``tolerate``, a peer the node refuses (e.g. too many peers) is left out instead of
    failing the whole call.
    """
    peers: list[LightPeer] = []
    gate = asyncio.Semaphore(parallel)

    async def one() -> None:
        async with gate:
            try:
                peer = await LightPeer.connect(port, node_id)
            except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
                if not tolerate:
                    raise
                return
            peer.start()
            peers.append(peer)

    await asyncio.gather(*(one() for _ in range(count)))
    return peers

