"""geth's FilterAPI (``eth/filters/api.go``, ``filter_system.go``): eth_getLogs and the polling filters.

Polling filters are fed from the node's event bus: ``ChainHeadEvent`` for block hashes and
logs, the pool's ``NewTxsEvent`` for pending transactions. Nothing runs in the background:
the bus queues the events (bounded, newest kept) and every call of this API first drains
them into the filters. A filter therefore sees exactly what was posted after it was
installed, as in geth, and no task needs starting or stopping with the service. The bus
is subscribed to only while some filter wants that kind of event.

Head changes are turned into blocks by walking from the last head seen to the new one:
every new canonical block is reported (geth sends a ChainEvent per inserted block), and
on a reorg the logs of the blocks that left the chain are reported first with
``removed: true`` (geth's RemovedLogsEvent, in ascending block order as geth emits them),
then the new branch's logs. Only ``MAX_HEAD_WALK`` blocks are walked per head change, so
a long sync reports its newest blocks only, the filter-queue drop policy applied early.

Bounds geth does not have: ``MAX_QUEUED`` items per filter (oldest dropped) and
``MAX_FILTERS`` filters (the least recently polled one is uninstalled to make room, as if
it had timed out).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ethnode.core.events import ChainHeadEvent
from ethnode.core.txpool import NewTxsEvent
from ethnode.core.types.header import Header
from ethnode.ethapi.logfilter import (
    EARLIEST,
    ERR_INVALID_BLOCK_RANGE,
    ERR_PENDING_LOGS,
    ERR_UNKNOWN_BLOCK,
    LATEST,
    LOG_QUERY_LIMIT,
    PENDING,
    RANGE_LIMIT,
    FilterCriteria,
    LogMatcher,
    block_logs,
    invalid_params,
    parse_criteria,
    range_logs,
    resolve_range,
    server_error,
)
from ethnode.ethapi.marshal import tx_fields
from ethnode.rpc.hexutil import data, json_type

log = logging.getLogger("ethnode.rpc")

FILTER_TIMEOUT = 300.0  # seconds a filter lives without eth_getFilterChanges; geth filters.Config.Timeout 5 min
MAX_QUEUED = 10_000  # hashes or logs held per filter between polls, oldest dropped; geth: unbounded
MAX_FILTERS = 10_000  # installed filters; the least recently polled goes first; geth: unbounded
MAX_HEAD_WALK = 1024  # blocks walked per head change (new branch plus reorged-out branch); ours
HEAD_EVENT_QUEUE = 16  # ChainHeadEvents kept between calls; only the newest matters (geth chainEvChanSize 10)
TX_EVENT_QUEUE = 4096  # NewTxsEvents kept between calls, oldest dropped; geth txChanSize 4096
ERR_FILTER_NOT_FOUND = "filter not found"  # geth errFilterNotFound (-32000)

LOGS, BLOCKS, PENDING_TXS = "logs", "blocks", "pendingTransactions"


def new_id() -> str:
    """geth rpc.NewID: 16 random bytes as a hex quantity (leading zero digits trimmed)."""
    return "0x" + (secrets.token_bytes(16).hex().lstrip("0") or "0")


@dataclass
class _Filter:
    kind: str
    deadline: float
    criteria: FilterCriteria | None = None
    matcher: LogMatcher | None = None
    full_tx: bool = False
    items: deque[Any] = field(default_factory=lambda: deque(maxlen=MAX_QUEUED))

    def in_bounds(self, number: int) -> bool:
        assert self.criteria is not None
        return in_bounds(self.criteria, number)


def in_bounds(crit: FilterCriteria, number: int) -> bool:
    """geth filterLogs on live logs: numeric from/to bounds apply, tags do not."""
    if crit.from_block is not None and crit.from_block >= 0 and number < crit.from_block:
        return False
    return not (crit.to_block is not None and crit.to_block >= 0 and number > crit.to_block)


def _id_arg(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_params(f"invalid argument 0: json: cannot unmarshal {json_type(value)} into Go value of type "
                             "rpc.ID")
    return value


def check_subscribable(crit: FilterCriteria) -> None:
    """geth EventSystem.SubscribeLogs: which block bounds a log filter accepts."""
    begin = LATEST if crit.from_block is None else crit.from_block
    end = LATEST if crit.to_block is None else crit.to_block
    if PENDING in (begin, end):
        raise invalid_params(ERR_PENDING_LOGS)
    if begin == EARLIEST:
        begin = 0  # geth: the history pruning cutoff
    if (begin == LATEST and end == LATEST) or (begin >= 0 and (end == LATEST or end >= begin)):
        return
    raise invalid_params(ERR_INVALID_BLOCK_RANGE)


class FilterAPI:
    """eth_getLogs, eth_newFilter, eth_newBlockFilter, eth_newPendingTransactionFilter,
    eth_getFilterChanges, eth_getFilterLogs, eth_uninstallFilter (geth filters.FilterAPI)."""

    def __init__(
        self,
        chain: Any,
        bus: Any,
        *,
        timeout: float = FILTER_TIMEOUT,
        log_query_limit: int = LOG_QUERY_LIMIT,
        range_limit: int = RANGE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._chain = chain
        self._bus = bus
        self._timeout = timeout
        self._log_query_limit = log_query_limit
        self._range_limit = range_limit
        self._clock = clock
        self._filters: dict[str, _Filter] = {}
        self._head: Header | None = None  # the last head the filters were told about
        self._head_sub: Any = None
        self._txs_sub: Any = None

    # --- queries ------------------------------------------------------------------------

    async def get_logs(self, criteria: Any) -> list[dict[str, Any]]:
        """Logs of stored blocks matching ``criteria`` (geth FilterAPI.GetLogs)."""
        crit = parse_criteria(criteria)
        crit.check_query_limit(self._log_query_limit)
        self._sync()
        return await self._query(crit)

    async def _query(self, crit: FilterCriteria) -> list[dict[str, Any]]:
        matcher = LogMatcher.of(crit)
        if crit.block_hash is not None:
            header = self._chain.get_header_by_hash(crit.block_hash)
            if header is None:
                raise server_error(ERR_UNKNOWN_BLOCK)
            return block_logs(self._chain, header, matcher)
        first, last = resolve_range(self._chain, crit, self._range_limit)
        return await range_logs(self._chain, first, last, matcher)

    # --- polling filters ----------------------------------------------------------------

    def new_filter(self, criteria: Any) -> str:
        """A log filter: new matching logs (and reorged-out ones, ``removed: true``) until polled."""
        crit = parse_criteria(criteria)
        crit.check_query_limit(self._log_query_limit)
        check_subscribable(crit)
        return self._install(_Filter(LOGS, 0.0, criteria=crit, matcher=LogMatcher.of(crit)))

    def new_block_filter(self) -> str:
        """Hashes of blocks that become canonical."""
        return self._install(_Filter(BLOCKS, 0.0))

    def new_pending_transaction_filter(self, full_tx: Any = None) -> str:
        """Transactions entering the pool's pending set: hashes, or full objects with ``full_tx``."""
        if full_tx is not None and not isinstance(full_tx, bool):
            raise invalid_params(f"invalid argument 0: json: cannot unmarshal {json_type(full_tx)} into Go value of "
                                 "type bool")
        return self._install(_Filter(PENDING_TXS, 0.0, full_tx=bool(full_tx)))

    def get_filter_changes(self, filter_id: Any) -> list[Any]:
        """What the filter collected since the last poll; polling keeps the filter alive."""
        fid = _id_arg(filter_id)
        self._sync()
        f = self._filters.get(fid)
        if f is None:
            raise server_error(ERR_FILTER_NOT_FOUND)
        f.deadline = self._clock() + self._timeout
        items = list(f.items)
        f.items.clear()
        if f.kind == PENDING_TXS and f.full_tx:
            return [tx_fields(tx, self._chain.config) for tx in items]
        if f.kind == LOGS:
            return items
        return [data(h) for h in items]

    async def get_filter_logs(self, filter_id: Any) -> list[dict[str, Any]]:
        """A log filter's criteria run as eth_getLogs; as in geth this does not keep the filter alive."""
        fid = _id_arg(filter_id)
        self._sync()
        f = self._filters.get(fid)
        if f is None or f.kind != LOGS:
            raise server_error(ERR_FILTER_NOT_FOUND)
        assert f.criteria is not None
        return await self._query(f.criteria)

    def uninstall_filter(self, filter_id: Any) -> bool:
        fid = _id_arg(filter_id)
        self._sync()
        found = self._filters.pop(fid, None) is not None
        if found:
            self._resubscribe()
        return found

    # --- filter bookkeeping -----------------------------------------------------------

    def _install(self, f: _Filter) -> str:
        self._sync()  # what was posted before now belongs to the filters already there
        if len(self._filters) >= MAX_FILTERS:
            oldest = min(self._filters, key=lambda k: self._filters[k].deadline)
            del self._filters[oldest]
            log.debug("Too many filters, uninstalled the least recently polled id=%s", oldest)
        f.deadline = self._clock() + self._timeout
        fid = new_id()
        while fid in self._filters:
            fid = new_id()
        self._filters[fid] = f
        self._resubscribe()
        return fid

    def _resubscribe(self) -> None:
        """Hold a bus subscription exactly while some filter wants its events."""
        kinds = {f.kind for f in self._filters.values()}
        wants_heads, wants_txs = bool(kinds & {LOGS, BLOCKS}), PENDING_TXS in kinds
        if wants_heads and self._head_sub is None:
            self._head_sub = self._bus.subscribe(ChainHeadEvent, HEAD_EVENT_QUEUE)
            self._head = self._chain.current_block
        elif not wants_heads and self._head_sub is not None:
            self._head_sub.unsubscribe()
            self._head_sub, self._head = None, None
        if wants_txs and self._txs_sub is None:
            self._txs_sub = self._bus.subscribe(NewTxsEvent, TX_EVENT_QUEUE)
        elif not wants_txs and self._txs_sub is not None:
            self._txs_sub.unsubscribe()
            self._txs_sub = None

    def _sync(self) -> None:
        """Uninstall timed-out filters, then hand the queued bus events to the rest."""
        now = self._clock()
        expired = [fid for fid, f in self._filters.items() if f.deadline <= now]
        for fid in expired:
            del self._filters[fid]
        if expired:
            self._resubscribe()
        if self._txs_sub is not None:
            self._drain_txs(self._txs_sub)
        if self._head_sub is not None:
            self._drain_heads(self._head_sub)

    def _drain_txs(self, sub: Any) -> None:
        pending = [f for f in self._filters.values() if f.kind == PENDING_TXS]
        while not sub.queue.empty():
            txs = sub.queue.get_nowait().txs
            for f in pending:
                f.items.extend(txs if f.full_tx else (tx.hash for tx in txs))

    def _drain_heads(self, sub: Any) -> None:
        target: Header | None = None
        while not sub.queue.empty():
            target = sub.queue.get_nowait().header
        if target is None or self._head is None or target.hash == self._head.hash:
            return
        removed, added = head_diff(self._chain, self._head, target)
        self._head = target
        hashes = [h.hash for h in added]
        for f in self._filters.values():
            if f.kind == BLOCKS:
                f.items.extend(hashes)
            elif f.kind == LOGS:
                assert f.matcher is not None
                for headers, gone in ((removed, True), (added, False)):
                    for header in headers:
                        if f.in_bounds(header.number):
                            f.items.extend(self._block_logs(header, f.matcher, gone))

    def _block_logs(self, header: Header, matcher: LogMatcher, removed: bool) -> list[dict[str, Any]]:
        return logs_or_none(self._chain, header, matcher, removed)


def logs_or_none(chain: Any, header: Header, matcher: LogMatcher, removed: bool) -> list[dict[str, Any]]:
    """A block's matching logs for live filters and subscriptions; none if its receipts are not stored."""
    try:
        return block_logs(chain, header, matcher, removed=removed)
    except Exception as exc:  # receipts not stored (a --noexec import): the filter just gets no logs
        log.debug("No logs for filters from block #%d: %s", header.number, exc)
        return []


def head_diff(chain: Any, old: Header, new: Header, limit: int | None = None) -> tuple[list[Header], list[Header]]:
    """(blocks that left the canonical chain, blocks that joined it) going from head ``old`` to
    ``new``, each in ascending order; at most ``limit`` (``MAX_HEAD_WALK``) blocks walked, the newest kept."""
    limit = MAX_HEAD_WALK if limit is None else limit
    gone: list[Header] = []
    joined: list[Header] = []
    a: Header | None = old
    b: Header | None = new
    while a is not None and b is not None and a.hash != b.hash and len(gone) + len(joined) < limit:
        if b.number >= a.number:
            joined.append(b)
            b = chain.get_header(b.parent_hash, b.number - 1) if b.number > 0 else None
        if a is not None and b is not None and a.number > b.number:
            gone.append(a)
            a = chain.get_header(a.parent_hash, a.number - 1) if a.number > 0 else None
    gone.reverse()
    joined.reverse()
    return gone, joined


__all__ = [
    "FilterAPI", "new_id", "head_diff", "in_bounds", "check_subscribable", "logs_or_none",
    "FILTER_TIMEOUT", "MAX_QUEUED", "MAX_FILTERS", "MAX_HEAD_WALK", "HEAD_EVENT_QUEUE",
    "TX_EVENT_QUEUE", "ERR_FILTER_NOT_FOUND",
]
