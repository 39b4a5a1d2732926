"""Walking a stored trie in key order, proving a key, and fetching a node by its path.

What snap serving needs from the state without a flat snapshot (geth serves snap from its
snapshot or its path database; ethnode keeps only the hash-keyed trie nodes). Each
function touches only the nodes on the paths it follows: a range walk from ``start``
skips every subtree left of ``start`` by comparing path prefixes, so serving 100 accounts
of a 10k-account trie reads about 100 leaves plus one path of branches, never the whole trie.

Paths are hex-digit strings (one character per nibble) as in ``ethnode.trie``: comparing
two equal-length nibble paths as strings orders them as the keys they prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ethnode import rlp
from ethnode.core.state.trie import MissingNodeError
from ethnode.trie import EMPTY_ROOT

GetNode = Callable[[bytes], "bytes | None"]

_BRANCH_WIDTH = 17  # 16 children and a value
_LEAF_FLAG = 2  # hex-prefix flag bit of a leaf (terminated) path
_TERMINATOR = 16  # geth's nibble that ends a leaf key in hex form
_HEX = "0123456789abcdef"


def _load(get_node: GetNode, node_hash: bytes) -> Any:
    data = get_node(node_hash)
    if data is None:
        raise MissingNodeError(node_hash)
    return rlp.decode(data)


def _short_path(encoded: bytes) -> tuple[str, bool]:
    """(nibbles, is leaf) of a hex-prefix encoded short-node path."""
    nibbles = encoded.hex()
    flag = int(nibbles[0], 16)
    return (nibbles[1:] if flag & 1 else nibbles[2:]), bool(flag & _LEAF_FLAG)


def iter_leaves(get_node: GetNode, root: bytes, start: bytes = bytes(32)) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every leaf whose key is >= ``start``, in key order.

    Keys are the trie's own (hashed) keys; values are the leaf payloads as stored (an
    account's full RLP, a slot's RLP). Raises ``MissingNodeError`` if a node on the way
    is not stored, ``ValueError`` if one is not a trie node. Lazy: the caller stops it when
    its reply is full.
    """
    if root == EMPTY_ROOT:
        return
    bound = start.hex()
    decode, fromhex = rlp.decode, bytes.fromhex  # hot loop: one attribute lookup, not one per node
    # (reference, path so far, still bounded by ``start``); a reference is a hash or an embedded node
    stack: list[tuple[Any, str, bool]] = [(root, "", True)]
    pop, push = stack.pop, stack.append
    while stack:
        ref, prefix, bounded = pop()
        if isinstance(ref, bytes):
            data = get_node(ref)
            if data is None:
                raise MissingNodeError(ref)
            node = decode(data)
        else:
            node = ref
        if len(node) == _BRANCH_WIDTH:
            depth = len(prefix)
            low = int(bound[depth], 16) if bounded and depth < len(bound) else 0
            for i in range(15, low - 1, -1):
                child = node[i]
                if child != b"":
                    push((child, prefix + _HEX[i], bounded and i == low))
            continue
        if len(node) != 2 or not isinstance(node[0], bytes) or not node[0]:
            raise ValueError(f"malformed trie node: {len(node)} items")
        encoded = node[0]
        flag = encoded[0] >> 4
        path = prefix + (encoded.hex()[1:] if flag & 1 else encoded.hex()[2:])
        if bounded:
            edge = bound[: len(path)]
            if path < edge:
                continue  # the whole subtree sorts before ``start``
            bounded = path == edge
        if flag & _LEAF_FLAG:
            yield fromhex(path), node[1]
        else:
            push((node[1], path, bounded))


def prove(get_node: GetNode, root: bytes, key: bytes, into: dict[bytes, None] | None = None) -> list[bytes]:
    """The stored nodes on the path to ``key`` (geth ``Trie.Prove``): the root first, then every
    hashed node down to the leaf holding ``key`` or the node showing it is absent. Embedded
    nodes travel inside their parent. ``into`` collects several proofs without repeats, in
    first-seen order (geth's ``ProofSet``); the nodes are returned as a list either way."""
    seen: dict[bytes, None] = {} if into is None else into
    data = get_node(root)
    if data is None:
        raise MissingNodeError(root)
    seen.setdefault(data)
    path = key.hex()
    pos = 0
    node: Any = rlp.decode(data)
    while True:
        if len(node) == _BRANCH_WIDTH:
            if pos >= len(path):
                break
            child = node[int(path[pos], 16)]
            pos += 1
        else:
            rest, leaf = _short_path(node[0])
            if path[pos : pos + len(rest)] != rest or leaf:
                break
            pos += len(rest)
            child = node[1]
        if isinstance(child, list):
            node = child
            continue
        if child == b"":
            break
        data = get_node(child)
        if data is None:
            raise MissingNodeError(child)
        seen.setdefault(data)
        node = rlp.decode(data)
    return list(seen)


class NonConsensusNode(Exception):
    """The path ends on an embedded node or a value: nothing stored by hash to return."""


def compact_to_nibbles(compact: bytes) -> list[int]:
    """geth ``compactToHex``: a hex-prefix path to nibbles, with 16 ending a leaf path."""
    if not compact:
        return []
    nibbles = [n for b in compact for n in (b >> 4, b & 0x0F)]
    flag = nibbles[0]
    if flag >= _LEAF_FLAG:  # geth keeps the terminator for any flag nibble from 2 up
        nibbles.append(_TERMINATOR)
    return nibbles[1:] if flag & 1 else nibbles[2:]


def node_at_path(get_node: GetNode, root: bytes, path: list[int]) -> tuple[bytes, int]:
    """(encoded node at ``path``, nodes loaded) as geth ``Trie.GetNode``.

    An empty blob means the path leads nowhere (it leaves the trie, runs past a leaf, or
    branches off a short node). ``NonConsensusNode`` when it ends on a node that is not
    stored by its hash; ``MissingNodeError`` when a node is missing.
    """
    if root == EMPTY_ROOT:
        return b"", 0
    ref: Any = root
    loads = 0
    pos = 0
    while True:
        if pos >= len(path):
            if isinstance(ref, bytes) and len(ref) == 32:
                data = get_node(ref)
                if data is None:
                    raise MissingNodeError(ref)
                return data, loads + 1
            raise NonConsensusNode("non-consensus node")
        if isinstance(ref, bytes):
            if len(ref) != 32:
                return b"", loads  # a value: the path runs past a leaf
            node = _load(get_node, ref)
            loads += 1
        else:
            node = ref
        if len(node) == _BRANCH_WIDTH:
            ref = node[path[pos]]
            pos += 1
            if ref == b"":
                return b"", loads
            if path[pos - 1] == _TERMINATOR:
                ref = _Value(ref)
        else:
            rest, leaf = _short_path(node[0])
            key = [int(c, 16) for c in rest] + ([_TERMINATOR] if leaf else [])
            if path[pos : pos + len(key)] != key:
                return b"", loads
            pos += len(key)
            ref = _Value(node[1]) if leaf else node[1]
        if isinstance(ref, _Value):
            if pos >= len(path):
                raise NonConsensusNode("non-consensus node")
            return b"", loads


class _Value(bytes):
    """A leaf's value met on a path (never a node reference)."""


__all__ = [
    "iter_leaves", "prove", "node_at_path", "compact_to_nibbles", "NonConsensusNode", "GetNode",
]
