"""Answers to snap queries from the node's tries (geth ``eth/protocols/snap/handlers.go``).

geth serves ranges from its flat snapshot; ethnode has none and walks the stored tries
(``core.state.ranges``; account ranges through the compiled walk, ``snap.walk``), touching
only the paths a reply needs. The rules are geth's:

- only the states of the last ``STATE_HISTORY`` canonical blocks are served (what geth's
  snapshot and path database keep); a query for any other root, a storage root or
  junk, gets an empty answer, never a disconnect;
- a range reply stops at the first key at or past the limit hash, or once its bytes
  pass the soft limit (so at least one item always comes back), and is proven by the
  Merkle paths of its origin and its last key;
- bytecodes, trie nodes and access lists are capped by lookups, bytes and (trie nodes)
  time, and an item we lack is left out (trie nodes and access lists keep its place).

Each query is a generator that yields between items (account ranges: between chunks of
``WALK_CHUNK`` accounts), so the peer's handler can serve it in time slices on the shared
loop (``drive``); ``run`` drains one at once.

GetByteCodes must tell code from trie nodes, which share our store's namespace: a blob that
is an encoded 2- or 17-item list is taken for a node and not served as code (contract code
crafted to look like one would not be served either; geth keeps code under its own prefix).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ethnode import rlp
from ethnode.core.genesis import EMPTY_CODE_HASH
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.rawdb.store import KeyValueStore
from ethnode.core.state.ranges import NonConsensusNode, compact_to_nibbles, iter_leaves, node_at_path, prove
from ethnode.core.state.trie import MissingNodeError, trie_get
from ethnode.core.types.header import Header
from ethnode.eth.protocols.eth.serve import SERVE_SLICE
from ethnode.eth.protocols.snap._walk_pure import slim_account
from ethnode.eth.protocols.snap.protocol import SnapViolation
from ethnode.eth.protocols.snap.walk import account_chunk
from ethnode.rlp.errors import DecodingError
from ethnode.rlp.framing import wrap_bytes, wrap_list
from ethnode.trie import EMPTY_ROOT

SOFT_RESPONSE_LIMIT = 2 * 1024 * 1024  # bytes; geth softResponseLimit
MAX_CODE_LOOKUPS = 1024  # bytecodes per query; geth maxCodeLookups
STATE_LOOKUP_SLACK = 0.1  # a storage reply may pass its limit by 10% to finish a contract; geth stateLookupSlack
MAX_TRIE_NODE_LOOKUPS = 1024  # trie node loads per query; geth maxTrieNodeLookups
MAX_TRIE_NODE_TIME = 5.0  # seconds one trie node query may take; geth maxTrieNodeTimeSpent
MAX_ACCESS_LIST_LOOKUPS = 1024  # access lists per query; geth maxAccessListLookups
# States kept for serving: the head's and the 128 before it (geth TriesInMemory: its snapshot's
# diff layers and pathdb's layers; older roots answer empty, as geth's do).
STATE_HISTORY = 128
# A trie node lookup of an account without a flat snapshot costs a path of loads; geth charges 8.
ACCOUNT_LOOKUP_LOADS = 8
WALK_CHUNK = 256  # accounts per call into the walk; the handler may yield to other peers between calls
UNAVAILABLE_BAL = b"\x80"  # EIP-8189: the empty string in place of a list we do not have

_MAX_HASH = b"\xff" * 32
_HASH_PREFIX = b"\xa0"  # RLP header of a 32-byte string

T = TypeVar("T")
Work = Generator[None, None, T]  # yields between items; returns the answer


class SnapChain(Protocol):
    """What snap serving reads: the chain store, the state's nodes and the canonical chain."""

    @property
    def db(self) -> KeyValueStore: ...

    @property
    def current_block(self) -> Header: ...

    def get_header_by_number(self, number: int) -> Header | None: ...


class NodeSource(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class AccountRange:
    accounts: list[bytes]  # encoded [hash, slim account] items
    proof: list[bytes]


@dataclass(frozen=True, slots=True)
class StorageRanges:
    slots: list[list[bytes]]  # per account, encoded [hash, value] items
    proof: list[bytes]


def _to_hash(data: bytes) -> bytes:
    """geth ``common.BytesToHash``: the last 32 bytes, left-padded."""
    return data[-32:].rjust(32, b"\0")


def _looks_like_trie_node(blob: bytes) -> bool:
    """Whether ``blob`` is an encoded trie node (a list of 2 or 17 items) rather than code.

    Code and trie nodes share one content-addressed namespace in our store (geth keys
    code apart, under "c" + hash), so GetByteCodes must not answer a node hash with the node.
    """
    if not blob or blob[0] < 0xC0:
        return False
    try:
        node = rlp.decode(blob)
    except DecodingError:
        return False
    return len(node) in (2, 17)


class SnapServer:
    """Serves one chain's recent states to every snap peer."""

    def __init__(self, chain: SnapChain, nodes: NodeSource) -> None:
        self.chain = chain
        self.nodes = nodes
        self._roots_at: bytes | None = None  # head hash the cached root set belongs to
        self._roots: frozenset[bytes] = frozenset()

    def serves(self, root: bytes) -> bool:
        """Whether ``root`` is the state of one of the last STATE_HISTORY + 1 canonical blocks."""
        head = self.chain.current_block
        if head.hash != self._roots_at:
            roots = {head.state_root}
            for number in range(max(0, head.number - STATE_HISTORY), head.number):
                header = self.chain.get_header_by_number(number)
                if header is not None:
                    roots.add(header.state_root)
            self._roots, self._roots_at = frozenset(roots), head.hash
        return root in self._roots and (root == EMPTY_ROOT or self.nodes.get(root) is not None)

    # --- account and storage ranges --------------------------------------------------------

    def account_range(self, root: bytes, origin: bytes, limit: bytes, nbytes: int) -> Work[AccountRange]:
        """geth ``ServiceGetAccountRangeQuery``."""
        nbytes = min(nbytes, SOFT_RESPONSE_LIMIT)
        if not self.serves(root):
            return AccountRange([], [])
        get = self.nodes.get
        accounts: list[bytes] = []
        size = 0
        last: bytes | None = None
        start = origin
        try:
            while True:
                chunk, size, done, chunk_last = account_chunk(get, root, start, limit, size, nbytes, WALK_CHUNK)
                accounts += chunk
                last = chunk_last or last
                if done or last is None or last == _MAX_HASH:
                    break
                start = (int.from_bytes(last, "big") + 1).to_bytes(32, "big")
                yield
            proof: dict[bytes, None] = {}
            prove(get, root, origin, proof)
            if last is not None and last != bytes(32):
                prove(get, root, last, proof)
        except (MissingNodeError, DecodingError, ValueError):
            return AccountRange([], [])
        return AccountRange(accounts, list(proof))

    def storage_ranges(
        self, root: bytes, accounts: Sequence[bytes], origin: bytes, limit: bytes, nbytes: int
    ) -> Work[StorageRanges]:
        """geth ``ServiceGetStorageRangesQuery``: whole tries while they fit; the first one
        that does not (or that starts past its first slot) is cut, proven, and ends the reply."""
        nbytes = min(nbytes, SOFT_RESPONSE_LIMIT)
        hard_limit = int(nbytes * (1 + STATE_LOOKUP_SLACK))
        if not self.serves(root):
            return StorageRanges([], [])
        get = self.nodes.get
        slots: list[list[bytes]] = []
        proofs: list[bytes] = []
        size = 0
        first_origin: bytes | None = origin or None
        first_limit: bytes | None = limit or None
        try:
            for account in accounts:
                if size >= nbytes:
                    break
                start = bytes(32)
                if first_origin is not None:
                    start, first_origin = _to_hash(first_origin), None
                end = _MAX_HASH
                if first_limit is not None:
                    end, first_limit = _to_hash(first_limit), None
                data = trie_get(get, root, account)
                storage_root = EMPTY_ROOT if data is None else rlp.decode(data)[2]
                storage: list[bytes] = []
                last: bytes | None = None
                abort = False
                for key, value in iter_leaves(get, storage_root, start):
                    if size >= hard_limit:
                        abort = True
                        break
                    storage.append(wrap_list(_HASH_PREFIX + key + wrap_bytes(value)))
                    last = key
                    size += 32 + len(value)
                    if key >= end:
                        abort = True
                        break
                    yield
                if storage:
                    slots.append(storage)
                if start != bytes(32) or (abort and storage):
                    if data is None:
                        return StorageRanges([], [])  # geth: no account to prove against, no answer
                    proof: dict[bytes, None] = {}
                    if storage_root != EMPTY_ROOT:
                        prove(get, storage_root, start, proof)
                        if last is not None and last != bytes(32):
                            prove(get, storage_root, last, proof)
                    proofs.extend(proof)
                    break  # a proof ends the reply: the peer asks again from where it stopped
                yield
        except (MissingNodeError, DecodingError, ValueError, IndexError):
            return StorageRanges([], [])
        return StorageRanges(slots, proofs)

    # --- bytecodes, trie nodes, access lists ---------------------------------------------------

    def byte_codes(self, hashes: Sequence[bytes], nbytes: int) -> Work[list[bytes]]:
        """geth ``ServiceGetByteCodesQuery``: codes in request order, unknown ones left out."""
        nbytes = min(nbytes, SOFT_RESPONSE_LIMIT)
        codes: list[bytes] = []
        size = 0
        for code_hash in hashes[:MAX_CODE_LOOKUPS]:
            if code_hash == EMPTY_CODE_HASH:
                codes.append(b"")  # asked for the empty code: answered without a lookup, as geth
            else:
                blob = self.nodes.get(code_hash)
                if blob and not _looks_like_trie_node(blob):
                    codes.append(blob)
                    size += len(blob)
            if size > nbytes:
                break
            yield
        return codes

    def trie_nodes(self, root: bytes, paths: Sequence[bytes], nbytes: int) -> Work[list[bytes]]:
        """geth ``ServiceGetTrieNodesQuery`` (snap/1): each path set is an account-trie path, or an
        account hash followed by storage-trie paths. A path leading nowhere answers an empty
        node; a malformed or empty path set is a violation (each set is checked when its turn comes)."""
        started = time.monotonic()
        nbytes = min(nbytes, SOFT_RESPONSE_LIMIT)
        if not self.serves(root):
            return []
        get = self.nodes.get
        nodes: list[bytes] = []
        size = 0
        loads = 0

        def over() -> bool:
            return size > nbytes or loads > MAX_TRIE_NODE_LOOKUPS or time.monotonic() - started > MAX_TRIE_NODE_TIME

        for raw_set in paths:
            path_set = _path_set(raw_set)
            if len(path_set) == 1:
                try:
                    blob, resolved = node_at_path(get, root, compact_to_nibbles(path_set[0]))
                    loads += max(resolved, 1)
                    nodes.append(blob)
                    size += len(blob)
                except (MissingNodeError, NonConsensusNode, DecodingError):
                    loads += 1
            else:
                loads += ACCOUNT_LOOKUP_LOADS
                try:
                    data = trie_get(get, root, _to_hash(path_set[0]))
                except (MissingNodeError, DecodingError):
                    data = None
                if data is not None:
                    loads += 1
                    storage_root = rlp.decode(data)[2]
                    for path in path_set[1:]:
                        try:
                            blob, resolved = node_at_path(get, storage_root, compact_to_nibbles(path))
                        except (MissingNodeError, NonConsensusNode, DecodingError):
                            loads += 1
                            break
                        loads += max(resolved, 1)
                        nodes.append(blob)
                        size += len(blob)
                        if over():
                            break
            if over():
                break
            yield
        return nodes

    def access_lists(self, hashes: Sequence[bytes], nbytes: int) -> Work[list[bytes]]:
        """geth ``ServiceGetAccessListsQuery`` (snap/2): each block's stored access list in request
        order, the empty string for one we lack; the list that passes the byte limit is the last."""
        nbytes = min(nbytes, SOFT_RESPONSE_LIMIT)
        db = self.chain.db
        out: list[bytes] = []
        size = 0
        for block_hash in hashes[:MAX_ACCESS_LIST_LOOKUPS]:
            number = rawdb.read_header_number(db, block_hash)
            bal = None if number is None else rawdb.read_block_access_list(db, block_hash, number)
            if bal:
                out.append(bal)
                size += len(bal)
            else:
                out.append(UNAVAILABLE_BAL)
                size += 1
            if size > nbytes:
                break
            yield
        return out


def _path_set(raw_set: bytes) -> list[bytes]:
    """One GetTrieNodes path set: a non-empty list of byte strings, or a violation."""
    try:
        items: Any = rlp.decode(raw_set)
    except DecodingError as exc:
        raise SnapViolation(f"bad request: invalid path set: {exc}") from None
    if not isinstance(items, list):
        raise SnapViolation("bad request: path set is not a list")
    if not items:
        raise SnapViolation("bad request: zero-item pathset requested")
    if not all(isinstance(p, bytes) for p in items):
        raise SnapViolation("bad request: invalid account node request" if not isinstance(items[0], bytes)
                            else "bad request: invalid storage key")
    return items


def run(work: Work[T]) -> T:
    """A query's answer at once (tests, benchmarks)."""
    while True:
        try:
            next(work)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


async def drive(work: Work[T], slice_seconds: float = SERVE_SLICE,
                clock: Callable[[], float] = time.perf_counter) -> T:
    """A query's answer, letting other peers' tasks run whenever a slice of serving time is used."""
    deadline = clock() + slice_seconds
    while True:
        try:
            next(work)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if clock() >= deadline:
            await asyncio.sleep(0)
            deadline = clock() + slice_seconds


__all__ = [
    "SnapServer", "SnapChain", "AccountRange", "StorageRanges", "slim_account", "run", "drive",
    "SOFT_RESPONSE_LIMIT", "MAX_CODE_LOOKUPS", "STATE_LOOKUP_SLACK", "MAX_TRIE_NODE_LOOKUPS",
    "MAX_TRIE_NODE_TIME", "MAX_ACCESS_LIST_LOOKUPS", "STATE_HISTORY", "UNAVAILABLE_BAL",
]
