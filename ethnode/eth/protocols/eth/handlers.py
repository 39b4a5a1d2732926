"""Every eth message after Status, one function per code (geth ``eth/protocols/eth/handlers.go``).

Each message is decoded once, here, and checked against geth's rules; a peer breaking
one raises ``ProtocolViolation`` (its connection ends with SUBPROTOCOL_ERROR). Then:

- data queries are served from the backend's chain and pool and answered on the peer;
- responses settle the peer's own request (its tracker) with the decoded items;
- broadcasts and announcements are marked known on the peer and handed to the backend as
  typed packets (``EthBackend.on_*``).

Nothing here calls back into the backend for decoding or settling, and the backend never
calls in here: the path runs one way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ethnode.core.txpool.config import MAX_BLOBS_PER_TX
from ethnode.core.types.custody import CELLS_PER_BLOB, custody_from_bytes
from ethnode.core.types.header import HeaderError
from ethnode.core.types.receipt import Receipt, ReceiptError
from ethnode.core.types.transaction import (
    BLOB_TX_TYPE,
    BlobTxWithSidecar,
    TransactionError,
    decode_tx_item,
    kzg_to_versioned_hash,
)
from ethnode.eth.protocols.eth.events import BlockRangeUpdated, BlocksAnnounced, TxsAnnounced, TxsReceived
from ethnode.eth.protocols.eth.handshake import MAX_TD_BITS
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_ACCESS_LISTS,
    BLOCK_BODIES,
    BLOCK_HEADERS,
    BLOCK_RANGE_UPDATE,
    CELLS,
    ETH68,
    ETH70,
    ETH72,
    GET_BLOCK_ACCESS_LISTS,
    GET_BLOCK_BODIES,
    GET_BLOCK_HEADERS,
    GET_CELLS,
    GET_POOLED_TRANSACTIONS,
    GET_RECEIPTS,
    MAX_TX_BROADCAST,
    NEW_BLOCK,
    NEW_BLOCK_HASHES,
    NEW_POOLED_TRANSACTION_HASHES,
    POOLED_TRANSACTIONS,
    RECEIPTS,
    STATUS,
    TRANSACTIONS,
    BlockAnnouncement,
    ProtocolViolation,
    message,
    origin_of,
)
from ethnode.eth.protocols.eth.serve import (
    Receipts70,
    collect,
    iter_block_access_lists,
    iter_bodies,
    iter_cells,
    iter_headers,
    iter_receipts,
    serve_pooled_txs,
)
from ethnode.logctx import kv
from ethnode.rlp.errors import DecodingError

if TYPE_CHECKING:
    from ethnode.eth.protocols.eth.backend import EthBackend, WireTx
    from ethnode.eth.protocols.eth.peer import EthPeer

log = logging.getLogger("ethnode.eth.handlers")

Handler = Callable[["EthBackend", "EthPeer", bytes], Awaitable[None] | None]


def decode(version: int, code: int, payload: bytes) -> Any:
    """The message's value on ``version``; ProtocolViolation for an unknown code or bad bytes."""
    msg = message(version, code)
    if msg is None:
        raise ProtocolViolation(f"invalid message code: {code:#x} on eth/{version}")
    try:
        return msg.decode(payload)
    except DecodingError as exc:
        raise ProtocolViolation(f"invalid {msg.name}: {exc}") from None


async def handle_message(backend: EthBackend, peer: EthPeer, code: int, payload: bytes) -> None:
    """Handle one message after the Status exchange."""
    if message(peer.version, code) is None:
        raise ProtocolViolation(f"invalid message code: {code:#x} on eth/{peer.version}")
    result = _HANDLERS[code](backend, peer, payload)
    if result is not None:
        await result


def _extra_status(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    raise ProtocolViolation("extra status message")


# --- transactions ------------------------------------------------------------------------------


def _decode_txs(items: Sequence[bytes], what: str) -> tuple[list[WireTx], bytes]:
    """Decode tx items; reject duplicates; returns (txs, packed hashes)."""
    txs: list[WireTx] = []
    for i, item in enumerate(items):
        try:
            txs.append(decode_tx_item(item, allow_sidecar=True))
        except TransactionError as exc:
            raise ProtocolViolation(f"{what}: transaction {i}: {exc}") from None
    hashes = [tx.hash for tx in txs]
    if len(set(hashes)) != len(hashes):
        seen: set[bytes] = set()
        for h in hashes:
            if h in seen:
                raise ProtocolViolation(f"{what}: multiple copies of the same hash 0x{h.hex()}")
            seen.add(h)
    return txs, b"".join(hashes)


def _transactions(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    if not backend.accept_txs:
        return
    items = decode(peer.version, TRANSACTIONS, payload)
    if len(items) > MAX_TX_BROADCAST:
        raise ProtocolViolation(f"Transactions: too many transactions ({len(items)} > {MAX_TX_BROADCAST})")
    txs, packed = _decode_txs(items, "Transactions")
    for tx in txs:
        if tx.type == BLOB_TX_TYPE:
            raise ProtocolViolation("Transactions: disallowed broadcast blob transaction")
    peer.mark_transactions(packed)
    if txs and peer.wants(TxsReceived):
        peer.emit(TxsReceived(peer, txs, False, peer.received_ns))
    if txs:
        backend.on_transactions(peer, txs)


def _pooled_hashes(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    if not backend.accept_txs:
        return
    ann = decode(peer.version, NEW_POOLED_TRANSACTION_HASHES, payload)
    if not len(ann.hashes) == len(ann.types) == len(ann.sizes):
        raise ProtocolViolation(
            f"NewPooledTransactionHashes: invalid len of fields in {len(ann.hashes)} {len(ann.types)} "
            f"{len(ann.sizes)}"
        )
    peer.mark_transactions(b"".join(ann.hashes))
    if peer.wants(TxsAnnounced):
        mask = custody_from_bytes(ann.mask) if peer.version >= ETH72 else None
        peer.emit(TxsAnnounced(peer, ann.hashes, ann.types, ann.sizes, peer.received_ns, mask))
    backend.on_pooled_hashes(peer, ann)


async def _get_pooled_txs(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rid, hashes = decode(peer.version, GET_POOLED_TRANSACTIONS, payload)
    served, items = serve_pooled_txs(backend.txpool, hashes, peer.version)
    await peer.reply(POOLED_TRANSACTIONS, rid, items)
    peer.mark_transactions(b"".join(served))


def _pooled_txs(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    if not backend.accept_txs:
        return
    rid, items = decode(peer.version, POOLED_TRANSACTIONS, payload)
    txs, packed = _decode_txs(items, "PooledTransactions")
    for tx in txs:
        if tx.type != BLOB_TX_TYPE:
            continue
        _check_pooled_blob_tx(tx, peer.version)
    # Checked in full before the request is settled, so a violation leaves it pending and
    # its caller gets PeerDroppedError when the connection ends.
    waiter = peer.fulfil(POOLED_TRANSACTIONS, rid, len(items))
    peer.mark_transactions(packed)
    if txs and peer.wants(TxsReceived):
        peer.emit(TxsReceived(peer, txs, True, peer.received_ns))
    if waiter is not None:
        waiter.set_result(txs)
    elif txs:
        backend.on_pooled_transactions(peer, txs)


def _check_pooled_blob_tx(tx: WireTx, version: int) -> None:
    """geth handleTransactions for a pooled blob tx: a sidecar matching the blob hashes, with
    every blob before eth/72 and none on eth/72 (its blob data comes as cells)."""
    if not isinstance(tx, BlobTxWithSidecar):
        raise ProtocolViolation("PooledTransactions: received sidecar-less blob transaction")
    sc, hashes = tx.sidecar, tx.tx.blob_hashes
    if len(sc.commitments) != len(hashes):
        raise ProtocolViolation(
            f"PooledTransactions: invalid number of {len(sc.commitments)} blob commitments compared to "
            f"{len(hashes)} blob hashes")
    for commitment, vhash in zip(sc.commitments, hashes, strict=True):
        if kzg_to_versioned_hash(commitment) != vhash:
            raise ProtocolViolation("PooledTransactions: blob commitment does not match its versioned hash")
    if version >= ETH72:
        if sc.blobs:
            raise ProtocolViolation("PooledTransactions: received blob transaction with blob payload on eth72")
    elif len(sc.blobs) != len(hashes):
        raise ProtocolViolation("PooledTransactions: incorrect number of blobs (len(blobs) != len(vhashes))")


# --- blob cells (eth/72) -------------------------------------------------------------------------


async def _get_cells(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rid, (hashes, mask) = decode(peer.version, GET_CELLS, payload)
    served = await collect(iter_cells(backend.txpool, hashes, custody_from_bytes(mask)))
    await peer.reply_cells(rid, [h for h, _ in served], [c for _, c in served], mask)


def _cells(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rid, (hashes, lists, mask_bytes) = decode(peer.version, CELLS, payload)
    mask = custody_from_bytes(mask_bytes)
    # Checked before the request is settled: a violation leaves it pending, and its caller
    # gets PeerDroppedError when the connection ends.
    cells = blob_major_cells(hashes, lists, mask)
    waiter = peer.fulfil(CELLS, rid, len(lists))
    if waiter is not None:
        waiter.set_result((hashes, cells, mask))
    # else: the fetcher gave up on the request; geth ignores cells it no longer expects


def blob_major_cells(hashes: Sequence[bytes], lists: Sequence[Sequence[bytes]], mask: int) -> list[list[bytes]]:
    """Each tx's cells from the wire's index-major order into blob-major (geth ``Handle`` of a
    CellsResponse), after geth's checks: one list per hash, a whole number of blobs of
    ``mask``'s cells each, no more than a tx can have, and no cells under an empty mask."""
    if len(hashes) != len(lists):
        raise ProtocolViolation(f"Cells: cells reply length mismatch: {len(hashes)} hashes, {len(lists)} cells")
    count = mask.bit_count()
    out: list[list[bytes]] = []
    for cells in lists:
        n = len(cells)
        if n == 0:
            out.append([])
            continue
        if n > MAX_BLOBS_PER_TX * CELLS_PER_BLOB:
            raise ProtocolViolation("Cells: cells per tx exceeded the possible maximum")
        if count == 0 or n % count:
            raise ProtocolViolation(f"Cells: {n} cells inconsistent with {count} custody indices")
        blobs = n // count
        ordered: list[bytes] = [b""] * n
        for j, cell in enumerate(cells):
            ordered[(j % blobs) * count + j // blobs] = cell
        out.append(ordered)
    return out


# --- chain data ---------------------------------------------------------------------------------


async def _get_headers(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rid, query = decode(peer.version, GET_BLOCK_HEADERS, payload)
    origin = origin_of(query.origin)
    items = await collect(iter_headers(backend.chain, origin, query.amount, query.skip, query.reverse))
    await peer.reply(BLOCK_HEADERS, rid, items)


async def _get_bodies(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rid, hashes = decode(peer.version, GET_BLOCK_BODIES, payload)
    await peer.reply(BLOCK_BODIES, rid, await collect(iter_bodies(backend.chain, hashes)))


async def _get_receipts(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    if peer.version >= ETH70:
        rid, (first_index, hashes) = decode(peer.version, GET_RECEIPTS, payload)
        query = Receipts70(backend.chain, hashes, first_index)
        items = await collect(iter(query))
        await peer.reply(RECEIPTS, rid, items, head=b"\x01" if query.incomplete else b"\x80")
        return
    rid, hashes = decode(peer.version, GET_RECEIPTS, payload)
    await peer.reply(RECEIPTS, rid, await collect(iter_receipts(backend.chain, hashes, peer.version)))


async def _get_block_access_lists(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rid, hashes = decode(peer.version, GET_BLOCK_ACCESS_LISTS, payload)
    await peer.reply(BLOCK_ACCESS_LISTS, rid, await collect(iter_block_access_lists(backend.chain, hashes)))


def _block_access_lists(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rid, items = decode(peer.version, BLOCK_ACCESS_LISTS, payload)
    waiter = peer.fulfil(BLOCK_ACCESS_LISTS, rid, len(items))
    if waiter is not None:
        waiter.set_result(items)


def _headers(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rid, headers = decode(peer.version, BLOCK_HEADERS, payload)
    waiter = peer.fulfil(BLOCK_HEADERS, rid, len(headers))
    if waiter is not None:
        waiter.set_result(headers)


def _bodies(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rid, bodies = decode(peer.version, BLOCK_BODIES, payload)
    waiter = peer.fulfil(BLOCK_BODIES, rid, len(bodies))
    if waiter is not None:
        waiter.set_result(bodies)


def _receipts(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    incomplete = False
    if peer.version >= ETH70:
        rid, (incomplete, lists) = decode(peer.version, RECEIPTS, payload)
    else:
        rid, lists = decode(peer.version, RECEIPTS, payload)
    decode_item = Receipt.decode_eth68_item if peer.version == ETH68 else Receipt.decode_eth69_item
    try:
        receipts = [[decode_item(item) for item in items] for items in lists]
    except ReceiptError as exc:
        raise ProtocolViolation(f"Receipts: {exc}") from None
    waiter = peer.fulfil(RECEIPTS, rid, len(lists))
    if waiter is not None:
        waiter.set_result((incomplete, receipts) if peer.version >= ETH70 else receipts)


# --- block propagation (eth/68) and block ranges (eth/69) ---------------------------------------


def _new_block_hashes(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    if backend.pos_finalized():
        raise ProtocolViolation("disallowed block announcement")
    announcements = decode(peer.version, NEW_BLOCK_HASHES, payload)
    for ann in announcements:
        peer.mark_block(ann.hash)
    if announcements and peer.wants(BlocksAnnounced):
        peer.emit(BlocksAnnounced(peer, announcements, None, None, peer.received_ns))
    if announcements:
        backend.on_new_block_hashes(peer, announcements)


def _new_block(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    if backend.pos_finalized():
        raise ProtocolViolation("disallowed block broadcast")
    packet = decode(peer.version, NEW_BLOCK, payload)
    block, td = packet.block, packet.td
    try:
        block.header.sanity_check()
    except HeaderError as exc:
        raise ProtocolViolation(f"NewBlock: {exc}") from None
    if td.bit_length() > MAX_TD_BITS:
        raise ProtocolViolation(f"NewBlock: too large block TD: bitlen {td.bit_length()}")
    header = block.header
    if block.uncle_hash() != header.uncle_hash or block.tx_root() != header.tx_root:
        log.debug("Propagated block has invalid body", extra=kv(number=block.number, peer=peer))
        return  # geth ignores it without dropping the peer
    peer.mark_block(block.hash)
    if peer.wants(BlocksAnnounced):
        announced = [BlockAnnouncement(block.hash, block.number)]
        peer.emit(BlocksAnnounced(peer, announced, block, td, peer.received_ns))
    backend.on_new_block(peer, block, td)


def _block_range(backend: EthBackend, peer: EthPeer, payload: bytes) -> None:
    rng = decode(peer.version, BLOCK_RANGE_UPDATE, payload)
    problem = rng.problem()
    if problem is not None:
        raise ProtocolViolation(f"BlockRangeUpdate: {problem}")
    peer.set_block_range(rng)
    if peer.wants(BlockRangeUpdated):
        peer.emit(BlockRangeUpdated(peer, rng, peer.received_ns))
    backend.on_block_range(peer, rng)


_HANDLERS: dict[int, Handler] = {
    STATUS: _extra_status,
    TRANSACTIONS: _transactions,
    NEW_POOLED_TRANSACTION_HASHES: _pooled_hashes,
    GET_POOLED_TRANSACTIONS: _get_pooled_txs,
    POOLED_TRANSACTIONS: _pooled_txs,
    GET_BLOCK_HEADERS: _get_headers,
    BLOCK_HEADERS: _headers,
    GET_BLOCK_BODIES: _get_bodies,
    BLOCK_BODIES: _bodies,
    GET_RECEIPTS: _get_receipts,
    RECEIPTS: _receipts,
    NEW_BLOCK_HASHES: _new_block_hashes,
    NEW_BLOCK: _new_block,
    BLOCK_RANGE_UPDATE: _block_range,
    GET_BLOCK_ACCESS_LISTS: _get_block_access_lists,
    BLOCK_ACCESS_LISTS: _block_access_lists,
    GET_CELLS: _get_cells,
    CELLS: _cells,
}

__all__ = ["handle_message", "decode"]
