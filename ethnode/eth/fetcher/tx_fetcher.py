"""The tx fetcher on asyncio: the handler's ``tx_fetcher`` hook around ``TxFetchScheduler``.

What the scheduler leaves to its caller lives here: the pool (what is known, adding what
arrives, which refusals mean "too cheap"), the clock (one ``loop.call_at`` timer at the
scheduler's next deadline), requests (one task per in-flight GetPooledTransactions,
awaiting ``EthPeer.request_pooled_txs``) and dropping peers.

A request's task waits for as long as the peer's request tracker keeps the request
answerable (5 minutes), not the scheduler's 5 s: after 5 s the scheduler asks others, but
the slow peer stays busy until it answers or leaves, as in geth, and its late answer
still goes to the pool.

The handler's ``enqueue(peer, txs, direct)`` says direct=True for a Transactions broadcast
and direct=False for a PooledTransactions reply nobody awaited any more; neither is a
reply to a request this fetcher still tracks, so both are "broadcast" deliveries to the
scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ethnode.core.txpool import (
    BlobSidecarError,
    KZGVerificationError,
    ReplaceUnderpricedError,
    TxGasPriceTooLowError,
    UnderpricedError,
)
from ethnode.core.txpool.blobbuffer import BlobBuffer
from ethnode.core.types.cells import blobless_encoding
from ethnode.core.types.transaction import BLOB_SIZE, BLOB_TX_TYPE, BlobTxWithSidecar
from ethnode.eth.fetcher.driver import SchedulerDriver
from ethnode.eth.fetcher.tx_scheduler import DropPeer, Fetch, FetchTimings, TxFetchScheduler, TxMeta
from ethnode.eth.protocols.eth.knowncache import KnownCache
from ethnode.eth.protocols.eth.peer import TRACKER_TIMEOUT, EthPeer, RequestError, RequestTimeoutError
from ethnode.eth.protocols.eth.protocol import ETH72
from ethnode.logctx import kv
from ethnode.p2p.disconnect import DiscReason

log = logging.getLogger("ethnode.eth.fetcher.tx_scheduler")

TX_ON_CHAIN_CACHE_LIMIT = 32768  # hashes of recently included txs not fetched again; geth txOnChainCacheLimit
ADD_TXS_BATCH_SIZE = 128  # txs handed to the pool per call; geth addTxsBatchSize
ACCEPTED_TX_TYPES = frozenset(range(5))  # types the pool takes (legacy..set-code); geth txpool.FilterType

_UNDERPRICED = (UnderpricedError, ReplaceUnderpricedError, TxGasPriceTooLowError)
_VIOLATIONS = (KZGVerificationError, BlobSidecarError)


def blob_payload_size(blobs: int) -> int:
    """The bytes eth/72 leaves out of a blob tx with ``blobs`` blobs (geth blobPayloadSize)."""
    return blobs * (BLOB_SIZE + 4) + 4


def tx_meta(tx: Any) -> TxMeta:
    """The type and wire size of a delivered tx, as an announcement states them; a blob tx's
    with and without its blobs (an eth/72 delivery has none: the full size is geth's estimate)."""
    if isinstance(tx, BlobTxWithSidecar):
        sc = tx.sidecar
        blobless = len(blobless_encoding(tx.tx, sc.version, sc.commitments, sc.proofs))
        full = len(tx.network_encoding()) if sc.blobs else blobless + blob_payload_size(len(sc.commitments))
        return TxMeta(tx.type, full, blobless)
    return TxMeta(tx.type, tx.size)


class TxFetcher(SchedulerDriver):
    """geth's TxFetcher for one handler: announcements in, GetPooledTransactions out, txs to the pool.

    ``remove_peer`` disconnects a peer that lied in an announcement (default: USELESS_PEER,
    as geth's removePeer). ``timings`` shortens the clock constants for tests.
    """

    def __init__(
        self,
        txpool: Any,
        *,
        remove_peer: Callable[[EthPeer], None] | None = None,
        timings: FetchTimings | None = None,
        reply_timeout: float = TRACKER_TIMEOUT,
        blob_buffer: BlobBuffer | None = None,
    ) -> None:
        self.txpool = txpool
        self.blob_buffer = blob_buffer  # eth/72 blob txs arrive without blobs and wait there for their cells
        self.scheduler = TxFetchScheduler(timings)
        self._remove_peer = remove_peer or (lambda p: p.disconnect(DiscReason.USELESS_PEER))
        self.reply_timeout = reply_timeout
        self._onchain = KnownCache(TX_ON_CHAIN_CACHE_LIMIT)
        self._head: bytes | None = None
        super().__init__()
        # Counters (geth meters): hashes announced / requested, txs delivered per path, peers dropped.
        self.counts = {"announced": 0, "requested": 0, "requests": 0, "replied": 0, "broadcast": 0,
                       "underpriced": 0, "dropped_peers": 0}

    # --- the handler hook -----------------------------------------------------------------

    def notify(self, peer: EthPeer, types: bytes, sizes: Sequence[int], hashes: Sequence[bytes]) -> list[bytes]:
        """NewPooledTransactionHashes: track what the pool lacks and may take (geth Notify).

        Returns the announced blob txs not known to be on chain, whose cells the blob
        fetcher may want (it skips those whose blob data is already here).
        """
        if self.closed:
            return []
        self.counts["announced"] += len(hashes)
        has = self.txpool.has
        keep = None
        if len(self._onchain):
            packed = b"".join(hashes)
            unknown = self._onchain.filter_unknown(packed)  # one native call for the whole message
            if len(unknown) != len(packed):
                keep = {unknown[i : i + 32] for i in range(0, len(unknown), 32)}
        buffered = self.blob_buffer.has_tx if self.blob_buffer is not None else (lambda h: False)
        new_types = bytearray()
        new_sizes: list[int] = []
        new_hashes: list[bytes] = []
        blob_hashes: list[bytes] = []
        for kind, size, tx_hash in zip(types, sizes, hashes, strict=True):
            if kind not in ACCEPTED_TX_TYPES or (keep is not None and tx_hash not in keep):
                continue
            if kind == BLOB_TX_TYPE:
                blob_hashes.append(tx_hash)
            if has(tx_hash) or (kind == BLOB_TX_TYPE and buffered(tx_hash)):
                continue
            new_types.append(kind)
            new_sizes.append(size)
            new_hashes.append(tx_hash)
        if new_hashes:
            sparse = getattr(peer, "version", 0) >= ETH72
            self._apply(self.scheduler.notify(peer, new_types, new_sizes, new_hashes, self._now(), sparse=sparse))
        return blob_hashes

    def enqueue(self, peer: EthPeer, txs: Sequence[Any], direct: bool) -> None:
        """Txs a peer sent unasked (Transactions), or a reply that came too late for its request."""
        if self.closed:
            return
        self.counts["broadcast"] += len(txs)
        self._deliver(peer, txs, reply=False, source="broadcast" if direct else "pooled")

    def drop(self, peer: EthPeer) -> None:
        """The peer left: forget its announcements, hand its request to the alternates."""
        if not self.closed:
            self._apply(self.scheduler.drop(peer, self._now()))

    # --- chain -------------------------------------------------------------------------------

    def chain_head(self, block: Any) -> None:
        """A new head: its txs are not fetched again if re-announced (geth txOnChainCache).

        A head that is not the child of the last one (a reorg) forgets the cache first,
        since its txs may be back in play.
        """
        if self._head is not None and block.parent_hash != self._head:
            self._onchain = KnownCache(TX_ON_CHAIN_CACHE_LIMIT)
        self._head = block.hash
        hashes = [tx.hash for tx in block.transactions]
        if hashes:
            self._onchain.add_many(b"".join(hashes))

    # --- internals -----------------------------------------------------------------------------

    def _deliver(self, peer: EthPeer, txs: Sequence[Any], *, reply: bool, source: str) -> None:
        """Pool the txs, remember the too-cheap ones, and tell the scheduler what arrived."""
        hashes: list[bytes] = []
        metas: list[TxMeta] = []
        underpriced: list[bytes] = []
        violation = None
        for start in range(0, len(txs), ADD_TXS_BATCH_SIZE):
            batch = list(txs[start : start + ADD_TXS_BATCH_SIZE])
            if self.blob_buffer is not None and getattr(peer, "version", 0) >= ETH72:
                # eth/72: blob txs come without blobs and wait in the buffer for their cells.
                pool_txs = [tx for tx in batch if tx.type != BLOB_TX_TYPE]
                blob_txs = [tx for tx in batch if tx.type == BLOB_TX_TYPE]
                batch = pool_txs + blob_txs
                errors = self.txpool.add(pool_txs, local=False, source=source) if pool_txs else []
                errors += self.blob_buffer.add_txs(blob_txs, peer) if blob_txs else []
            else:
                errors = self.txpool.add(batch, local=False, source=source)
            for tx, err in zip(batch, errors, strict=True):
                hashes.append(tx.hash)
                metas.append(tx_meta(tx))
                if err is None:
                    continue
                log.debug("Tx 0x%s from %r refused: %s", tx.hash.hex(), peer, err)
                if isinstance(err, _UNDERPRICED):
                    underpriced.append(tx.hash)
                elif isinstance(err, _VIOLATIONS):
                    violation = f"invalid pooled blob transaction 0x{tx.hash.hex()}: {err}"
                    break  # geth: the rest of the delivery is discarded
            if violation is not None:
                break
        now = self._now()
        if underpriced:
            self.counts["underpriced"] += len(underpriced)
            self.scheduler.mark_underpriced(underpriced, now)
        self._apply(self.scheduler.deliver(peer, hashes, metas, now, reply=reply, violation=violation))

    def _apply(self, actions: Sequence[Fetch | DropPeer]) -> None:
        for action in actions:
            if isinstance(action, Fetch):
                self.counts["requests"] += 1
                self.counts["requested"] += len(action.hashes)
                self._start(self._fetch(action.peer, list(action.hashes)), name=f"eth-txfetch-{action.peer!r}")
            else:
                log.debug("Dropping tx announcer", extra=kv(peer=action.peer, reason=action.reason))
                self.counts["dropped_peers"] += 1
                self._remove_peer(action.peer)  # type: ignore[arg-type]
        self._arm()

    async def _fetch(self, peer: EthPeer, hashes: list[bytes]) -> None:
        try:
            txs = await peer.request_pooled_txs(hashes, timeout=self.reply_timeout)
        except RequestTimeoutError:
            txs = []  # as an empty reply: the peer has none of them, and is free again
        except RequestError as exc:  # PeerDroppedError, or the request could not be sent
            # geth: a failed request drops the peer from the fetcher (not from the node).
            log.debug("Tx request failed", extra=kv(peer=peer, err=exc))
            if not self.closed:
                self._apply(self.scheduler.drop(peer, self._now()))
            return
        if self.closed:
            return
        self.counts["replied"] += len(txs)
        self._deliver(peer, txs, reply=True, source="pooled")


__all__ = ["TxFetcher", "tx_meta", "TX_ON_CHAIN_CACHE_LIMIT", "ADD_TXS_BATCH_SIZE", "ACCEPTED_TX_TYPES"]
