"""The ``eth_`` namespace: chain, blocks, transactions, receipts, account state, fees, sync status.

``backend`` is the Ethereum service, or anything with its ``chain``, ``txpool``,
``downloader`` and ``state`` (``Backend``, geth's ethapi.Backend; the last three may be
None). Account state comes from a ``StateReader`` found as ``backend.state``; it answers
``nonce(address)``/``balance(address)`` at the head and ``nonce(address, number)``/
``balance(address, number)`` at an older block, None for "not known". Without one (a
node that does not execute), or when it answers None, the call fails as geth does for
state it does not hold: -32000 "state 0x<root> is not available".

eth_call and eth_estimateGas run on the chain's ``Executor`` over the block's stored
state (argument rules and the estimator in ``call``); a node without execution, or a
block whose state is not stored, gets the same "not available" error.

The unlocked-account methods (eth_accounts, eth_sendTransaction, eth_sign...) are in
``accounts``; they reuse ``_estimate_gas`` and ``_submit`` from here.

Block tags: "latest" and "pending" are the head (there is no pending block without a
miner), "earliest" the genesis, "safe"/"finalized" what the Engine API last set.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from ethnode.consensus.engine import ConsensusError
from ethnode.core.blockchain import BlockChain
from ethnode.core.execution import (
    BlockEnv,
    CallPreconditionError,
    CallResult,
    CallTimeoutError,
    ExecutionError,
    MissingParentStateError,
)
from ethnode.core.execution.overrides import BlockOverrides, StateOverride, check_state_override
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.txpool import TxPool, TxPoolError, UnknownState
from ethnode.core.types.header import Header
from ethnode.core.types.transaction import (
    BlobTxWithSidecar,
    LegacyTx,
    Transaction,
    TransactionError,
    decode_tx,
)
from ethnode.eth.downloader.downloader import Downloader
from ethnode.ethapi.call import (
    ESTIMATE_GAS_TIMEOUT,
    RPC_EVM_TIMEOUT,
    RPC_GAS_CAP,
    TransactionArgs,
    call_output,
    estimate_gas,
    go_duration,
)
from ethnode.ethapi.config import _precompiles, latest_fork
from ethnode.ethapi.gasprice import FeeHistoryError, GasPriceOracle
from ethnode.ethapi.marshal import block_fields, contract_address, receipt_fields, tx_fields
from ethnode.ethapi.overrides import parse_block_overrides, parse_state_override
from ethnode.rpc.hexutil import (
    address_arg,
    arg,
    data,
    data_arg,
    decode_quantity,
    hash_arg,
    json_type,
    quantity,
)
from ethnode.rpc.jsonrpc import INVALID_PARAMS, SERVER_ERROR, RPCError, server_error

log = logging.getLogger("ethnode.rpc")

RPC_TX_FEE_CAP = 10**18  # wei: 1 ether; geth --rpc.txfeecap default
TAGS = ("latest", "pending", "earliest", "safe", "finalized")
MAX_INT64 = 2**63 - 1


@runtime_checkable
class StateReader(Protocol):
    """Account state at the head (one argument) or at block ``number``; None: not known."""

    def nonce(self, address: bytes, number: int | None = None) -> int | None: ...

    def balance(self, address: bytes, number: int | None = None) -> int | None: ...


class Backend(Protocol):
    """What the namespaces read of the Ethereum service (geth ethapi.Backend)."""

    @property
    def chain(self) -> BlockChain: ...

    @property
    def txpool(self) -> TxPool | None: ...

    @property
    def downloader(self) -> Downloader | None: ...

    @property
    def state(self) -> StateReader | None: ...


def _storage_key(key: Any, index: int = 1) -> bytes:
    """geth decodeStorageKey: 0x optional, odd length padded, at most 32 bytes, left-padded to 32;
    a bad key is -32602 with geth's text and the key quoted."""
    if not isinstance(key, str):
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {json_type(key)} into Go "
                                       "value of type string")
    body = key[2:] if key[:2] in ("0x", "0X") else key
    body = body if len(body) % 2 == 0 else "0" + body
    if len(body) > 64:
        raise RPCError(INVALID_PARAMS, f"storage key too long (want at most 32 bytes): {go_quote(key)}")
    if not body.isascii() or not set(body) <= _HEX_DIGITS:
        raise RPCError(INVALID_PARAMS, f"invalid hex in storage key: {go_quote(key)}")
    return bytes.fromhex(body).rjust(32, b"\0")


_HEX_DIGITS = set("0123456789abcdefABCDEF")


def go_quote(text: str) -> str:
    """Go's %q of an ASCII string (what geth's error texts quote user input with)."""
    return json.dumps(text)


def _bool_arg(index: int, value: Any) -> bool:
    """A Go bool argument: JSON true/false only."""
    if not isinstance(value, bool):
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {json_type(value)} into Go "
                                       "value of type bool")
    return value


def _block_number(index: int, value: Any) -> int | str:
    """A block tag or number (geth rpc.BlockNumber)."""
    if isinstance(value, str) and value in TAGS:
        return value
    if not isinstance(value, str):  # geth BlockNumber.UnmarshalJSON decodes the raw JSON text
        value = json.dumps(value, separators=(",", ":"))
    number = arg(index, decode_quantity, value, 64)
    if number > MAX_INT64:
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: block number larger than int64")
    return number  # type: ignore[no-any-return]


class EthAPI:
    """geth's EthereumAPI, BlockChainAPI and TransactionAPI, for the methods ethnode serves."""

    def __init__(self, backend: Backend, *, tx_fee_cap: int = RPC_TX_FEE_CAP, allow_unprotected: bool = False,
                 gas_cap: int = RPC_GAS_CAP, evm_timeout: float = RPC_EVM_TIMEOUT) -> None:
        self.backend = backend
        self.chain = backend.chain
        self.txpool = backend.txpool
        self.oracle = GasPriceOracle(self.chain)
        self.tx_fee_cap = tx_fee_cap
        self.allow_unprotected = allow_unprotected
        self.gas_cap = gas_cap  # 0: no cap (geth --rpc.gascap 0)
        self.evm_timeout = evm_timeout  # 0: no timeout (geth --rpc.evmtimeout 0)

    # --- helpers --------------------------------------------------------------------------

    @property
    def _config(self) -> Any:
        return self.chain.config

    def _header_by_tag(self, tag: int | str) -> Header | None:
        chain = self.chain
        if tag in ("latest", "pending"):
            return chain.current_block  # type: ignore[no-any-return]
        if tag == "earliest":
            return chain.genesis  # type: ignore[no-any-return]
        if tag in ("safe", "finalized"):
            read = rawdb.read_safe_block_hash if tag == "safe" else rawdb.read_finalized_block_hash
            block_hash = read(chain.db)
            header = chain.get_header_by_hash(block_hash) if block_hash is not None else None
            if header is None:
                raise server_error(f"{tag} block not found")
            return header  # type: ignore[no-any-return]
        assert isinstance(tag, int)
        if tag > chain.current_block.number:
            return None
        return chain.get_header_by_number(tag)  # type: ignore[no-any-return]

    def _header_for_state(self, index: int, value: Any) -> Header:
        """geth BlockNumberOrHash: a tag, a number, a hash, or {blockNumber} / {blockHash, requireCanonical}."""
        if value is None:
            value = "latest"
        if not isinstance(value, dict | str):  # geth: neither the object form nor a string
            raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {json_type(value)} "
                                           "into Go value of type string")
        if isinstance(value, dict):
            has_hash, has_number = "blockHash" in value, "blockNumber" in value
            if has_hash and has_number:
                raise RPCError(INVALID_PARAMS, f"invalid argument {index}: cannot specify both BlockHash and "
                                               "BlockNumber, choose one or the other")
            if has_hash:
                return self._header_by_hash(hash_arg(index, value["blockHash"]), bool(value.get("requireCanonical")))
            if not has_number:
                raise RPCError(INVALID_PARAMS,
                               f"invalid argument {index}: must specify either BlockHash or BlockNumber")
            value = value["blockNumber"]
        elif isinstance(value, str) and len(value) == 66:
            return self._header_by_hash(hash_arg(index, value), False)
        header = self._header_by_tag(_block_number(index, value))
        if header is None:
            raise server_error("header not found")
        return header

    def _header_by_hash(self, block_hash: bytes, canonical: bool) -> Header:
        header = self.chain.get_header_by_hash(block_hash)
        if header is None:
            raise server_error("header for hash not found")
        if canonical and self.chain.get_canonical_hash(header.number) != block_hash:
            raise server_error("hash is not currently canonical")
        return header  # type: ignore[no-any-return]

    def _reader(self) -> Any:
        """The service's StateReader, else the pool's (head only); None while state is unknown."""
        reader = self.backend.state or (self.txpool.state if self.txpool is not None else None)
        return None if reader is None or isinstance(reader, UnknownState) else reader

    def _state(self, what: str, address: bytes, header: Header, *extra: Any) -> Any:
        reader = self._reader()
        fn = getattr(reader, what, None)
        value = None
        if fn is not None:
            if header.hash == self.chain.current_block.hash:
                value = fn(address, *extra)
            else:
                try:
                    value = fn(address, *extra, header)  # by the header's own root: side blocks too
                except TypeError:  # a reader of the head state only
                    value = None
        if value is None:
            raise server_error(f"state 0x{header.state_root.hex()} is not available")
        return value  # type: ignore[no-any-return]

    # --- chain ----------------------------------------------------------------------------

    def chain_id(self) -> str:
        return quantity(self._config.chain_id)

    def block_number(self) -> str:
        return quantity(self.chain.current_block.number)

    def syncing(self) -> Any:
        """False, or geth's progress object while the downloader is behind."""
        downloader = self.backend.downloader
        if downloader is None or not downloader.syncing:
            return False
        progress = downloader.progress()
        if progress.current_block >= progress.highest_block:
            return False
        out = {
            "startingBlock": quantity(progress.starting_block),
            "currentBlock": quantity(progress.current_block),
            "highestBlock": quantity(progress.highest_block),
        }
        for key in ("syncedAccounts", "syncedAccountBytes", "syncedBytecodes", "syncedBytecodeBytes",
                    "syncedStorage", "syncedStorageBytes", "healedTrienodes", "healedTrienodeBytes",
                    "healedBytecodes", "healedBytecodeBytes", "healingTrienodes", "healingBytecode",
                    "txIndexFinishedBlocks", "txIndexRemainingBlocks"):
            out[key] = "0x0"  # snap sync and tx indexing counters: ethnode does full sync, indexing inline
        return out

    # --- blocks ---------------------------------------------------------------------------

    def get_block_by_number(self, number: Any, full_tx: Any) -> dict[str, Any] | None:
        full_tx = _bool_arg(1, full_tx)
        header = self._header_by_tag(_block_number(0, number))
        if header is None:
            return None
        block = self.chain.get_block(header.hash, header.number)
        return None if block is None else block_fields(block, bool(full_tx), self._config)

    def get_block_by_hash(self, block_hash: Any, full_tx: Any) -> dict[str, Any] | None:
        full_tx = _bool_arg(1, full_tx)
        block = self.chain.get_block_by_hash(hash_arg(0, block_hash))
        return None if block is None else block_fields(block, bool(full_tx), self._config)

    # --- transactions -----------------------------------------------------------------------

    def get_transaction_by_hash(self, tx_hash: Any) -> dict[str, Any] | None:
        h = hash_arg(0, tx_hash)
        found = self.chain.get_transaction(h)
        if found is not None:
            tx, block_hash, number, index = found
            header = self.chain.get_header(block_hash, number)
            return tx_fields(tx, self._config, header, index)
        pooled = self.txpool.get(h)
        if pooled is None:
            return None
        return tx_fields(pooled, self._config)

    def get_transaction_receipt(self, tx_hash: Any) -> dict[str, Any] | None:
        h = hash_arg(0, tx_hash)
        found = self.chain.get_transaction(h)
        if found is None:
            return None
        _, block_hash, number, index = found
        block = self.chain.get_block(block_hash, number)
        receipts = self.chain.get_receipts(block_hash, number)
        if block is None or receipts is None or len(receipts) <= index:
            return None  # geth: receipts not (yet) stored read as "no receipt"
        return receipt_fields(block, receipts, index, self._config)

    def send_raw_transaction(self, raw: Any) -> str:
        """geth SendRawTransaction: decode, then ``_submit``."""
        payload = data_arg(0, raw)
        try:
            tx = decode_tx(payload, allow_sidecar=True)
        except TransactionError as exc:
            raise server_error(str(exc)) from None
        return data(self._submit(tx))

    def _submit(self, tx: Transaction | BlobTxWithSidecar) -> bytes:
        """geth SubmitTransaction: fee cap, replay protection, then the pool (as a local tx); the hash.

        Shared by eth_sendRawTransaction and eth_sendTransaction (``ethapi.accounts``), so both
        refuse a tx with the same errors. Underscored: not an RPC method of its own.
        """
        inner = tx.tx if isinstance(tx, BlobTxWithSidecar) else tx
        check_tx_fee(inner.gas_fee_cap, inner.gas, self.tx_fee_cap)  # type: ignore[attr-defined]
        if not self.allow_unprotected and isinstance(inner, LegacyTx) and not inner.protected:
            raise server_error("only replay-protected (EIP-155) transactions allowed over RPC")
        err = self.txpool.add_locals([tx])[0]
        if err is not None:
            if isinstance(err, TxPoolError):
                raise server_error(str(err))
            raise err
        try:
            sender = "0x" + inner.sender.hex()
        except TransactionError:
            sender = "?"
        if inner.to is None:  # type: ignore[attr-defined]
            created = contract_address(inner.sender, inner.nonce)  # type: ignore[attr-defined]
            log.info("Submitted contract creation hash=0x%s from=%s nonce=%d contract=0x%s value=%d",
                     tx.hash.hex(), sender, inner.nonce, created.hex(), inner.value)  # type: ignore[attr-defined]
        else:
            log.info("Submitted transaction hash=0x%s from=%s nonce=%d recipient=0x%s value=%d", tx.hash.hex(),
                     sender, inner.nonce, inner.to.hex(), inner.value)  # type: ignore[attr-defined]
        return tx.hash

    # --- account state --------------------------------------------------------------------

    def get_balance(self, address: Any, block: Any = "latest") -> str:
        addr = address_arg(0, address)
        header = self._header_for_state(1, block)
        return quantity(self._state("balance", addr, header))

    def get_transaction_count(self, address: Any, block: Any = "latest") -> str:
        addr = address_arg(0, address)
        if block == "pending":
            nonce = self.txpool.nonce(addr)  # geth GetPoolNonce: the state nonce with pending txs applied
            if nonce is not None:
                return quantity(nonce)
        header = self._header_for_state(1, block)
        return quantity(self._state("nonce", addr, header))

    def get_code(self, address: Any, block: Any = "latest") -> str:
        addr = address_arg(0, address)
        return data(self._state("code", addr, self._header_for_state(1, block)))

    def get_storage_at(self, address: Any, key: Any, block: Any = "latest") -> str:
        addr = address_arg(0, address)
        header = self._header_for_state(2, block)  # geth: the state first, then the key
        slot = _storage_key(key)
        value = self._state("storage", addr, header, slot)
        return data(int(value).to_bytes(32, "big"))

    # --- execution ------------------------------------------------------------------------

    def call(self, args: Any, block: Any = None, overrides: Any = None, block_overrides: Any = None) -> str:
        """geth ``DoCall``: the message run on the block's state in its context; nothing is kept."""
        tx_args = TransactionArgs.from_json(0, args)
        header = self._header_for_state(1, block)
        state_override = parse_state_override(2, overrides)
        block_override = parse_block_overrides(3, block_overrides)
        executor = self._executor(header)
        self._check_state_override(header, state_override, block_override)
        base_fee = _base_fee(header, block_override)
        tx_args.call_defaults(self.gas_cap, base_fee, self._config.chain_id)
        message = tx_args.to_message(base_fee)
        deadline = time.monotonic() + self.evm_timeout if self.evm_timeout else None
        with _execution_errors(header, self.evm_timeout, lambda text: f"err: {text} (supplied gas {message.gas})"):
            result = executor.call(header, message, fee_recipient=self._author(header), deadline=deadline,
                                   state_override=state_override, block_override=block_override)
        return call_output(result)

    def estimate_gas(self, args: Any, block: Any = None, overrides: Any = None, block_overrides: Any = None) -> str:
        """geth ``DoEstimateGas``: the least gas (within 1.5%) the message needs on the block's state."""
        tx_args = TransactionArgs.from_json(0, args)
        header = self._header_for_state(1, block)
        state_override = parse_state_override(2, overrides)
        block_override = parse_block_overrides(3, block_overrides)
        return quantity(self._estimate_gas(tx_args, header, state_override, block_override))

    def _check_state_override(self, header: Header, state_override: StateOverride | None,
                              block_override: BlockOverrides | None, *, with_precompiles: bool = True) -> None:
        """geth ``StateOverride.Apply``'s refusals, against the precompiles of the call's context
        (none for eth_createAccessList, which gives Apply none)."""
        if not state_override:
            return
        when = header.time if block_override is None or block_override.time is None else block_override.time
        fork = latest_fork(self._config, when)
        active = {bytes.fromhex(a[2:]) for a in _precompiles(fork).values()} if with_precompiles else set()
        try:
            check_state_override(state_override, active)
        except CallPreconditionError as exc:
            raise server_error(str(exc)) from None

    def _estimate_gas(self, tx_args: TransactionArgs, header: Header, state_override: StateOverride | None = None,
                      block_override: BlockOverrides | None = None) -> int:
        """The estimator on ``header``'s state; ``tx_args`` is filled in place (call defaults).
        As geth's, its runs see the state overrides but the fork's precompiles unmoved.

        Also eth_sendTransaction's gas default (geth setDefaults calls DoEstimateGas).
        """
        executor = self._executor(header)
        self._check_state_override(header, state_override, block_override)
        base_fee = _base_fee(header, block_override)
        if tx_args.gas is None:
            tx_args.gas = 0  # geth: keep the cap out of the message; the estimator picks the ceiling
        tx_args.call_defaults(self.gas_cap, base_fee, self._config.chain_id)
        message = tx_args.to_message(base_fee)
        state = self.chain.state_at(header)
        author = self._author(header)
        deadline = time.monotonic() + ESTIMATE_GAS_TIMEOUT
        sender_override = (state_override or {}).get(message.sender)
        recipient_override = (state_override or {}).get(message.to) if message.to is not None else None
        if sender_override is not None and sender_override.balance is not None:
            balance = sender_override.balance
        else:
            balance = state.balance(message.sender)
        if recipient_override is not None and recipient_override.code is not None:
            has_code = bool(recipient_override.code)
        else:
            has_code = message.to is not None and bool(state.code(message.to))
        env = BlockEnv.from_header(header)
        if block_override is not None:
            env = block_override.apply(env)

        def run(gas: int) -> CallResult:
            result: CallResult = executor.call(header, replace(message, gas=gas), fee_recipient=author,
                                               deadline=deadline, state_override=state_override,
                                               block_override=block_override, move_precompiles=False)
            return result

        with _execution_errors(header, ESTIMATE_GAS_TIMEOUT):
            return estimate_gas(
                run, message, block_gas_limit=env.gas_limit, gas_cap=self.gas_cap,
                balance=balance, recipient_has_code=has_code, cancun=self._config.is_cancun(env.number, env.time),
            )

    def _executor(self, header: Header) -> Any:
        """The chain's EVM engine, if the block's state is there to run on (else geth's "not available")."""
        executor = self.chain.executor
        if executor is None or not self.chain.state_db.has_state(header.state_root):
            raise server_error(f"state 0x{header.state_root.hex()} is not available")
        return executor

    def _author(self, header: Header) -> bytes | None:
        """COINBASE for a call in ``header``'s context: the engine's author (the clique signer), as geth."""
        try:
            return self.chain.engine.author(header)  # type: ignore[no-any-return]
        except ConsensusError:  # a header whose signer cannot be recovered: fall back to its coinbase
            return None

    # --- fees -----------------------------------------------------------------------------

    def gas_price(self) -> str:
        return quantity(self.oracle.gas_price())

    def max_priority_fee_per_gas(self) -> str:
        return quantity(self.oracle.suggest_tip_cap())

    def fee_history(self, block_count: Any, newest_block: Any, reward_percentiles: Sequence[float] | None
                    ) -> dict[str, Any]:
        count = _hex_or_decimal(0, block_count)
        if count < 1:
            return {"oldestBlock": "0x0", "gasUsedRatio": None}
        tag = _block_number(1, newest_block)
        head = self.chain.current_block
        if isinstance(tag, int) and tag > head.number:
            raise server_error(f"request beyond head block: requested {tag}, head {head.number}")
        last = self._header_by_tag(tag)
        if last is None:
            raise server_error("header not found")
        if reward_percentiles is not None and not isinstance(reward_percentiles, list):
            raise RPCError(INVALID_PARAMS, "invalid argument 2: want an array of numbers")
        try:
            hist = self.oracle.fee_history(count, last, reward_percentiles)
        except FeeHistoryError as exc:
            raise server_error(str(exc)) from None
        out: dict[str, Any] = {
            "oldestBlock": quantity(hist.oldest),
            "baseFeePerGas": [quantity(v) for v in hist.base_fees],
            "gasUsedRatio": hist.gas_used_ratio,
            "baseFeePerBlobGas": [quantity(v) for v in hist.blob_base_fees],
            "blobGasUsedRatio": hist.blob_gas_used_ratio,
        }
        if hist.rewards is not None:
            out["reward"] = [[quantity(v) for v in row] for row in hist.rewards]
        return out


def check_tx_fee(price: int, gas: int, cap: int) -> None:
    """geth checkTxFee: refuse a tx whose ``price * gas`` (wei) exceeds ``cap`` (--rpc.txfeecap; 0: none)."""
    fee = price * gas
    if cap and fee > cap:
        raise server_error(f"tx fee ({fee / 1e18:.2f} ether) exceeds the configured cap ({cap / 1e18:.2f} ether)")


def _base_fee(header: Header, block_override: BlockOverrides | None) -> int | None:
    """The base fee of a call's context (geth ``MakeHeader``: the override's when given)."""
    if block_override is not None and block_override.base_fee is not None:
        return block_override.base_fee
    return header.base_fee


@contextmanager
def _execution_errors(header: Header, timeout: float, precondition: Callable[[str], str] = str) -> Iterator[None]:
    """Engine exceptions as geth's replies for eth_call / eth_estimateGas."""
    try:
        yield
    except CallPreconditionError as exc:
        raise server_error(precondition(str(exc))) from None
    except CallTimeoutError:
        raise server_error(f"execution aborted (timeout = {go_duration(timeout)})") from None
    except MissingParentStateError:
        raise server_error(f"state 0x{header.state_root.hex()} is not available") from None
    except ExecutionError as exc:
        raise server_error(str(exc)) from None


def _hex_or_decimal(index: int, value: Any) -> int:
    """geth math.HexOrDecimal64: a JSON number or string, "0x..." hex or decimal (leading zeros allowed)."""
    text = value if isinstance(value, str) else json.dumps(value)
    body, base = (text[2:], 16) if text[:2] in ("0x", "0X") else (text, 10)
    digits = "0123456789abcdefABCDEF"[:22 if base == 16 else 10]
    if text == "":
        return 0
    if body and body.isascii() and all(c in digits for c in body) and int(body, base) < 2**64:
        return int(body, base)
    raise RPCError(INVALID_PARAMS, f"invalid argument {index}: invalid hex or decimal integer {go_quote(text)}")

__all__ = ["EthAPI", "StateReader", "SERVER_ERROR", "RPC_TX_FEE_CAP", "server_error", "check_tx_fee"]
