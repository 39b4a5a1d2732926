"""The pure twin of the Rust AccountRange walk (``rust/src/snapwalk.rs``): same arguments,
results, stopping rules and errors."""

from __future__ import annotations

from ethnode import rlp
from ethnode.core.genesis import EMPTY_CODE_HASH
from ethnode.core.state.ranges import GetNode, iter_leaves
from ethnode.rlp.errors import DecodingError
from ethnode.rlp.framing import wrap_list
from ethnode.trie import EMPTY_ROOT

_HASH_PREFIX = b"\xa0"  # RLP header of a 32-byte string


def slim_account(full: bytes) -> bytes:
    """An account's snap body (geth ``SlimAccountRLP``): the empty storage root and empty code
    hash are sent as empty strings."""
    fields = rlp.decode(full)
    if not isinstance(fields, list) or len(fields) != 4 or not all(isinstance(f, bytes) for f in fields):
        raise ValueError("malformed trie node: account is not [nonce, balance, root, codehash]")
    nonce, balance, root, code_hash = fields
    return rlp.encode([nonce, balance, b"" if root == EMPTY_ROOT else root,
                       b"" if code_hash == EMPTY_CODE_HASH else code_hash])


def snap_account_chunk(
    get_node: GetNode, root: bytes, start: bytes, limit: bytes, size: int, nbytes: int, max_items: int
) -> tuple[list[bytes], int, bool, bytes | None]:
    """Up to ``max_items`` ``[hash, slim account]`` items from ``start`` on: (items, size, done, last key).

    ``size`` counts 32 + the slim body per account, carried over from earlier chunks; the walk
    is done at the first key at or past ``limit``, once ``size`` passes ``nbytes`` (geth's
    rules: the crossing item is included) or when the trie runs out. Not done: ``max_items``
    came first, and the next chunk starts after ``last``. Raises ``MissingNodeError`` for a
    node the store lacks and ``ValueError`` for a malformed one.
    """
    if len(root) != 32 or len(start) != 32 or len(limit) != 32:
        raise ValueError("root, start and limit must be 32 bytes")
    out: list[bytes] = []
    last: bytes | None = None
    if root == EMPTY_ROOT:
        return out, size, True, None
    try:
        for key, value in iter_leaves(get_node, root, start):
            if len(key) != 32 or not isinstance(value, bytes):
                raise ValueError("malformed trie node: account leaf key is not 32 bytes")
            slim = slim_account(value)
            out.append(wrap_list(_HASH_PREFIX + key + slim))
            size += 32 + len(slim)
            last = key
            if key >= limit or size > nbytes:
                return out, size, True, last
            if len(out) >= max_items:
                return out, size, False, last
    except (DecodingError, IndexError, TypeError) as exc:
        raise ValueError(f"malformed trie node: {exc}") from None
    return out, size, True, last
