"""``RevmExecutor``: blocks executed by revm (through alloy-evm's block executor) in the Rust crate.

The seam is one call per batch of txs: ``RevmBlock`` (Rust) opens the parent state, runs the
fork's system calls, applies a whole block's txs in one ``apply`` and computes the roots in
``finish``, handing back the new trie nodes and code for the block's batch. State is read by
walking the stored tries in Rust; only node fetches reach Python, through the shared
``StateDatabase`` cache. Receipts and roots of receipts stay Python's (the same code for both
engines, so their outputs are comparable byte for byte).

Two kinds of block still go to py-evm, which handles them exactly: blocks before Byzantium
(their receipts carry an intermediate state root per tx, which revm's bundle cannot give
without re-hashing the trie after every tx) and clique chains (alloy-evm pays ethash block
rewards to every pre-merge block; clique pays none).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip4844 import GAS_PER_BLOB, latest_blob_config, max_blob_gas_per_block
from ethnode.core.errors import BlockValidationError
from ethnode.core.execution.api import (
    NOEXEC_GAP,
    BlockEnv,
    BlockResult,
    CallMessage,
    CallResult,
    ExecutionError,
    TxExecutionError,
    UnsupportedForkError,
    require_state,
)
from ethnode.core.execution.overrides import BlockOverrides, StateOverride
from ethnode.core.execution.revm.spec import (
    UNSUPPORTED_TIME_FORKS,
    blob_params,
    engine_version,
    fork_schedule,
    is_merged,
)
from ethnode.core.execution.system import requests_hash
from ethnode.core.state.database import StateDatabase
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.core.types.receipt import Log, Receipt, create_bloom, receipts_root
from ethnode.core.types.transaction import Transaction
from ethnode.core.types.withdrawal import Withdrawal

log = logging.getLogger("ethnode.core.execution")

BLOCKHASH_WINDOW = 256

HeaderSource = Any  # Callable[[bytes, int], Header | None]


def _rust() -> Any:
    from ethnode import _rust

    return _rust


class RevmExecutor:
    """Executes blocks of one chain (its config, its state database) with revm."""

    name = "revm"

    def __init__(self, config: ChainConfig, state_db: StateDatabase, get_header: HeaderSource) -> None:
        self.config = config
        self.state_db = state_db
        self._get_header = get_header
        self.version = engine_version()
        self._forks = fork_schedule(config)
        # geth matches deposit logs against the configured address, the zero address when unset
        # (alloy-evm would fall back to mainnet's contract).
        self._deposit = config.deposit_contract_address or bytes(20)
        self._pyevm: Any = None  # the twin, for the blocks revm is not given (see module docs)

    # --- the Executor interface --------------------------------------------------------------

    def new_block(self, parent: Header, env: BlockEnv) -> Any:
        if self._for_pyevm(env):
            return self._twin().new_block(parent, env)
        require_state(self.state_db, parent, NOEXEC_GAP)
        return RevmBlockBuilder(self, parent, env)

    def execute_block(
        self,
        parent: Header,
        block: Block,
        senders: Sequence[bytes] | None = None,
        fee_recipient: bytes | None = None,
    ) -> BlockResult:
        env = BlockEnv.from_header(block.header, fee_recipient, uncles=block.uncles)
        if self._for_pyevm(env):
            return self._twin().execute_block(parent, block, senders, fee_recipient)
        builder = self.new_block(parent, env)
        builder.apply_batch(block.transactions, senders)
        return builder.finish(block.withdrawals)

    def apply_transactions(
        self,
        parent: Header,
        txs: Sequence[Transaction],
        env: BlockEnv,
        withdrawals: Sequence[Withdrawal] | None = None,
        *,
        skip_invalid: bool = False,
    ) -> BlockResult:
        if self._for_pyevm(env):
            return self._twin().apply_transactions(parent, txs, env, withdrawals, skip_invalid=skip_invalid)
        builder = self.new_block(parent, env)
        builder.apply_batch(txs, None, skip_invalid=skip_invalid)
        return builder.finish(withdrawals)

    def call(
        self,
        header: Header,
        message: CallMessage,
        *,
        fee_recipient: bytes | None = None,
        deadline: float | None = None,
        state_override: StateOverride | None = None,
        block_override: BlockOverrides | None = None,
        move_precompiles: bool = True,
    ) -> CallResult:
        from ethnode.core.execution.revm.call import run_call

        require_state(self.state_db, header)
        return run_call(self, header, message, fee_recipient, deadline, None, state_override, block_override,
                        move_precompiles)

    def trace_access(
        self,
        header: Header,
        message: CallMessage,
        *,
        fee_recipient: bytes | None = None,
        deadline: float | None = None,
        state_override: StateOverride | None = None,
        block_override: BlockOverrides | None = None,
    ) -> tuple[CallResult, list[tuple[bytes, bytes | None]]]:
        """``call``, and the accesses geth's AccessListTracer records: ``(address, slot|None)``."""
        from ethnode.core.execution.revm.call import run_call

        require_state(self.state_db, header)
        accesses: list[tuple[bytes, bytes | None]] = []
        return run_call(self, header, message, fee_recipient, deadline, accesses, state_override,
                        block_override), accesses

    def trace_block(
        self, parent: Header, block: Block, senders: Sequence[bytes], count: int, traced: Sequence[int], *,
        fee_recipient: bytes | None = None, timeout: float | None = None,
    ) -> dict[int, Any]:
        """Re-run ``block``'s first ``count`` txs on ``parent``'s state; ``TxTrace`` of those in ``traced``."""
        from ethnode.core.execution.revm.trace import trace_block

        env = BlockEnv.from_header(block.header, fee_recipient, uncles=block.uncles)
        if self._for_pyevm(env):
            return self._twin().trace_block(parent, block, senders, count, traced, fee_recipient=fee_recipient,
                                            timeout=timeout)
        require_state(self.state_db, parent)
        return trace_block(self, parent, block, senders, count, traced, fee_recipient, timeout)

    def trace_call(
        self, header: Header, message: CallMessage, *, fee_recipient: bytes | None = None,
        deadline: float | None = None,
    ) -> Any:
        """``call``, traced: a ``TxTrace``."""
        from ethnode.core.execution.revm.trace import trace_call

        require_state(self.state_db, header)
        return trace_call(self, header, message, fee_recipient, deadline)

    # --- helpers -----------------------------------------------------------------------------

    def _for_pyevm(self, env: BlockEnv) -> bool:
        """Whether py-evm runs this block (see the module docs); first refuses a fork revm lacks."""
        for fork, attr in UNSUPPORTED_TIME_FORKS:
            at = getattr(self.config, attr)
            if at is not None and at <= env.time and self.config.is_london(env.number):
                raise UnsupportedForkError(
                    f"block #{env.number} is under the {fork} fork, which {self.version} cannot execute "
                    "(it runs up to amsterdam); import with --noexec to skip execution"
                )
        config = self.config
        if config.clique is not None:
            return True
        byzantium = config.byzantium_block
        return byzantium is None or env.number < byzantium

    def _twin(self) -> Any:
        if self._pyevm is None:
            from ethnode.core.execution.pyevm import PyEVMExecutor

            self._pyevm = PyEVMExecutor(self.config, self.state_db, self._get_header)
        return self._pyevm

    def block_hash_source(self, parent: Header) -> Any:
        """``number -> hash`` for BLOCKHASH in the child of ``parent`` (walks back only when asked)."""
        known: dict[int, bytes] = {parent.number: parent.hash}
        oldest = [parent]

        def get(number: int) -> bytes | None:
            if number in known:
                return known[number]
            if number > parent.number or number < parent.number + 1 - BLOCKHASH_WINDOW:
                return None
            header = oldest[0]
            while header.number > number:
                prev = self._get_header(header.parent_hash, header.number - 1)
                if prev is None:
                    return None
                header = prev
                known[header.number] = header.hash
            oldest[0] = header
            return known.get(number)

        return get

    def env_args(self, env: BlockEnv, parent_hash: bytes) -> tuple[object, ...]:
        """``env`` as the Rust side takes it."""
        return (
            env.number, env.time, env.gas_limit, env.fee_recipient, env.difficulty, env.mix_digest,
            env.base_fee, env.excess_blob_gas, env.parent_beacon_root, parent_hash, is_merged(self.config, env),
        )

    def open(
        self, parent_root: bytes, env: BlockEnv, parent_hash: bytes, block_hash: Any, uncles: Sequence[Header] = ()
    ) -> Any:
        """A Rust ``RevmBlock`` for ``env`` on the state at ``parent_root``."""
        config = self.config
        rust = _rust()
        args = self.env_args(env, parent_hash)
        try:
            return rust.RevmBlock(
                self.state_db.get, parent_root, self._forks, config.chain_id, self._deposit, args,
                blob_params(config, env.number, env.time), block_hash, [u.encode() for u in uncles],
            )
        except rust.EvmStateError as exc:
            raise ExecutionError(f"block #{env.number}: state data missing from the database ({exc})") from None
        except rust.EvmBlockError as exc:
            raise BlockValidationError(f"block #{env.number}: {exc}") from None


class RevmBlockBuilder:
    """One block in execution on revm (see ``ethnode.core.execution.api.BlockBuilder``)."""

    def __init__(self, executor: RevmExecutor, parent: Header, env: BlockEnv) -> None:
        self._executor = executor
        self.config = executor.config
        self.parent = parent
        self.env = env
        self.gas_used = 0
        self.blob_gas_used = 0
        self.receipts: list[Receipt] = []
        self.transactions: list[Transaction] = []
        bcfg = latest_blob_config(self.config, env.time)
        self._max_blob_gas = max_blob_gas_per_block(self.config, env.time) if bcfg else 6 * GAS_PER_BLOB
        self._finished = False
        self._block = executor.open(
            parent.state_root, env, parent.hash, executor.block_hash_source(parent), env.uncles
        )

    def apply_transaction(self, tx: Transaction, sender: bytes | None = None) -> Receipt:
        self.apply_batch([tx], None if sender is None else [sender])
        return self.receipts[-1]

    def apply_batch(
        self, txs: Sequence[Transaction], senders: Sequence[bytes] | None, *, skip_invalid: bool = False
    ) -> None:
        """Apply ``txs`` in one call into revm; a tx that cannot be applied raises (or is skipped)."""
        if self._finished:
            raise ExecutionError("block builder already finished")
        txs = list(txs)
        senders = list(senders) if senders is not None else [tx.sender for tx in txs]  # type: ignore[attr-defined]
        if skip_invalid:
            # Building: one tx per call, so a blob tx left out leaves its blob gas to the next ones.
            for tx, sender in zip(txs, senders, strict=True):
                self._apply_run([tx], [sender], skip_invalid=True)
            return
        # Import: the whole block in one call, up to the first tx over the block's blob gas.
        fits, blob_gas = 0, self.blob_gas_used
        for tx in txs:
            need = len(tx.blob_hashes) * GAS_PER_BLOB
            if need and blob_gas + need > self._max_blob_gas:
                break
            blob_gas += need
            fits += 1
        self._apply_run(txs[:fits], senders[:fits], skip_invalid=False)
        if fits < len(txs):
            tx = txs[fits]
            need = len(tx.blob_hashes) * GAS_PER_BLOB
            left = self._max_blob_gas - self.blob_gas_used
            raise TxExecutionError(
                len(self.receipts), tx.hash, f"blob gas limit reached (tx blob gas {need}, block has {left} left)"
            )

    def _apply_run(self, txs: list[Transaction], senders: list[bytes], *, skip_invalid: bool) -> None:
        """One call into revm; the block's blob gas cap is checked here first (geth's gas pool does)."""
        if not txs:
            return
        rust = _rust()
        if skip_invalid:
            need = sum(len(tx.blob_hashes) for tx in txs) * GAS_PER_BLOB
            if need and self.blob_gas_used + need > self._max_blob_gas:
                return  # left out: it does not fit the block's blobs
        try:
            outcomes = self._block.apply([tx.canonical for tx in txs], senders, skip_invalid)
        except rust.EvmStateError as exc:
            raise self._missing_state(exc) from None
        for tx, outcome in zip(txs, outcomes, strict=False):
            if isinstance(outcome, str):
                if not skip_invalid:
                    raise TxExecutionError(len(self.receipts), tx.hash, outcome)
                continue
            status, cumulative, logs = outcome
            self.gas_used = cumulative
            self.blob_gas_used += len(tx.blob_hashes) * GAS_PER_BLOB
            self.receipts.append(
                Receipt(tx.type, status, cumulative, [Log(a, list(t), d) for a, t, d in logs])  # type: ignore[attr-defined]
            )
            self.transactions.append(tx)

    def _missing_state(self, exc: Exception) -> ExecutionError:
        return ExecutionError(f"block #{self.env.number}: state data missing from the database ({exc})")

    def finish(self, withdrawals: Sequence[Withdrawal] | None = None) -> BlockResult:
        if self._finished:
            raise ExecutionError("block builder already finished")
        self._finished = True
        rust = _rust()
        ws = None if withdrawals is None else [
            (w.withdrawal_index, w.validator_index, w.address, w.amount) for w in withdrawals  # type: ignore[attr-defined]
        ]
        try:
            gas_used, blob_gas_used, requests, state_root, entries, bal = self._block.finish(ws)
        except rust.EvmStateError as exc:
            raise self._missing_state(exc) from None
        except rust.EvmBlockError as exc:
            raise BlockValidationError(f"block #{self.env.number}: {exc}") from None
        overlay = self._executor.state_db.new_overlay()
        for key, value in entries:
            overlay.put(key, value)
        prague = self.config.is_prague(self.env.number, self.env.time)
        reqs: list[bytes] | None = list(requests) if prague else None
        receipts = self.receipts
        return BlockResult(
            receipts=receipts,
            gas_used=gas_used,
            blob_gas_used=blob_gas_used,
            bloom=create_bloom(receipts),
            receipts_root=receipts_root(receipts),
            state_root=state_root,
            requests=reqs,
            requests_hash=None if reqs is None else requests_hash(reqs),
            state=overlay,
            transactions=self.transactions,
            block_access_list=bal,
        )


__all__ = ["RevmExecutor", "RevmBlockBuilder"]
