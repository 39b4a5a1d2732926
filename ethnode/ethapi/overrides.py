"""The JSON of geth's ``StateOverride`` and ``BlockOverrides`` (eth_call's third and fourth
arguments, eth_estimateGas's too, eth_createAccessList's third), decoded as Go's json and
hexutil decode them, with their texts."""

from __future__ import annotations

from typing import Any

from ethnode.core.execution.overrides import AccountOverride, BlockOverrides, StateOverride
from ethnode.rpc.hexutil import HexError, decode_data, decode_fixed, decode_quantity, json_type
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError, server_error

_GO_TYPES = {"address": "common.Address", "uint64": "hexutil.Uint64", "big": "*hexutil.Big",
             "bytes": "hexutil.Bytes", "hash": "common.Hash"}


def _value(index: int, struct: str, name: str, kind: str, value: Any) -> Any:
    go_type = _GO_TYPES[kind]
    where = f"Go struct field {struct}.{name} of type {go_type}"
    if not isinstance(value, str):
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
        if text.startswith("hex string has length"):
            raise RPCError(INVALID_PARAMS, f"invalid argument {index}: {text}") from None
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {text} into {where}"
                       ) from None


def _go_fields(obj: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The object's values by field name as Go's json assigns them: keys match names without
    regard to case, unknown keys are ignored, and a later key overwrites an earlier one."""
    by_fold = {name.lower(): name for name in names}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = by_fold.get(key.lower())
        if name is not None:
            out[name] = value
    return out


_ACCOUNT_FIELDS = ("nonce", "code", "balance", "state", "stateDiff", "movePrecompileToAddress")
_BLOCK_FIELDS = ("number", "difficulty", "time", "gasLimit", "feeRecipient", "prevRandao", "baseFeePerGas",
                 "blobBaseFee", "beaconRoot", "withdrawals")


def _slots(index: int, name: str, value: Any) -> dict[bytes, bytes]:
    if not isinstance(value, dict):
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {json_type(value)} into "
                                       f"Go struct field OverrideAccount.{name} of type map[common.Hash]common.Hash")
    return {_value(index, "OverrideAccount", name, "hash", k): _value(index, "OverrideAccount", name, "hash", v)
            for k, v in value.items()}


def parse_state_override(index: int, obj: Any) -> StateOverride | None:
    """Argument ``index`` as geth's ``*override.StateOverride`` (null: none)."""
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {json_type(obj)} into "
                                       "Go value of type override.StateOverride")
    out: dict[bytes, AccountOverride] = {}
    for key, account in obj.items():
        try:
            address = decode_fixed(key, 20, "common.Address")
        except HexError as exc:
            raise RPCError(INVALID_PARAMS, f"invalid argument {index}: {exc}") from None
        if account is None:
            out[address] = AccountOverride()
            continue
        if not isinstance(account, dict):
            raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {json_type(account)} "
                                           "into Go value of type override.OverrideAccount")

        given = _go_fields(account, _ACCOUNT_FIELDS)

        def field(name: str, kind: str, given: dict[str, Any] = given) -> Any:
            v = given.get(name)
            return None if v is None else _value(index, "OverrideAccount", name, kind, v)

        out[address] = AccountOverride(
            nonce=field("nonce", "uint64"),
            code=field("code", "bytes"),
            balance=field("balance", "big"),
            state=None if given.get("state") is None else _slots(index, "state", given["state"]),
            state_diff=None if given.get("stateDiff") is None else _slots(index, "stateDiff", given["stateDiff"]),
            move_precompile_to=field("movePrecompileToAddress", "address"),
        )
    return out


def parse_block_overrides(index: int, obj: Any) -> BlockOverrides | None:
    """Argument ``index`` as geth's ``*override.BlockOverrides`` for eth_call / eth_estimateGas."""
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal {json_type(obj)} into "
                                       "Go value of type override.BlockOverrides")

    given = _go_fields(obj, _BLOCK_FIELDS)

    def field(name: str, kind: str) -> Any:
        v = given.get(name)  # the struct has no json tags: Go names the field in its errors
        return None if v is None else _value(index, "BlockOverrides", name[0].upper() + name[1:], kind, v)

    overrides = BlockOverrides(
        number=field("number", "big"), difficulty=field("difficulty", "big"), time=field("time", "uint64"),
        gas_limit=field("gasLimit", "uint64"), fee_recipient=field("feeRecipient", "address"),
        prev_randao=field("prevRandao", "hash"), base_fee=field("baseFeePerGas", "big"),
        blob_base_fee=field("blobBaseFee", "big"),
    )
    for name, value, bits in (("number", overrides.number, 64), ("baseFeePerGas", overrides.base_fee, 64),
                              ("blobBaseFee", overrides.blob_base_fee, 128)):
        if value is not None and value >= 1 << bits:  # geth takes any 256-bit value; the engines' block context not
            raise server_error(f"block override {name} {value:#x} exceeds {bits} bits, which ethnode does not run")
    beacon = field("beaconRoot", "hash")
    if beacon is not None:
        raise server_error('block override "beaconRoot" is not supported for this RPC method')
    if given.get("withdrawals") is not None:
        raise server_error('block override "withdrawals" is not supported for this RPC method')
    return overrides


__all__ = ["parse_state_override", "parse_block_overrides"]
