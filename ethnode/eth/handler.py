"""The eth handler, geth's ProtocolManager (``eth/handler.go``, ``handler_eth.go``, ``protocols/eth/handlers.go``).

It owns the peer set and everything that reacts to eth messages or to chain and pool
events:

- **Peers**: ``run_peer`` does the Status handshake (5 s), registers the peer (which
  starts its broadcast task), announces our pending txs to it (txsync), tells the syncer,
  and unregisters it when the connection ends.
- **Messages**: queries are served from the chain and pool (``serve``); broadcasts and
  responses are checked against geth's rules, marked known, and handed on: txs to the
  tx fetcher (the service installs one; without it broadcast txs go straight to the
  pool), block announcements to the block fetcher, responses to whoever awaits
  ``EthPeer.request_*``. A peer breaking a
  rule is dropped with SUBPROTOCOL_ERROR, as geth's handlers do by returning an error.
- **Loops** (``start``): txBroadcastLoop (pool ``NewTxsEvent`` -> ``broadcast_transactions``),
  minedBroadcastLoop (``NewMinedBlockEvent`` -> NewBlock / NewBlockHashes on eth/68,
  BlockRangeUpdate on eth/69), the head loop (``ChainHeadEvent`` -> BlockRangeUpdate every
  32 blocks) and the syncer.

Hooks for the fetchers and the downloader (set the attributes before ``start``):

- ``tx_fetcher``: ``notify(peer, types, sizes, hashes)`` for NewPooledTransactionHashes,
  ``enqueue(peer, txs, direct)`` for Transactions (direct=True) and for PooledTransactions
  that nobody awaited any more (direct=False), ``drop(peer)`` when a peer leaves.
- ``block_fetcher``: ``notify(peer, announcements)`` (eth/68 NewBlockHashes),
  ``enqueue(peer, block, td)`` (eth/68 NewBlock), ``notify_range(peer, block_range)``
  (eth/69 BlockRangeUpdate), ``drop(peer)``.
- ``syncer.downloader``: ``async synchronise(peer)``, optionally ``register_peer(peer)`` /
  ``unregister_peer(peer)``.
- ``remove_peer(peer)`` drops a misbehaving peer with USELESS_PEER (geth removePeer).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ethnode.core.events import ChainHeadEvent, NewMinedBlockEvent
from ethnode.core.forkid import ForkID, new_filter, new_id
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.txpool import NewTxsEvent
from ethnode.core.types.block import Block
from ethnode.core.types.header import HeaderError
from ethnode.core.types.receipt import Receipt, ReceiptError
from ethnode.core.types.transaction import BLOB_TX_TYPE, BlobTxWithSidecar, TransactionError, decode_tx_item
from ethnode.eth.handshake import HANDSHAKE_TIMEOUT, MAX_TD_BITS, AnyStatus, ChainStatus, check_status, make_status
from ethnode.eth.peer import EthPeer
from ethnode.eth.peerset import PeerSet, PeerSetError
from ethnode.eth.protocol import (
    BLOCK_BODIES,
    BLOCK_HEADERS,
    BLOCK_RANGE_UPDATE,
    ETH68,
    GET_BLOCK_BODIES,
    GET_BLOCK_HEADERS,
    GET_POOLED_TRANSACTIONS,
    GET_RECEIPTS,
    MAX_TX_BROADCAST,
    NEW_BLOCK,
    NEW_BLOCK_HASHES,
    NEW_POOLED_TRANSACTION_HASHES,
    POOLED_TRANSACTIONS,
    PROTOCOL_LENGTHS,
    PROTOCOL_NAME,
    RECEIPTS,
    STATUS,
    SUPPORTED_VERSIONS,
    TRANSACTIONS,
    BlockAnnouncement,
    BlockRange,
    ProtocolViolation,
    message,
    origin_of,
)
from ethnode.eth.serve import collect, iter_bodies, iter_headers, iter_receipts, serve_pooled_txs
from ethnode.eth.sync import Syncer
from ethnode.event import EventBus
from ethnode.p2p.disconnect import DisconnectRequested, DiscReason
from ethnode.p2p.protocol import Protocol as P2PProtocol
from ethnode.p2p.protocol import ProtocolChannel
from ethnode.rlp import encode as rlp_encode
from ethnode.rlp.framing import wrap_list

log = logging.getLogger("ethnode.eth.handler")

TX_CHAN_SIZE = 4096  # NewTxsEvents buffered for the broadcast loop; geth txChanSize
CHAIN_HEAD_CHAN_SIZE = 128  # geth chainHeadChanSize
TX_MAX_BROADCAST_SIZE = 4096  # bytes; larger txs are only announced; geth txMaxBroadcastSize
BLOCK_RANGE_STEP = 32  # blocks between BlockRangeUpdates (sooner if the head moves back); geth shouldSend


class TxFetcherHook(Protocol):
    def notify(self, peer: EthPeer, types: bytes, sizes: Sequence[int], hashes: Sequence[bytes]) -> None: ...

    def enqueue(self, peer: EthPeer, txs: Sequence[Any], direct: bool) -> None: ...

    def drop(self, peer: EthPeer) -> None: ...


class BlockFetcherHook(Protocol):
    def notify(self, peer: EthPeer, announcements: Sequence[BlockAnnouncement]) -> None: ...

    def enqueue(self, peer: EthPeer, block: Block, td: int) -> None: ...

    def notify_range(self, peer: EthPeer, block_range: BlockRange) -> None: ...

    def drop(self, peer: EthPeer) -> None: ...


class PoolTxSink:
    """The stand-in tx fetcher: broadcast txs go straight to the pool; announcements are
    noted but not fetched (the real TxFetcher replaces this)."""

    def __init__(self, txpool: Any) -> None:
        self.txpool = txpool
        self.announced = 0

    def notify(self, peer: EthPeer, types: bytes, sizes: Sequence[int], hashes: Sequence[bytes]) -> None:
        self.announced += len(hashes)

    def enqueue(self, peer: EthPeer, txs: Sequence[Any], direct: bool) -> None:
        errors = self.txpool.add(list(txs), local=False, source="broadcast" if direct else "pooled")
        bad = sum(1 for e in errors if e is not None)
        if bad:
            log.debug("%d of %d txs from %r not pooled", bad, len(txs), peer)

    def drop(self, peer: EthPeer) -> None:
        pass


class BroadcastChoice:
    """Which ⌈√N⌉ peers get a tx in full: a keyed hash of (our id, peer id, sender), lowest wins.

    Deterministic per sender, so an account's txs travel the same paths (fewer nonce gaps
    downstream), yet unpredictable to others since the key is random per handler (geth
    uses SipHash; keyed BLAKE2b is the stdlib's keyed hash).
    """

    def __init__(self, self_id: bytes, key: bytes | None = None) -> None:
        self.self_id = self_id
        self.key = key if key is not None else os.urandom(16)

    def choose(self, peers: Sequence[EthPeer], sender: bytes) -> frozenset[bytes]:
        if not peers:
            return frozenset()
        n = math.isqrt(len(peers) - 1) + 1  # ceil(sqrt(N))
        scored = sorted(
            peers,
            key=lambda p: hashlib.blake2b(self.self_id + p.id + sender, key=self.key, digest_size=8).digest(),
        )
        return frozenset(p.id for p in scored[:n])


class _BlockRangeState:
    """geth blockRangeState: announce the served range every 32 blocks, or at once if it shrinks."""

    def __init__(self, rng: BlockRange) -> None:
        self.prev = rng
        self.next = rng

    def update(self, rng: BlockRange) -> bool:
        self.next = rng
        return rng.latest < self.prev.latest or rng.latest - self.prev.latest >= BLOCK_RANGE_STEP


class EthHandler:
    """The eth protocol manager of one node."""

    def __init__(
        self,
        chain: Any,
        txpool: Any,
        *,
        network_id: int,
        node_id: bytes,
        bus: EventBus | None = None,
        versions: Sequence[int] = SUPPORTED_VERSIONS,
        max_peers: int | None = None,
        broadcast_key: bytes | None = None,
    ) -> None:
        for v in versions:
            if v not in PROTOCOL_LENGTHS:
                raise ValueError(f"unsupported eth version {v} (supported: {sorted(PROTOCOL_LENGTHS)})")
        self.chain = chain
        self.txpool = txpool
        self.network_id = network_id
        self.node_id = node_id  # our enode ID (keccak of the public key), for the broadcast choice
        self.bus = bus
        self.versions = tuple(sorted(set(versions), reverse=True))
        self.max_peers = max_peers
        self.peers = PeerSet()
        self.accept_txs = True  # geth's "synced" flag; the downloader may clear it while syncing
        self.tx_fetcher: TxFetcherHook = PoolTxSink(txpool)
        self.block_fetcher: BlockFetcherHook | None = None
        self.syncer = Syncer(self)
        self.choice = BroadcastChoice(node_id, broadcast_key)
        self._fork_filter = new_filter(
            chain.config, chain.genesis_hash, chain.genesis.time,
            lambda: (chain.current_header.number, chain.current_header.time),
        )
        self._range = _BlockRangeState(self.local_status().block_range)
        self._tasks: list[asyncio.Task[Any]] = []
        self._subs: list[Any] = []
        self._peers_changed = asyncio.Event()
        self.running = False
        self._handlers: dict[int, Callable[[EthPeer, Any], Any]] = {
            STATUS: self._on_extra_status,
            TRANSACTIONS: self._on_transactions,
            NEW_POOLED_TRANSACTION_HASHES: self._on_pooled_hashes,
            GET_POOLED_TRANSACTIONS: self._on_get_pooled_txs,
            POOLED_TRANSACTIONS: self._on_pooled_txs,
            GET_BLOCK_HEADERS: self._on_get_headers,
            BLOCK_HEADERS: self._on_headers,
            GET_BLOCK_BODIES: self._on_get_bodies,
            BLOCK_BODIES: self._on_bodies,
            GET_RECEIPTS: self._on_get_receipts,
            RECEIPTS: self._on_receipts,
            NEW_BLOCK_HASHES: self._on_new_block_hashes,
            NEW_BLOCK: self._on_new_block,
            BLOCK_RANGE_UPDATE: self._on_block_range,
        }

    # --- protocols and status --------------------------------------------------------------

    def protocols(self) -> list[P2PProtocol]:
        """One devp2p Protocol per offered eth version (the highest common one is run)."""
        return [P2PProtocol(PROTOCOL_NAME, v, PROTOCOL_LENGTHS[v], self.new_peer) for v in self.versions]

    def new_peer(self, channel: ProtocolChannel) -> EthPeer:
        return EthPeer(channel, self)

    def local_status(self) -> ChainStatus:
        chain = self.chain
        head = chain.current_block
        td = chain.get_td(head.hash, head.number) or 0
        return ChainStatus(
            network_id=self.network_id,
            genesis_hash=chain.genesis_hash,
            fork_id=self.fork_id(),
            head_hash=head.hash,
            td=td,
            earliest=0,  # no history pruning: every body from genesis is served
            latest=head.number,
            latest_hash=head.hash,
        )

    def fork_id(self) -> ForkID:
        chain = self.chain
        head = chain.current_header
        return new_id(chain.config, chain.genesis_hash, chain.genesis.time, head.number, head.time)

    def accept_status(self, peer: EthPeer, status: AnyStatus) -> None:
        """Judge a remote Status (called on the peer's reader, before any other message)."""
        check_status(peer.version, status, self.network_id, self.chain.genesis_hash, self._fork_filter)

    # --- peer lifecycle ----------------------------------------------------------------------

    async def run_peer(self, peer: EthPeer) -> None:
        """Handshake, register, serve until the connection ends (geth runEthPeer)."""
        if self.peers.closed:
            raise DisconnectRequested(DiscReason.QUITTING, "eth handler stopped")
        await peer.send_status(make_status(peer.version, self.local_status()))
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancel that races the
            # Status wake-up (a message right after Status that drops the peer), and this task
            # would then register the dropped peer and wait on its broadcast task for ever.
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                await peer.wait_status()
        except TimeoutError:
            raise DisconnectRequested(DiscReason.READ_TIMEOUT, "eth handshake timed out") from None
        # geth runEthPeer: a trusted peer is let in past the limit
        if self.max_peers is not None and len(self.peers) >= self.max_peers and not peer.trusted:
            raise DisconnectRequested(DiscReason.TOO_MANY_PEERS)
        try:
            self.peers.register(peer)
        except PeerSetError as exc:
            if self.peers.closed:
                raise DisconnectRequested(DiscReason.QUITTING, str(exc)) from None
            raise ProtocolViolation(str(exc)) from None
        broadcast = peer.start_broadcast()  # already running: register started it
        self._peers_changed.set()
        try:
            log.debug("Ethereum peer connected: %r", peer)
            register = getattr(self.syncer.downloader, "register_peer", None)
            if register is not None:
                register(peer)
            self.sync_transactions(peer)
            self.syncer.peer_event()
            await broadcast
        finally:
            self._unregister(peer)

    def _unregister(self, peer: EthPeer) -> None:
        if not self.peers.unregister(peer):
            return
        self._peers_changed.set()
        log.debug("Removing Ethereum peer %r", peer)
        self.tx_fetcher.drop(peer)
        if self.block_fetcher is not None:
            self.block_fetcher.drop(peer)
        unregister = getattr(self.syncer.downloader, "unregister_peer", None)
        if unregister is not None:
            unregister(peer)

    async def wait_for_peers(self, count: int) -> None:
        """Return once exactly ``count`` eth peers are registered (for tests and tools)."""
        while len(self.peers) != count:
            self._peers_changed.clear()
            await self._peers_changed.wait()

    def remove_peer(self, peer: EthPeer | bytes | str, reason: DiscReason = DiscReason.USELESS_PEER) -> None:
        """Drop a peer (geth removePeer: the fetchers and the downloader call this)."""
        target = peer if isinstance(peer, EthPeer) else self.peers.peer(peer)
        if target is not None:
            target.disconnect(reason)

    def sync_transactions(self, peer: EthPeer) -> None:
        """txsync: announce every pending non-blob tx to a new peer (geth syncTransactions)."""
        hashes = [
            tx.hash
            for txs in self.txpool.pending().values()
            for tx in txs
            if getattr(tx, "type", None) != BLOB_TX_TYPE
        ]
        if hashes:
            peer.async_send_pooled_transaction_hashes(hashes)

    # --- message dispatch ----------------------------------------------------------------------

    async def handle_message(self, peer: EthPeer, code: int, payload: bytes) -> None:
        msg = message(peer.version, code)
        if msg is None:
            raise ProtocolViolation(f"invalid message code: {code:#x} on eth/{peer.version}")
        handler = self._handlers[code]
        result = handler(peer, payload)
        if result is not None:
            await result

    def _on_extra_status(self, peer: EthPeer, payload: bytes) -> None:
        raise ProtocolViolation("extra status message")

    # --- transactions --------------------------------------------------------------------------

    def _decode_txs(self, peer: EthPeer, items: Sequence[bytes], what: str) -> tuple[list[Any], bytes]:
        """Decode tx items; reject duplicates; returns (txs, packed hashes)."""
        txs = []
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

    def _on_transactions(self, peer: EthPeer, payload: bytes) -> None:
        if not self.accept_txs:
            return
        items = peer.decode(TRANSACTIONS, payload)
        if len(items) > MAX_TX_BROADCAST:
            raise ProtocolViolation(f"Transactions: too many transactions ({len(items)} > {MAX_TX_BROADCAST})")
        txs, packed = self._decode_txs(peer, items, "Transactions")
        for tx in txs:
            if tx.type == BLOB_TX_TYPE:
                raise ProtocolViolation("Transactions: disallowed broadcast blob transaction")
        peer.mark_transactions(packed)
        if txs:
            self.tx_fetcher.enqueue(peer, txs, True)

    def _on_pooled_hashes(self, peer: EthPeer, payload: bytes) -> None:
        if not self.accept_txs:
            return
        ann = peer.decode(NEW_POOLED_TRANSACTION_HASHES, payload)
        if not len(ann.hashes) == len(ann.types) == len(ann.sizes):
            raise ProtocolViolation(
                f"NewPooledTransactionHashes: invalid len of fields in {len(ann.hashes)} {len(ann.types)} "
                f"{len(ann.sizes)}"
            )
        peer.mark_transactions(b"".join(ann.hashes))
        self.tx_fetcher.notify(peer, ann.types, ann.sizes, ann.hashes)

    async def _on_get_pooled_txs(self, peer: EthPeer, payload: bytes) -> None:
        rid, hashes = peer.decode(GET_POOLED_TRANSACTIONS, payload)
        served, items = serve_pooled_txs(self.txpool, hashes)
        await self._reply(peer, POOLED_TRANSACTIONS, rid, items)
        peer.mark_transactions(b"".join(served))

    def _on_pooled_txs(self, peer: EthPeer, payload: bytes) -> None:
        if not self.accept_txs:
            return
        rid, items = peer.decode(POOLED_TRANSACTIONS, payload)
        txs, packed = self._decode_txs(peer, items, "PooledTransactions")
        for tx in txs:
            if tx.type != BLOB_TX_TYPE:
                continue
            if not isinstance(tx, BlobTxWithSidecar):
                raise ProtocolViolation("PooledTransactions: received sidecar-less blob transaction")
            try:
                tx.sidecar.validate(tx.tx.blob_hashes)
            except TransactionError as exc:
                raise ProtocolViolation(f"PooledTransactions: {exc}") from None
        # Checked in full before the request is settled, so a violation leaves it pending and
        # its caller gets PeerDroppedError when the connection ends.
        waiter = peer.fulfil(POOLED_TRANSACTIONS, rid, len(items))
        peer.mark_transactions(packed)
        if waiter is not None:
            waiter.set_result(txs)
        elif txs:
            self.tx_fetcher.enqueue(peer, txs, False)

    # --- chain data ----------------------------------------------------------------------------

    async def _reply(self, peer: EthPeer, code: int, request_id: int, items: Sequence[bytes]) -> None:
        await peer.channel.send(code, wrap_list(rlp_encode(request_id) + wrap_list(b"".join(items))))

    async def _on_get_headers(self, peer: EthPeer, payload: bytes) -> None:
        rid, query = peer.decode(GET_BLOCK_HEADERS, payload)
        origin = origin_of(query.origin)
        items = await collect(iter_headers(self.chain, origin, query.amount, query.skip, query.reverse))
        await self._reply(peer, BLOCK_HEADERS, rid, items)

    async def _on_get_bodies(self, peer: EthPeer, payload: bytes) -> None:
        rid, hashes = peer.decode(GET_BLOCK_BODIES, payload)
        await self._reply(peer, BLOCK_BODIES, rid, await collect(iter_bodies(self.chain, hashes)))

    async def _on_get_receipts(self, peer: EthPeer, payload: bytes) -> None:
        rid, hashes = peer.decode(GET_RECEIPTS, payload)
        await self._reply(peer, RECEIPTS, rid, await collect(iter_receipts(self.chain, hashes, peer.version)))

    def _on_headers(self, peer: EthPeer, payload: bytes) -> None:
        rid, headers = peer.decode(BLOCK_HEADERS, payload)
        waiter = peer.fulfil(BLOCK_HEADERS, rid, len(headers))
        if waiter is not None:
            waiter.set_result(headers)

    def _on_bodies(self, peer: EthPeer, payload: bytes) -> None:
        rid, bodies = peer.decode(BLOCK_BODIES, payload)
        waiter = peer.fulfil(BLOCK_BODIES, rid, len(bodies))
        if waiter is not None:
            waiter.set_result(bodies)

    def _on_receipts(self, peer: EthPeer, payload: bytes) -> None:
        rid, lists = peer.decode(RECEIPTS, payload)
        decode = Receipt.decode_eth68_item if peer.version == ETH68 else Receipt.decode_eth69_item
        try:
            receipts = [[decode(item) for item in items] for items in lists]
        except ReceiptError as exc:
            raise ProtocolViolation(f"Receipts: {exc}") from None
        waiter = peer.fulfil(RECEIPTS, rid, len(lists))
        if waiter is not None:
            waiter.set_result(receipts)

    # --- block propagation (eth/68) and block ranges (eth/69) ------------------------------------

    def pos_finalized(self) -> bool:
        """The consensus layer finalized a post-merge block: block gossip is over (geth PoSFinalized)."""
        return (
            self.chain.config.terminal_total_difficulty is not None
            and rawdb.read_finalized_block_hash(self.chain.db) is not None
        )

    def _on_new_block_hashes(self, peer: EthPeer, payload: bytes) -> None:
        if self.pos_finalized():
            raise ProtocolViolation("disallowed block announcement")
        announcements = peer.decode(NEW_BLOCK_HASHES, payload)
        for ann in announcements:
            peer.mark_block(ann.hash)
        if self.block_fetcher is not None and announcements:
            self.block_fetcher.notify(peer, announcements)

    def _on_new_block(self, peer: EthPeer, payload: bytes) -> None:
        if self.pos_finalized():
            raise ProtocolViolation("disallowed block broadcast")
        packet = peer.decode(NEW_BLOCK, payload)
        block, td = packet.block, packet.td
        try:
            block.header.sanity_check()
        except HeaderError as exc:
            raise ProtocolViolation(f"NewBlock: {exc}") from None
        if td.bit_length() > MAX_TD_BITS:
            raise ProtocolViolation(f"NewBlock: too large block TD: bitlen {td.bit_length()}")
        header = block.header
        if block.uncle_hash() != header.uncle_hash or block.tx_root() != header.tx_root:
            log.debug("Propagated block #%d from %r has invalid body", block.number, peer)
            return  # geth ignores it without dropping the peer
        peer.mark_block(block.hash)
        # The block is not imported yet; the peer's head is its parent (geth handleBlockBroadcast).
        parent_td = td - header.difficulty
        if peer.td is None or parent_td > peer.td:
            peer.set_head(header.parent_hash, parent_td)
            self.syncer.peer_event()
        if self.block_fetcher is not None:
            self.block_fetcher.enqueue(peer, block, td)

    def _on_block_range(self, peer: EthPeer, payload: bytes) -> None:
        rng = peer.decode(BLOCK_RANGE_UPDATE, payload)
        problem = rng.problem()
        if problem is not None:
            raise ProtocolViolation(f"BlockRangeUpdate: {problem}")
        peer.set_block_range(rng)
        if self.block_fetcher is not None:
            self.block_fetcher.notify_range(peer, rng)
        self.syncer.peer_event()

    # --- broadcasting --------------------------------------------------------------------------

    def broadcast_transactions(self, txs: Sequence[Any]) -> tuple[int, int]:
        """Full txs to ⌈√N⌉ peers chosen per sender, announcements to the rest (geth BroadcastTransactions).

        Blob txs and txs over 4 KiB are announced only. Peers known to have a tx get
        nothing. Returns (direct sends, announcements) queued, duplicates across peers included.
        """
        peers = self.peers.all()
        if not peers or not txs:
            return 0, 0
        chosen_by_sender: dict[bytes, frozenset[bytes]] = {}
        direct_sets: dict[bytes, frozenset[bytes] | None] = {}
        hashes = []
        for tx in txs:
            inner = tx.tx if isinstance(tx, BlobTxWithSidecar) else tx
            tx_hash = inner.hash
            hashes.append(tx_hash)
            if inner.type == BLOB_TX_TYPE or inner.size > TX_MAX_BROADCAST_SIZE:
                direct_sets[tx_hash] = None
                continue
            try:
                sender = inner.sender
            except TransactionError:
                sender = bytes(20)  # as geth: any value will do for the choice
            chosen = chosen_by_sender.get(sender)
            if chosen is None:
                chosen = chosen_by_sender[sender] = self.choice.choose(peers, sender)
            direct_sets[tx_hash] = chosen
        packed = b"".join(hashes)
        n_direct = n_ann = 0
        for peer in peers:
            unknown = peer.known_txs.filter_unknown(packed)  # one native call per peer
            if not unknown:
                continue
            direct, announce = [], []
            pid = peer.id
            for i in range(0, len(unknown), 32):
                tx_hash = unknown[i : i + 32]
                chosen = direct_sets[tx_hash]
                (direct if chosen is not None and pid in chosen else announce).append(tx_hash)
            peer.async_send_transactions(direct)
            peer.async_send_pooled_transaction_hashes(announce)
            n_direct += len(direct)
            n_ann += len(announce)
        log.log(5, "Distributed %d transactions: %d direct, %d announced", len(txs), n_direct, n_ann)
        return n_direct, n_ann

    def broadcast_block(self, block: Block, propagate: bool) -> int:
        """eth/68: NewBlock to √N peers lacking it (``propagate``), else NewBlockHashes to the
        rest if the block is in our chain (geth BroadcastBlock). Returns the peers queued."""
        if self.pos_finalized():
            return 0  # the consensus layer propagates blocks now
        peers = [p for p in self.peers.all() if p.version == ETH68 and not p.knows_block(block.hash)]
        if propagate:
            parent_td = self.chain.get_td(block.parent_hash, block.number - 1)
            if parent_td is None:
                log.error("Propagating dangling block #%d 0x%s", block.number, block.hash.hex())
                return 0
            td = parent_td + block.header.difficulty
            random.shuffle(peers)  # geth's map order is random too
            transfer = peers[: math.isqrt(len(peers))]
            for peer in transfer:
                peer.async_send_new_block(block, td)
            return len(transfer)
        if self.chain.has_block(block.hash, block.number):
            for peer in peers:
                peer.async_send_new_block_hash(block)
            return len(peers)
        return 0

    def broadcast_block_range(self, head: Any = None, force: bool = False) -> int:
        """eth/69: send our served range (up to ``head``, default the current block) to every
        eth/69 peer when due, or at once with ``force``."""
        if head is None:
            rng = self.local_status().block_range
        else:
            rng = BlockRange(0, head.number, head.hash)  # earliest 0: no history pruning
        due = self._range.update(rng)
        if not (due or force):
            return 0
        peers = [p for p in self.peers.all() if p.version > ETH68]
        for peer in peers:
            peer.send_block_range_update(rng)
        self._range.prev = rng
        return len(peers)

    # --- loops ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            return
        self.running = True
        loop = asyncio.get_running_loop()
        if self.bus is not None:
            txs = self.bus.subscribe(NewTxsEvent, TX_CHAN_SIZE)
            mined = self.bus.subscribe(NewMinedBlockEvent, CHAIN_HEAD_CHAN_SIZE)
            heads = self.bus.subscribe(ChainHeadEvent, CHAIN_HEAD_CHAN_SIZE)
            self._subs = [txs, mined, heads]
            self._tasks += [
                loop.create_task(self._tx_broadcast_loop(txs), name="eth-tx-broadcast"),
                loop.create_task(self._mined_broadcast_loop(mined), name="eth-mined-broadcast"),
                loop.create_task(self._head_loop(heads), name="eth-head"),
            ]
        self._tasks.append(loop.create_task(self.syncer.run(), name="eth-syncer"))
        log.info("Ethereum protocol started: eth/%s, network id %d", ",".join(map(str, self.versions)),
                 self.network_id)

    async def stop(self) -> None:
        """Stop the loops and disconnect every eth peer with QUITTING (geth handler.Stop)."""
        for sub in self._subs:
            sub.unsubscribe()
        self._subs = []
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for peer in self.peers.close():
            peer.disconnect(DiscReason.QUITTING)
        if self.running:
            log.info("Ethereum protocol stopped")
        self.running = False

    async def _tx_broadcast_loop(self, sub: Any) -> None:
        while True:
            event = await sub.get()
            self.broadcast_transactions(event.txs)

    async def _mined_broadcast_loop(self, sub: Any) -> None:
        while True:
            event = await sub.get()
            self.broadcast_block(event.block, True)  # first propagate to a few
            self.broadcast_block(event.block, False)  # then announce to the rest
            self.broadcast_block_range(event.block.header, force=True)

    async def _head_loop(self, sub: Any) -> None:
        while True:
            event = await sub.get()
            self.broadcast_block_range(event.header)


__all__ = [
    "EthHandler", "TxFetcherHook", "BlockFetcherHook", "PoolTxSink", "BroadcastChoice", "TX_MAX_BROADCAST_SIZE",
    "TX_CHAN_SIZE", "BLOCK_RANGE_STEP",
]
