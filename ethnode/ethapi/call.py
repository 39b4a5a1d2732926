"""eth_call / eth_estimateGas arguments and rules, as geth's ``internal/ethapi`` and ``eth/gasestimator``.

``TransactionArgs`` is the JSON call object with geth's decoding errors and call-mode
defaults (``CallDefaults``/``ToMessage``): gas defaults to the RPC gas cap and is bounded
by it, a call without fee fields runs free (base fee read as 0), ``input`` wins over
``data``. ``estimate_gas`` is geth's estimator over any ``run(gas) -> CallResult``: a
first run at the highest allowance, an optimistic probe at (peak + stipend) * 64/63, then
a bisection skewed low that stops within 1.5%. Revert errors carry code 3, the revert
data and the decoded Error(string)/Panic(uint256) reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ethnode.core.eip4844 import GAS_PER_BLOB
from ethnode.core.execution import (
    CallMessage,
    CallPreconditionError,
    CallResult,
    IntrinsicGasError,
    VMErrorKind,
)
from ethnode.crypto.keccak import keccak256
from ethnode.rpc.hexutil import HexError, data, decode_data, decode_fixed, decode_quantity, json_type
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError, server_error

RPC_GAS_CAP = 50_000_000  # geth --rpc.gascap default
RPC_EVM_TIMEOUT = 5.0  # seconds; geth --rpc.evmtimeout default
# geth puts no EVM timeout on eth_estimateGas (its HTTP write timeout, 30 s, bounds it); py-evm runs on
# the event loop here, so the whole estimation gets a shorter budget of its own.
ESTIMATE_GAS_TIMEOUT = 10.0
ESTIMATE_GAS_ERROR_RATIO = 0.015  # geth estimateGasErrorRatio: stop bisecting within 1.5%
CALL_STIPEND = 2_300  # geth params.CallStipend
TX_GAS = 21_000  # geth params.TxGas
REVERT_ERROR_CODE = 3  # geth revertError.ErrorCode
MAX_UINT64 = 2**64 - 1

_ERROR_SELECTOR = keccak256(b"Error(string)")[:4]
_PANIC_SELECTOR = keccak256(b"Panic(uint256)")[:4]
_PANIC_REASONS = {  # geth accounts/abi panicReasons
    0x00: "generic panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array",
    0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory",
    0x51: "uninitialized function",
}


# --- decoding ---------------------------------------------------------------------------------

_GO_TYPES = {
    "address": "common.Address", "uint64": "hexutil.Uint64", "big": "*hexutil.Big", "bytes": "hexutil.Bytes",
    "hash": "common.Hash",
}


def _field(index: int, name: str, kind: str, value: Any) -> Any:
    """One JSON field decoded as geth's hexutil types do, failing with geth's ``json: cannot unmarshal`` text."""
    go_type = _GO_TYPES[kind]
    where = f"Go struct field TransactionArgs.{name} of type {go_type}"
    if not isinstance(value, str):  # hexutil errNonString
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal non-string into {where}")
    try:
        if kind == "address":
            return decode_fixed(value, 20, go_type)
        if kind == "hash":
            return decode_fixed(value, 32, go_type)
        if kind == "uint64":
            return decode_quantity(value, 64)
        if kind == "big":
            return decode_quantity(value, 256)
        return decode_data(value)
    except HexError as exc:
        text = str(exc)
        if text.startswith("hex string has length"):  # geth returns UnmarshalFixedJSON's length error bare
            raise RPCError(INVALID_PARAMS, f"invalid argument {index}: {text}") from None
        message = f"invalid argument {index}: json: cannot unmarshal {text} into {where}"
        raise RPCError(INVALID_PARAMS, message) from None


def _access_list(index: int, value: Any) -> list[tuple[bytes, list[bytes]]]:
    bad = RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {json_type(value)} into Go "
                                   "struct field TransactionArgs.accessList of type types.AccessList")
    if not isinstance(value, list):
        raise bad
    out = []
    for entry in value:
        if not isinstance(entry, dict):
            raise bad
        keys = entry.get("storageKeys") or []
        if not isinstance(keys, list):
            raise bad
        address = _field(index, "accessList.address", "address", entry.get("address"))
        out.append((address, [_field(index, "accessList.storageKeys", "hash", k) for k in keys]))
    return out


@dataclass
class TransactionArgs:
    """geth ``TransactionArgs`` for calls: every field optional (None = absent or JSON null)."""

    sender: bytes | None = None
    to: bytes | None = None
    gas: int | None = None
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    value: int | None = None
    nonce: int | None = None
    data: bytes | None = None
    input: bytes | None = None
    access_list: list[tuple[bytes, list[bytes]]] | None = None
    chain_id: int | None = None
    blob_fee_cap: int | None = None
    blob_hashes: list[bytes] | None = None

    @classmethod
    def from_json(cls, index: int, obj: Any, *, method: str = "eth_call") -> TransactionArgs:
        """Decode the call object of argument ``index``; unknown keys are ignored, as Go's json does.

        ``method`` names the caller in the one refusal of a field geth accepts (authorizationList).
        """
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {json_type(obj)} "
                                           "into Go value of type ethapi.TransactionArgs")
        if obj.get("authorizationList") is not None:  # EIP-7702 calls: not wired to the engine here
            raise RPCError(INVALID_PARAMS, f"invalid argument {index}: authorizationList is not supported by "
                                           f"ethnode's {method}")
        args = cls()
        for key, attr, kind in (
            ("from", "sender", "address"), ("to", "to", "address"), ("gas", "gas", "uint64"),
            ("gasPrice", "gas_price", "big"), ("maxFeePerGas", "max_fee_per_gas", "big"),
            ("maxPriorityFeePerGas", "max_priority_fee_per_gas", "big"), ("value", "value", "big"),
            ("nonce", "nonce", "uint64"), ("data", "data", "bytes"), ("input", "input", "bytes"),
            ("chainId", "chain_id", "big"), ("maxFeePerBlobGas", "blob_fee_cap", "big"),
        ):
            if obj.get(key) is not None:
                setattr(args, attr, _field(index, key, kind, obj[key]))
        if obj.get("accessList") is not None:
            args.access_list = _access_list(index, obj["accessList"])
        hashes = obj.get("blobVersionedHashes")
        if hashes is not None:
            if not isinstance(hashes, list):
                raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal "
                                               f"{json_type(hashes)} into Go struct field "
                                               "TransactionArgs.blobVersionedHashes of type []common.Hash")
            args.blob_hashes = [_field(index, "blobVersionedHashes", "hash", h) for h in hashes]
        return args

    def call_defaults(self, gas_cap: int, base_fee: int | None, chain_id: int) -> None:
        """geth ``CallDefaults``: reject mixed fee styles, fill what a call leaves out, bound gas by the cap."""
        if self.gas_price is not None and (self.max_fee_per_gas is not None
                                           or self.max_priority_fee_per_gas is not None):
            raise server_error("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
        if self.to is None and self.blob_hashes is not None:
            raise server_error("blob transaction of type create")
        if self.chain_id is not None and self.chain_id != chain_id:
            raise server_error(f"chainId does not match node's (have={self.chain_id}, want={chain_id})")
        if self.gas is None:
            self.gas = gas_cap if gas_cap else MAX_UINT64 // 2
        elif gas_cap and self.gas > gas_cap:
            self.gas = gas_cap
        if self.value is None:
            self.value = 0
        if base_fee is None:
            if self.gas_price is None:
                self.gas_price = 0
        else:
            if self.max_fee_per_gas is None:
                self.max_fee_per_gas = 0
            if self.max_priority_fee_per_gas is None:
                self.max_priority_fee_per_gas = 0
        if self.blob_fee_cap is None and self.blob_hashes is not None:
            self.blob_fee_cap = 0

    def to_message(self, base_fee: int | None) -> CallMessage:
        """geth ``ToMessage`` (after ``call_defaults``): the fee fields normalized to price, cap and tip."""
        if base_fee is None or self.gas_price is not None:
            price = self.gas_price or 0
            fee_cap = tip_cap = price
        else:
            fee_cap, tip_cap = self.max_fee_per_gas or 0, self.max_priority_fee_per_gas or 0
            price = min(tip_cap + base_fee, fee_cap) if (fee_cap or tip_cap) else 0
        return CallMessage(
            gas=self.gas or 0,
            sender=self.sender if self.sender is not None else bytes(20),
            to=self.to,
            value=self.value or 0,
            data=self.input if self.input is not None else (self.data or b""),
            gas_price=price,
            gas_fee_cap=fee_cap,
            gas_tip_cap=tip_cap,
            access_list=self.access_list,
            blob_hashes=self.blob_hashes,
            blob_fee_cap=self.blob_fee_cap,
        )


# --- results and errors -------------------------------------------------------------------------


def unpack_revert(revert: bytes) -> str | None:
    """geth ``abi.UnpackRevert``: the reason of an ABI ``Error(string)`` or ``Panic(uint256)``, else None."""
    selector, body = revert[:4], revert[4:]
    if len(revert) < 4 or selector not in (_ERROR_SELECTOR, _PANIC_SELECTOR) or len(body) < 32:
        return None
    head = int.from_bytes(body[:32], "big")
    if selector == _PANIC_SELECTOR:
        return _PANIC_REASONS.get(head, f"unknown panic code: {head:#x}")
    if head + 32 > len(body):
        return None
    length = int.from_bytes(body[head:head + 32], "big")
    if head + 32 + length > len(body):
        return None
    return body[head + 32:head + 32 + length].decode("utf-8", errors="replace")


def revert_error(revert: bytes) -> RPCError:
    """geth ``newRevertError``: code 3, "execution reverted[: reason]", data = the revert bytes."""
    reason = unpack_revert(revert)
    message = "execution reverted" if reason is None else f"execution reverted: {reason}"
    return RPCError(REVERT_ERROR_CODE, message, data(revert))


def call_output(result: CallResult) -> str:
    """eth_call's reply: the return data, or the error geth reports for a failed top frame."""
    if result.error is VMErrorKind.REVERT:
        raise revert_error(result.output)
    if result.failed:
        raise server_error(result.message)
    return data(result.output)


def go_duration(seconds: float) -> str:
    """A timeout as Go prints a ``time.Duration`` ("5s", "500ms", "1.5s")."""
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


# --- gas estimation -----------------------------------------------------------------------------


def estimate_gas(
    run: Callable[[int], CallResult],
    message: CallMessage,
    *,
    block_gas_limit: int,
    gas_cap: int,
    balance: int,
    recipient_has_code: bool,
    cancun: bool,
    error_ratio: float = ESTIMATE_GAS_ERROR_RATIO,
) -> int:
    """geth ``gasestimator.Estimate``: the lowest gas limit (within ``error_ratio``) at which ``message`` succeeds.

    ``run(gas)`` executes the message with that gas limit; ``balance`` is the sender's and
    ``recipient_has_code`` whether ``message.to`` holds code, both in the same state.
    Raises geth's errors as ``RPCError`` (a revert as code 3).
    """
    hi = message.gas if message.gas >= TX_GAS else block_gas_limit
    fee_cap = message.gas_fee_cap
    if fee_cap:  # the sender's balance caps the gas it could pay for
        available = balance
        if message.value >= available:
            raise server_error("insufficient funds for transfer")
        available -= message.value
        if cancun and message.blob_hashes:
            blob_cost = len(message.blob_hashes) * GAS_PER_BLOB * (message.blob_fee_cap or 0)
            if blob_cost >= available:
                raise server_error("insufficient funds for gas * price + value")
            available -= blob_cost
        hi = min(hi, available // fee_cap)
    if gas_cap and hi > gas_cap:
        hi = gas_cap

    def execute(gas: int) -> tuple[bool, CallResult | None]:
        """(failed, result); a failure that more gas cannot fix raises."""
        try:
            result = run(gas)
        except IntrinsicGasError:
            return True, None  # geth: raise the gas limit
        except CallPreconditionError as exc:
            raise server_error(f"failed with {gas} gas: {exc}") from None
        return result.failed, result

    # A plain transfer to an account without code: one run at 21000 gives the exact answer.
    if not message.data and message.to is not None and not recipient_has_code:
        try:
            failed, result = execute(TX_GAS)
        except RPCError:
            failed, result = True, None
        if not failed and result is not None:
            return result.gas_used

    failed, result = execute(hi)
    if failed:
        if result is not None and result.error is not VMErrorKind.OUT_OF_GAS:
            if result.error is VMErrorKind.REVERT:
                raise revert_error(result.output)
            raise server_error(result.message)
        raise server_error(f"gas required exceeds allowance ({hi})")
    assert result is not None
    lo = result.gas_used - 1  # less than what it used cannot be enough (gas-introspecting code aside)
    optimistic = (result.max_used_gas + CALL_STIPEND) * 64 // 63
    if optimistic < hi:
        failed, _ = execute(optimistic)
        if failed:
            lo = optimistic
        else:
            hi = optimistic
    while lo + 1 < hi:
        if error_ratio > 0 and (hi - lo) / hi < error_ratio:
            break
        mid = lo + (hi - lo) // 2
        if mid > lo * 2:
            mid = lo * 2  # most txs need little more than they used: bisect toward the low end
        failed, _ = execute(mid)
        if failed:
            lo = mid
        else:
            hi = mid
    return hi


__all__ = [
    "TransactionArgs", "estimate_gas", "revert_error", "unpack_revert", "call_output", "go_duration",
    "RPC_GAS_CAP", "RPC_EVM_TIMEOUT", "ESTIMATE_GAS_TIMEOUT", "ESTIMATE_GAS_ERROR_RATIO",
]
