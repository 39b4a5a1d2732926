"""Execution payloads as the Engine API carries them, to and from blocks (geth ``beacon/engine``).

A payload is a block without uncles, difficulty or nonce, whose header roots over txs and
withdrawals are implied: ``payload_to_block`` rebuilds the header exactly as geth's
``ExecutableDataToBlock`` does and checks the claimed block hash against it, so a payload
is accepted only if it is byte for byte the block it names. ``block_to_payload`` is the
reverse, for ``engine_getPayload*`` and the payload bodies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ethnode.core.execution.system import requests_hash
from ethnode.core.types.block import Block, derive_tx_root
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header
from ethnode.core.types.transaction import Transaction, decode_tx
from ethnode.core.types.withdrawal import Withdrawal, withdrawals_root
from ethnode.crypto.keccak import keccak256
from ethnode.errors import EthnodeError
from ethnode.rpc.hexutil import HexError, data, decode_data, decode_fixed, decode_quantity, quantity
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError

MAX_EXTRA_DATA = 32  # geth params.MaximumExtraDataSize


class PayloadError(EthnodeError):
    """A well-formed request whose payload is not a valid block: answered INVALID, not an error."""


def _field(obj: dict[str, Any], name: str, kind: str, required: bool = True) -> Any:
    if name not in obj or obj[name] is None:
        if required:
            raise RPCError(INVALID_PARAMS, f"invalid argument 0: missing required field '{name}' for ExecutableData")
        return None
    value = obj[name]
    try:
        if kind == "hash":
            return decode_fixed(value, 32, "common.Hash")
        if kind == "address":
            return decode_fixed(value, 20, "common.Address")
        if kind == "u64":
            return decode_quantity(value, 64)
        if kind == "u256":
            return decode_quantity(value, 256)
        return decode_data(value)
    except HexError as exc:
        raise RPCError(INVALID_PARAMS, f"invalid argument 0: {name}: {exc}") from None


def _withdrawal(obj: Any, where: str) -> Withdrawal:
    if not isinstance(obj, dict):
        raise RPCError(INVALID_PARAMS, f"invalid argument {where}: withdrawal must be an object")
    try:
        return Withdrawal(
            decode_quantity(obj.get("index"), 64), decode_quantity(obj.get("validatorIndex"), 64),
            decode_fixed(obj.get("address"), 20, "common.Address"), decode_quantity(obj.get("amount"), 64),
        )
    except HexError as exc:
        raise RPCError(INVALID_PARAMS, f"invalid argument {where}: withdrawal: {exc}") from None


def decode_withdrawals(value: Any, where: str = "0") -> list[Withdrawal] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise RPCError(INVALID_PARAMS, f"invalid argument {where}: withdrawals must be an array")
    return [_withdrawal(w, where) for w in value]


def encode_withdrawal(w: Withdrawal) -> dict[str, str]:
    return {
        "index": quantity(w.withdrawal_index),  # type: ignore[attr-defined]
        "validatorIndex": quantity(w.validator_index),  # type: ignore[attr-defined]
        "address": data(w.address),  # type: ignore[attr-defined]
        "amount": quantity(w.amount),  # type: ignore[attr-defined]
    }


@dataclass
class ExecutionPayload:
    """geth ``engine.ExecutableData``: the JSON fields, decoded."""

    parent_hash: bytes
    fee_recipient: bytes
    state_root: bytes
    receipts_root: bytes
    logs_bloom: bytes
    prev_randao: bytes
    number: int
    gas_limit: int
    gas_used: int
    timestamp: int
    extra_data: bytes
    base_fee: int
    block_hash: bytes
    transactions: list[bytes]
    withdrawals: list[Withdrawal] | None = None
    blob_gas_used: int | None = None
    excess_blob_gas: int | None = None
    block_access_list: bytes | None = None
    slot_number: int | None = None

    @classmethod
    def from_json(cls, obj: Any) -> ExecutionPayload:
        if not isinstance(obj, dict):
            raise RPCError(INVALID_PARAMS, "invalid argument 0: json: cannot unmarshal into engine.ExecutableData")
        txs = obj.get("transactions")
        if txs is None:
            raise RPCError(INVALID_PARAMS,
                           "invalid argument 0: missing required field 'transactions' for ExecutableData")
        if not isinstance(txs, list):
            raise RPCError(INVALID_PARAMS, "invalid argument 0: transactions must be an array")
        try:
            raw_txs = [decode_data(t) for t in txs]
        except HexError as exc:
            raise RPCError(INVALID_PARAMS, f"invalid argument 0: transactions: {exc}") from None
        return cls(
            parent_hash=_field(obj, "parentHash", "hash"),
            fee_recipient=_field(obj, "feeRecipient", "address"),
            state_root=_field(obj, "stateRoot", "hash"),
            receipts_root=_field(obj, "receiptsRoot", "hash"),
            logs_bloom=_field(obj, "logsBloom", "data"),
            prev_randao=_field(obj, "prevRandao", "hash"),
            number=_field(obj, "blockNumber", "u64"),
            gas_limit=_field(obj, "gasLimit", "u64"),
            gas_used=_field(obj, "gasUsed", "u64"),
            timestamp=_field(obj, "timestamp", "u64"),
            extra_data=_field(obj, "extraData", "data"),
            base_fee=_field(obj, "baseFeePerGas", "u256"),
            block_hash=_field(obj, "blockHash", "hash"),
            transactions=raw_txs,
            withdrawals=decode_withdrawals(obj.get("withdrawals")),
            blob_gas_used=_field(obj, "blobGasUsed", "u64", required=False),
            excess_blob_gas=_field(obj, "excessBlobGas", "u64", required=False),
            block_access_list=_field(obj, "blockAccessList", "data", required=False),
            slot_number=_field(obj, "slotNumber", "u64", required=False),
        )


def payload_to_block(
    payload: ExecutionPayload,
    versioned_hashes: Sequence[bytes] | None,
    beacon_root: bytes | None,
    requests: Sequence[bytes] | None,
) -> Block:
    """The block the payload describes (geth ``ExecutableDataToBlock``); ``PayloadError`` if it is not one."""
    txs: list[Transaction] = []
    for i, raw in enumerate(payload.transactions):
        try:
            tx = decode_tx(raw)
        except Exception as exc:  # any decoding failure of a peer's bytes: the payload is invalid
            raise PayloadError(f"invalid transaction {i}: {exc}") from None
        txs.append(tx)  # type: ignore[arg-type]
    if len(payload.extra_data) > MAX_EXTRA_DATA:
        raise PayloadError(f"invalid extradata length: {len(payload.extra_data)}")
    if len(payload.logs_bloom) != 256:
        raise PayloadError(f"invalid logsBloom length: {len(payload.logs_bloom)}")
    blob_hashes = [h for tx in txs for h in tx.blob_hashes]
    wanted = list(versioned_hashes or ())
    if len(blob_hashes) != len(wanted):
        raise PayloadError(
            f"invalid number of versionedHashes: {_hashes(wanted)} blobHashes: {_hashes(blob_hashes)}"
        )
    for i, (have, want) in enumerate(zip(blob_hashes, wanted, strict=True)):
        if have != want:
            raise PayloadError(f"invalid versionedHash at {i}: 0x{want.hex()} blobHash: 0x{have.hex()}")
    bal = payload.block_access_list
    header = Header(
        parent_hash=payload.parent_hash, uncle_hash=EMPTY_UNCLE_HASH, coinbase=payload.fee_recipient,
        state_root=payload.state_root, tx_root=derive_tx_root(tx.canonical for tx in txs),
        receipt_root=payload.receipts_root, bloom=payload.logs_bloom, difficulty=0, number=payload.number,
        gas_limit=payload.gas_limit, gas_used=payload.gas_used, time=payload.timestamp, extra=payload.extra_data,
        mix_digest=payload.prev_randao, nonce=bytes(8), base_fee=payload.base_fee,
        withdrawals_root=None if payload.withdrawals is None else withdrawals_root(payload.withdrawals),
        blob_gas_used=payload.blob_gas_used, excess_blob_gas=payload.excess_blob_gas,
        parent_beacon_root=beacon_root, requests_hash=None if requests is None else requests_hash(requests),
        block_access_list_hash=keccak256(bal) if bal else None, slot_number=payload.slot_number,
    )
    block = Block.new(header, txs, (), payload.withdrawals)
    if block.hash != payload.block_hash:
        raise PayloadError(f"blockhash mismatch, want {payload.block_hash.hex()}, got {block.hash.hex()}")
    return block


def _hashes(hashes: Sequence[bytes]) -> str:
    return "[" + " ".join("0x" + h.hex() for h in hashes) + "]"


def block_to_payload(block: Block, block_access_list: bytes | None = None) -> dict[str, Any]:
    """The payload JSON of ``block`` (geth ``BlockToExecutableData``'s payload part)."""
    h = block.header
    out: dict[str, Any] = {
        "parentHash": data(h.parent_hash),
        "feeRecipient": data(h.coinbase),
        "stateRoot": data(h.state_root),
        "receiptsRoot": data(h.receipt_root),
        "logsBloom": data(h.bloom),
        "prevRandao": data(h.mix_digest),
        "blockNumber": quantity(h.number),
        "gasLimit": quantity(h.gas_limit),
        "gasUsed": quantity(h.gas_used),
        "timestamp": quantity(h.time),
        "extraData": data(h.extra),
        "baseFeePerGas": quantity(h.base_fee or 0),
        "blockHash": data(h.hash),
        "transactions": [data(tx.canonical) for tx in block.transactions],
    }
    if block.withdrawals is not None:
        out["withdrawals"] = [encode_withdrawal(w) for w in block.withdrawals]
    if h.blob_gas_used is not None:
        out["blobGasUsed"] = quantity(h.blob_gas_used)
    if h.excess_blob_gas is not None:
        out["excessBlobGas"] = quantity(h.excess_blob_gas)
    if h.block_access_list_hash is not None:
        out["blockAccessList"] = data(block_access_list or b"")
    if h.slot_number is not None:
        out["slotNumber"] = quantity(h.slot_number)
    return out


def payload_body(block: Block | None, version: int, block_access_list: bytes | None = None) -> dict[str, Any] | None:
    """``ExecutionPayloadBodyV1``/``V2`` of a stored block (None for an unknown one)."""
    if block is None:
        return None
    body: dict[str, Any] = {
        "transactions": [data(tx.canonical) for tx in block.transactions],
        "withdrawals": None if block.withdrawals is None else [encode_withdrawal(w) for w in block.withdrawals],
    }
    if version >= 2:
        body["blockAccessList"] = None if block_access_list is None else data(block_access_list)
    return body


__all__ = [
    "ExecutionPayload", "PayloadError", "payload_to_block", "block_to_payload", "payload_body",
    "decode_withdrawals", "encode_withdrawal",
]
