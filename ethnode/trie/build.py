"""Trie roots computed from a whole key/value set in one pass over the sorted keys.

This is geth's StackTrie idea without the streaming: once keys are sorted, every subtree
is a contiguous run of keys sharing a prefix, so each node is encoded exactly once and no
intermediate node objects are kept. A node whose encoding is shorter than 32 bytes is
embedded in its parent instead of being referenced by hash; the root is always hashed.
"""

from __future__ import annotations

from collections.abc import Iterable

from ethnode.crypto.keccak import keccak256
from ethnode.rlp import encode as rlp_encode
from ethnode.rlp.framing import wrap_bytes as rlp_string
from ethnode.rlp.framing import wrap_list as rlp_list
from ethnode.trie.encoding import hex_prefix

# keccak256(rlp(b"")): the root of a trie with no keys (geth types.EmptyRootHash).
EMPTY_ROOT = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")

_EMBED_LIMIT = 32  # nodes encoding to fewer bytes are inlined in the parent (yellow paper)
_EMPTY_SLOT = b"\x80"  # an unused branch child or an absent branch value


def trie_root(items: Iterable[tuple[bytes, bytes]], nodes: dict[bytes, bytes] | None = None) -> bytes:
    """The root hash of the trie holding ``items``.

    Later pairs override earlier ones with the same key, and an empty value means "absent",
    exactly as a sequence of geth ``Trie.Update`` calls would leave the trie.
    ``nodes``, when given, receives every hashed node (hash -> encoding), the root included:
    what a database needs to look keys up later (the genesis state is written this way).
    """
    table: dict[bytes, bytes] = {}
    for key, value in items:
        table[bytes(key)] = bytes(value)
    pairs = sorted((k.hex(), v) for k, v in table.items() if v)
    if not pairs:
        return EMPTY_ROOT
    keys = [k for k, _ in pairs]
    values = [v for _, v in pairs]
    encoded = _encode(keys, values, 0, len(keys), 0, nodes)
    root = keccak256(encoded)
    if nodes is not None:
        nodes[root] = encoded
    return root


def secure_trie_root(items: Iterable[tuple[bytes, bytes]], nodes: dict[bytes, bytes] | None = None) -> bytes:
    """The root with every key replaced by its keccak256, as in the state and storage tries.

    Hashing keys bounds the trie depth and stops anyone from choosing keys that build a
    deliberately deep path.
    """
    return trie_root(((keccak256(k), v) for k, v in items), nodes)


def ordered_trie_root(values: Iterable[bytes]) -> bytes:
    """The root over a list keyed by ``rlp(index)``: geth's DeriveSha for txs, receipts, withdrawals.

    Each value is the item's consensus encoding (for typed transactions and receipts, the
    type byte followed by the payload, not the RLP string that wraps it in a block body).
    """
    return trie_root((rlp_encode(i), v) for i, v in enumerate(values))


def _ref(encoded: bytes, nodes: dict[bytes, bytes] | None) -> bytes:
    """How a parent refers to a child node: inline when short, else the RLP of its hash."""
    if len(encoded) < _EMBED_LIMIT:
        return encoded
    h = keccak256(encoded)
    if nodes is not None:
        nodes[h] = encoded
    return b"\xa0" + h


def _encode(
    keys: list[str], values: list[bytes], lo: int, hi: int, depth: int, nodes: dict[bytes, bytes] | None
) -> bytes:
    """RLP encoding of the node holding keys[lo:hi], all of which share keys[lo][:depth]."""
    first = keys[lo]
    if hi - lo == 1:
        return rlp_list(rlp_string(hex_prefix(first[depth:], True)) + rlp_string(values[lo]))
    # Sorted keys: the prefix common to the whole run is the one shared by its ends.
    last = keys[hi - 1]
    end = min(len(first), len(last))
    split = depth
    while split < end and first[split] == last[split]:
        split += 1
    if split > depth:
        child = _encode_branch(keys, values, lo, hi, split, nodes)
        return rlp_list(rlp_string(hex_prefix(first[depth:split], False)) + _ref(child, nodes))
    return _encode_branch(keys, values, lo, hi, depth, nodes)


def _encode_branch(
    keys: list[str], values: list[bytes], lo: int, hi: int, depth: int, nodes: dict[bytes, bytes] | None
) -> bytes:
    """A 17-slot branch at ``depth``: one child per next nibble, plus a value for a key ending here."""
    value = _EMPTY_SLOT
    if len(keys[lo]) == depth:  # a key that ends here sorts first in its run
        value = rlp_string(values[lo])
        lo += 1
    slots = []
    nibble = 0
    i = lo
    while i < hi:
        digit = int(keys[i][depth], 16)
        while nibble < digit:
            slots.append(_EMPTY_SLOT)
            nibble += 1
        j = i + 1
        ch = keys[i][depth]
        while j < hi and keys[j][depth] == ch:
            j += 1
        slots.append(_ref(_encode(keys, values, i, j, depth + 1, nodes), nodes))
        nibble += 1
        i = j
    slots.extend([_EMPTY_SLOT] * (16 - nibble))
    slots.append(value)
    return rlp_list(b"".join(slots))
