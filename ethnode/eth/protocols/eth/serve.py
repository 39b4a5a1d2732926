"""Answers to data queries (headers, bodies, receipts, pooled txs), as lists of RLP items.

Replies are assembled from the RLP the database already holds, never decoded and
re-encoded, and they are bounded three ways as in geth ``eth/protocols/eth/handlers.go``:
an item count (1024), a soft byte limit (2 MiB: the item that crosses it is the last
one), and a lookup count (twice the item limit) so a query stuffed with junk hashes
costs bounded work. Unknown items make the reply shorter; a peer is never punished for
asking about blocks we lack. On top of geth's rules a reply never exceeds the 10 MiB
message cap (an item that would cross it is left out): geth's limit is soft, and one
block's receipts re-encoded for eth/68 can alone pass the cap every peer enforces.

Each query is a generator of items, so the handler can serve it in slices: ``collect``
drains one with a time budget per turn and lets other peers' tasks run between slices
(one asyncio loop serves every peer; geth gives each its own goroutine).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from typing import TypeVar

from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.rawdb import schema
from ethnode.core.rawdb.store import KeyValueStore
from ethnode.core.types.cells import CELL_SIZE, BlobTxWithCells, blobless_item
from ethnode.core.types.custody import custody_indices
from ethnode.core.types.receipt import decode_receipts_eth69, encode_receipts_eth68
from ethnode.core.types.transaction import BlobTxWithSidecar
from ethnode.eth.protocols.eth.backend import ChainReader, TxPoolReader
from ethnode.eth.protocols.eth.protocol import ETH68, ETH72, MAX_MESSAGE_SIZE, UNAVAILABLE_BAL
from ethnode.rlp.framing import wrap_list
from ethnode.rlp.sedes import List, raw
from ethnode.trie import EMPTY_ROOT

_raw_items = List(raw)

T = TypeVar("T")

SOFT_RESPONSE_LIMIT = 2 * 1024 * 1024  # bytes; geth softResponseLimit
MAX_HEADERS_SERVE = 1024  # geth maxHeadersServe
MAX_BODIES_SERVE = 1024  # geth maxBodiesServe
MAX_RECEIPTS_SERVE = 1024  # geth maxReceiptsServe
MAX_BALS_SERVE = 1024  # geth maxBALsServe
MAX_PACKET_SIZE = MAX_MESSAGE_SIZE  # geth maxPacketSize: eth/70 receipt replies are cut to fit it
MAX_CELLS_SERVE = 4096  # tx lookups per GetCells; geth maxCellsServe
MAX_CELL_COMPUTES = 8  # ours: txs per GetCells whose extension cells may be computed (geth stores them)
MAX_POOLED_TX_SERVE = 4096  # lookups per GetPooledTransactions; geth maxPooledTxServe
MAX_NON_CANONICAL = 100  # side-chain steps a hash-based skip query may walk; geth GetAncestor's budget
# Bytes of reply items at most: the message cap less the envelope ([request-id, [...]]).
HARD_RESPONSE_LIMIT = MAX_MESSAGE_SIZE - 64
SERVE_SLICE = 0.002  # seconds of serving before other tasks get a turn (ours: one loop, many peers)

_EMPTY_LIST = b"\xc0"


def _header_rlp(db: KeyValueStore, block_hash: bytes, number: int) -> bytes | None:
    return rawdb.read_header_rlp(db, block_hash, number)


def _canonical_header(db: KeyValueStore, number: int) -> tuple[bytes, bytes] | None:
    """(hash, header RLP) of the canonical block ``number``."""
    if not 0 <= number < 2**64:
        return None
    block_hash = rawdb.read_canonical_hash(db, number)
    if block_hash is None:
        return None
    data = rawdb.read_header_rlp(db, block_hash, number)
    return None if data is None else (block_hash, data)


def get_ancestor(
    chain: ChainReader, block_hash: bytes, number: int, ancestor: int, budget: list[int]
) -> tuple[bytes, int]:
    """The ``ancestor``-th ancestor of (hash, number) as (hash, number); (zero hash, 0) if unknown.

    geth ``HeaderChain.GetAncestor``: a jump on the canonical chain is one lookup; off it,
    walk parents one by one, at most ``budget[0]`` steps in all (shared across a query).
    """
    if ancestor > number:
        return bytes(32), 0
    db = chain.db
    if ancestor == 1:
        header = chain.get_header(block_hash, number)
        if header is None:
            return bytes(32), 0
        return header.parent_hash, number - 1
    while ancestor != 0:
        if rawdb.read_canonical_hash(db, number) == block_hash:
            target = rawdb.read_canonical_hash(db, number - ancestor)
            if rawdb.read_canonical_hash(db, number) == block_hash:  # still canonical after the read
                return (target or bytes(32)), number - ancestor
        if budget[0] == 0:
            return bytes(32), 0
        budget[0] -= 1
        ancestor -= 1
        header = chain.get_header(block_hash, number)
        if header is None:
            return bytes(32), 0
        block_hash, number = header.parent_hash, number - 1
    return block_hash, number


async def collect(items: Iterator[T], slice_seconds: float = SERVE_SLICE) -> list[T]:
    """Drain a query's items, yielding to the loop whenever a slice of serving time is used up."""
    out: list[T] = []
    clock = time.perf_counter
    deadline = clock() + slice_seconds
    for item in items:
        out.append(item)
        if clock() >= deadline:
            await asyncio.sleep(0)
            deadline = clock() + slice_seconds
    return out


def serve_headers(chain: ChainReader, origin: bytes | int, amount: int, skip: int, reverse: bool) -> list[bytes]:
    """Header RLPs for a GetBlockHeaders query (geth ServiceGetBlockHeadersQuery)."""
    return list(iter_headers(chain, origin, amount, skip, reverse))


def iter_headers(chain: ChainReader, origin: bytes | int, amount: int, skip: int, reverse: bool) -> Iterator[bytes]:
    """``serve_headers`` one item at a time."""
    if amount == 0:
        return iter(())
    if skip == 0:
        return _contiguous_headers(chain, origin, min(amount, MAX_HEADERS_SERVE), reverse)
    return _skipping_headers(chain, origin, amount, skip, reverse)


def _canonical_run(db: KeyValueStore, number: int, step: int, count: int, size: int) -> Iterator[bytes]:
    """Canonical header RLPs from ``number`` on, ``step`` apart, within the limits (``size``: bytes so far)."""
    served = 0
    while served < count and size < SOFT_RESPONSE_LIMIT and number >= 0:
        found = _canonical_header(db, number)
        if found is None or size + len(found[1]) > HARD_RESPONSE_LIMIT:
            return
        yield found[1]
        served += 1
        size += len(found[1])
        number += step


def _contiguous_headers(chain: ChainReader, origin: bytes | int, count: int, reverse: bool) -> Iterator[bytes]:
    db = chain.db
    served = 0
    size = 0
    if isinstance(origin, int):
        yield from _canonical_run(db, origin, -1 if reverse else 1, count, 0)
        return
    header = chain.get_header_by_hash(origin)
    if header is None:
        return  # not even the origin
    data = _header_rlp(db, origin, header.number)
    if data is None:
        return
    yield data
    served += 1
    size += len(data)
    if not reverse:
        # Descendants are only defined along the canonical chain.
        if rawdb.read_canonical_hash(db, header.number) != origin:
            return
        yield from _canonical_run(db, header.number + 1, 1, count - served, size)
        return
    while served < count and size < SOFT_RESPONSE_LIMIT and header.number > 0:
        parent_hash, parent_number = header.parent_hash, header.number - 1
        header = chain.get_header(parent_hash, parent_number)
        data = None if header is None else _header_rlp(db, parent_hash, parent_number)
        if data is None or size + len(data) > HARD_RESPONSE_LIMIT:
            return
        yield data
        served += 1
        size += len(data)


def _skipping_headers(
    chain: ChainReader, origin: bytes | int, amount: int, skip: int, reverse: bool
) -> Iterator[bytes]:
    db = chain.db
    hash_mode = not isinstance(origin, int)
    block_hash: bytes = origin if hash_mode else b""  # type: ignore[assignment]
    number: int = 0 if hash_mode else origin  # type: ignore[assignment]
    budget = [MAX_NON_CANONICAL]
    served = 0
    size = 0
    lookups = 0
    first = True
    while served < amount and size < SOFT_RESPONSE_LIMIT and served < MAX_HEADERS_SERVE:
        if lookups >= 2 * MAX_HEADERS_SERVE:
            break
        lookups += 1
        if hash_mode:
            if first:
                first = False
                header = chain.get_header_by_hash(block_hash)
                if header is None:
                    break
                number = header.number
            else:
                header = chain.get_header(block_hash, number)
                if header is None:
                    break
            data = _header_rlp(db, block_hash, number)
        else:
            found = _canonical_header(db, number)
            if found is None:
                break
            block_hash, data = found
        if data is None or size + len(data) > HARD_RESPONSE_LIMIT:
            break
        yield data
        served += 1
        size += len(data)
        if hash_mode and reverse:
            block_hash, number = get_ancestor(chain, block_hash, number, skip + 1, budget)
            if block_hash == bytes(32):
                break
        elif hash_mode:
            nxt = number + skip + 1
            if nxt >= 2**64:  # geth: "GetBlockHeaders skip overflow attack"
                break
            found = _canonical_header(db, nxt)
            if found is None:
                break
            # The next header must descend from the current one (skip+1 generations up).
            if get_ancestor(chain, found[0], nxt, skip + 1, budget)[0] != block_hash:
                break
            block_hash, number = found[0], nxt
        elif reverse:
            if number < skip + 1:  # underflow
                break
            number -= skip + 1
        else:
            number += skip + 1
            if number >= 2**64:  # overflow
                break


def serve_bodies(chain: ChainReader, hashes: Sequence[bytes]) -> list[bytes]:
    """Body RLPs, in order, stopping at the first unknown block (geth v1.17 ServiceGetBlockBodiesQuery)."""
    return list(iter_bodies(chain, hashes))


def iter_bodies(chain: ChainReader, hashes: Sequence[bytes]) -> Iterator[bytes]:
    """``serve_bodies`` one item at a time."""
    db = chain.db
    size = 0
    for lookups, block_hash in enumerate(hashes):
        if size >= SOFT_RESPONSE_LIMIT or lookups >= MAX_BODIES_SERVE:
            return
        number = rawdb.read_header_number(db, block_hash)
        data = None if number is None else rawdb.read_body_rlp(db, block_hash, number)
        if not data or size + len(data) > HARD_RESPONSE_LIMIT:
            return
        yield data
        size += len(data)


def _receipts_rlp(chain: ChainReader, block_hash: bytes) -> bytes | None:
    """A block's stored receipts (eth/69 list form); an empty list for a block without txs.

    Blocks with txs have receipts once import executed them; a chain imported with
    ``--noexec`` serves receipts for empty blocks only.
    """
    db = chain.db
    number = rawdb.read_header_number(db, block_hash)
    if number is None:
        return None
    data = db.get(schema.block_receipts_key(number, block_hash))
    if data is not None:
        return data  # type: ignore[no-any-return]
    header = chain.get_header(block_hash, number)
    if header is not None and header.tx_root == EMPTY_ROOT and rawdb.has_body(db, block_hash, number):
        return _EMPTY_LIST
    return None


def serve_receipts(chain: ChainReader, hashes: Sequence[bytes], version: int) -> list[bytes]:
    """Per-block receipt lists in the version's encoding, stopping at the first block without them."""
    return list(iter_receipts(chain, hashes, version))


def iter_receipts(chain: ChainReader, hashes: Sequence[bytes], version: int) -> Iterator[bytes]:
    """``serve_receipts`` one item at a time."""
    size = 0
    for lookups, block_hash in enumerate(hashes):
        if size >= SOFT_RESPONSE_LIMIT or lookups >= MAX_RECEIPTS_SERVE:
            return
        data = _receipts_rlp(chain, block_hash)
        if data is None:
            return
        if version == ETH68 and data != _EMPTY_LIST:
            data = encode_receipts_eth68(decode_receipts_eth69(data))
        if size + len(data) > HARD_RESPONSE_LIMIT:
            return
        yield data
        size += len(data)


class Receipts70:
    """An eth/70 receipts query (geth ``serviceGetReceiptsQuery70``): iterate for the per-block
    lists; ``incomplete`` tells, once drained, whether the last list was cut short.

    The first block's list starts at ``first_index``; each block may fill what is left of
    the 10 MiB packet, and a block that does not fit whole is cut after its last receipt
    that does (``lastBlockIncomplete``). A block whose first wanted receipt does not fit
    ends the reply without it.
    """

    def __init__(self, chain: ChainReader, hashes: Sequence[bytes], first_index: int) -> None:
        self.chain, self.hashes, self.first_index = chain, hashes, first_index
        self.incomplete = False

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for i, block_hash in enumerate(self.hashes):
            if size >= SOFT_RESPONSE_LIMIT or i >= MAX_RECEIPTS_SERVE:
                return
            data = _receipts_rlp(self.chain, block_hash)
            if data is None:
                return
            first = self.first_index if i == 0 else 0
            limit = MAX_PACKET_SIZE - 64 - size  # the envelope ([id, flag, [...]]) included
            items = _raw_items.decode(data)
            out: list[bytes] = []
            used = 0
            for item in items[first:]:
                if used + len(item) + 9 > limit:  # 9: the list header this block's list gets at most
                    if not out:
                        return  # not even the first receipt fits: stop here
                    self.incomplete = True
                    break
                out.append(item)
                used += len(item)
            encoded = wrap_list(b"".join(out))
            yield encoded
            size += len(encoded)
            if self.incomplete:
                return


def iter_block_access_lists(chain: ChainReader, hashes: Sequence[bytes]) -> Iterator[bytes]:
    """eth/71 (geth ``serviceGetBlockAccessListsQuery``): each block's stored access list, the
    empty string for one we do not have; 1024 lists or 2 MiB at most."""
    db = chain.db
    size = 0
    for i, block_hash in enumerate(hashes):
        if size >= SOFT_RESPONSE_LIMIT or i >= MAX_BALS_SERVE:
            return
        number = rawdb.read_header_number(db, block_hash)
        bal = None if number is None else rawdb.read_block_access_list(db, block_hash, number)
        if not bal:
            yield UNAVAILABLE_BAL
            continue
        if size + len(bal) > HARD_RESPONSE_LIMIT:
            return
        yield bal
        size += len(bal)


def serve_pooled_txs(
    txpool: TxPoolReader, hashes: Sequence[bytes], version: int = ETH68
) -> tuple[list[bytes], list[bytes]]:
    """(hashes served, tx items) for GetPooledTransactions; unknown hashes are skipped.

    eth/72 gets blob txs without their blobs (geth ``GetRLP(hash, version)``); earlier
    versions get them whole, so a tx held as custody cells only is not served to them.
    """
    served: list[bytes] = []
    items: list[bytes] = []
    size = 0
    for i, tx_hash in enumerate(hashes):
        if size >= SOFT_RESPONSE_LIMIT or i >= MAX_POOLED_TX_SERVE:
            break
        tx = txpool.get(tx_hash)
        if tx is None:
            continue
        if isinstance(tx, BlobTxWithSidecar) and (version >= ETH72 or isinstance(tx, BlobTxWithCells)):
            if version < ETH72:
                continue
            item = blobless_item(tx)
        else:
            item = tx.item()
        if size + len(item) > HARD_RESPONSE_LIMIT:
            break
        served.append(tx_hash)
        items.append(item)
        size += len(item)
    return served, items


def iter_cells(txpool: TxPoolReader, hashes: Sequence[bytes], mask: int) -> Iterator[tuple[bytes, list[bytes]]]:
    """(hash, its cells index-major) for GetCells (geth ``answerGetCells``): a tx missing any
    asked cell is left out, and serving stops at the soft byte limit.

    Extension cells of a tx held with whole blobs cost ~12 ms per blob to compute (geth
    keeps them precomputed); a request gets at most ``MAX_CELL_COMPUTES`` such txs, so a
    peer cannot make us burn seconds of CPU with one message.
    """
    indices = custody_indices(mask)
    if not indices:
        return
    max_cells = SOFT_RESPONSE_LIMIT // CELL_SIZE
    count = computed = 0
    for i, tx_hash in enumerate(hashes):
        if count >= max_cells or i >= MAX_CELLS_SERVE:
            return
        got = txpool.cells(tx_hash, indices, may_compute=False)
        if got is None and computed < MAX_CELL_COMPUTES:
            got = txpool.cells(tx_hash, indices, may_compute=True)
            computed += got is not None
        if not got:
            continue
        yield tx_hash, got
        count += len(got)


def serve_cells(txpool: TxPoolReader, hashes: Sequence[bytes], mask: int) -> tuple[list[bytes], list[list[bytes]]]:
    """``iter_cells`` gathered: (hashes served, their cells)."""
    served = list(iter_cells(txpool, hashes, mask))
    return [h for h, _ in served], [c for _, c in served]


__all__ = ["serve_cells", "MAX_CELLS_SERVE",
    "HARD_RESPONSE_LIMIT", "SERVE_SLICE", "collect", "iter_headers", "iter_bodies", "iter_receipts",
    "SOFT_RESPONSE_LIMIT", "MAX_HEADERS_SERVE", "MAX_BODIES_SERVE", "MAX_RECEIPTS_SERVE", "MAX_POOLED_TX_SERVE",
    "serve_headers", "serve_bodies", "serve_receipts", "serve_pooled_txs", "get_ancestor", "Receipts70",
    "iter_block_access_lists", "MAX_BALS_SERVE",
]
