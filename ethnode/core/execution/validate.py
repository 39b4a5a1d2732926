"""Checking a block's header against its execution (geth ``BlockValidator.ValidateState``).

Same order and the same texts as geth v1.17.10 (a consensus client shows them as the
``validationError`` of an INVALID payload, and tools match on them): gas used, bloom,
receipts root, requests hash, block access list, state root. Blob gas used is checked
with geth's body rule text.
"""

from __future__ import annotations

from ethnode.core.errors import BlockValidationError
from ethnode.core.execution.api import BlockResult
from ethnode.core.types.header import Header


def _x(value: bytes | None) -> str:
    """Go's ``%x`` of a hash or bloom."""
    return "" if value is None else value.hex()


def validate_state(header: Header, result: BlockResult) -> None:
    """Raise ``BlockValidationError`` naming the first header field execution disagrees with."""
    if header.gas_used != result.gas_used:
        raise BlockValidationError(f"invalid gas used (remote: {header.gas_used} local: {result.gas_used})")
    if header.blob_gas_used is not None and header.blob_gas_used != result.blob_gas_used:
        raise BlockValidationError(
            f"blob gas used mismatch (header {header.blob_gas_used}, calculated {result.blob_gas_used})"
        )
    if header.bloom != result.bloom:
        raise BlockValidationError(f"invalid bloom (remote: {_x(header.bloom)}  local: {_x(result.bloom)})")
    if header.receipt_root != result.receipts_root:
        raise BlockValidationError(
            f"invalid receipt root hash (remote: {_x(header.receipt_root)} local: {_x(result.receipts_root)})"
        )
    if header.requests_hash is not None:
        if header.requests_hash != result.requests_hash:
            raise BlockValidationError(
                f"invalid requests hash (remote: {_x(header.requests_hash)} local: {_x(result.requests_hash)})"
            )
    elif result.requests_hash is not None:
        raise BlockValidationError("block has requests before prague fork")
    if header.block_access_list_hash is not None:
        local = result.block_access_list_hash
        if local is None:
            raise BlockValidationError("block access list is not available in amsterdam")
        if local != header.block_access_list_hash:
            raise BlockValidationError(
                f"access list hash mismatch, local: {_x(local)}, remote: {_x(header.block_access_list_hash)}"
            )
    if header.state_root != result.state_root:
        # geth formats its (nil) database error with %w, which Go prints as "%!w(<nil>)"
        raise BlockValidationError(
            f"invalid merkle root (remote: {_x(header.state_root)} local: {_x(result.state_root)}) dberr: %!w(<nil>)"
        )


__all__ = ["validate_state"]
