"""The Kademlia routing table, as a plain object: no sockets, no tasks, no clock of its own.

Shaped like geth's p2p/discover table: 17 buckets of 16 live entries (one per log
distance 240..256, everything closer shares bucket 0, since closer nodes essentially
never occur), each with up to 10 replacements. Entries are kept until revalidation
proves them dead; new nodes wait in the replacement list, so a flood of fresh ids cannot
push out nodes known to be up.

Revalidation (geth tableRevalidation) keeps two lists: every new or changed entry joins
the *fast* list, pinged about every ``ping_interval``; an entry that answered moves to the
*slow* list, pinged three times less often. A failed ping divides the entry's liveness
count by three and sends it back to the fast list; at zero it is dropped and a random
replacement takes its place.

The service drives it: it asks ``revalidation_due(now)`` which nodes to ping, reports
``revalidation_result``, feeds ``add_found_node``/``add_inbound_node``/``track_request``,
and does the I/O. IP limits (2 per /24 per bucket, 10 per /24 overall) blunt eclipse
attempts from one subnet; loopback and LAN addresses are exempt so local networks work.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Iterable

from ethnode.p2p.discover.netutil import DistinctNetSet, is_lan
from ethnode.p2p.enode import IPAddress, Node

ALPHA = 3  # geth alpha: Kademlia concurrency factor
BUCKET_SIZE = 16  # geth bucketSize
MAX_REPLACEMENTS = 10  # geth maxReplacements: size of the per-bucket replacement list
HASH_BITS = 256  # geth hashBits
N_BUCKETS = HASH_BITS // 15  # geth nBuckets = 17: buckets for the upper 1/15 of distances
BUCKET_MIN_DISTANCE = HASH_BITS - N_BUCKETS  # geth bucketMinDistance = 239: log distance of bucket 0
BUCKET_IP_LIMIT, BUCKET_SUBNET = 2, 24  # geth: at most 2 addresses from the same /24 per bucket
TABLE_IP_LIMIT, TABLE_SUBNET = 10, 24  # geth: at most 10 from the same /24 in the table
SEED_COUNT = 30  # geth seedCount: nodes loaded from the DB per refresh
SEED_MAX_AGE = 5 * 24 * 3600.0  # geth seedMaxAge: 5 days
PING_INTERVAL = 3.0  # seconds; geth Config.PingInterval default (fast revalidation list)
SLOW_REVALIDATION_FACTOR = 3  # geth slowRevalidationFactor
REFRESH_INTERVAL = 30 * 60.0  # seconds; geth Config.RefreshInterval default
MAX_FINDNODE_FAILURES = 5  # geth maxFindnodeFailures: nodes failing more often are dropped
SEED_MIN_CHECKS = 5  # geth stores a node as a DB seed once it passed more than 5 liveness checks

NEVER = float("inf")


class TableNode:
    """A table entry: the node plus what revalidation learned about it."""

    __slots__ = ("node", "added_to_table", "added_to_bucket", "liveness_checks", "is_live", "reval_list")

    def __init__(self, node: Node, now: float) -> None:
        self.node = node
        self.added_to_table = now
        self.added_to_bucket = 0.0
        self.liveness_checks = 0
        self.is_live = False
        self.reval_list: RevalidationList | None = None

    @property
    def id(self) -> bytes:
        return self.node.id

    def __repr__(self) -> str:
        return f"TableNode({self.node!r}, checks={self.liveness_checks}, live={self.is_live})"


class Bucket:
    __slots__ = ("index", "entries", "replacements", "ips")

    def __init__(self, index: int) -> None:
        self.index = index
        self.entries: list[TableNode] = []
        self.replacements: list[TableNode] = []
        self.ips = DistinctNetSet(BUCKET_SUBNET, BUCKET_IP_LIMIT)

    def find(self, node_id: bytes) -> int:
        for i, e in enumerate(self.entries):
            if e.node.id == node_id:
                return i
        return -1


class RevalidationList:
    """One revalidation queue; ``next_time`` is when it next pings a random member."""

    __slots__ = ("name", "interval", "nodes", "next_time")

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.nodes: list[TableNode] = []
        self.next_time = NEVER

    def schedule(self, now: float, rng: random.Random) -> None:
        self.next_time = now + rng.random() * self.interval

    def push(self, n: TableNode, now: float, rng: random.Random) -> bool:
        """Add ``n``; True when the list was idle and now has a schedule."""
        self.nodes.append(n)
        n.reval_list = self
        if self.next_time == NEVER:
            self.schedule(now, rng)
            return True
        return False

    def remove(self, n: TableNode) -> None:
        self.nodes.remove(n)
        if not self.nodes:
            self.next_time = NEVER
        n.reval_list = None

    def pick(self, rng: random.Random, exclude: set[bytes]) -> TableNode | None:
        if not self.nodes:
            return None
        for _ in range(len(self.nodes) * 3):
            n = self.nodes[rng.randrange(len(self.nodes))]
            if n.node.id not in exclude:
                return n
        return None


class Table:
    """Buckets, replacements, IP limits and revalidation scheduling for one local id."""

    def __init__(
        self, self_id: bytes, *, ping_interval: float = PING_INTERVAL,
        clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
        on_schedule: Callable[[], None] | None = None,
    ) -> None:
        self.self_id = self_id
        self._self_int = int.from_bytes(self_id, "big")
        self.clock = clock
        self.rng = rng or random.Random()
        self.buckets = [Bucket(i) for i in range(N_BUCKETS)]
        self.ips = DistinctNetSet(TABLE_SUBNET, TABLE_IP_LIMIT)
        self.nursery: list[Node] = []
        # inbound contacts are refused until the first refresh finished (geth initDone)
        self.init_done = False
        self.fast = RevalidationList("fast", ping_interval)
        self.slow = RevalidationList("slow", ping_interval * SLOW_REVALIDATION_FACTOR)
        self._active: set[bytes] = set()
        # called when revalidation got an earlier deadline, so the service can re-arm its timer
        self.on_schedule = on_schedule
        # called with every node that enters a bucket (geth's nodeAddedHook): observers such as
        # ethnode.api's NodeFound; it must not raise and must not touch the table
        self.on_added: Callable[[Node], None] | None = None

    # -- lookup helpers ------------------------------------------------------------------

    def bucket_at_distance(self, d: int) -> Bucket:
        if d <= BUCKET_MIN_DISTANCE:
            return self.buckets[0]
        return self.buckets[d - BUCKET_MIN_DISTANCE - 1]

    def bucket(self, node_id: bytes) -> Bucket:
        d = (self._self_int ^ int.from_bytes(node_id, "big")).bit_length()
        return self.bucket_at_distance(d)

    def __len__(self) -> int:
        return sum(len(b.entries) for b in self.buckets)

    def entries(self) -> list[TableNode]:
        return [e for b in self.buckets for e in b.entries]

    def nodes(self) -> list[Node]:
        return [e.node for b in self.buckets for e in b.entries]

    def get(self, node_id: bytes) -> TableNode | None:
        b = self.bucket(node_id)
        i = b.find(node_id)
        return b.entries[i] if i >= 0 else None

    def find_closest(self, target: bytes, count: int = BUCKET_SIZE, prefer_live: bool = False) -> list[Node]:
        """The ``count`` entries closest to ``target`` (a 32-byte id), closest first.

        ``prefer_live``: only nodes revalidation has seen alive, unless there are none
        (geth findnodeByID), which is what FindNode answers are built from.
        """
        t = int.from_bytes(target, "big")
        if prefer_live:
            live = [e.node for b in self.buckets for e in b.entries if e.is_live]
            if live:
                return heapq.nsmallest(count, live, key=lambda n: n.id_int ^ t)
        everyone = [e.node for b in self.buckets for e in b.entries]
        return heapq.nsmallest(count, everyone, key=lambda n: n.id_int ^ t)

    # -- adding --------------------------------------------------------------------------

    def set_fallback_nodes(self, nodes: Iterable[Node]) -> None:
        """Bootnodes: always loaded on refresh, so an empty table can start over."""
        nursery = []
        for n in nodes:
            n.validate_complete()
            nursery.append(n)
        self.nursery = nursery

    def load_seeds(self, seeds: Iterable[Node]) -> None:
        """geth loadSeedNodes: DB seeds and the nursery go in as found nodes."""
        for n in [*seeds, *self.nursery]:
            self._add(n, inbound=False)

    def add_found_node(self, node: Node, force_live: bool = False) -> bool:
        """A node some other node told us about (Neighbors, DB, bootnode)."""
        return self._add(node, inbound=False, force_live=force_live)

    def add_inbound_node(self, node: Node) -> bool:
        """A node that contacted us and proved its endpoint (answered our Ping)."""
        return self._add(node, inbound=True)

    def _add(self, node: Node, inbound: bool, force_live: bool = False) -> bool:
        if node.id == self.self_id:
            return False
        if inbound and not self.init_done:
            return False
        b = self.bucket(node.id)
        if self._bump(b, node, inbound) is not None:
            return False  # already in the bucket
        if len(b.entries) >= BUCKET_SIZE:
            self._add_replacement(b, node)
            return False
        if not self._add_ip(b, node.ip):
            return False
        tn = TableNode(node, self.clock())
        if force_live:
            tn.liveness_checks = 1
            tn.is_live = True
        b.entries.append(tn)
        b.replacements = [r for r in b.replacements if r.node.id != node.id]
        self._node_added(tn)
        return True

    def _add_ip(self, b: Bucket, ip: IPAddress | None) -> bool:
        if ip is None or ip.is_unspecified:
            return False  # nodes without an IP cannot be added
        if is_lan(ip):
            return True
        if not self.ips.add(ip):
            return False
        if not b.ips.add(ip):
            self.ips.remove(ip)
            return False
        return True

    def _remove_ip(self, b: Bucket, ip: IPAddress | None) -> None:
        if ip is None or is_lan(ip):
            return
        self.ips.remove(ip)
        b.ips.remove(ip)

    def _add_replacement(self, b: Bucket, node: Node) -> None:
        if any(r.node.id == node.id for r in b.replacements):
            return
        if not self._add_ip(b, node.ip):
            return
        b.replacements.insert(0, TableNode(node, self.clock()))
        if len(b.replacements) > MAX_REPLACEMENTS:
            removed = b.replacements.pop()
            self._remove_ip(b, removed.node.ip)

    def _bump(self, b: Bucket, node: Node, inbound: bool) -> TableNode | None:
        """Update an entry in place; inbound updates always apply, found ones need a newer seq."""
        i = b.find(node.id)
        if i < 0:
            return None
        tn = b.entries[i]
        if node.seq <= tn.node.seq and not inbound:
            return tn
        old = tn.node
        if node.ip != old.ip:
            self._remove_ip(b, old.ip)
            if not self._add_ip(b, node.ip):
                self._add_ip(b, old.ip)
                return tn
        tn.node = node
        if node.ip != old.ip or node.udp != old.udp:
            tn.is_live = False
            self._move(tn, self.fast)
        return tn

    def _node_added(self, tn: TableNode) -> None:
        tn.added_to_bucket = self.clock()
        if self.on_added is not None:
            self.on_added(tn.node)
        if self.fast.push(tn, tn.added_to_bucket, self.rng) and self.on_schedule is not None:
            self.on_schedule()

    def _move(self, tn: TableNode, dest: RevalidationList) -> None:
        if tn.reval_list is dest:
            return
        if tn.reval_list is not None:
            tn.reval_list.remove(tn)
        if dest.push(tn, self.clock(), self.rng) and self.on_schedule is not None:
            self.on_schedule()

    # -- removing ------------------------------------------------------------------------

    def delete_node(self, node_id: bytes) -> TableNode | None:
        """Drop an entry; a random replacement takes its place. Returns that replacement."""
        b = self.bucket(node_id)
        i = b.find(node_id)
        if i < 0:
            return None
        tn = b.entries.pop(i)
        self._remove_ip(b, tn.node.ip)
        if tn.reval_list is not None:
            tn.reval_list.remove(tn)
        if not b.replacements:
            return None
        rep = b.replacements.pop(self.rng.randrange(len(b.replacements)))
        b.entries.append(rep)
        self._node_added(rep)
        return rep

    def track_request(self, node: Node, fails: int, found: Iterable[Node]) -> None:
        """After a FindNode: drop a node that failed too often (unless its bucket is nearly
        empty, which keeps small test networks connected) and add what it returned."""
        b = self.bucket(node.id)
        if fails >= MAX_FINDNODE_FAILURES and len(b.entries) >= BUCKET_SIZE // 4:
            self.delete_node(node.id)
        for n in found:
            self._add(n, inbound=False)

    # -- revalidation --------------------------------------------------------------------

    def revalidation_due(self, now: float | None = None) -> tuple[list[TableNode], float]:
        """Entries to ping now and when to ask again (geth tableRevalidation.run).

        Each returned entry is marked in flight until ``revalidation_result`` is called.
        """
        now = self.clock() if now is None else now
        due: list[TableNode] = []
        for lst in (self.fast, self.slow):
            if lst.next_time <= now:
                n = lst.pick(self.rng, self._active)
                if n is not None:
                    self._active.add(n.node.id)
                    due.append(n)
                lst.schedule(now, self.rng)
        return due, min(self.fast.next_time, self.slow.next_time)

    def revalidation_result(self, tn: TableNode, responded: bool, new_node: Node | None = None) -> bool:
        """Apply a revalidation outcome; True when the node has earned a place in the DB as a seed."""
        self._active.discard(tn.node.id)
        if tn.reval_list is None:
            return False  # removed from the table while the ping was in flight
        if not responded:
            tn.liveness_checks //= 3
            if tn.liveness_checks <= 0:
                self.delete_node(tn.node.id)
            else:
                self._move(tn, self.fast)
            return False
        tn.liveness_checks += 1
        tn.is_live = True
        endpoint_changed = False
        if new_node is not None:
            b = self.bucket(tn.node.id)
            old = tn.node
            self._bump(b, new_node, inbound=False)
            endpoint_changed = tn.node is new_node and (old.ip != new_node.ip or old.udp != new_node.udp)
        if not endpoint_changed:
            self._move(tn, self.slow)
        return tn.is_live and tn.liveness_checks > SEED_MIN_CHECKS

    @property
    def next_revalidation(self) -> float:
        return min(self.fast.next_time, self.slow.next_time)


__all__ = [
    "Table", "TableNode", "Bucket", "RevalidationList", "ALPHA", "BUCKET_SIZE", "MAX_REPLACEMENTS",
    "N_BUCKETS",
    "BUCKET_MIN_DISTANCE", "BUCKET_IP_LIMIT", "TABLE_IP_LIMIT", "SEED_COUNT", "SEED_MAX_AGE", "PING_INTERVAL",
    "REFRESH_INTERVAL", "MAX_FINDNODE_FAILURES", "NEVER",
]
