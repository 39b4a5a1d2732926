"""Recursive Length Prefix: the raw codec and the typed layer (``ethnode.rlp.sedes``).

``encode`` takes bytes-like values, non-negative ints and nested lists/tuples and returns
the canonical encoding. ``decode`` is strict: it accepts only the one canonical encoding
of a single item that spans all of its input, and returns bytes or nested lists.

The implementation is the Cython codec when it is built, else its pure twin
(see ``ethnode.backends()``); both have the same API, bytes and errors.
"""

from types import ModuleType

from ethnode._native import implementation as _implementation
from ethnode._native import select
from ethnode.rlp.errors import DecodingError, EncodingError, RLPError

_impl = select("rlp", "ethnode.rlp._crlp", "ethnode.rlp._pure")

encode = _impl.encode
decode = _impl.decode
# (is_list, payload_start, payload_end) of the item at a position: for walking
# concatenated items (chain.rlp files) without decoding them.
item_header = _impl.item_header

from ethnode.rlp import sedes  # noqa: E402  (needs _impl to exist)


def implementation(kind: str) -> ModuleType:
    """The ``"compiled"`` or ``"pure"`` codec module, for tests and benchmarks."""
    return _implementation(kind, "ethnode.rlp._crlp", "ethnode.rlp._pure")


__all__ = [
    "encode", "decode", "item_header", "sedes", "implementation",
    "RLPError", "DecodingError", "EncodingError",
]
