"""The persistent node database: bonds, failure counts, seed nodes, the local seq.

geth keeps this in LevelDB under ``<datadir>/geth/nodes``; here it is one SQLite file
(stdlib, embedded, crash-safe in WAL mode). What it remembers, per (node id, IP):

- when we last received a Ping and a Pong (the endpoint proof: FindNode and ENRRequest
  are answered only while a Pong is younger than the bond expiration, 24 h);
- how many FindNode requests in a row failed (nodes failing too often are re-pinged
  and eventually dropped from the table);

and, per node, its last known record, written once the table has seen it alive several
times, so a restart can seed the table from nodes that were recently reachable.

A path of None gives an in-memory database (tests, ephemeral nodes). All calls are
synchronous and cheap (indexed single-row statements); the discovery service runs them
on its event loop thread, which also owns the connection.
"""

from __future__ import annotations

import ipaddress
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from ethnode.p2p.enode import IPAddress, Node
from ethnode.p2p.enr import ENR, ENRError
from ethnode.privatefs import make_private_dirs, touch_private

DB_VERSION = 1  # bumped when the schema changes; an old file is then wiped, as geth does with dbVersion
NODE_EXPIRATION = 24 * 3600.0  # geth dbNodeExpiration: time after which an unseen node is dropped
CLEANUP_CYCLE = 3600.0  # geth dbCleanupCycle: how often the service runs expire_nodes()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id BLOB PRIMARY KEY, pubkey BLOB NOT NULL, ip BLOB, udp INTEGER NOT NULL, tcp INTEGER NOT NULL,
    seq BLOB NOT NULL, record BLOB
);
CREATE TABLE IF NOT EXISTS endpoints (
    id BLOB NOT NULL, ip BLOB NOT NULL,
    last_ping REAL NOT NULL DEFAULT 0, last_pong REAL NOT NULL DEFAULT 0,
    find_fails INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (id, ip)
);
CREATE TABLE IF NOT EXISTS local (id BLOB PRIMARY KEY, seq INTEGER NOT NULL);
"""


def _ip_key(ip: IPAddress) -> bytes:
    """16-byte form, so that an IPv4 address and its IPv4-mapped form share a row (geth As16)."""
    if ip.version == 4:
        return ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed).packed
    return ip.packed


class NodeDB:
    """Node bookkeeping in SQLite; ``NodeDB(None)`` lives in memory."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.path = None if path is None else Path(path)
        if self.path is not None:
            make_private_dirs(self.path.parent)
            touch_private(self.path)
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:" if self.path is None else str(self.path), isolation_level=None)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            has_tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        except sqlite3.DatabaseError:
            conn.close()
            version, has_tables = -1, 1
        if has_tables and version != DB_VERSION and self.path is not None:
            # an older (or corrupt) node database holds nothing that cannot be relearned
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            conn = sqlite3.connect(str(self.path), isolation_level=None)
        if self.path is not None:
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: no fsync per write; a crash loses at most the last moments
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={DB_VERSION}")
        return conn

    def close(self) -> None:
        self._conn.close()

    # -- per (id, ip) items ----------------------------------------------------------------

    def _get(self, column: str, node_id: bytes, ip: IPAddress | None) -> float:
        if ip is None:
            return 0
        row = self._conn.execute(
            f"SELECT {column} FROM endpoints WHERE id=? AND ip=?", (node_id, _ip_key(ip))
        ).fetchone()
        return row[0] if row else 0

    def _set(self, column: str, node_id: bytes, ip: IPAddress | None, value: float) -> None:
        if ip is None:
            return
        self._conn.execute(
            f"INSERT INTO endpoints (id, ip, {column}) VALUES (?, ?, ?) "
            f"ON CONFLICT(id, ip) DO UPDATE SET {column}=excluded.{column}",
            (node_id, _ip_key(ip), value),
        )

    def last_ping_received(self, node_id: bytes, ip: IPAddress | None) -> float:
        """Unix time of the last Ping from this node at this IP (0: never)."""
        return self._get("last_ping", node_id, ip)

    def update_last_ping_received(
        self, node_id: bytes, ip: IPAddress | None, when: float | None = None,
    ) -> None:
        self._set("last_ping", node_id, ip, self.clock() if when is None else when)

    def last_pong_received(self, node_id: bytes, ip: IPAddress | None) -> float:
        """Unix time of the last matching Pong from this node at this IP (0: never)."""
        return self._get("last_pong", node_id, ip)

    def update_last_pong_received(
        self, node_id: bytes, ip: IPAddress | None, when: float | None = None,
    ) -> None:
        self._set("last_pong", node_id, ip, self.clock() if when is None else when)

    def find_fails(self, node_id: bytes, ip: IPAddress | None) -> int:
        return int(self._get("find_fails", node_id, ip))

    def update_find_fails(self, node_id: bytes, ip: IPAddress | None, fails: int) -> None:
        self._set("find_fails", node_id, ip, fails)

    # -- nodes ---------------------------------------------------------------------------

    def update_node(self, node: Node) -> None:
        """Store a node (its record when it has one), unless we hold a newer record already.

        seq is stored as 8 big-endian bytes: a uint64 does not fit SQLite's signed INTEGER.
        """
        row = self._conn.execute("SELECT seq FROM nodes WHERE id=?", (node.id,)).fetchone()
        if row and node.seq < int.from_bytes(row[0], "big"):
            return
        record = node.record.encode() if node.record is not None else None
        ip = node.ip.packed if node.ip is not None else None
        self._conn.execute(
            "INSERT OR REPLACE INTO nodes (id, pubkey, ip, udp, tcp, seq, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (node.id, node.pubkey, ip, node.udp, node.tcp, node.seq.to_bytes(8, "big"), record),
        )

    def node(self, node_id: bytes) -> Node | None:
        row = self._conn.execute(
            "SELECT pubkey, ip, udp, tcp, record FROM nodes WHERE id=?", (node_id,)
        ).fetchone()
        return self._row_node(row) if row else None

    @staticmethod
    def _row_node(row: tuple[bytes, bytes | None, int, int, bytes | None]) -> Node | None:
        pubkey, ip, udp, tcp, record = row
        if record is not None:
            try:
                return Node.from_enr(ENR.decode(record, verify=False))
            except ENRError:
                return None
        return Node(pubkey, ip, udp, tcp)

    def delete_node(self, node_id: bytes) -> None:
        self._conn.execute("DELETE FROM nodes WHERE id=?", (node_id,))
        self._conn.execute("DELETE FROM endpoints WHERE id=?", (node_id,))

    def query_seeds(self, count: int, max_age: float) -> list[Node]:
        """Up to ``count`` random stored nodes that answered a Ping within ``max_age`` seconds."""
        cutoff = self.clock() - max_age
        rows = self._conn.execute(
            "SELECT n.pubkey, n.ip, n.udp, n.tcp, n.record FROM nodes n "
            "WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.id = n.id AND e.last_pong >= ?) "
            "ORDER BY random() LIMIT ?",
            (cutoff, count),
        ).fetchall()
        seeds = []
        for row in rows:
            node = self._row_node(row)
            if node is None or node.ip is None:
                continue
            if self.last_pong_received(node.id, node.ip) >= cutoff:  # at the node's current IP
                seeds.append(node)
        return seeds

    def expire_nodes(self) -> int:
        """Forget endpoints not heard from within NODE_EXPIRATION and nodes left without one."""
        threshold = self.clock() - NODE_EXPIRATION
        self._conn.execute("DELETE FROM endpoints WHERE max(last_ping, last_pong) < ?", (threshold,))
        cur = self._conn.execute(
            "DELETE FROM nodes WHERE NOT EXISTS "
            "(SELECT 1 FROM endpoints e WHERE e.id = nodes.id AND e.last_pong >= ?)",
            (threshold,),
        )
        return cur.rowcount

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM nodes").fetchone()[0])

    # -- local node ----------------------------------------------------------------------

    def local_seq(self, node_id: bytes) -> int:
        """The last sequence number this node's own record used (0: none stored)."""
        row = self._conn.execute("SELECT seq FROM local WHERE id=?", (node_id,)).fetchone()
        return int(row[0]) if row else 0

    def store_local_seq(self, node_id: bytes, seq: int) -> None:
        self._conn.execute("INSERT OR REPLACE INTO local (id, seq) VALUES (?, ?)", (node_id, seq))


__all__ = ["NodeDB", "NODE_EXPIRATION", "CLEANUP_CYCLE", "DB_VERSION"]
