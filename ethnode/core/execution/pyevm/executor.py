"""``PyEVMExecutor``: blocks executed by py-evm's ``State`` on ethnode's state database.

Per block: a fresh py-evm ``State`` on the parent's root over a ``StateOverlay``; the
fork's system calls (EIP-4788 beacon root, EIP-2935 parent hash); each tx applied with
the block's gas and blob pools enforced (geth's ``GasPool``); then, as geth's
``StateProcessor.Process`` orders it, Prague requests (deposit logs, EIP-7002 and
EIP-7251 queue calls), withdrawals (gwei credits) and pre-merge rewards; finally the
state is persisted into the overlay and the roots computed. Nothing reaches the store
here: the chain writes ``result.state`` in the block's batch once every check passed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from eth.vm.execution_context import ExecutionContext
from eth.vm.interrupt import EVMMissingData
from eth.vm.message import Message
from eth_utils import ValidationError

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip4844 import GAS_PER_BLOB, max_blob_gas_per_block
from ethnode.core.errors import BlockValidationError
from ethnode.core.execution.api import (
    NOEXEC_GAP,
    BlockEnv,
    BlockResult,
    CallMessage,
    CallResult,
    ExecutionError,
    TxExecutionError,
    require_state,
)
from ethnode.core.execution.overrides import BlockOverrides, StateOverride
from ethnode.core.execution.precheck import MAX_INIT_CODE_SIZE, CallRules, floor_data_gas, intrinsic_gas
from ethnode.core.execution.pyevm.call import run_call
from ethnode.core.execution.pyevm.db import atomic_db
from ethnode.core.execution.pyevm.forks import Fork, engine_version, fork_for
from ethnode.core.execution.system import (
    BEACON_ROOTS_ADDRESS,
    CONSOLIDATION_QUEUE_ADDRESS,
    CONSOLIDATION_REQUEST_TYPE,
    HISTORY_STORAGE_ADDRESS,
    SYSTEM_ADDRESS,
    SYSTEM_CALL_GAS,
    WITHDRAWAL_QUEUE_ADDRESS,
    WITHDRAWAL_REQUEST_TYPE,
    deposit_requests,
    requests_hash,
)
from ethnode.core.state.database import StateDatabase
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.core.types.receipt import Log, Receipt, create_bloom, receipts_root
from ethnode.core.types.transaction import Transaction
from ethnode.core.types.withdrawal import Withdrawal
from ethnode.crypto.keccak import keccak256

log = logging.getLogger("ethnode.core.execution")


def _hash_with_ethnode_keccak() -> None:
    """Make py-evm and py-trie hash with ethnode's keccak (safe-pysha3, ~0.6 µs a call).

    They hash through eth-hash, whose automatic backend prefers pycryptodome when it is
    installed (~4.4 µs a call here), and state-trie work is keccak-heavy (~90 calls per
    tx on the ethtest chain). Same function, same bytes; an explicit ``ETH_HASH_BACKEND``
    is left alone.
    """
    if os.environ.get("ETH_HASH_BACKEND"):
        return
    from eth_hash.auto import keccak

    keccak.hasher = keccak256


_hash_with_ethnode_keccak()

GWEI = 10**9  # withdrawal amounts are in gwei (EIP-4895)
PER_EMPTY_ACCOUNT_COST = 25_000  # EIP-7702: intrinsic gas per authorization
DELEGATION_PREFIX = b"\xef\x01\x00"  # EIP-7702: an account whose code delegates is still an EOA
BLOCKHASH_WINDOW = 256  # BLOCKHASH sees this many ancestors (geth: the last 256 blocks)
UNCLE_DEPTH_FACTOR = 8  # geth ethash accumulateRewards: uncle reward = (U + 8 - B) * R / 8
NEPHEW_REWARD_DIVISOR = 32  # and the including block earns R / 32 per uncle

HeaderSource = Callable[[bytes, int], "Header | None"]


class PyEVMExecutor:
    """Executes blocks of one chain (its config, its state database) with py-evm."""

    name = "py-evm"

    def __init__(self, config: ChainConfig, state_db: StateDatabase, get_header: HeaderSource) -> None:
        self.config = config
        self.state_db = state_db
        self._get_header = get_header
        self.version = engine_version()

    def new_block(self, parent: Header, env: BlockEnv) -> PyEVMBlockBuilder:
        require_state(self.state_db, parent, NOEXEC_GAP)
        fork = fork_for(self.config, env.number, env.time, env.difficulty)
        return PyEVMBlockBuilder(self, parent, env, fork)

    def execute_block(
        self,
        parent: Header,
        block: Block,
        senders: Sequence[bytes] | None = None,
        fee_recipient: bytes | None = None,
    ) -> BlockResult:
        env = BlockEnv.from_header(block.header, fee_recipient, uncles=block.uncles)
        builder = self.new_block(parent, env)
        txs = block.transactions
        for i, tx in enumerate(txs):
            builder.apply_transaction(tx, None if senders is None else senders[i])  # type: ignore[arg-type]
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
        builder = self.new_block(parent, env)
        for tx in txs:
            try:
                builder.apply_transaction(tx)
            except TxExecutionError:
                if not skip_invalid:
                    raise
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
        require_state(self.state_db, header)
        fork = self._call_fork(header, block_override)
        parent = self._get_header(header.parent_hash, header.number - 1) if header.number else None
        prev_hashes = self.ancestor_hashes(parent) if parent is not None else iter(())
        return run_call(self.config, self.state_db, fork, header, message, prev_hashes, fee_recipient, deadline,
                        None, state_override, block_override, move_precompiles)

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
        require_state(self.state_db, header)
        fork = self._call_fork(header, block_override)
        parent = self._get_header(header.parent_hash, header.number - 1) if header.number else None
        prev_hashes = self.ancestor_hashes(parent) if parent is not None else iter(())
        accesses: list[tuple[bytes, bytes | None]] = []
        result = run_call(self.config, self.state_db, fork, header, message, prev_hashes, fee_recipient, deadline,
                          accesses, state_override, block_override)
        return result, accesses

    def _call_fork(self, header: Header, block_override: BlockOverrides | None) -> Fork:
        """The fork of a call's context: the block's, or the overridden number's and time's."""
        if block_override is None:
            return fork_for(self.config, header.number, header.time, header.difficulty)
        env = block_override.apply(BlockEnv.from_header(header))
        return fork_for(self.config, env.number, env.time, env.difficulty)

    def trace_block(
        self, parent: Header, block: Block, senders: Sequence[bytes], count: int, traced: Sequence[int], *,
        fee_recipient: bytes | None = None, timeout: float | None = None,
    ) -> dict[int, Any]:
        """Re-run ``block``'s first ``count`` txs on ``parent``'s state; ``TxTrace`` of those in ``traced``
        (the twin of ``RevmExecutor.trace_block``; ``timeout`` is not enforced here)."""
        from ethnode.core.execution.pyevm.trace import trace_block

        require_state(self.state_db, parent)
        return trace_block(self, parent, block, senders, count, traced, fee_recipient, timeout)

    def trace_call(
        self, header: Header, message: CallMessage, *, fee_recipient: bytes | None = None,
        deadline: float | None = None,
    ) -> Any:
        """``call``, traced: a ``TxTrace`` (the twin of ``RevmExecutor.trace_call``)."""
        from ethnode.core.execution.pyevm.trace import CallTracing

        require_state(self.state_db, header)
        fork = fork_for(self.config, header.number, header.time, header.difficulty)
        parent = self._get_header(header.parent_hash, header.number - 1) if header.number else None
        prev_hashes = self.ancestor_hashes(parent) if parent is not None else iter(())
        tracing = CallTracing(message, fee_recipient or header.coinbase, fork)
        result = run_call(self.config, self.state_db, fork, header, message, prev_hashes, fee_recipient, deadline,
                          tracing=tracing)
        return tracing.trace(result)

    def ancestor_hashes(self, parent: Header) -> Iterator[bytes]:
        """Hashes for BLOCKHASH, newest first (py-evm caches what it consumes)."""
        header: Header | None = parent
        for _ in range(BLOCKHASH_WINDOW):
            if header is None:
                return
            yield header.hash
            if header.number == 0:
                return
            header = self._get_header(header.parent_hash, header.number - 1)


class PyEVMBlockBuilder:
    """One block in execution (see ``ethnode.core.execution.api.BlockBuilder``)."""

    def __init__(self, executor: PyEVMExecutor, parent: Header, env: BlockEnv, fork: Fork) -> None:
        self._executor = executor
        self.config = executor.config
        self.parent = parent
        self.env = env
        self.fork = fork
        self.overlay = executor.state_db.new_overlay()
        context = ExecutionContext(
            coinbase=env.fee_recipient,
            timestamp=env.time,
            block_number=env.number,
            difficulty=env.difficulty,
            mix_hash=env.mix_digest,
            gas_limit=env.gas_limit,
            prev_hashes=executor.ancestor_hashes(parent),
            chain_id=self.config.chain_id,
            base_fee_per_gas=env.base_fee,
            excess_blob_gas=env.excess_blob_gas,
        )
        self.state = fork.state_class(atomic_db(self.overlay), context, parent.state_root)
        self._tx_builder = fork.vm.get_transaction_builder()
        self.gas_used = 0
        self.blob_gas_used = 0
        self.receipts: list[Receipt] = []
        self.transactions: list[Transaction] = []
        self._max_blob_gas = max_blob_gas_per_block(self.config, env.time) if fork.cancun else 0
        self._finished = False
        self._guarded(self._pre_block)

    # --- block-level system calls ---------------------------------------------------------

    def _pre_block(self) -> None:
        if self.fork.cancun and self.env.parent_beacon_root is not None:
            self._system_call(BEACON_ROOTS_ADDRESS, self.env.parent_beacon_root)  # EIP-4788
        if self.fork.prague:
            self._system_call(HISTORY_STORAGE_ADDRESS, self.parent.hash)  # EIP-2935

    def _system_call(self, address: bytes, data: bytes, *, required: bool = False) -> bytes:
        """Call a system contract as geth's ``ProcessBeaconBlockRoot`` & co: no fee, no nonce, 30M gas."""
        state = self.state
        code = state.get_code(address)
        if not code:
            if required:
                raise BlockValidationError(f"system contract 0x{address.hex()} has no code")
            return b""  # calling an absent account changes nothing (EIP-158)
        message = Message(
            gas=SYSTEM_CALL_GAS, to=address, sender=SYSTEM_ADDRESS, value=0, data=data, code=code,
            code_address=address,
        )
        context = state.get_transaction_context_class()(gas_price=0, origin=SYSTEM_ADDRESS)
        computation = state.computation_class.apply_message(state, message, context)
        state.lock_changes()
        if computation.is_error and required:
            raise BlockValidationError(f"system call to 0x{address.hex()} failed: {computation.error}")
        return bytes(computation.output)

    # --- transactions ---------------------------------------------------------------------

    def apply_transaction(self, tx: Transaction, sender: bytes | None = None) -> Receipt:
        index = len(self.receipts)
        remaining = self.env.gas_limit - self.gas_used
        if tx.gas > remaining:  # type: ignore[attr-defined]
            raise TxExecutionError(index, tx.hash, f"gas limit reached (tx gas {tx.gas}, block gas left {remaining})")  # type: ignore[attr-defined]
        blob_gas = len(tx.blob_hashes) * GAS_PER_BLOB
        if blob_gas and self.blob_gas_used + blob_gas > self._max_blob_gas:
            left = self._max_blob_gas - self.blob_gas_used
            reason = f"blob gas limit reached (tx blob gas {blob_gas}, block has {left} left)"
            raise TxExecutionError(index, tx.hash, reason)
        evm_tx = self._to_evm(tx, sender)
        self._geth_pre_checks(index, tx, evm_tx.sender)
        state = self.state
        state.lock_changes()
        snapshot = state.snapshot()
        try:
            computation = self._guarded(state.apply_transaction, evm_tx)
        except ValidationError as exc:
            state.revert(snapshot)
            raise TxExecutionError(index, tx.hash, str(exc)) from None
        used = tx.gas - computation.get_gas_remaining()  # type: ignore[attr-defined]
        used -= self.fork.vm.calculate_net_gas_refund(used, computation.get_gas_refund())
        used += computation.data_floor_gas  # EIP-7623: what tops the tx up to its calldata floor
        self.gas_used += used
        self.blob_gas_used += blob_gas
        logs = [
            Log(address, [t.to_bytes(32, "big") for t in topics], data)
            for address, topics, data in computation.get_log_entries()
        ]
        status = 0 if computation.is_error else 1
        post_state = b"" if self.fork.byzantium else state.make_state_root()
        receipt = Receipt(tx.type, status, self.gas_used, logs, post_state=post_state)
        self.receipts.append(receipt)
        self.transactions.append(tx)
        return receipt

    def _geth_pre_checks(self, index: int, tx: Any, sender: bytes) -> None:
        """The checks geth's ``preCheck``/``TransitionDb`` make that py-evm does not (or makes
        after running the tx), in geth's order, so both engines refuse the same txs alike."""
        cfg, env = self.config, self.env
        chain_id = tx.chain_id
        if chain_id is not None and chain_id != cfg.chain_id:
            raise TxExecutionError(index, tx.hash, f"invalid chain id for signer: have {chain_id} want {cfg.chain_id}")
        code = self.state.get_code(sender)
        if code and not code.startswith(DELEGATION_PREFIX):  # EIP-3607, EIP-7702 delegations excepted
            reason = f"sender not an eoa: address 0x{sender.hex()}, len(code): {len(code)}"
            raise TxExecutionError(index, tx.hash, reason)
        if cfg.is_london(env.number) and tx.gas_tip_cap > tx.gas_fee_cap:
            raise TxExecutionError(index, tx.hash, (
                f"max priority fee per gas higher than max fee per gas: address 0x{sender.hex()}, "
                f"maxPriorityFeePerGas: {tx.gas_tip_cap}, maxFeePerGas: {tx.gas_fee_cap}"))
        if self.fork.shanghai and tx.to is None and len(tx.data) > MAX_INIT_CODE_SIZE:
            raise TxExecutionError(index, tx.hash,
                                   f"max initcode size exceeded: code size {len(tx.data)} limit {MAX_INIT_CODE_SIZE}")
        if self.fork.prague:
            floor = floor_data_gas(tx.data)
            # geth checks intrinsic gas first (py-evm refuses that case itself, named alike)
            if floor > tx.gas >= self._intrinsic_gas(tx):
                raise TxExecutionError(index, tx.hash,
                                       f"insufficient gas for floor data gas cost: have {tx.gas}, want {floor}")

    def _intrinsic_gas(self, tx: Any) -> int:
        rules = CallRules.for_block(self.config, self.env.number, self.env.time)
        message = CallMessage(gas=tx.gas, to=tx.to, data=tx.data, access_list=getattr(tx, "access_list", None))
        auths = len(getattr(tx, "authorization_list", ()) or ())
        return intrinsic_gas(message, rules)[0] + auths * PER_EMPTY_ACCOUNT_COST

    def _to_evm(self, tx: Transaction, sender: bytes | None) -> Any:
        evm_tx = self._tx_builder.decode(tx.canonical)
        # Spare py-evm a second ecrecover: ethnode's signer already derived (and cached) it.
        evm_tx.__dict__["sender"] = sender if sender is not None else tx.sender
        return evm_tx

    # --- finishing ------------------------------------------------------------------------

    def finish(self, withdrawals: Sequence[Withdrawal] | None = None) -> BlockResult:
        if self._finished:
            raise ExecutionError("block builder already finished")
        self._finished = True
        return self._guarded(self._finish, withdrawals)  # type: ignore[no-any-return]

    def _finish(self, withdrawals: Sequence[Withdrawal] | None) -> BlockResult:
        state = self.state
        requests: list[bytes] | None = None
        if self.fork.prague:
            requests = []
            deposits = deposit_requests(
                (lg for r in self.receipts for lg in r.logs), self.config.deposit_contract_address
            )
            if len(deposits) > 1:
                requests.append(deposits)
            for request_type, address in (
                (WITHDRAWAL_REQUEST_TYPE, WITHDRAWAL_QUEUE_ADDRESS),  # EIP-7002
                (CONSOLIDATION_REQUEST_TYPE, CONSOLIDATION_QUEUE_ADDRESS),  # EIP-7251
            ):
                out = self._system_call(address, b"", required=True)
                if out:
                    requests.append(bytes((request_type,)) + out)
        if withdrawals:
            for w in withdrawals:
                state.delta_balance(w.address, w.amount * GWEI)
            for address in {w.address for w in withdrawals}:
                if state.account_is_empty(address):  # a zero withdrawal touched an empty account
                    state.delete_account(address)
        self._apply_rewards()
        state.persist()
        receipts = self.receipts
        return BlockResult(
            receipts=receipts,
            gas_used=self.gas_used,
            blob_gas_used=self.blob_gas_used,
            bloom=create_bloom(receipts),
            receipts_root=receipts_root(receipts),
            state_root=state.state_root,
            requests=requests,
            requests_hash=None if requests is None else requests_hash(requests),
            state=self.overlay,
            transactions=self.transactions,
        )

    def _apply_rewards(self) -> None:
        """Pre-merge ethash rewards (geth ``accumulateRewards``); clique and PoS blocks earn none."""
        env = self.env
        if env.difficulty == 0 or self.config.clique is not None:
            return
        base = self.fork.vm.get_block_reward()
        reward = base
        for uncle in env.uncles:
            self.state.delta_balance(uncle.coinbase, (uncle.number + UNCLE_DEPTH_FACTOR - env.number) * base // 8)
            reward += base // NEPHEW_REWARD_DIVISOR
        self.state.delta_balance(env.fee_recipient, reward)

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn``; a trie node py-evm cannot find means our state is incomplete, not a bad block."""
        try:
            return fn(*args)
        except EVMMissingData as exc:
            raise ExecutionError(
                f"block #{self.env.number}: state data missing from the database ({type(exc).__name__}: {exc})"
            ) from None


__all__ = ["PyEVMExecutor", "PyEVMBlockBuilder", "GWEI"]
