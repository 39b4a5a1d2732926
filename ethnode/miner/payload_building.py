"""Payloads built for a consensus client (geth ``miner/payload_building.go``).

``engine_forkchoiceUpdated`` with payload attributes asks for a block on a given parent at
a given time; the id is a hash of everything asked (geth ``BuildPayloadArgs.Id``), so the
same request gets the same id. An empty block is built at once, so a payload can always
be delivered; a full one follows, rebuilt from the pool every ``recommit`` seconds while
the consensus client has not asked for it (for at most 12 s, geth's slot), keeping the
one that pays the fee recipient most. ``resolve`` stops the rebuilding and hands over the
best so far.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ethnode import rlp
from ethnode.core.blockchain import BlockChain
from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header
from ethnode.core.types.withdrawal import Withdrawal
from ethnode.errors import EthnodeError
from ethnode.logctx import kv
from ethnode.miner.builder import BuiltBlock, MinerConfig, calc_gas_limit, fill_block, with_time_fork_fields
from ethnode.trie import EMPTY_ROOT

log = logging.getLogger("ethnode.miner")

RECOMMIT = 2.0  # seconds between rebuilds of a full payload (geth miner DefaultConfig.Recommit)
BUILD_WINDOW = 12.0  # rebuilding stops this long after the request (geth: one slot)
MAX_PAYLOADS = 10  # payloads kept for getPayload (geth maxTrackedPayloads)


class PayloadBuildError(EthnodeError):
    """The attributes cannot give a block here (unknown parent, no state, bad timestamp)."""


@dataclass(frozen=True)
class BuildPayloadArgs:
    """What the consensus client asked for (geth ``BuildPayloadArgs``)."""

    parent: bytes
    timestamp: int
    fee_recipient: bytes
    random: bytes
    withdrawals: tuple[Withdrawal, ...] | None
    beacon_root: bytes | None
    slot_number: int | None = None
    target_gas_limit: int | None = None
    version: int = 1  # the payload version byte, the first byte of the id

    def id(self) -> bytes:
        """geth ``BuildPayloadArgs.Id``: sha256 over the request, 8 bytes, the version first."""
        h = hashlib.sha256()
        h.update(self.parent)
        h.update(self.timestamp.to_bytes(8, "big"))
        h.update(self.random)
        h.update(self.fee_recipient)
        h.update(rlp.encode([w for w in self.withdrawals or ()]))
        if self.beacon_root is not None:
            h.update(self.beacon_root)
        if self.slot_number is not None:
            h.update(self.slot_number.to_bytes(8, "big"))
        if self.target_gas_limit is not None:
            h.update(self.target_gas_limit.to_bytes(8, "big"))
        return bytes((self.version,)) + h.digest()[1:8]


class Payload:
    """One payload in the making: the empty block, and the best full one so far."""

    def __init__(self, payload_id: bytes, args: BuildPayloadArgs, empty: BuiltBlock) -> None:
        self.id = payload_id
        self.args = args
        self.empty = empty
        self.full: BuiltBlock | None = None
        self.stopped = False
        self.started = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def update(self, built: BuiltBlock) -> bool:
        """Keep ``built`` if it pays more than the best full block so far (geth ``Payload.update``)."""
        if self.full is None or built.fees > self.full.fees:
            self.full = built
            return True
        return False

    def resolve(self) -> BuiltBlock:
        """The best block, full if one was built; no more rebuilding after this."""
        self.stopped = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        return self.full if self.full is not None else self.empty


class PayloadBuilder:
    """Builds and keeps payloads of one chain from one pool (the Engine API's ``localBlocks``)."""

    def __init__(self, chain: BlockChain, txpool: Any, config: MinerConfig | None = None,
                 recommit: float = RECOMMIT) -> None:
        self.chain = chain
        self.txpool = txpool
        self.config = config or MinerConfig()
        self.recommit = recommit
        self._payloads: OrderedDict[bytes, Payload] = OrderedDict()

    def get(self, payload_id: bytes) -> Payload | None:
        return self._payloads.get(payload_id)

    def build(self, args: BuildPayloadArgs) -> Payload:
        """Start building (or return the payload already building for the same request)."""
        payload_id = args.id()
        known = self._payloads.get(payload_id)
        if known is not None:
            return known
        parent = self.chain.get_header_by_hash(args.parent)
        if parent is None:
            raise PayloadBuildError(f"unknown parent 0x{args.parent.hex()}")
        if args.timestamp <= parent.time:
            raise PayloadBuildError(f"invalid timestamp, parent {parent.time} given {args.timestamp}")
        empty = self._build(parent, args, no_txs=True)
        payload = Payload(payload_id, args, empty)
        payload.update(self._build(parent, args, no_txs=False))
        self._payloads[payload_id] = payload
        while len(self._payloads) > MAX_PAYLOADS:
            _, old = self._payloads.popitem(last=False)
            old.resolve()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return payload  # no loop (tests, tools): the one full build stands
        payload._task = loop.create_task(self._rebuild(payload, parent))
        return payload

    async def _rebuild(self, payload: Payload, parent: Header) -> None:
        """geth's background loop: a fresh full block every ``recommit`` until resolved or the slot ends."""
        while not payload.stopped:
            await asyncio.sleep(self.recommit)
            if payload.stopped or time.monotonic() - payload.started > BUILD_WINDOW:
                return
            try:
                payload.update(self._build(parent, payload.args, no_txs=False))
            except Exception as exc:  # a pool or state hiccup must not kill the loop; geth logs it too
                log.info("Error while generating work", extra=kv(id=payload.id, err=exc))

    def _build(self, parent: Header, args: BuildPayloadArgs, *, no_txs: bool) -> BuiltBlock:
        header = payload_header(self.chain, parent, args, self.config)
        withdrawals = None if args.withdrawals is None else list(args.withdrawals)
        return fill_block(self.chain, self.txpool, self.config, parent, header, withdrawals,
                          fee_recipient=args.fee_recipient, no_txs=no_txs)


def payload_header(chain: BlockChain, parent: Header, args: BuildPayloadArgs, config: MinerConfig) -> Header:
    """The template of a post-merge block as geth's ``prepareWork`` makes it for ``args``."""
    cfg = chain.config
    number = parent.number + 1
    gas_limit = calc_gas_limit(parent.gas_limit, args.target_gas_limit or config.gas_ceil)
    header = Header(
        parent_hash=parent.hash, uncle_hash=EMPTY_UNCLE_HASH, coinbase=args.fee_recipient, state_root=bytes(32),
        tx_root=EMPTY_ROOT, receipt_root=EMPTY_ROOT, bloom=bytes(256), difficulty=0, number=number,
        gas_limit=gas_limit, gas_used=0, time=args.timestamp, extra=config.extra, mix_digest=args.random,
        nonce=bytes(8), base_fee=calc_base_fee(cfg, parent) if cfg.is_london(number) else None,
    )
    header = with_time_fork_fields(cfg, parent, header)
    if header.parent_beacon_root is not None:
        header = header.replace(parent_beacon_root=args.beacon_root or bytes(32))
    if cfg.is_prague(number, args.timestamp):
        header = header.replace(requests_hash=bytes(32))  # filled in from the block's requests
    if cfg.is_amsterdam(number, args.timestamp):
        header = header.replace(block_access_list_hash=bytes(32), slot_number=args.slot_number or 0)
    return header  # type: ignore[no-any-return]


def blobs_bundle(built: BuiltBlock) -> dict[str, list[bytes]]:
    """The blobs, commitments and proofs of the block's blob txs, in block order."""
    blobs: list[bytes] = []
    commitments: list[bytes] = []
    proofs: list[bytes] = []
    for sidecar in built.sidecars:
        blobs.extend(sidecar.blobs)
        commitments.extend(sidecar.commitments)
        proofs.extend(sidecar.proofs)
    return {"blobs": blobs, "commitments": commitments, "proofs": proofs}


def sidecar_versions(built: BuiltBlock) -> Sequence[int]:
    return [s.version for s in built.sidecars]


__all__ = [
    "BuildPayloadArgs", "Payload", "PayloadBuilder", "PayloadBuildError", "payload_header", "blobs_bundle",
    "RECOMMIT", "BUILD_WINDOW",
]
