"""Consensus data types (geth ``core/types``)."""

from ethnode.core.types.block import Block, Body, block_rlp_from_parts, calc_uncle_hash, derive_tx_root
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header, HeaderError
from ethnode.core.types.receipt import Log, Receipt, ReceiptError, create_bloom, logs_bloom, receipts_root
from ethnode.core.types.signer import Signer, latest_signer, make_signer
from ethnode.core.types.transaction import (
    AccessListTx,
    AccessTuple,
    BlobTx,
    BlobTxSidecar,
    BlobTxWithSidecar,
    DynamicFeeTx,
    LegacyTx,
    SetCodeAuthorization,
    SetCodeTx,
    Transaction,
    TransactionError,
    decode_tx,
    decode_tx_item,
)
from ethnode.core.types.withdrawal import Withdrawal, withdrawals_root

__all__ = [
    "Header",
    "HeaderError",
    "EMPTY_UNCLE_HASH",
    "Block",
    "Body",
    "block_rlp_from_parts",
    "calc_uncle_hash",
    "derive_tx_root",
    "Log",
    "Receipt",
    "ReceiptError",
    "create_bloom",
    "logs_bloom",
    "receipts_root",
    "Signer",
    "make_signer",
    "latest_signer",
    "Transaction",
    "LegacyTx",
    "AccessListTx",
    "DynamicFeeTx",
    "BlobTx",
    "SetCodeTx",
    "AccessTuple",
    "SetCodeAuthorization",
    "BlobTxSidecar",
    "BlobTxWithSidecar",
    "TransactionError",
    "decode_tx",
    "decode_tx_item",
    "Withdrawal",
    "withdrawals_root",
]
