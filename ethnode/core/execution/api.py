"""The one interface between the chain and an EVM engine (py-evm today).

Everything engine-specific sits behind ``Executor``: the chain hands it a parent header
and a block (import) or a parent header and a ``BlockEnv`` (building), and gets back a
``BlockResult`` whose roots it compares with the header, plus the state entries to write
in the block's own batch. Receipts, logs, blooms, requests and state roots use ethnode's
own types, so swapping the engine touches nothing above this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from ethnode.core.errors import BlockValidationError, ChainError
from ethnode.core.state.database import StateDatabase, StateOverlay
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.core.types.receipt import Receipt
from ethnode.core.types.transaction import Transaction
from ethnode.core.types.withdrawal import Withdrawal
from ethnode.crypto.keccak import keccak256

if TYPE_CHECKING:
    from ethnode.core.execution.overrides import BlockOverrides, StateOverride


class ExecutionError(ChainError):
    """Execution cannot run at all (unsupported fork, engine missing, parent state absent)."""


class UnsupportedForkError(ExecutionError):
    """The chain schedules a fork the engine cannot execute."""


class MissingParentStateError(ExecutionError):
    """The parent block's state is not stored (it was imported with --noexec)."""


def require_state(state_db: StateDatabase, header: Header, why: str = "") -> None:
    """``MissingParentStateError`` unless the state after ``header`` is stored (``why`` says how
    it can be missing, for the error line)."""
    if not state_db.has_state(header.state_root):
        raise MissingParentStateError(
            f"state of block #{header.number} (root 0x{header.state_root.hex()}) is not in the database{why}"
        )


NOEXEC_GAP = ": blocks up to there were imported without execution (--noexec)"


class TxExecutionError(BlockValidationError):
    """A tx that cannot be applied in this state (nonce, funds, gas pool...); state is unchanged.

    On import it makes the block invalid; a block builder skips the tx and goes on. The
    reason starts with geth's name for the case, whichever engine refused the tx.
    """

    def __init__(self, index: int, tx_hash: bytes, reason: str) -> None:
        from ethnode.core.execution.txerrors import geth_reason

        reason = geth_reason(reason)
        super().__init__(f"could not apply tx {index} [0x{tx_hash.hex()}]: {reason}")
        self.index = index
        self.tx_hash = tx_hash
        self.reason = reason


@dataclass(frozen=True)
class BlockEnv:
    """What execution needs to know of a block before its txs run (the header minus its results).

    ``fee_recipient`` is who collects the tips: the header's coinbase, except under
    clique where the signer does (the engine's ``author``). ``mix_digest`` is PREVRANDAO
    after the merge.
    """

    number: int
    time: int
    gas_limit: int
    fee_recipient: bytes
    difficulty: int = 0
    mix_digest: bytes = bytes(32)
    base_fee: int | None = None
    excess_blob_gas: int | None = None
    parent_beacon_root: bytes | None = None
    uncles: Sequence[Header] = ()  # pre-merge only: each uncle's coinbase earns an uncle reward

    @classmethod
    def from_header(cls, header: Header, fee_recipient: bytes | None = None, uncles: Sequence[Header] = ()) -> BlockEnv:
        return cls(
            number=header.number,
            time=header.time,
            gas_limit=header.gas_limit,
            fee_recipient=header.coinbase if fee_recipient is None else fee_recipient,
            difficulty=header.difficulty,
            mix_digest=header.mix_digest,
            base_fee=header.base_fee,
            excess_blob_gas=header.excess_blob_gas,
            parent_beacon_root=header.parent_beacon_root,
            uncles=tuple(uncles),
        )


@dataclass
class BlockResult:
    """The outcome of executing a block: what the header must commit to, and the state to store."""

    receipts: list[Receipt]
    gas_used: int
    blob_gas_used: int
    bloom: bytes
    receipts_root: bytes
    state_root: bytes
    requests: list[bytes] | None  # EIP-7685 typed requests from Prague on, else None
    requests_hash: bytes | None
    state: StateOverlay  # new trie nodes and code: write with the block (``state.write_to(batch)``)
    transactions: list[Transaction] = field(default_factory=list)  # the txs applied, in order
    block_access_list: bytes | None = None  # EIP-7928 RLP list built while executing (Amsterdam on)

    @property
    def block_access_list_hash(self) -> bytes | None:
        return None if self.block_access_list is None else keccak256(self.block_access_list)

    def fill_header(self, header: Header) -> Header:
        """``header`` with every execution-derived field set from this result (for block building)."""
        changes = {
            "state_root": self.state_root,
            "receipt_root": self.receipts_root,
            "bloom": self.bloom,
            "gas_used": self.gas_used,
        }
        if header.blob_gas_used is not None:
            changes["blob_gas_used"] = self.blob_gas_used
        if self.requests_hash is not None:
            changes["requests_hash"] = self.requests_hash
        if self.block_access_list is not None:
            changes["block_access_list_hash"] = self.block_access_list_hash
        return header.replace(**changes)  # type: ignore[no-any-return]


class CallPreconditionError(ExecutionError):
    """A call message that cannot start (geth's consensus errors from ``preCheck``/``buyGas``).

    The text is geth's (``insufficient funds for gas * price + value: address 0x.. have 0 want 1``);
    the RPC layer adds geth's wrapping ("err: ... (supplied gas N)" for eth_call).
    """


class IntrinsicGasError(CallPreconditionError):
    """The gas limit does not cover the intrinsic cost: gas estimation raises the limit and retries."""


class CallTimeoutError(ExecutionError):
    """The call ran past its deadline and was aborted (geth ``--rpc.evmtimeout``)."""


class VMErrorKind(Enum):
    """Why a call's top frame failed; estimateGas treats out-of-gas apart from every other failure."""

    REVERT = "revert"
    OUT_OF_GAS = "out of gas"
    INVALID_OPCODE = "invalid opcode"
    OTHER = "other"


@dataclass(frozen=True)
class CallMessage:
    """A message run as eth_call runs it (geth ``core.Message`` in call mode).

    No signature: ``sender`` is taken as given, its nonce and code are not checked. The fee
    fields are already normalized (geth ``TransactionArgs.ToMessage``): ``gas_price`` is the
    effective price GASPRICE reports and the sender pays; when it is 0 the block's base fee
    reads as 0 too, and with ``gas_fee_cap`` and ``gas_tip_cap`` both 0 no fee check is made
    (geth ``NoBaseFee``). ``to`` None creates a contract from ``data``.
    """

    gas: int
    sender: bytes = bytes(20)
    to: bytes | None = None
    value: int = 0
    data: bytes = b""
    gas_price: int = 0
    gas_fee_cap: int = 0
    gas_tip_cap: int = 0
    access_list: Sequence[tuple[bytes, Sequence[bytes]]] | None = None  # (address, 32-byte storage keys)
    blob_hashes: Sequence[bytes] | None = None
    blob_fee_cap: int | None = None  # None: not given; 0 makes BLOBBASEFEE read 0 and skips its check


@dataclass(frozen=True)
class CallResult:
    """What a call did: its output (or revert data), the gas a tx would have used, and why it failed.

    ``gas_used`` is geth's ``UsedGas`` (after refunds, at least the EIP-7623 floor);
    ``max_used_gas`` the peak before refunds, which gas estimation's first probe starts from.
    """

    output: bytes
    gas_used: int
    max_used_gas: int
    error: VMErrorKind | None = None
    message: str = ""  # geth's text of the error ("execution reverted", "out of gas", ...)

    @property
    def failed(self) -> bool:
        return self.error is not None


class BlockBuilder(Protocol):
    """A block being filled one tx at a time (the miner's loop; import uses it too)."""

    gas_used: int
    blob_gas_used: int
    receipts: list[Receipt]

    def apply_transaction(self, tx: Transaction, sender: bytes | None = None) -> Receipt:
        """Apply ``tx``; ``TxExecutionError`` (state untouched) if it cannot be included here."""

    def finish(self, withdrawals: Sequence[Withdrawal] | None = None) -> BlockResult:
        """Apply withdrawals, requests and rewards; compute the roots. The builder is spent after."""


class Executor(Protocol):
    """An EVM engine bound to one chain's config and state database."""

    name: str
    version: str  # the engine with its release, for the log line of an import

    def new_block(self, parent: Header, env: BlockEnv) -> BlockBuilder:
        """Start a block on top of ``parent``'s state (system calls of the fork already made)."""

    def execute_block(
        self,
        parent: Header,
        block: Block,
        senders: Sequence[bytes] | None = None,
        fee_recipient: bytes | None = None,
    ) -> BlockResult:
        """Run every tx of ``block`` (any failure raises), then finish it. Does not check the header.

        ``senders`` spares recovering them again; ``fee_recipient`` is the engine's ``author``
        (default: the header's coinbase)."""

    def apply_transactions(
        self,
        parent: Header,
        txs: Sequence[Transaction],
        env: BlockEnv,
        withdrawals: Sequence[Withdrawal] | None = None,
        *,
        skip_invalid: bool = False,
    ) -> BlockResult:
        """Apply ``txs`` in order; with ``skip_invalid`` a tx that does not fit is left out
        (``result.transactions`` lists those applied), else it raises ``TxExecutionError``."""

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
        """Run ``message`` on the state after block ``header``, in that block's context, and
        discard every change (eth_call, eth_estimateGas).

        ``fee_recipient`` is COINBASE (default: the header's). ``deadline`` is a
        ``time.monotonic()`` instant past which the call aborts with ``CallTimeoutError``.
        ``CallPreconditionError`` if the message cannot start, ``MissingParentStateError``
        if the block's state is not stored. ``state_override``/``block_override``: geth's
        (``overrides``), laid over the block's state and context; ``move_precompiles``: whether
        overridden precompile addresses stop being precompiles (geth's eth_call, not its estimator)."""


__all__ = [
    "Executor",
    "BlockBuilder",
    "BlockEnv",
    "BlockResult",
    "ExecutionError",
    "UnsupportedForkError",
    "MissingParentStateError",
    "require_state",
    "NOEXEC_GAP",
    "TxExecutionError",
    "CallMessage",
    "CallResult",
    "VMErrorKind",
    "CallPreconditionError",
    "IntrinsicGasError",
    "CallTimeoutError",
]
