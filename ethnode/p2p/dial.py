"""The dial scheduler: which node to dial next, as a plain object fed events (geth p2p/dial.go).

Two kinds of outbound connection, as in geth:

- static dials (``--config`` StaticNodes, ``add_peer``): kept connected; a static node
  that is not connected, not being dialed and not recently dialed sits in the static
  pool, and the pool is served first whenever a dial slot is free;
- dynamic dials: discovery candidates offered one at a time while a slot is free.

Nothing here does I/O or reads a clock. The Server tells it what happened (peer added or
removed, dial finished, inbound connection pending); ``poll(now)`` and ``offer(node, now)``
answer with ``DialTask`` objects to run, and ``next_deadline()`` says when it next wants
to be polled even if nothing happens.

Redial policy: a node is not dialed again within ``history_expiration`` of the previous
attempt (geth dialHistoryExpiration, 35 s: a bit longer than the remote's inbound
throttle). Unlike geth, which keeps retrying a dead static node every 35 s, each
consecutive failure doubles that wait, up to ``max_backoff``; a success resets it.
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from dataclasses import dataclass, field

from ethnode.p2p.enode import Node
from ethnode.p2p.netutil import INBOUND_THROTTLE_TIME, ExpiringSet, Netlist

DIAL_HISTORY_EXPIRATION = INBOUND_THROTTLE_TIME + 5.0  # seconds; geth dialHistoryExpiration 35 s
MAX_DIAL_BACKOFF = 300.0  # seconds; ours: cap of the doubling wait after repeated failures
DEFAULT_MAX_PENDING_PEERS = 50  # geth defaultMaxPendingPeers, also maxActiveDials' default
DIAL_STATS_LOG_INTERVAL = 10.0  # seconds; geth dialStatsLogInterval
DIAL_STATS_PEER_LIMIT = 3  # "Looking for peers" only below this many dialed peers; geth dialStatsPeerLimit
MAX_REMEMBERED_FAILURES = 4096  # nodes whose failure count is kept (oldest forgotten first)
TRACE = 5  # log level below DEBUG for per-dial lines, geth's Trace (``--verbosity 5``)


class ConnFlag(enum.IntFlag):
    """How a connection came about (geth connFlag)."""

    DYN_DIALED = 1
    STATIC_DIALED = 2
    INBOUND = 4
    TRUSTED = 8

    @property
    def dialed(self) -> bool:
        return bool(self & (ConnFlag.DYN_DIALED | ConnFlag.STATIC_DIALED))

    def describe(self) -> str:
        names = [("trusted", ConnFlag.TRUSTED), ("dyndial", ConnFlag.DYN_DIALED),
                 ("staticdial", ConnFlag.STATIC_DIALED), ("inbound", ConnFlag.INBOUND)]
        return "-".join(name for name, flag in names if self & flag)


class DialRefused(enum.Enum):
    """Why a node is not dialed now (geth's checkDial errors)."""

    SELF = "is self"
    NO_ADDRESS = "node has no IP address"
    NO_PORT = "node does not provide TCP port"
    ALREADY_DIALING = "already dialing"
    ALREADY_CONNECTED = "already connected"
    PENDING_INBOUND = "peer has pending inbound connection"
    NET_RESTRICT = "not contained in netrestrict list"
    RECENTLY_DIALED = "recently dialed"
    NO_SLOT = "no free dial slot"


@dataclass(eq=False)
class DialTask:
    """One dial to run; hand it back to ``dial_done`` when it has finished."""

    node: Node
    flags: ConnFlag
    started: float = 0.0
    in_pool: bool = field(default=False, repr=False)  # static tasks: waiting in the static pool

    @property
    def static(self) -> bool:
        return bool(self.flags & ConnFlag.STATIC_DIALED)


class DialScheduler:
    """Decides dials; every method is synchronous and takes the current time where it matters.

    ``self_id`` and all node ids are 32-byte discovery ids (``Node.id``).
    """

    def __init__(
        self, self_id: bytes, *, max_dial_peers: int, max_active_dials: int = DEFAULT_MAX_PENDING_PEERS,
        net_restrict: Netlist | None = None, history_expiration: float = DIAL_HISTORY_EXPIRATION,
        max_backoff: float = MAX_DIAL_BACKOFF, rng: random.Random | None = None,
    ) -> None:
        self.self_id = self_id
        self.max_dial_peers = max_dial_peers
        self.max_active_dials = max_active_dials or DEFAULT_MAX_PENDING_PEERS
        self.net_restrict = net_restrict
        self.history_expiration = history_expiration
        self.max_backoff = max(max_backoff, history_expiration)
        self.rng = rng or random.Random()
        self.dialing: dict[bytes, DialTask] = {}
        self.peers: set[bytes] = set()
        self.pending_inbound: set[bytes] = set()
        self.dial_peers = 0  # connected peers we dialed (static or dynamic)
        self.static: dict[bytes, DialTask] = {}
        self._pool: dict[bytes, DialTask] = {}  # static tasks ready to dial, in insertion order
        self.history = ExpiringSet()
        self._failures: OrderedDict[bytes, int] = OrderedDict()
        self._last_stats: float | None = None
        self.done_since_stats = 0

    # -- events ------------------------------------------------------------------------------
    def add_static(self, node: Node) -> bool:
        """Keep ``node`` connected from now on; False if it already was a static node."""
        if node.id in self.static:
            return False
        task = DialTask(node, ConnFlag.STATIC_DIALED)
        self.static[node.id] = task
        self._update_pool(node.id)
        return True

    def remove_static(self, node_id: bytes) -> bool:
        task = self.static.pop(node_id, None)
        if task is None:
            return False
        self._pool.pop(node_id, None)
        task.in_pool = False
        return True

    def peer_added(self, node_id: bytes, flags: ConnFlag) -> None:
        if flags.dialed:
            self.dial_peers += 1
        self.peers.add(node_id)
        task = self._pool.pop(node_id, None)
        if task is not None:
            task.in_pool = False

    def peer_removed(self, node_id: bytes, flags: ConnFlag) -> None:
        if flags.dialed:
            self.dial_peers -= 1
        self.peers.discard(node_id)
        self._update_pool(node_id)

    def inbound_pending(self, node_id: bytes) -> None:
        self.pending_inbound.add(node_id)

    def inbound_completed(self, node_id: bytes) -> None:
        self.pending_inbound.discard(node_id)
        self._update_pool(node_id)

    def dial_done(self, task: DialTask, ok: bool) -> None:
        """A dial finished: ``ok`` if it became a peer (or found one already connected)."""
        node_id = task.node.id
        if self.dialing.get(node_id) is task:
            del self.dialing[node_id]
        if ok:
            self._failures.pop(node_id, None)
        else:
            self._failures[node_id] = self._failures.pop(node_id, 0) + 1
            while len(self._failures) > MAX_REMEMBERED_FAILURES:
                self._failures.popitem(last=False)
        self.done_since_stats += 1
        self._update_pool(node_id)

    # -- decisions ---------------------------------------------------------------------------
    def check_dial(self, node: Node) -> DialRefused | None:
        """Why ``node`` must not be dialed now, or None (geth checkDial)."""
        node_id = node.id
        if node_id == self.self_id:
            return DialRefused.SELF
        if node.ip is None:
            return DialRefused.NO_ADDRESS
        if not node.tcp:
            return DialRefused.NO_PORT
        if node_id in self.dialing:
            return DialRefused.ALREADY_DIALING
        if node_id in self.peers:
            return DialRefused.ALREADY_CONNECTED
        if node_id in self.pending_inbound:
            return DialRefused.PENDING_INBOUND
        if self.net_restrict is not None and not self.net_restrict.contains(node.ip):
            return DialRefused.NET_RESTRICT
        if self.history.contains(node_id):
            return DialRefused.RECENTLY_DIALED
        return None

    def free_slots(self) -> int:
        """Dials that may start now; negative while peers connect faster than tasks finish."""
        slots = min((self.max_dial_peers - self.dial_peers) * 2, self.max_active_dials)
        return slots - len(self.dialing)

    def poll(self, now: float) -> list[DialTask]:
        """Expire the dial history and start static dials for the free slots."""
        self.history.expire(now, self._update_pool)  # type: ignore[arg-type]
        started = []
        slots = self.free_slots()
        while slots > 0 and self._pool:
            node_id = self.rng.choice(list(self._pool))  # geth: a random pool member
            task = self._pool.pop(node_id)
            task.in_pool = False
            if self.check_dial(task.node) is not None:
                continue  # dialed dynamically or connected meanwhile; the next event re-pools it
            self._start(task, now)
            started.append(task)
            slots -= 1
        return started

    def offer(self, node: Node, now: float) -> DialTask | DialRefused:
        """A dynamic candidate from discovery: the task to run, or why not."""
        if self.free_slots() <= 0:
            return DialRefused.NO_SLOT
        refused = self.check_dial(node)
        if refused is not None:
            return refused
        task = DialTask(node, ConnFlag.DYN_DIALED)
        self._start(task, now)
        return task

    def wants_candidates(self) -> bool:
        return self.free_slots() > 0

    def next_deadline(self) -> float | None:
        """When ``poll`` should run next even if nothing happens (a history entry expires)."""
        return self.history.next_expiry()

    def stats_due(self, now: float) -> dict[str, int] | None:
        """geth logStats: the "Looking for peers" numbers every 10 s while few peers are dialed."""
        if self._last_stats is None:
            self._last_stats = now
            return None
        if now - self._last_stats < DIAL_STATS_LOG_INTERVAL:
            return None
        stats = None
        if self.dial_peers < DIAL_STATS_PEER_LIMIT and self.dial_peers < self.max_dial_peers:
            stats = {"peercount": len(self.peers), "tried": self.done_since_stats, "static": len(self.static)}
        self.done_since_stats = 0
        self._last_stats = now
        return stats

    def failures(self, node_id: bytes) -> int:
        return self._failures.get(node_id, 0)

    def backoff(self, node_id: bytes) -> float:
        """How long after starting a dial to ``node_id`` no other dial to it may start."""
        fails = min(self._failures.get(node_id, 0), 32)
        return min(self.history_expiration * (1 << fails), self.max_backoff)

    # -- internals ---------------------------------------------------------------------------
    def _start(self, task: DialTask, now: float) -> None:
        node_id = task.node.id
        task.started = now
        self.history.add(node_id, now + self.backoff(node_id))
        self.dialing[node_id] = task

    def _update_pool(self, node_id: bytes) -> None:
        """Put a static node back in the pool when nothing stops dialing it (geth updateStaticPool)."""
        task = self.static.get(node_id)
        if task is not None and not task.in_pool and self.check_dial(task.node) is None:
            task.in_pool = True
            self._pool[node_id] = task


__all__ = [
    "DialScheduler", "DialTask", "DialRefused", "ConnFlag",
    "DIAL_HISTORY_EXPIRATION", "MAX_DIAL_BACKOFF", "DEFAULT_MAX_PENDING_PEERS", "TRACE",
]
