"""The eth handler, geth's ProtocolManager (``eth/handler.go``, ``handler_eth.go``).

It is the ``EthBackend`` of every eth peer and owns what reacts to peers, chain and pool:

- **Peers**: ``run_peer`` does the Status handshake (5 s), registers the peer (which
  starts its broadcast task), announces our pending txs to it (txsync), tells the
  downloader and the syncer, and unregisters it when the connection ends.
- **Packets**: the wire layer (``ethnode.eth.protocols.eth``) decodes, checks, serves
  and settles on its own; what reaches the handler are typed packets (``on_*``): txs
  and tx announcements go to the tx fetcher, block announcements and propagated blocks
  to the block fetcher, range updates to the block fetcher and the syncer.
- **Fetchers and downloader**: built in the constructor, as geth's newHandler does (a
  test may pass its own): ``tx_fetcher``, ``block_fetcher``, ``downloader``; peers they
  find misbehaving are dropped through ``remove_peer`` (geth removePeer, USELESS_PEER).
- **Loops** (``start``): txBroadcastLoop (pool ``NewTxsEvent`` -> ``broadcast_transactions``),
  minedBroadcastLoop (``NewMinedBlockEvent`` -> NewBlock / NewBlockHashes on eth/68,
  BlockRangeUpdate on eth/69), the head loop (``ChainHeadEvent`` -> BlockRangeUpdate every
  32 blocks) and the syncer.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from typing import Any, Protocol, TypedDict

from ethnode.core.blockchain import BlockChain
from ethnode.core.events import ChainHeadEvent, NewMinedBlockEvent
from ethnode.core.forkid import ForkID, new_filter, new_id
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.txpool import NewTxsEvent, TxPool
from ethnode.core.txpool.blobbuffer import BlobBuffer
from ethnode.core.types.block import Block
from ethnode.core.types.custody import custody_from_bytes
from ethnode.core.types.header import Header
from ethnode.core.types.transaction import BLOB_TX_TYPE, BlobTxWithSidecar, TransactionError
from ethnode.eth.downloader import Downloader
from ethnode.eth.fetcher.blob_fetcher import BlobFetcher
from ethnode.eth.fetcher.blob_scheduler import DEFAULT_FETCH_PROBABILITY
from ethnode.eth.fetcher.block_fetcher import BlockFetcher
from ethnode.eth.fetcher.tx_fetcher import TxFetcher
from ethnode.eth.peerset import PeerSet, PeerSetError
from ethnode.eth.protocols.eth.backend import WireTx
from ethnode.eth.protocols.eth.events import EthPeerRegistered
from ethnode.eth.protocols.eth.handshake import (
    HANDSHAKE_TIMEOUT,
    AnyStatus,
    ChainStatus,
    check_status,
    make_status,
)
from ethnode.eth.protocols.eth.peer import EthPeer
from ethnode.eth.protocols.eth.protocol import (
    ETH68,
    PROTOCOL_LENGTHS,
    PROTOCOL_NAME,
    SUPPORTED_VERSIONS,
    BlockAnnouncement,
    BlockRange,
    PooledHashes,
    PooledHashes72,
    ProtocolViolation,
)
from ethnode.eth.protocols.snap import protocol as snap
from ethnode.eth.protocols.snap.peer import SnapPeer
from ethnode.eth.protocols.snap.serve import SnapServer
from ethnode.eth.sync import SyncDownloader, Syncer
from ethnode.event import EventBus
from ethnode.logctx import kv
from ethnode.p2p.disconnect import DisconnectRequested, DiscReason
from ethnode.p2p.protocol import Protocol as P2PProtocol
from ethnode.p2p.protocol import ProtocolChannel

log = logging.getLogger("ethnode.eth.handler")

TX_CHAN_SIZE = 4096  # NewTxsEvents buffered for the broadcast loop; geth txChanSize
CHAIN_HEAD_CHAN_SIZE = 128  # geth chainHeadChanSize
TX_MAX_BROADCAST_SIZE = 4096  # bytes; larger txs are only announced; geth txMaxBroadcastSize
BLOCK_RANGE_STEP = 32  # blocks between BlockRangeUpdates (sooner if the head moves back); geth shouldSend


class DownloaderOptions(TypedDict, total=False):
    """Tuning the handler passes to its Downloader (tests shorten timeouts with it)."""

    request_timeout: float | None
    import_batch: int | None


class TxFetcherHook(Protocol):
    def notify(self, peer: EthPeer, types: bytes, sizes: Sequence[int], hashes: Sequence[bytes]) -> list[bytes]: ...

    def enqueue(self, peer: EthPeer, txs: Sequence[WireTx], direct: bool) -> None: ...

    def drop(self, peer: EthPeer) -> None: ...

    async def stop(self) -> None: ...


class BlockFetcherHook(Protocol):
    def notify(self, peer: EthPeer, announcements: Sequence[BlockAnnouncement]) -> None: ...

    def enqueue(self, peer: EthPeer, block: Block, td: int) -> None: ...

    def notify_range(self, peer: EthPeer, block_range: BlockRange) -> None: ...

    def drop(self, peer: EthPeer) -> None: ...

    async def stop(self) -> None: ...


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
        chain: BlockChain,
        txpool: TxPool,
        *,
        network_id: int,
        node_id: bytes,
        bus: EventBus | None = None,
        versions: Sequence[int] = SUPPORTED_VERSIONS,
        max_peers: int | None = None,
        broadcast_key: bytes | None = None,
        tx_fetcher: TxFetcherHook | None = None,
        block_fetcher: BlockFetcherHook | None = None,
        downloader: SyncDownloader | None = None,
        downloader_options: DownloaderOptions | None = None,
        fetch_probability: int = DEFAULT_FETCH_PROBABILITY,
        serve_snap: bool = True,
    ) -> None:
        """The fetchers and the downloader are built here, as geth's newHandler does; a test
        may pass its own ``tx_fetcher``, ``block_fetcher`` or ``downloader`` instead."""
        for v in versions:
            if v not in PROTOCOL_LENGTHS:
                raise ValueError(f"unsupported eth version {v} (supported: {sorted(PROTOCOL_LENGTHS)})")
        self.chain = chain
        self.txpool = txpool
        # snap serving reads the executed state; a chain imported without execution has none
        self.snap = (SnapServer(chain, chain.state_db)
                     if serve_snap and getattr(chain, "executor", None) is not None else None)
        self.network_id = network_id
        self.node_id = node_id  # our enode ID (keccak of the public key), for the broadcast choice
        self.bus = bus
        self.versions = tuple(sorted(set(versions), reverse=True))
        self.max_peers = max_peers
        self.peers = PeerSet()
        self.accept_txs = True  # geth's "synced" flag; the downloader may clear it while syncing
        # eth/72: blobless blob txs and their cells meet in the buffer, verified and pooled there.
        self.blob_buffer = BlobBuffer(txpool, self._drop_for_cells)
        self.tx_fetcher: TxFetcherHook = tx_fetcher or TxFetcher(
            txpool, remove_peer=self.remove_peer, blob_buffer=self.blob_buffer)
        self.blob_fetcher = BlobFetcher(txpool, self.blob_buffer, remove_peer=self.remove_peer,
                                        fetch_probability=fetch_probability)
        self.downloader: SyncDownloader = downloader or Downloader(
            chain, drop_peer=self.remove_peer, **(downloader_options or {}))
        self.block_fetcher: BlockFetcherHook = block_fetcher or BlockFetcher(chain, self)
        self.syncer = Syncer(self, self.downloader)
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

    # --- protocols and status --------------------------------------------------------------

    def protocols(self) -> list[P2PProtocol]:
        """One devp2p Protocol per offered eth version (the highest common one is run), and
        snap/2 and snap/1 beside them when the chain keeps state to serve (geth offers snap
        with its snapshot; a --noexec chain has no state)."""
        offered = [P2PProtocol(PROTOCOL_NAME, v, PROTOCOL_LENGTHS[v], self.new_peer) for v in self.versions]
        if self.snap is not None:
            offered += [P2PProtocol(snap.PROTOCOL_NAME, v, snap.PROTOCOL_LENGTHS[v], self.new_snap_peer)
                        for v in snap.SUPPORTED_VERSIONS]
        return offered

    def new_snap_peer(self, channel: ProtocolChannel) -> SnapPeer:
        assert self.snap is not None
        return SnapPeer(channel, self.snap)

    def new_peer(self, channel: ProtocolChannel) -> EthPeer:
        return EthPeer(channel, self, self.bus)

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
        if self.bus is not None and self.bus.subscribed(EthPeerRegistered):
            assert peer.status is not None
            self.bus.post(EthPeerRegistered(peer, peer.status, time.time_ns()))
        try:
            log.debug("Ethereum peer connected", extra=kv(peer=peer, version=peer.version))
            self.downloader.register_peer(peer)
            self.sync_transactions(peer)
            self.syncer.peer_event()
            await broadcast
        finally:
            self._unregister(peer)

    def _unregister(self, peer: EthPeer) -> None:
        if not self.peers.unregister(peer):
            return
        self._peers_changed.set()
        log.debug("Removing Ethereum peer", extra=kv(peer=peer))
        self.tx_fetcher.drop(peer)
        self.blob_fetcher.drop(peer)
        self.block_fetcher.drop(peer)
        self.downloader.unregister_peer(peer)

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
            if tx.type != BLOB_TX_TYPE
        ]
        if hashes:
            peer.async_send_pooled_transaction_hashes(hashes)

    # --- EthBackend: typed packets from the wire layer ------------------------------------------

    def on_transactions(self, peer: EthPeer, txs: Sequence[WireTx]) -> None:
        self.tx_fetcher.enqueue(peer, txs, True)

    def on_pooled_hashes(self, peer: EthPeer, announcement: PooledHashes | PooledHashes72) -> None:
        blob_hashes = self.tx_fetcher.notify(peer, announcement.types, announcement.sizes, announcement.hashes)
        if blob_hashes and isinstance(announcement, PooledHashes72):
            self.blob_fetcher.notify(peer, blob_hashes, custody_from_bytes(announcement.mask))

    def update_custody(self, custody: int) -> None:
        """The consensus client's custody cells (engine_forkchoiceUpdatedV4), for eth/72 fetching."""
        self.blob_fetcher.update_custody(custody)

    def _drop_for_cells(self, peer: Any, reason: str) -> None:
        log.debug("Dropping %r: %s", peer, reason)
        self.remove_peer(peer)

    def on_pooled_transactions(self, peer: EthPeer, txs: Sequence[WireTx]) -> None:
        self.tx_fetcher.enqueue(peer, txs, False)

    @property
    def syncing(self) -> bool:
        return self.downloader.syncing

    def pos_finalized(self) -> bool:
        """The consensus layer finalized a post-merge block: block gossip is over (geth PoSFinalized)."""
        return (
            self.chain.config.terminal_total_difficulty is not None
            and rawdb.read_finalized_block_hash(self.chain.db) is not None
        )

    def on_new_block_hashes(self, peer: EthPeer, announcements: Sequence[BlockAnnouncement]) -> None:
        self.block_fetcher.notify(peer, announcements)

    def on_new_block(self, peer: EthPeer, block: Block, td: int) -> None:
        # The block is not imported yet; the peer's head is its parent (geth handleBlockBroadcast).
        parent_td = td - block.header.difficulty
        if peer.td is None or parent_td > peer.td:
            peer.set_head(block.header.parent_hash, parent_td)
            self.syncer.peer_event()
        self.block_fetcher.enqueue(peer, block, td)

    def on_block_range(self, peer: EthPeer, block_range: BlockRange) -> None:
        self.block_fetcher.notify_range(peer, block_range)
        self.syncer.peer_event()

    # --- broadcasting --------------------------------------------------------------------------

    def broadcast_transactions(self, txs: Sequence[WireTx]) -> tuple[int, int]:
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

    def broadcast_block_range(self, head: Header | None = None, force: bool = False) -> int:
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
        preload = getattr(self.txpool, "preload_kzg", None)
        if preload is not None:  # blob txs and eth/72 cells are checked with it: load it off the loop
            self._tasks.append(loop.create_task(asyncio.to_thread(preload), name="eth-kzg-setup"))
        log.info("Ethereum protocol started versions=%s network=%d", ",".join(f"eth/{v}" for v in self.versions),
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
        await self.tx_fetcher.stop()
        await self.blob_fetcher.stop()
        await self.block_fetcher.stop()
        await self.downloader.stop()
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
    "EthHandler", "TxFetcherHook", "BlockFetcherHook", "BroadcastChoice", "TX_MAX_BROADCAST_SIZE",
    "TX_CHAN_SIZE", "BLOCK_RANGE_STEP",
]
