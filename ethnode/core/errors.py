"""Errors of the chain layer (geth ``core/error.go``)."""

from __future__ import annotations

from ethnode.errors import EthnodeError


class ChainError(EthnodeError):
    """Base of the chain layer's errors."""


class BlockValidationError(ChainError):
    """A body that does not match its header, or a tx the block may not carry."""


class InvalidBlockError(ChainError):
    """A block the chain refused, naming it: ``invalid block #N (0xhash): reason``.

    ``cause`` is the underlying error (consensus rule, body mismatch, bad tx); every block
    before this one in the same insert call has been committed.
    """

    def __init__(self, number: int, block_hash: bytes, cause: Exception) -> None:
        super().__init__(f"invalid block #{number} (0x{block_hash.hex()}): {cause}")
        self.number = number
        self.block_hash = block_hash
        self.cause = cause


class ChainNotInitializedError(ChainError):
    """The database has no genesis block (geth ErrNoGenesis)."""


class GenesisMismatchError(ChainError):
    """The database was initialized with another genesis (geth GenesisMismatchError)."""

    def __init__(self, stored: bytes, new: bytes) -> None:
        super().__init__(f"database contains incompatible genesis (have 0x{stored.hex()}, new 0x{new.hex()})")
        self.stored = stored
        self.new = new


class UnknownBlockError(ChainError):
    """A block asked for by hash or number that is not stored (or has no body)."""


__all__ = [
    "ChainError",
    "BlockValidationError",
    "InvalidBlockError",
    "ChainNotInitializedError",
    "GenesisMismatchError",
    "UnknownBlockError",
]
