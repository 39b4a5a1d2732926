"""RLP error classes, shared by the compiled and the pure codec.

Both backends raise exactly these classes so that a caller (or a differential test)
never sees a difference between them.
"""

from ethnode.errors import EthnodeError


class RLPError(EthnodeError):
    """Base of every RLP failure."""


class EncodingError(RLPError):
    """A value cannot be encoded: wrong type, negative int, out of a schema's bounds."""


class DecodingError(RLPError):
    """Bytes are not the one canonical RLP encoding, or do not fit the schema."""
