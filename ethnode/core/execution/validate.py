"""Checking a block's header against its execution (geth ``BlockValidator.ValidateState``).

Same order as geth: gas used, bloom, receipts root, requests hash, state root. The error
names the field and both values, so a rejected import says exactly what disagreed.
"""

from __future__ import annotations

from ethnode.core.errors import BlockValidationError
from ethnode.core.execution.api import BlockResult
from ethnode.core.types.header import Header


def _hex(value: bytes | None) -> str:
    return "none" if value is None else "0x" + value.hex()


def validate_state(header: Header, result: BlockResult) -> None:
    """Raise ``BlockValidationError`` naming the first header field execution disagrees with."""
    if header.gas_used != result.gas_used:
        raise BlockValidationError(f"gas used mismatch: header {header.gas_used}, execution {result.gas_used}")
    if header.blob_gas_used is not None and header.blob_gas_used != result.blob_gas_used:
        raise BlockValidationError(
            f"blob gas used mismatch: header {header.blob_gas_used}, execution {result.blob_gas_used}"
        )
    if header.bloom != result.bloom:
        raise BlockValidationError(f"logs bloom mismatch: header {_hex(header.bloom)}, execution {_hex(result.bloom)}")
    if header.receipt_root != result.receipts_root:
        raise BlockValidationError(
            f"receipts root mismatch: header {_hex(header.receipt_root)}, execution {_hex(result.receipts_root)}"
        )
    if header.requests_hash != result.requests_hash:
        raise BlockValidationError(
            f"requests hash mismatch: header {_hex(header.requests_hash)}, execution {_hex(result.requests_hash)}"
        )
    if header.block_access_list_hash is not None:
        have = result.block_access_list_hash
        if have is None:
            raise BlockValidationError("block access list hash mismatch: the engine built no access list")
        if have != header.block_access_list_hash:
            raise BlockValidationError(
                f"block access list hash mismatch: header {_hex(header.block_access_list_hash)}, computed {_hex(have)}"
            )
    if header.state_root != result.state_root:
        raise BlockValidationError(
            f"state root mismatch: header {_hex(header.state_root)}, execution {_hex(result.state_root)}"
        )


__all__ = ["validate_state"]
