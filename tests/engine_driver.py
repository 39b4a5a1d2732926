"""A small consensus client for tests: it drives execution clients over the Engine API.

The cross-client proof (``test_engine_geth_interop``) needs something in the consensus
client's seat that treats geth and ethnode alike: it speaks JSON-RPC over HTTP to each
node's authenticated endpoint with an HS256 JWT made from the shared secret, and to the
public endpoint for txs and state. Nothing here reaches into a node: what the driver
knows it learns as a beacon node would, from the Engine API's answers and the logs.

The JWT is made here, not with ``ethnode.rpc.jwt``: the point is that ethnode's verifier
accepts a token from a client it did not write (geth's verifier checks the same token).

Processes: ``start_geth`` and ``start_ethnode`` run ``init`` on the genesis file, then the
node on loopback with every port 0 (each picks a free port and logs it: "HTTP server
started endpoint=IP:PORT auth=..."); start-up waits on those lines with a deadline. The
caller stops them (``ELProcess.stop``) in a ``finally``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT = 30.0  # a cold interpreter or a geth opening pebble, on a busy 2-core machine
CALL_TIMEOUT = 20.0  # one RPC; newPayload executes a block, getPayload may wait for a build
POOL_TIMEOUT = 10.0  # txs sent until the builder's pool shows them pending
STOP_TIMEOUT = 15.0
ENDPOINT_LINE = re.compile(r"HTTP server started\s+endpoint=([\d.]+):(\d+)\s+auth=(true|false)")
ZERO_HASH = "0x" + "00" * 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_token(secret: bytes, now: float | None = None) -> str:
    """An HS256 token with a fresh ``iat`` (the Engine API allows 60 s of drift), as a CL makes it."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64(json.dumps({"iat": int(time.time() if now is None else now)}, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{head}.{claims}".encode(), hashlib.sha256).digest()
    return f"{head}.{claims}.{_b64(sig)}"


class RPCFailure(AssertionError):
    """A JSON-RPC error answer (or a transport failure), with what was asked."""

    def __init__(self, where: str, method: str, error: Any) -> None:
        super().__init__(f"{where}: {method} failed: {error}")
        self.error = error


class RPC:
    """JSON-RPC over HTTP to one endpoint; with ``secret`` every request carries a new JWT."""

    def __init__(self, name: str, url: str, secret: bytes | None = None) -> None:
        self.name = name
        self.url = url
        self.secret = secret
        self._id = 0

    def call(self, method: str, *params: Any, timeout: float = CALL_TIMEOUT) -> Any:
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)}).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret is not None:
            headers["Authorization"] = f"Bearer {jwt_token(self.secret)}"
        request = urllib.request.Request(self.url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                answer = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            raise RPCFailure(self.name, method, f"HTTP {exc.code}: {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RPCFailure(self.name, method, f"transport: {exc}") from None
        if "error" in answer:
            raise RPCFailure(self.name, method, answer["error"])
        return answer["result"]


class ELProcess:
    """One execution client process: its stderr lines kept and watched, its two endpoints."""

    def __init__(self, name: str, kind: str, args: list[str], env: dict[str, str] | None, secret: bytes) -> None:
        self.name = name
        self.kind = kind  # "geth" or "ethnode"
        self.secret = secret
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        threading.Thread(target=self._pump, daemon=True, name=f"{name}-log").start()
        self.engine: RPC = RPC(f"{name} engine", "")
        self.rpc: RPC = RPC(f"{name} rpc", "")

    def _pump(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # EOF marker: the process closed its log
            self._changed.notify_all()

    def mark(self) -> int:
        """Where the log is now: ``wait_for(..., since=mark)`` sees only lines logged after it."""
        with self._changed:
            return len(self.lines)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float, since: int = 0) -> tuple[int, re.Match[str]]:
        """The first log line at or after ``since`` matching ``pattern`` (its index, the match);
        fails when the process exits or the deadline passes."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = since
        with self._changed:
            while True:
                for index in range(seen, len(self.lines)):
                    match = regex.search(self.lines[index])
                    if match:
                        return index, match
                seen = max(seen, len(self.lines))
                if self.lines and self.lines[-1] == "" and self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: no log line matching {regex.pattern!r} "
                                         f"within {timeout} s:\n{self.tail()}")
                self._changed.wait(left)

    def wait_endpoints(self, timeout: float = START_TIMEOUT) -> None:
        """Both HTTP servers up (public and authenticated): their ports come from the log."""
        found: dict[str, str] = {}
        since = 0
        while len(found) < 2:
            index, match = self.wait_for(ENDPOINT_LINE, timeout, since)
            found[match.group(3)] = f"http://{match.group(1)}:{match.group(2)}"
            since = index + 1
        self.engine = RPC(f"{self.name} engine", found["true"], self.secret)
        self.rpc = RPC(f"{self.name} rpc", found["false"])

    def wait_full_payload(self, payload_id: str, txs: int, since: int, timeout: float = POOL_TIMEOUT) -> None:
        """Wait until the builder holds a full payload with ``txs`` transactions.

        geth answers forkchoiceUpdated with an empty block built and fills the full one on a
        goroutine; getPayload returns whatever is best at that moment, so a consensus
        client that asked at once could get the empty block. geth logs each better build
        ("Updated payload id=... txs=N"). ethnode builds its first full block inside
        forkchoiceUpdated, before it answers, so there is nothing to wait for.
        """
        if self.kind != "geth":
            return
        self.wait_for(rf"Updated payload\s+id={re.escape(payload_id)}\b.*\btxs={txs}\b", timeout, since)

    def wait_pending(self, count: int, timeout: float = POOL_TIMEOUT) -> None:
        """Poll ``txpool_status`` until exactly ``count`` txs are pending and none queued.

        Both pools admit a tx at once but settle asynchronously (geth promotes on its
        reorg loop; both drop included txs after a head change), so a builder asked too
        early might miss one. Polling with a deadline, not a fixed sleep.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self.rpc.call("txpool_status")
            pending, queued = int(status["pending"], 16), int(status["queued"], 16)
            if pending == count and queued == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: pool has {pending} pending / {queued} queued, "
                                     f"want {count} / 0 after {timeout} s")
            time.sleep(0.01)

    def tail(self, n: int = 30) -> str:
        with self._changed:
            return "\n".join(self.lines[-n:])

    def stop(self) -> None:
        """SIGINT (both clients shut down cleanly on it), SIGKILL after ``STOP_TIMEOUT``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _init(args: list[str], env: dict[str, str] | None, what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=START_TIMEOUT, env=env)
    if done.returncode != 0:
        raise AssertionError(f"{what} init failed ({done.returncode}): {(done.stdout + done.stderr)[-2000:]}")


def _started(el: ELProcess) -> ELProcess:
    try:
        el.wait_endpoints()
    except BaseException:
        el.stop()
        raise
    return el


def start_geth(geth: Path, datadir: Path, genesis: Path, jwt: Path, secret: bytes) -> ELProcess:
    """geth on loopback: no discovery, no peers, full sync, public RPC with txpool."""
    _init([str(geth), "init", "--datadir", str(datadir), str(genesis)], None, "geth")
    args = [
        str(geth), "--datadir", str(datadir), "--nodiscover", "--maxpeers", "0", "--nat", "none",
        "--port", "0", "--ipcdisable", "--authrpc.addr", HOST, "--authrpc.port", "0",
        "--authrpc.jwtsecret", str(jwt), "--http", "--http.addr", HOST, "--http.port", "0",
        "--http.api", "eth,net,web3,txpool", "--syncmode", "full", "--cache", "128", "--verbosity", "3",
    ]
    return _started(ELProcess("geth", "geth", args, None, secret))


def start_ethnode(datadir: Path, genesis: Path, jwt: Path, secret: bytes, env: dict[str, str]) -> ELProcess:
    """ethnode as a user runs it, with the same flags geth gets where ethnode has them."""
    python = [sys.executable, "-m", "ethnode"]
    _init([*python, "init", str(genesis), "--datadir", str(datadir)], env, "ethnode")
    args = [
        *python, "run", "--datadir", str(datadir), "--nodiscover", "--maxpeers", "0", "--nat", "none",
        "--port", "0", "--listenaddr", HOST, "--authrpc.addr", HOST, "--authrpc.port", "0",
        "--authrpc.jwtsecret", str(jwt), "--http", "--http.addr", HOST, "--http.port", "0",
        "--http.api", "eth,net,web3,txpool", "--verbosity", "3",
    ]
    return _started(ELProcess("ethnode", "ethnode", args, env, secret))


# --- the consensus side ----------------------------------------------------------------------


@dataclass(frozen=True)
class Versions:
    """Which method versions a consensus client uses at a fork (execution-apis, geth's checks)."""

    fcu: int
    get: int
    new: int

    @classmethod
    def at(cls, fork: str) -> Versions:
        return {"prague": cls(3, 4, 4), "osaka": cls(3, 5, 4)}[fork]


@dataclass
class Produced:
    """One block as the driver saw it go through: who built it, the envelope, both answers."""

    number: int
    builder: str
    envelope: dict[str, Any]
    attrs: dict[str, Any]
    payload_id: str
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def payload(self) -> dict[str, Any]:
        return self.envelope["executionPayload"]  # type: ignore[no-any-return]


class EngineMismatch(AssertionError):
    """The execution clients disagree about a payload (the proof fails here, with both answers)."""


class ConsensusDriver:
    """Slot by slot: attributes to the builder, its payload to everyone, then the forkchoice.

    ``safe`` and ``finalized`` trail the head by ``safe_lag`` and ``final_lag`` blocks, as a
    beacon chain's justified and finalized checkpoints trail its head.
    """

    def __init__(self, els: Sequence[ELProcess], genesis: dict[str, Any], fork: str,
                 versioned_hashes: Callable[[dict[str, Any]], list[str]],
                 safe_lag: int = 2, final_lag: int = 4) -> None:
        self.els = list(els)
        self.v = Versions.at(fork)
        self.hashes = [genesis["hash"]]
        self.time = int(genesis["timestamp"], 16)
        self.safe_lag, self.final_lag = safe_lag, final_lag
        self.versioned_hashes = versioned_hashes  # a CL takes them from the block's KZG commitments
        self.withdrawal_index = 0
        self.produced: list[Produced] = []

    @property
    def head(self) -> str:
        return self.hashes[-1]

    def forkchoice(self) -> dict[str, str]:
        n = len(self.hashes) - 1
        return {"headBlockHash": self.head, "safeBlockHash": self.hashes[max(0, n - self.safe_lag)],
                "finalizedBlockHash": self.hashes[max(0, n - self.final_lag)]}

    def attributes(self, fee_recipient: str, withdrawals_to: Sequence[str]) -> dict[str, Any]:
        """The next slot: 12 s on, fresh randao and beacon root, withdrawals with rising indices."""
        n = len(self.hashes)
        withdrawals = []
        for j, address in enumerate(withdrawals_to):
            withdrawals.append({"index": hex(self.withdrawal_index), "validatorIndex": hex(1000 + 2 * n + j),
                                "address": address, "amount": hex(10**9 + n)})
            self.withdrawal_index += 1
        seed = hashlib.sha256(f"slot {n}".encode()).hexdigest()
        return {"timestamp": hex(self.time + 12), "prevRandao": "0x" + seed,
                "suggestedFeeRecipient": fee_recipient, "withdrawals": withdrawals,
                "parentBeaconBlockRoot": "0x" + hashlib.sha256(seed.encode()).hexdigest()}

    def produce(self, builder: ELProcess, want_txs: int, fee_recipient: str, withdrawals_to: Sequence[str],
                probe: Callable[[Produced, list[Any]], None] | None = None) -> Produced:
        """One slot built on ``builder`` holding ``want_txs`` pool txs, imported by every client.

        ``probe(made, newPayload params)`` runs between getPayload and the imports: the slot's
        parent is still the head there, which is where a test sends its tampered variants.
        """
        attrs = self.attributes(fee_recipient, withdrawals_to)
        since = builder.mark()
        started = builder.engine.call(f"engine_forkchoiceUpdatedV{self.v.fcu}", self.forkchoice(), attrs)
        if started["payloadStatus"]["status"] != "VALID" or not started["payloadId"]:
            raise EngineMismatch(f"{builder.name}: forkchoiceUpdated with attributes: {started}")
        builder.wait_full_payload(started["payloadId"], want_txs, since)
        envelope = builder.engine.call(f"engine_getPayloadV{self.v.get}", started["payloadId"])
        payload = envelope["executionPayload"]
        made = Produced(int(payload["blockNumber"], 16), builder.name, envelope, attrs, started["payloadId"])
        if made.number != len(self.hashes) or payload["parentHash"] != self.head:
            raise EngineMismatch(f"{builder.name} built #{made.number} on {payload['parentHash']}, "
                                 f"asked for #{len(self.hashes)} on {self.head}")
        if len(payload["transactions"]) != want_txs:
            raise EngineMismatch(f"{builder.name} built #{made.number} with {len(payload['transactions'])} txs, "
                                 f"{want_txs} were pending")
        params = [payload, self.versioned_hashes(envelope), attrs["parentBeaconBlockRoot"],
                  envelope["executionRequests"]]
        if probe is not None:
            probe(made, params)
        for el in sorted(self.els, key=lambda e: e is not builder):  # the builder first, as a CL imports
            made.answers[el.name] = el.engine.call(f"engine_newPayloadV{self.v.new}", *params)
        want = {"status": "VALID", "latestValidHash": payload["blockHash"], "validationError": None}
        if any(answer != want for answer in made.answers.values()):
            raise EngineMismatch(self._disagreement(made))
        self.hashes.append(payload["blockHash"])
        self.time = int(payload["timestamp"], 16)
        state = self.forkchoice()
        for el in self.els:
            moved = el.engine.call(f"engine_forkchoiceUpdatedV{self.v.fcu}", state, None)
            if moved["payloadStatus"]["status"] != "VALID" or moved["payloadId"] is not None:
                raise EngineMismatch(f"{el.name}: forkchoiceUpdated to #{made.number}: {moved}")
        self.produced.append(made)
        return made

    def _disagreement(self, made: Produced) -> str:
        p = made.payload
        lines = [f"block #{made.number} built by {made.builder}: hash {p['blockHash']} stateRoot {p['stateRoot']} "
                 f"txs {len(p['transactions'])} gasUsed {int(p['gasUsed'], 16)} "
                 f"requests {made.envelope['executionRequests']}"]
        lines += [f"  {name}: {answer}" for name, answer in made.answers.items()]
        for el in self.els:
            lines.append(f"--- {el.name} log tail ---\n{el.tail(15)}")
        return "\n".join(lines)


__all__ = [
    "RPC", "RPCFailure", "ELProcess", "ConsensusDriver", "Produced", "Versions", "EngineMismatch",
    "start_geth", "start_ethnode", "jwt_token", "ZERO_HASH",
]
