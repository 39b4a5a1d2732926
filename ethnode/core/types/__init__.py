"""Consensus data types (geth ``core/types``)."""

from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header, HeaderError

__all__ = ["Header", "HeaderError", "EMPTY_UNCLE_HASH"]
