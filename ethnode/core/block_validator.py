"""Body checks against the header, and the stateless checks on each tx (geth ``block_validator.go``).

``validate_body`` is geth's ValidateBody: the body must be the one the header commits to
(uncle hash, tx root, withdrawals root) and its blob count must match blob gas used.
``validate_transactions`` runs the checks geth's state transition makes before touching
state (type active, chain id, signature, fee caps against the block's base fees, the
per-tx gas caps); with execution absent they are the only tx checks there are.
"""

from __future__ import annotations

from collections.abc import Sequence

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip4844 import GAS_PER_BLOB, calc_blob_fee
from ethnode.core.errors import BlockValidationError
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.core.types.signer import make_signer
from ethnode.core.types.transaction import BlobTxWithSidecar, Transaction, TransactionError

MAX_BLOCK_SIZE = 8_388_608  # geth params.MaxBlockSize: EIP-7934 (Osaka), 10 MiB RLP cap minus a 2 MiB margin
MAX_TX_GAS = 1 << 24  # geth params.MaxTxGas: EIP-7825 (Osaka) per-tx gas limit cap


def validate_body(config: ChainConfig, block: Block, block_size: int | None = None) -> None:
    """Raise ``BlockValidationError`` unless the body is the one the header commits to."""
    header = block.header
    if config.is_osaka(header.number, header.time):
        size = block_size if block_size is not None else len(block.encode())
        if size > MAX_BLOCK_SIZE:
            raise BlockValidationError(f"block RLP-encoded size exceeds maximum: {size} > {MAX_BLOCK_SIZE}")
    got = block.uncle_hash()
    if got != header.uncle_hash:
        raise BlockValidationError(
            f"uncle root hash mismatch (header value {header.uncle_hash.hex()}, calculated {got.hex()})"
        )
    got = block.tx_root()
    if got != header.tx_root:
        raise BlockValidationError(
            f"transaction root hash mismatch (header value {header.tx_root.hex()}, calculated {got.hex()})"
        )
    if header.withdrawals_root is not None:
        if block.withdrawals is None:
            raise BlockValidationError("missing withdrawals in block body")
        got = block.withdrawals_root()
        if got != header.withdrawals_root:
            raise BlockValidationError(
                f"withdrawals root hash mismatch (header value {header.withdrawals_root.hex()}, "
                f"calculated {got.hex()})"
            )
    elif block.withdrawals is not None:
        raise BlockValidationError("withdrawals present in block body")
    try:
        txs = block.transactions
    except TransactionError as exc:
        raise BlockValidationError(str(exc)) from None
    blobs = 0
    for i, tx in enumerate(txs):
        if isinstance(tx, BlobTxWithSidecar):
            raise BlockValidationError(f"unexpected blob sidecar in transaction at index {i}")
        blobs += len(tx.blob_hashes)
    if header.blob_gas_used is not None:
        if blobs != header.blob_gas_used // GAS_PER_BLOB:
            raise BlockValidationError(
                f"blob gas used mismatch (header {header.blob_gas_used}, calculated {blobs * GAS_PER_BLOB})"
            )
    elif blobs:
        raise BlockValidationError("data blobs present in block body")
    # A body never carries the block access list on the wire (geth v1.17.8's extblock has no
    # such field), so only the header's commitment is checked; its value needs execution.
    if config.is_amsterdam(header.number, header.time):
        if header.block_access_list_hash is None:
            raise BlockValidationError("block access list hash not set in header")
    elif header.block_access_list_hash is not None:
        raise BlockValidationError("block had access list before Amsterdam")


def validate_transactions(config: ChainConfig, header: Header, txs: Sequence[Transaction]) -> None:
    """Raise ``BlockValidationError`` naming the first tx this block may not carry."""
    signer = make_signer(config, header.number, header.time)
    osaka = config.is_osaka(header.number, header.time)
    blob_fee = calc_blob_fee(config, header) if header.excess_blob_gas is not None else None
    for i, tx in enumerate(txs):
        try:
            sender = signer.sender(tx)
            tx.validate()
            if header.base_fee is not None and tx.gas_fee_cap < header.base_fee:
                raise TransactionError(
                    f"max fee per gas less than block base fee: address 0x{sender.hex()}, "
                    f"maxFeePerGas: {tx.gas_fee_cap}, baseFee: {header.base_fee}"
                )
            if tx.blob_hashes and blob_fee is not None and tx.blob_fee_cap < blob_fee:  # type: ignore[attr-defined]
                raise TransactionError(
                    f"max fee per blob gas less than block blob gas fee: address 0x{sender.hex()} "
                    f"blobGasFeeCap: {tx.blob_fee_cap}, blobBaseFee: {blob_fee}"  # type: ignore[attr-defined]
                )
            if osaka and tx.gas > MAX_TX_GAS:  # type: ignore[attr-defined]
                raise TransactionError(f"transaction gas limit too high (cap: {MAX_TX_GAS}, tx: {tx.gas})")  # type: ignore[attr-defined]
            if tx.gas > header.gas_limit:  # type: ignore[attr-defined]
                raise TransactionError("gas limit reached")
        except TransactionError as exc:
            raise BlockValidationError(f"invalid transaction {i} (0x{tx.hash.hex()}): {exc}") from None


__all__ = ["validate_body", "validate_transactions", "MAX_BLOCK_SIZE", "MAX_TX_GAS"]
