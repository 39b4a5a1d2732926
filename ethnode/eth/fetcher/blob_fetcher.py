"""The blob fetcher on asyncio: ``BlobFetchScheduler`` with peers, a clock and the blob buffer.

The handler feeds it eth/72 blob tx announcements (``notify``) and peer departures
(``drop``); the consensus client's custody arrives through ``update_custody``
(engine_forkchoiceUpdatedV4). Each ``FetchCells`` action becomes one task awaiting
``EthPeer.request_cells``; its reply goes back to the scheduler, and every tx whose cells
are complete goes to the ``BlobBuffer``, which verifies them and drops peers whose cells
fail (geth ``removePeer``: USELESS_PEER). One ``loop.call_at`` timer follows the
scheduler's next deadline.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

from ethnode.core.txpool.blobbuffer import BlobBuffer
from ethnode.eth.fetcher.blob_scheduler import (
    DEFAULT_FETCH_PROBABILITY,
    Action,
    BlobFetchScheduler,
    CellsComplete,
    FetchCells,
)
from ethnode.eth.fetcher.driver import SchedulerDriver
from ethnode.eth.protocols.eth.peer import TRACKER_TIMEOUT, EthPeer, RequestError, RequestTimeoutError
from ethnode.p2p.disconnect import DiscReason

log = logging.getLogger("ethnode.eth.fetcher.blob_fetcher")


class BlobFetcher(SchedulerDriver):
    """geth's BlobFetcher for one handler: eth/72 announcements in, GetCells out, cells to the buffer."""

    def __init__(
        self,
        txpool: Any,
        buffer: BlobBuffer,
        *,
        remove_peer: Callable[[EthPeer], None] | None = None,
        rng: random.Random | None = None,
        fetch_probability: int = DEFAULT_FETCH_PROBABILITY,
        reply_timeout: float = TRACKER_TIMEOUT,
    ) -> None:
        self.txpool = txpool
        self.buffer = buffer
        self.scheduler = BlobFetchScheduler(rng=rng, fetch_probability=fetch_probability)
        self._remove_peer = remove_peer or (lambda p: p.disconnect(DiscReason.USELESS_PEER))
        self.reply_timeout = reply_timeout
        super().__init__()
        self.counts = {"announced": 0, "requests": 0, "requested_cells": 0, "completed": 0, "dropped_peers": 0}

    # --- the handler's hooks ------------------------------------------------------------

    def notify(self, peer: EthPeer, hashes: Sequence[bytes], mask: int) -> None:
        """Blob txs ``peer`` announced with availability ``mask`` (geth Notify: those whose
        blob data we hold or already assembled are skipped)."""
        if self.closed:
            return
        wanted = [h for h in hashes if not self.txpool.has(h) and not self.buffer.has_cells(h)]
        self.counts["announced"] += len(wanted)
        if wanted:
            self._apply(self.scheduler.notify(peer, wanted, mask, self._now()))

    def drop(self, peer: EthPeer) -> None:
        if not self.closed:
            self._apply(self.scheduler.drop(peer, self._now()))

    def update_custody(self, custody: int) -> None:
        """The consensus client's custody cells (geth UpdateCustody)."""
        self.scheduler.update_custody(custody)

    # --- internals ------------------------------------------------------------------------

    def _drop_peer(self, peer: Any, reason: str) -> None:
        log.debug("Dropping %r: %s", peer, reason)
        self.counts["dropped_peers"] += 1
        self._remove_peer(peer)

    def _apply(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, FetchCells):
                log.debug("Fetching cells from %r txs=%d cells=%d", action.peer, len(action.hashes),
                          action.mask.bit_count())
                self.counts["requests"] += 1
                self.counts["requested_cells"] += action.mask.bit_count() * len(action.hashes)
                self._start(self._fetch(action), name=f"eth-blobfetch-{action.peer!r}")
            elif isinstance(action, CellsComplete):
                self.counts["completed"] += 1
                self.buffer.add_cells(action.tx_hash, action.deliveries, action.custody)
            else:
                self._drop_peer(action.peer, action.reason)
        self._arm()

    async def _fetch(self, action: FetchCells) -> None:
        peer: EthPeer = action.peer  # type: ignore[assignment]
        try:
            hashes, cells, mask = await peer.request_cells(action.hashes, action.mask, timeout=self.reply_timeout)
        except RequestTimeoutError:
            return  # the scheduler gave up on it after 5 s already
        except RequestError as exc:  # the peer left, or the request could not be sent
            log.debug("Cell request to %r failed: %s", peer, exc)
            if not self.closed:
                self._apply(self.scheduler.drop(peer, self._now()))
            return
        log.debug("Cells from %r txs=%d cells=%d", peer, len(hashes), sum(len(c) for c in cells))
        if not self.closed:
            self._apply(self.scheduler.deliver(peer, hashes, cells, mask, self._now()))


__all__ = ["BlobFetcher"]
