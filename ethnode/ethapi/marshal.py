"""Blocks, transactions, receipts and logs in geth's JSON shapes (``internal/ethapi`` RPCMarshal*).

Fields appear only from the fork that introduced them, as in geth: ``baseFeePerGas``
from London, ``withdrawalsRoot``/``withdrawals`` from Shanghai, the blob fields and
``parentBeaconBlockRoot`` from Cancun, ``requestsHash`` from Prague. ``totalDifficulty``
is gone, as in geth since 1.14. Receipts as stored hold only status, cumulative gas and
logs; the rest (gas used, log indexes, contract address, effective and blob gas prices)
is derived from the block, as geth's ``Receipts.DeriveFields`` does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ethnode import rlp
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip4844 import calc_blob_fee
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.core.types.receipt import Receipt
from ethnode.core.types.transaction import (
    ACCESS_LIST_TX_TYPE,
    BLOB_TX_TYPE,
    LEGACY_TX_TYPE,
    SET_CODE_TX_TYPE,
    BlobTxWithSidecar,
    Transaction,
)
from ethnode.crypto.keccak import keccak256
from ethnode.rpc.hexutil import data, quantity

SENDER_CACHE_SIZE = 16_384  # txs whose sender is remembered by hash (geth keeps it in its cached blocks' txs)
_senders: OrderedDict[bytes, bytes] = OrderedDict()


def sender_of(tx: Transaction) -> bytes:
    """``tx.sender``, remembered: each read of a block decodes fresh txs, and recovering a signature
    (~60 µs) was a fifth of an eth_getBlockByNumber(full) call. Keyed by the tx hash, which fixes
    the signature and so the sender."""
    key = tx.hash
    found = _senders.get(key)
    if found is None:
        found = _senders[key] = tx.sender
        if len(_senders) > SENDER_CACHE_SIZE:
            _senders.popitem(last=False)
    return found


def header_fields(header: Header) -> dict[str, Any]:
    """geth RPCMarshalHeader."""
    out: dict[str, Any] = {
        "number": quantity(header.number),
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "nonce": data(header.nonce),
        "mixHash": data(header.mix_digest),
        "sha3Uncles": data(header.uncle_hash),
        "logsBloom": data(header.bloom),
        "stateRoot": data(header.state_root),
        "miner": data(header.coinbase),
        "difficulty": quantity(header.difficulty),
        "extraData": data(header.extra),
        "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used),
        "timestamp": quantity(header.time),
        "transactionsRoot": data(header.tx_root),
        "receiptsRoot": data(header.receipt_root),
    }
    if header.base_fee is not None:
        out["baseFeePerGas"] = quantity(header.base_fee)
    if header.withdrawals_root is not None:
        out["withdrawalsRoot"] = data(header.withdrawals_root)
    if header.blob_gas_used is not None:
        out["blobGasUsed"] = quantity(header.blob_gas_used)
    if header.excess_blob_gas is not None:
        out["excessBlobGas"] = quantity(header.excess_blob_gas)
    if header.parent_beacon_root is not None:
        out["parentBeaconBlockRoot"] = data(header.parent_beacon_root)
    if header.requests_hash is not None:
        out["requestsHash"] = data(header.requests_hash)
    if header.block_access_list_hash is not None:
        out["blockAccessListHash"] = data(header.block_access_list_hash)
    if header.slot_number is not None:
        out["slotNumber"] = quantity(header.slot_number)
    return out


def header_json(header: Header) -> dict[str, Any]:
    """geth ``types.Header.MarshalJSON``, what the ``newHeads`` subscription sends (not RPCMarshalHeader):
    its field order, every optional field present (null before its fork) and the hash last."""

    def opt(value: Any, encode: Any) -> Any:
        return None if value is None else encode(value)

    return {
        "parentHash": data(header.parent_hash),
        "sha3Uncles": data(header.uncle_hash),
        "miner": data(header.coinbase),
        "stateRoot": data(header.state_root),
        "transactionsRoot": data(header.tx_root),
        "receiptsRoot": data(header.receipt_root),
        "logsBloom": data(header.bloom),
        "difficulty": quantity(header.difficulty),
        "number": quantity(header.number),
        "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used),
        "timestamp": quantity(header.time),
        "extraData": data(header.extra),
        "mixHash": data(header.mix_digest),
        "nonce": data(header.nonce),
        "baseFeePerGas": opt(header.base_fee, quantity),
        "withdrawalsRoot": opt(header.withdrawals_root, data),
        "blobGasUsed": opt(header.blob_gas_used, quantity),
        "excessBlobGas": opt(header.excess_blob_gas, quantity),
        "parentBeaconBlockRoot": opt(header.parent_beacon_root, data),
        "requestsHash": opt(header.requests_hash, data),
        "blockAccessListHash": opt(header.block_access_list_hash, data),
        "slotNumber": opt(header.slot_number, quantity),
        "hash": data(header.hash),
    }


def block_fields(block: Block, full_tx: bool, config: ChainConfig) -> dict[str, Any]:
    """geth RPCMarshalBlock: the header plus size, transactions (hashes or objects), uncles, withdrawals."""
    header = block.header
    out = header_fields(header)
    out["size"] = quantity(len(block.encode()))
    txs = block.transactions
    if full_tx:
        out["transactions"] = [
            tx_fields(_inner(tx), config, header, i) for i, tx in enumerate(txs)  # type: ignore[arg-type]
        ]
    else:
        out["transactions"] = [data(tx.hash) for tx in txs]
    out["uncles"] = [data(u.hash) for u in block.uncles]
    if block.withdrawals is not None:
        out["withdrawals"] = [
            {
                "index": quantity(w.withdrawal_index),
                "validatorIndex": quantity(w.validator_index),
                "address": data(w.address),
                "amount": quantity(w.amount),
            }
            for w in block.withdrawals
        ]
    return out


def _inner(tx: Transaction | BlobTxWithSidecar) -> Transaction:
    return tx.tx if isinstance(tx, BlobTxWithSidecar) else tx  # type: ignore[attr-defined,no-any-return]


def effective_gas_price(tx: Transaction, base_fee: int | None) -> int:
    """What the sender paid per gas: min(fee cap, base fee + tip) after London."""
    if base_fee is None or tx.type in (LEGACY_TX_TYPE, ACCESS_LIST_TX_TYPE):
        return tx.gas_fee_cap
    return min(tx.gas_fee_cap, base_fee + tx.gas_tip_cap)


def tx_fields(
    tx: Transaction | BlobTxWithSidecar,
    config: ChainConfig,
    header: Header | None = None,
    index: int | None = None,
    *,
    pending_base_fee: int | None = None,
) -> dict[str, Any]:
    """geth newRPCTransaction. ``header``/``index``: where the tx was included (None: pending)."""
    tx = _inner(tx)
    out: dict[str, Any] = {
        "blockHash": None if header is None else data(header.hash),
        "blockNumber": None if header is None else quantity(header.number),
        "from": data(sender_of(tx)),
        "gas": quantity(tx.gas),  # type: ignore[attr-defined]
        "gasPrice": quantity(tx.gas_fee_cap),
        "hash": data(tx.hash),
        "input": data(tx.data),  # type: ignore[attr-defined]
        "nonce": quantity(tx.nonce),  # type: ignore[attr-defined]
        "to": None if tx.to is None else data(tx.to),  # type: ignore[attr-defined]
        "transactionIndex": None if index is None else quantity(index),
        "value": quantity(tx.value),  # type: ignore[attr-defined]
        "type": quantity(tx.type),
    }
    if header is not None:
        out["blockTimestamp"] = quantity(header.time)
    if tx.type == LEGACY_TX_TYPE:
        chain_id = tx.chain_id  # type: ignore[attr-defined]
        if chain_id is not None:
            out["chainId"] = quantity(chain_id)
        out["v"] = quantity(tx.v)  # type: ignore[attr-defined]
    else:
        out["chainId"] = quantity(tx.chain_id)  # type: ignore[attr-defined]
        out["accessList"] = [
            {"address": data(a.address), "storageKeys": [data(k) for k in a.storage_keys]}
            for a in tx.access_list  # type: ignore[attr-defined]
        ]
        out["v"] = quantity(tx.y_parity)
        out["yParity"] = quantity(tx.y_parity)
        if tx.type != ACCESS_LIST_TX_TYPE:
            out["maxFeePerGas"] = quantity(tx.gas_fee_cap)
            out["maxPriorityFeePerGas"] = quantity(tx.gas_tip_cap)
            if header is not None:
                out["gasPrice"] = quantity(effective_gas_price(tx, header.base_fee))
        if tx.type == BLOB_TX_TYPE:
            out["maxFeePerBlobGas"] = quantity(tx.blob_fee_cap)  # type: ignore[attr-defined]
            out["blobVersionedHashes"] = [data(h) for h in tx.blob_hashes]
        if tx.type == SET_CODE_TX_TYPE:
            out["authorizationList"] = [
                {
                    "chainId": quantity(a.chain_id),
                    "address": data(a.address),
                    "nonce": quantity(a.nonce),
                    "yParity": quantity(a.y_parity),
                    "r": quantity(a.r),
                    "s": quantity(a.s),
                }
                for a in tx.auth_list  # type: ignore[attr-defined]
            ]
    out["r"] = quantity(tx.r)  # type: ignore[attr-defined]
    out["s"] = quantity(tx.s)  # type: ignore[attr-defined]
    return out


def tx_json(tx: Transaction) -> dict[str, Any]:
    """geth ``types.Transaction.MarshalJSON``: a signed tx alone, as eth_signTransaction's "tx" carries it.

    Not ``tx_fields`` (geth newRPCTransaction): no sender, block or index, but the hash last,
    and the fee fields of the other tx types as null, in geth's field order.
    """
    typed = tx.type != LEGACY_TX_TYPE
    dynamic = tx.type not in (LEGACY_TX_TYPE, ACCESS_LIST_TX_TYPE)
    out: dict[str, Any] = {"type": quantity(tx.type)}
    chain_id = tx.chain_id  # type: ignore[attr-defined]
    if chain_id is not None:  # a legacy tx has one only when EIP-155 protected
        out["chainId"] = quantity(chain_id)
    out.update({
        "nonce": quantity(tx.nonce),  # type: ignore[attr-defined]
        "to": None if tx.to is None else data(tx.to),  # type: ignore[attr-defined]
        "gas": quantity(tx.gas),  # type: ignore[attr-defined]
        "gasPrice": None if dynamic else quantity(tx.gas_fee_cap),
        "maxPriorityFeePerGas": quantity(tx.gas_tip_cap) if dynamic else None,
        "maxFeePerGas": quantity(tx.gas_fee_cap) if dynamic else None,
    })
    if tx.type == BLOB_TX_TYPE:
        out["maxFeePerBlobGas"] = quantity(tx.blob_fee_cap)  # type: ignore[attr-defined]
    out["value"] = quantity(tx.value)  # type: ignore[attr-defined]
    out["input"] = data(tx.data)  # type: ignore[attr-defined]
    if typed:
        out["accessList"] = [
            {"address": data(a.address), "storageKeys": [data(k) for k in a.storage_keys]}
            for a in tx.access_list  # type: ignore[attr-defined]
        ]
    if tx.blob_hashes:
        out["blobVersionedHashes"] = [data(h) for h in tx.blob_hashes]
    if tx.type == SET_CODE_TX_TYPE and tx.auth_list:  # type: ignore[attr-defined]
        out["authorizationList"] = [
            {"chainId": quantity(a.chain_id), "address": data(a.address), "nonce": quantity(a.nonce),
             "yParity": quantity(a.y_parity), "r": quantity(a.r), "s": quantity(a.s)}
            for a in tx.auth_list  # type: ignore[attr-defined]
        ]
    out["v"] = quantity(tx.y_parity if typed else tx.v)  # type: ignore[attr-defined]
    out["r"] = quantity(tx.r)  # type: ignore[attr-defined]
    out["s"] = quantity(tx.s)  # type: ignore[attr-defined]
    if typed:
        out["yParity"] = quantity(tx.y_parity)
    out["hash"] = data(tx.hash)
    return out


def contract_address(sender: bytes, nonce: int) -> bytes:
    """CREATE: keccak256(rlp([sender, nonce]))[12:] (geth crypto.CreateAddress)."""
    return keccak256(rlp.encode([sender, nonce]))[12:]


def receipt_fields(
    block: Block, receipts: Sequence[Receipt], index: int, config: ChainConfig
) -> dict[str, Any]:
    """geth MarshalReceipt for tx ``index`` of ``block``, deriving what storage leaves out."""
    header = block.header
    tx = _inner(block.transactions[index])  # type: ignore[arg-type]
    receipt = receipts[index]
    previous = receipts[index - 1].cumulative_gas_used if index > 0 else 0
    first_log = sum(len(r.logs) for r in receipts[:index])
    out: dict[str, Any] = {
        "blockHash": data(header.hash),
        "blockNumber": quantity(header.number),
        "transactionHash": data(tx.hash),
        "transactionIndex": quantity(index),
        "from": data(sender_of(tx)),
        "to": None if tx.to is None else data(tx.to),  # type: ignore[attr-defined]
        "gasUsed": quantity(receipt.cumulative_gas_used - previous),
        "cumulativeGasUsed": quantity(receipt.cumulative_gas_used),
        "contractAddress": None,
        "logs": [
            log_fields(lg, header, tx.hash, index, first_log + i) for i, lg in enumerate(receipt.logs)
        ],
        "logsBloom": data(receipt.bloom),
        "type": quantity(tx.type),
        "effectiveGasPrice": quantity(effective_gas_price(tx, header.base_fee)),
    }
    if receipt.post_state:
        out["root"] = data(receipt.post_state)
    else:
        out["status"] = quantity(receipt.status)
    if tx.to is None:  # type: ignore[attr-defined]
        out["contractAddress"] = data(contract_address(sender_of(tx), tx.nonce))  # type: ignore[attr-defined]
    if tx.type == BLOB_TX_TYPE:
        out["blobGasUsed"] = quantity(tx.blob_gas)
        out["blobGasPrice"] = quantity(calc_blob_fee(config, header))
    return out


def log_fields(lg: Any, header: Header, tx_hash: bytes, tx_index: int, log_index: int) -> dict[str, Any]:
    return {
        "address": data(lg.address),
        "topics": [data(t) for t in lg.topics],
        "data": data(lg.data),
        "blockNumber": quantity(header.number),
        "transactionHash": data(tx_hash),
        "transactionIndex": quantity(tx_index),
        "blockHash": data(header.hash),
        "blockTimestamp": quantity(header.time),
        "logIndex": quantity(log_index),
        "removed": False,
    }


__all__ = [
    "header_fields", "header_json", "block_fields", "tx_fields", "tx_json", "receipt_fields", "log_fields",
    "effective_gas_price",     "contract_address",
]
