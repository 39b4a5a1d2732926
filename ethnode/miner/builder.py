"""Filling a block from the tx pool (geth ``miner/worker.go``: prepareWork, fillTransactions,
commitTransactions).

The header template follows the parent (gas limit stepped toward the miner's ceiling,
base fee and blob fields by the fork rules), the consensus engine fills its own fields
(Clique: difficulty, extra-data layout, vote, time), then pool txs are applied best tip
first, each sender in nonce order (``ordering``), until less than a plain transfer's gas
is left. A tx that cannot be included costs its sender the rest of its txs for this block
(they would be nonce-gapped), except a stale one (nonce already used), which is just
skipped. A blob tx is taken only with the sidecar form of the block's fork (version 0
before Osaka, version 1 cell proofs from Osaka), as geth's worker filters the pool: its
blobs go to the consensus client in getPayload, whose bundle has one form per fork.
The result carries every root and is ready for ``engine.seal``.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ethnode.core.blockchain import BlockChain
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip1559 import ELASTICITY_MULTIPLIER, GAS_LIMIT_BOUND_DIVISOR, MIN_GAS_LIMIT, calc_base_fee
from ethnode.core.eip4844 import GAS_PER_BLOB, calc_excess_blob_gas, max_blob_gas_per_block
from ethnode.core.execution import BlockEnv, BlockResult, TxExecutionError
from ethnode.core.types.block import Block, derive_tx_root
from ethnode.core.types.cells import BlobTxWithCells
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header
from ethnode.core.types.transaction import BlobTxWithSidecar, Transaction
from ethnode.core.types.withdrawal import Withdrawal, withdrawals_root
from ethnode.errors import EthnodeError
from ethnode.miner.ordering import TransactionsByPriceAndNonce, unwrap
from ethnode.trie import EMPTY_ROOT
from ethnode.version import __version__

log = logging.getLogger("ethnode.miner")

DEFAULT_GAS_CEIL = 60_000_000  # gas limit the miner steers toward; geth miner DefaultConfig.GasCeil (v1.17)
DEFAULT_MIN_TIP = 10**6  # wei per gas a tx must tip to be included; geth miner DefaultConfig.GasPrice (GWei/1000)
TX_GAS = 21_000  # geth params.TxGas: with less gas left no tx fits, the block is done
MAX_VANITY = 32  # geth params.MaximumExtraDataSize; also Clique's vanity length
DEFAULT_EXTRA = f"ethnode/v{__version__}".encode()[:MAX_VANITY]


class BuildError(EthnodeError):
    """A block cannot be built here at all (no execution, an engine that does not seal)."""


@runtime_checkable
class SealingEngine(Protocol):
    """What the builder needs of a consensus engine (Clique has it; a chain's engine may not)."""

    def prepare(self, chain: BlockChain, header: Header) -> Header: ...


@dataclass
class MinerConfig:
    """The miner's knobs (geth ``miner.Config``); ``etherbase`` collects the tips."""

    etherbase: bytes = bytes(20)
    gas_ceil: int = DEFAULT_GAS_CEIL
    min_tip: int = DEFAULT_MIN_TIP
    extra: bytes = DEFAULT_EXTRA

    def __post_init__(self) -> None:
        if len(self.extra) > MAX_VANITY:
            raise ValueError(f"extra-data is {len(self.extra)} bytes, the limit is {MAX_VANITY}")


@dataclass
class BuiltBlock:
    """An unsealed block with every root filled in, and what executing it produced."""

    block: Block
    result: BlockResult
    fees: int  # tips earned, wei
    skipped: list[tuple[bytes, str]] = field(default_factory=list)  # (tx hash, why) of txs left out
    sidecars: list[Any] = field(default_factory=list)  # blob sidecars of the included blob txs, in order

    @property
    def header(self) -> Header:
        return self.block.header  # type: ignore[no-any-return]


def sealing_engine(chain: BlockChain) -> SealingEngine:
    """The chain's engine if it builds blocks (Clique), else ``BuildError``: PoW and PoS blocks come from elsewhere."""
    engine = chain.engine
    if not isinstance(engine, SealingEngine):
        raise BuildError(f"the {engine.name} engine does not seal blocks")
    return engine


def calc_gas_limit(parent_gas_limit: int, desired: int) -> int:
    """geth ``core.CalcGasLimit``: step toward ``desired`` by at most parent/1024 - 1 per block."""
    delta = parent_gas_limit // GAS_LIMIT_BOUND_DIVISOR - 1
    desired = max(desired, MIN_GAS_LIMIT)
    if parent_gas_limit < desired:
        return min(parent_gas_limit + delta, desired)
    if parent_gas_limit > desired:
        return max(parent_gas_limit - delta, desired)
    return parent_gas_limit


def new_header(chain: BlockChain, parent: Header, config: MinerConfig, now: float) -> Header:
    """The template of the child of ``parent`` before the engine and execution fill it in."""
    cfg = chain.config
    number = parent.number + 1
    timestamp = int(now)
    if timestamp <= parent.time:
        timestamp = parent.time + 1
    gas_limit = calc_gas_limit(parent.gas_limit, config.gas_ceil)
    base_fee = None
    if cfg.is_london(number):
        base_fee = calc_base_fee(cfg, parent)
        if not cfg.is_london(parent.number):  # the fork block doubles the limit (elasticity)
            gas_limit = calc_gas_limit(parent.gas_limit * ELASTICITY_MULTIPLIER, config.gas_ceil)
    header = Header(
        parent_hash=parent.hash, uncle_hash=EMPTY_UNCLE_HASH, coinbase=config.etherbase, state_root=bytes(32),
        tx_root=EMPTY_ROOT, receipt_root=EMPTY_ROOT, bloom=bytes(256), difficulty=0, number=number,
        gas_limit=gas_limit, gas_used=0, time=timestamp, extra=config.extra, mix_digest=bytes(32),
        nonce=bytes(8), base_fee=base_fee,
    )
    return with_time_fork_fields(cfg, parent, header)


def with_time_fork_fields(cfg: ChainConfig, parent: Header, header: Header) -> Header:
    """``header`` with the fields of the forks active at its (final) time: the engine may move it."""
    number, time = header.number, header.time
    cancun = cfg.is_cancun(number, time)
    return header.replace(  # type: ignore[no-any-return]
        withdrawals_root=EMPTY_ROOT if cfg.is_shanghai(number, time) else None,
        blob_gas_used=0 if cancun else None,
        excess_blob_gas=calc_excess_blob_gas(cfg, parent, time) if cancun else None,
        parent_beacon_root=bytes(32) if cancun else None,  # no beacon chain behind a locally sealed block
    )


def build_block(
    chain: BlockChain,
    txpool: Any,
    config: MinerConfig,
    *,
    engine: SealingEngine | None = None,
    clock: Callable[[], float] = _time.time,
) -> BuiltBlock:
    """Build the next block on ``chain``'s head from ``txpool``'s pending txs, ready to seal.

    ``chain`` is a ``BlockChain`` with an executor; ``txpool`` anything with geth's
    ``pending(min_tip, base_fee)``. ``engine`` defaults to the chain's.
    """
    sealer = engine if engine is not None else sealing_engine(chain)
    parent = chain.current_block
    header = with_time_fork_fields(
        chain.config, parent, sealer.prepare(chain, new_header(chain, parent, config, clock()))
    )
    withdrawals = [] if header.withdrawals_root is not None else None
    return fill_block(chain, txpool, config, parent, header, withdrawals, fee_recipient=config.etherbase)


def fill_block(
    chain: BlockChain,
    txpool: Any,
    config: MinerConfig,
    parent: Header,
    header: Header,
    withdrawals: list[Withdrawal] | None,
    *,
    fee_recipient: bytes | None = None,
    no_txs: bool = False,
) -> BuiltBlock:
    """Execute ``header``'s block on ``parent``: pool txs (unless ``no_txs``), then ``withdrawals``.

    ``fee_recipient`` collects the tips (default the header's coinbase; Clique's signer is not
    its coinbase, which carries votes). Returns the block with every root filled in.
    """
    executor = chain.executor
    if executor is None:
        raise BuildError("building blocks needs block execution (the node runs with --noexec)")
    env = BlockEnv.from_header(header, fee_recipient=fee_recipient)
    builder = executor.new_block(parent, env)
    txs: list[Transaction] = []
    skipped: list[tuple[bytes, str]] = []
    sidecars: list[Any] = []
    fees = 0
    pending = {} if no_txs or txpool is None else txpool.pending(min_tip=config.min_tip, base_fee=header.base_fee)
    order = TransactionsByPriceAndNonce(pending, header.base_fee)
    max_blob_gas = max_blob_gas_per_block(chain.config, header.time) if header.excess_blob_gas is not None else 0
    blob_version = 1 if chain.config.is_osaka(header.number, header.time) else 0  # geth filter.BlobVersion
    state = chain.state_at(parent) if pending else None
    nonces: dict[bytes, int] = {}
    while header.gas_limit - builder.gas_used >= TX_GAS:
        best = order.peek()
        if best is None:
            break
        pooled, sender, tip = best
        tx = unwrap(pooled)
        gas_left = header.gas_limit - builder.gas_used
        if tx.gas > gas_left:  # type: ignore[attr-defined]
            skipped.append((tx.hash, f"gas limit reached: tx gas {tx.gas}, block has {gas_left} left"))  # type: ignore[attr-defined]
            order.pop()
            continue
        blob_gas = len(tx.blob_hashes) * GAS_PER_BLOB
        if isinstance(pooled, BlobTxWithCells):
            # eth/72 custody cells only: the payload's blobs bundle cannot be filled in.
            skipped.append((tx.hash, "blob tx held as custody cells, not whole blobs"))
            order.pop()
            continue
        if isinstance(pooled, BlobTxWithSidecar) and pooled.sidecar.version != blob_version:
            # geth's pool hands its miner only the fork's form, and stops that sender's list there.
            skipped.append((tx.hash, f"blob sidecar version {pooled.sidecar.version}, the fork takes {blob_version}"))
            order.pop()
            continue
        if blob_gas and builder.blob_gas_used + blob_gas > max_blob_gas:
            skipped.append((tx.hash, "blob gas limit reached"))
            order.pop()
            continue
        expected = nonces.get(sender)
        if expected is None:
            assert state is not None
            expected = nonces[sender] = state.nonce(sender)
        nonce: int = tx.nonce  # type: ignore[attr-defined]
        if nonce < expected:  # included meanwhile (geth ErrNonceTooLow): the sender's next may fit
            skipped.append((tx.hash, f"nonce too low: next nonce {expected}, tx nonce {nonce}"))
            order.shift()
            continue
        if nonce > expected:
            skipped.append((tx.hash, f"nonce too high: next nonce {expected}, tx nonce {nonce}"))
            order.pop()
            continue
        used_before = builder.gas_used
        try:
            builder.apply_transaction(tx, sender)
        except TxExecutionError as exc:
            skipped.append((tx.hash, exc.reason))
            order.pop()
            continue
        # A set-code tx may bump its authorities' nonces; the executor catches what the cache misses.
        nonces[sender] = expected + 1
        fees += (builder.gas_used - used_before) * tip
        txs.append(tx)
        if blob_gas and isinstance(pooled, BlobTxWithSidecar):
            sidecars.append(pooled.sidecar)
        order.shift()
    result = builder.finish(withdrawals)
    header = result.fill_header(header.replace(
        tx_root=derive_tx_root(tx.canonical for tx in txs),
        withdrawals_root=None if withdrawals is None else withdrawals_root(withdrawals),
    ))
    if skipped:
        log.debug("Left %d txs out of block #%d: %s", len(skipped), header.number,
                  "; ".join(f"0x{h.hex()[:12]}: {why}" for h, why in skipped[:8]))
    return BuiltBlock(Block.new(header, txs, (), withdrawals), result, fees, skipped, sidecars)


__all__ = [
    "BuildError", "BuiltBlock", "MinerConfig", "SealingEngine", "build_block", "fill_block", "calc_gas_limit",
    "new_header",
    "sealing_engine", "DEFAULT_GAS_CEIL", "DEFAULT_MIN_TIP", "TX_GAS",
]
