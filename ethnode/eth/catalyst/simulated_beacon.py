"""The consensus client of ``run --dev`` (geth ``eth/catalyst/simulated_beacon.go``).

A proof-of-stake dev chain has no beacon chain, so this plays one inside the node, through
the same Engine API code a real consensus client drives: forkchoiceUpdated with payload
attributes, getPayload, newPayload, forkchoiceUpdated to the new head. Safe follows the
head; finalized is the last multiple of 32 (geth's dev epoch). With ``--dev.period N`` a
block comes every N seconds; with 0, whenever the pool has executable txs (or a withdrawal
is queued), and again while it still has some.

``dev_addWithdrawal`` queues a withdrawal for the next blocks (up to 10 each) and
``dev_setFeeRecipient`` changes who gets the tips, as geth's ``dev`` namespace.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ethnode.core.txpool import NewTxsEvent
from ethnode.core.types.withdrawal import Withdrawal
from ethnode.eth.catalyst.api import EngineAPI, PayloadAttributes, payload_status
from ethnode.eth.catalyst.forks import latest_fork
from ethnode.eth.catalyst.payload import ExecutionPayload, block_to_payload, decode_withdrawals, encode_withdrawal
from ethnode.event import EventBus, Subscription
from ethnode.logctx import kv
from ethnode.rpc.hexutil import HexError, data, decode_fixed
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError, server_error

log = logging.getLogger("ethnode.miner")

DEV_EPOCH_LENGTH = 32  # geth devEpochLength: finalized moves in steps of this many blocks
WITHDRAWALS_PER_BLOCK = 10  # geth: withdrawals.pop(10)
MAX_QUEUED_WITHDRAWALS = 10_000  # a queue bound; geth's is an unbounded slice behind an RPC
ZERO = bytes(32)


def payload_version(config: Any, timestamp: int) -> int:
    """geth ``payloadVersion``: the forkchoiceUpdated/payload version of a block at ``timestamp``."""
    fork = latest_fork(config, timestamp)
    if fork in ("amsterdam", "bpo3", "bpo4", "bpo5", "bogota"):
        return 4
    if fork in ("cancun", "prague", "osaka", "bpo1", "bpo2"):
        return 3
    return 2


class SimulatedBeacon:
    """Seals blocks on ``api``'s chain from its pool (see the module docs)."""

    def __init__(self, api: EngineAPI, bus: EventBus | None, period: int, fee_recipient: bytes = bytes(20),
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.chain = api.chain
        self.bus = bus
        self.period = period
        self.fee_recipient = fee_recipient
        self._clock = clock
        self._withdrawals: deque[Withdrawal] = deque()
        self._last_time = self.chain.current_block.time
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._subs: list[Subscription] = []
        self.sealed = 0

    # --- the dev namespace (geth simulatedBeaconAPI) -------------------------------------------

    def add_withdrawal(self, withdrawal: Withdrawal) -> None:
        if len(self._withdrawals) >= MAX_QUEUED_WITHDRAWALS:
            raise server_error("withdrawal queue is full")
        self._withdrawals.append(withdrawal)
        self._wake.set()

    # --- sealing ---------------------------------------------------------------------------------

    def seal(self) -> bytes:
        """Build, import and make head one block (geth ``sealBlock``); returns its hash."""
        chain, api = self.chain, self.api
        head = chain.current_block
        timestamp = int(self._clock())
        if timestamp <= max(self._last_time, head.time):
            timestamp = max(self._last_time, head.time) + 1
        withdrawals = [self._withdrawals.popleft() for _ in range(min(WITHDRAWALS_PER_BLOCK, len(self._withdrawals)))]
        version = payload_version(chain.config, timestamp)
        attrs: dict[str, Any] = {
            "timestamp": hex(timestamp), "prevRandao": data(os.urandom(32)),
            "suggestedFeeRecipient": data(self.fee_recipient),
            "withdrawals": [encode_withdrawal(w) for w in withdrawals],
            "parentBeaconBlockRoot": data(ZERO),
        }
        if version >= 4:
            attrs["slotNumber"] = "0x0"
        state = self._state(head.hash, self._finalized(head.number))
        started = api._forkchoice_updated(state, PayloadAttributes(attrs), version)
        status = started["payloadStatus"]["status"]
        if status != "VALID" or started["payloadId"] is None:
            raise server_error(f"simulated beacon: forkchoice update was {status}")
        payload = api.builder.get(bytes.fromhex(started["payloadId"][2:]))
        assert payload is not None
        built = payload.resolve()
        block = built.block
        requests = built.result.requests
        imported = api._new_payload(
            ExecutionPayload.from_json(block_to_payload(block, built.result.block_access_list)),
            [h for tx in block.transactions for h in tx.blob_hashes],
            block.header.parent_beacon_root,
            None if requests is None else [r for r in requests if len(r) > 1],
        )
        if imported != payload_status("VALID", block.hash):
            raise server_error(f"simulated beacon: own payload not valid: {imported}")
        number = block.number
        finalized = block.hash if number % DEV_EPOCH_LENGTH == 0 else self._finalized(number)
        api._forkchoice_updated(self._state(block.hash, finalized), None, version)
        self._last_time = timestamp
        self.sealed += 1
        txpool = api.txpool
        if txpool is not None and hasattr(txpool, "set_head"):
            txpool.set_head(block)  # geth TxPool().Sync(): the next seal must not see these txs again
        log.info("Sealed dev block number=%d hash=0x%s txs=%d withdrawals=%d", number, block.hash.hex(),
                 len(block.transactions), len(withdrawals))
        return block.hash

    def _finalized(self, number: int) -> bytes:
        if number % DEV_EPOCH_LENGTH == 0:
            target = number
        else:
            target = (max(number, 1) - 1) // DEV_EPOCH_LENGTH * DEV_EPOCH_LENGTH
        return self.chain.get_canonical_hash(target) or ZERO

    @staticmethod
    def _state(head: bytes, finalized: bytes) -> dict[str, str]:
        return {"headBlockHash": data(head), "safeBlockHash": data(head), "finalizedBlockHash": data(finalized)}

    def _executable(self) -> int:
        txpool = self.api.txpool
        if txpool is None:
            return 0
        pending, _ = txpool.stats()
        return int(pending)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.period > 0:
            self._tasks.append(loop.create_task(self._timed(), name="simulated-beacon"))
            return
        if self.bus is not None:
            sub = self.bus.subscribe(NewTxsEvent, 16)
            self._subs.append(sub)
            self._tasks.append(loop.create_task(self._pump(sub), name="simulated-beacon-txs"))
        self._tasks.append(loop.create_task(self._on_demand(), name="simulated-beacon"))
        if self._executable():
            self._wake.set()

    async def stop(self) -> None:
        for sub in self._subs:
            sub.unsubscribe()
        self._subs = []
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []

    async def _pump(self, sub: Subscription) -> None:
        while True:
            await sub.queue.get()
            self._wake.set()

    async def _on_demand(self) -> None:
        """Period 0: a block as soon as there is something to include, then until nothing is left."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let the pool finish the add that woke us
            self._commit()
            while self._executable() or self._withdrawals:
                await asyncio.sleep(0)
                if not self._commit():
                    break

    async def _timed(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            self._commit()

    def _commit(self) -> bool:
        try:
            self.seal()
            return True
        except Exception as exc:  # a failed block must not stop the dev chain; geth logs and goes on
            log.warning("Error performing sealing work", extra=kv(err=exc))
            return False


class DevAPI:
    """geth's ``dev`` namespace over the simulated beacon."""

    def __init__(self, beacon: SimulatedBeacon) -> None:
        self._beacon = beacon

    def add_withdrawal(self, withdrawal: Any) -> None:
        parsed = decode_withdrawals([withdrawal])
        assert parsed is not None
        self._beacon.add_withdrawal(parsed[0])

    def set_fee_recipient(self, address: Any) -> None:
        try:
            self._beacon.fee_recipient = decode_fixed(address, 20, "common.Address")
        except HexError as exc:
            raise RPCError(INVALID_PARAMS, f"invalid argument 0: {exc}") from None


__all__ = ["SimulatedBeacon", "DevAPI", "payload_version", "DEV_EPOCH_LENGTH"]
