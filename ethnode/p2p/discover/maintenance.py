"""The table upkeep both discovery versions run: geth's ``Table.loop`` (refresh, revalidation, DB expiry).

geth keeps this loop in its table, behind a transport interface, so discv4 and discv5 share
one copy; here each protocol object mixes it in and supplies what differs: its own refresh
(``_do_refresh``: seeds, a self lookup and random ones, in that protocol's id space) and whether it
expires the node database (``_cleans_db``: discv5 leaves that to discv4 when they share one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ethnode.logctx import kv
from ethnode.p2p.discover.nodedb import CLEANUP_CYCLE

if TYPE_CHECKING:
    from ethnode.p2p.discover.nodedb import NodeDB
    from ethnode.p2p.discover.table import Table, TableNode
    from ethnode.p2p.enode import Node

log = logging.getLogger("ethnode.p2p.discover")


class TableMaintenance:
    """Mixed into ``UDPv4`` and ``UDPv5``, which set the attributes declared here."""

    protocol_name: str
    table: Table
    db: NodeDB
    config: Any  # each protocol's Config; only ``refresh_interval`` is read here
    initialized: asyncio.Event
    _wake: asyncio.Event
    _refresh_task: asyncio.Task[None] | None

    # -- what each protocol supplies ------------------------------------------------------

    async def _do_refresh(self) -> None:
        raise NotImplementedError

    def _cleans_db(self) -> bool:
        return True

    def _spawn(self, coro: Any) -> None:
        raise NotImplementedError

    async def ping(self, node: Node) -> Any:
        raise NotImplementedError

    async def request_enr(self, node: Node) -> Node:
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Run a table refresh, or wait for the one in progress (geth Table.refresh)."""
        await asyncio.shield(self._start_refresh())

    def _start_refresh(self) -> asyncio.Task[None]:
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.ensure_future(self._do_refresh())
        return self._refresh_task

    def _wake_loop(self) -> None:
        self._wake.set()

    def _next_refresh(self) -> float:
        half = self.config.refresh_interval / 2
        return time.monotonic() + half + self.table.rng.random() * half

    async def _table_loop(self) -> None:
        """Initial refresh, then periodic refreshes, revalidation pings and DB cleanup.

        All deadlines are time.monotonic(); the loop sleeps until the earliest one or
        until the table reports an earlier revalidation deadline or a refresh finishes.
        """
        next_refresh = self._next_refresh()
        next_cleanup = time.monotonic() + CLEANUP_CYCLE
        refreshing: asyncio.Task[None] | None = self._start_refresh()
        while True:
            now = time.monotonic()
            due, next_reval = self.table.revalidation_due(now)
            for tn in due:
                self._spawn(self._revalidate(tn))
            if refreshing is not None and refreshing.done():
                if not refreshing.cancelled() and refreshing.exception() is not None:
                    log.error("Table refresh failed", extra=kv(protocol=self.protocol_name),
                              exc_info=refreshing.exception())
                refreshing = None
                next_refresh = self._next_refresh()
                if not self.table.init_done:
                    self.table.init_done = True
                    self.initialized.set()
                    log.debug("Initial table refresh done",
                              extra=kv(protocol=self.protocol_name, nodes=len(self.table)))
            if refreshing is None and now >= next_refresh:
                refreshing = self._start_refresh()
            if now >= next_cleanup and self._cleans_db():
                self.db.expire_nodes()
                next_cleanup = now + CLEANUP_CYCLE
            deadline = min(next_reval, next_cleanup, next_refresh if refreshing is None else float("inf"))
            self._wake.clear()
            waker = asyncio.ensure_future(self._wake.wait())
            waits: set[asyncio.Future[Any]] = {waker} if refreshing is None else {waker, refreshing}
            try:
                await asyncio.wait(waits, timeout=max(0.0, deadline - time.monotonic()),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waker.cancel()

    async def _revalidate(self, tn: TableNode) -> None:
        from ethnode.p2p.discover.udp import DiscoveryError  # the error base both protocols raise

        node = tn.node
        new_node: Node | None = None
        try:
            pong = await self.ping(node)
            responded = True
        except DiscoveryError:
            responded, pong = False, None
        if pong is not None and (pong.enr_seq or 0) > node.seq:
            try:
                new_node = await self.request_enr(node)
            except DiscoveryError as exc:
                log.debug("ENR request failed", extra=kv(id=node, addr=f"{node.ip}:{node.udp}", err=exc))
        if self.table.revalidation_result(tn, responded, new_node):
            self.db.update_node(tn.node)
