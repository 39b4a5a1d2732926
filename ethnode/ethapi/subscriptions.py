"""``eth_subscribe``: newHeads, logs, newPendingTransactions, syncing (geth ``eth/filters/api.go``,
``eth/downloader/api.go``), over WebSocket and IPC.

Each subscription takes a bus subscription of its own when it is made (so nothing posted
after the ``eth_subscribe`` call is missed) and turns the node's events into geth's
notification payloads:

- ``newHeads``: one header per block that joins the canonical chain, in geth's
  ``types.Header`` JSON (``marshal.header_json``). geth sends one per ChainEvent; here the
  head moves (``ChainHeadEvent``) are walked from the last head seen, which yields the same
  blocks in the same order and cannot lose any when the bus drops an event (only the
  newest head matters). At most ``MAX_HEAD_WALK`` blocks per head move, the newest.
- ``logs``: the matching logs of those blocks; on a reorg, first the logs of the blocks
  that left the canonical chain with ``removed: true`` (geth's RemovedLogsEvent), then the
  new branch's. Criteria are checked as geth's SubscribeLogs checks them.
- ``newPendingTransactions``: the hash of every tx that becomes pending (the pool's
  ``NewTxsEvent``), one notification per tx as geth; the full tx object when the second
  parameter is true.
- ``syncing``: ``{"syncing": true, "status": {...}}`` when a sync is seen running (again at
  most every ``SYNC_STATUS_INTERVAL`` while it runs) and ``false`` when it ends; the status
  is geth's ``ethereum.SyncProgress`` as Go encodes it (field names, decimal numbers).
  Nothing is sent while the node is idle: geth also sends nothing until a sync has run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ethnode.core.events import ChainHeadEvent
from ethnode.core.txpool import NewTxsEvent
from ethnode.core.types.header import Header
from ethnode.ethapi.filters import (
    HEAD_EVENT_QUEUE,
    TX_EVENT_QUEUE,
    check_subscribable,
    head_diff,
    in_bounds,
    logs_or_none,
)
from ethnode.ethapi.logfilter import LOG_QUERY_LIMIT, FilterCriteria, LogMatcher, invalid_params, parse_criteria
from ethnode.ethapi.marshal import header_json, tx_fields
from ethnode.rpc.hexutil import data, json_type
from ethnode.rpc.subscription import Notify, subscription

SYNC_CHECK_INTERVAL = 2.0  # seconds between looks at the downloader when no head moves
SYNC_STATUS_INTERVAL = 60.0  # seconds between progress notifications during a sync; geth's checkInterval
_SYNC_FIELDS = (  # geth ethereum.SyncProgress, in its field order
    "StartingBlock", "CurrentBlock", "HighestBlock", "PulledStates", "KnownStates", "SyncedAccounts",
    "SyncedAccountBytes", "SyncedBytecodes", "SyncedBytecodeBytes", "SyncedStorage", "SyncedStorageBytes",
    "HealedTrienodes", "HealedTrienodeBytes", "HealedBytecodes", "HealedBytecodeBytes", "HealingTrienodes",
    "HealingBytecode", "SyncedAccessLists", "TotalAccessLists", "TrieGenProgress", "TxIndexFinishedBlocks",
    "TxIndexRemainingBlocks", "StateIndexRemaining", "TrienodeIndexRemaining",
)


class _HeadFeed:
    """Blocks leaving and joining the canonical chain, from the head moves after subscription."""

    def __init__(self, chain: Any, bus: Any) -> None:
        self._chain = chain
        self._events = bus.subscribe(ChainHeadEvent, HEAD_EVENT_QUEUE)
        self._head: Header = chain.current_block

    async def changes(self) -> tuple[list[Header], list[Header]]:
        """Wait for the next head move: (blocks removed, blocks added), each ascending."""
        while True:
            target = (await self._events.get()).header
            while not self._events.queue.empty():
                target = self._events.queue.get_nowait().header
            if target.hash == self._head.hash:
                continue
            removed, added = head_diff(self._chain, self._head, target)
            self._head = target
            return removed, added

    def close(self) -> None:
        self._events.unsubscribe()


class NewHeads(_HeadFeed):
    async def run(self, notify: Notify) -> None:
        while True:
            _, added = await self.changes()
            for header in added:
                notify(header_json(header))


class Logs(_HeadFeed):
    def __init__(self, chain: Any, bus: Any, criteria: FilterCriteria) -> None:
        super().__init__(chain, bus)
        self.criteria = criteria
        self.matcher = LogMatcher.of(criteria)

    async def run(self, notify: Notify) -> None:
        while True:
            removed, added = await self.changes()
            for headers, gone in ((removed, True), (added, False)):
                for header in headers:
                    if in_bounds(self.criteria, header.number):
                        for entry in logs_or_none(self._chain, header, self.matcher, gone):
                            notify(entry)
                await asyncio.sleep(0)  # a long reorg's logs do not hold the loop in one go


class PendingTransactions:
    def __init__(self, chain: Any, bus: Any, full_tx: bool) -> None:
        self._chain = chain
        self._events = bus.subscribe(NewTxsEvent, TX_EVENT_QUEUE)
        self.full_tx = full_tx

    async def run(self, notify: Notify) -> None:
        while True:
            for tx in (await self._events.get()).txs:
                notify(tx_fields(tx, self._chain.config) if self.full_tx else data(tx.hash))

    def close(self) -> None:
        self._events.unsubscribe()


class Syncing:
    def __init__(self, downloader: Any, bus: Any) -> None:
        self._downloader = downloader
        self._events = bus.subscribe(ChainHeadEvent, HEAD_EVENT_QUEUE)

    def _progress(self) -> Any:
        d = self._downloader
        if d is None or not d.syncing:
            return None
        progress = d.progress()
        return progress if progress.current_block < progress.highest_block else None

    async def run(self, notify: Notify) -> None:
        syncing, last = False, 0.0
        while True:
            try:
                await asyncio.wait_for(self._events.get(), SYNC_CHECK_INTERVAL)
            except TimeoutError:
                pass
            progress = self._progress()
            now = time.monotonic()
            if progress is not None and (not syncing or now - last >= SYNC_STATUS_INTERVAL):
                status = dict.fromkeys(_SYNC_FIELDS, 0)
                status.update(StartingBlock=progress.starting_block, CurrentBlock=progress.current_block,
                              HighestBlock=progress.highest_block)
                notify({"syncing": True, "status": status})
                last = now
            elif progress is None and syncing:
                notify(False)
            syncing = progress is not None

    def close(self) -> None:
        self._events.unsubscribe()


class SubscriptionAPI:
    """The ``eth`` subscriptions, over the chain, the node's event bus and the downloader (None: never syncs)."""

    def __init__(self, chain: Any, bus: Any, downloader: Any = None, *, log_query_limit: int = LOG_QUERY_LIMIT) -> None:
        self._chain = chain
        self._bus = bus
        self._downloader = downloader
        self._log_query_limit = log_query_limit

    @subscription
    def new_heads(self) -> NewHeads:
        return NewHeads(self._chain, self._bus)

    @subscription
    def logs(self, criteria: Any) -> Logs:
        crit = parse_criteria(criteria, 1)  # argument 0 is the subscription's name
        crit.check_query_limit(self._log_query_limit)
        check_subscribable(crit)
        return Logs(self._chain, self._bus, crit)

    @subscription
    def new_pending_transactions(self, full_tx: Any = None) -> PendingTransactions:
        if full_tx is not None and not isinstance(full_tx, bool):
            raise invalid_params(f"invalid argument 1: json: cannot unmarshal {json_type(full_tx)} into Go value of "
                                 "type bool")
        return PendingTransactions(self._chain, self._bus, bool(full_tx))

    @subscription
    def syncing(self) -> Syncing:
        return Syncing(self._downloader, self._bus)


__all__ = ["SubscriptionAPI", "NewHeads", "Logs", "PendingTransactions", "Syncing", "SYNC_CHECK_INTERVAL",
           "SYNC_STATUS_INTERVAL"]
