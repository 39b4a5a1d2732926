"""Looking a key up in a stored Merkle Patricia trie (read-only; writes belong to the executor).

Kept free of any EVM package so that reading an account (the tx pool, RPC) does not
depend on which engine executed the block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ethnode import rlp
from ethnode.errors import EthnodeError
from ethnode.trie import EMPTY_ROOT

_BRANCH_WIDTH = 17  # 16 children and a value
_LEAF_FLAG = 2  # hex-prefix flag bit of a leaf (terminated) path


class MissingNodeError(EthnodeError):
    """A trie node the lookup needs is not in the database (state pruned or never written)."""

    def __init__(self, node_hash: bytes) -> None:
        super().__init__(f"missing trie node 0x{node_hash.hex()}")
        self.node_hash = node_hash


def trie_get(get_node: Callable[[bytes], bytes | None], root: bytes, key: bytes) -> bytes | None:
    """The value stored under ``key`` (already hashed for a secure trie), or None if absent."""
    if root == EMPTY_ROOT:
        return None
    path = key.hex()
    node: Any = _load(get_node, root)
    pos = 0
    while True:
        if len(node) == _BRANCH_WIDTH:
            if pos == len(path):
                return node[16] or None
            child = node[int(path[pos], 16)]
            pos += 1
        else:
            encoded_path, child = node
            nibbles = encoded_path.hex()
            flag = int(nibbles[0], 16)
            rest = nibbles[1:] if flag & 1 else nibbles[2:]
            if path[pos : pos + len(rest)] != rest:
                return None
            pos += len(rest)
            if flag & _LEAF_FLAG:
                return child if pos == len(path) else None  # type: ignore[no-any-return]
        if isinstance(child, list):
            node = child  # embedded (short) node
        elif not child:
            return None
        else:
            node = _load(get_node, child)


def trie_prove(get_node: Callable[[bytes], bytes | None], root: bytes, key: bytes) -> list[bytes]:
    """The Merkle proof of ``key`` (hashed, as trie_get's): every node on its path that is stored
    by hash, root first, as stored (geth ``Trie.Prove``: embedded nodes travel inside their
    parent). For an absent key the path ends where the key leaves the trie, which proves the
    absence. The empty trie's proof is empty."""
    if root == EMPTY_ROOT:
        return []
    path = key.hex()
    proof = [_raw(get_node, root)]
    node: Any = rlp.decode(proof[0])
    pos = 0
    while True:
        if len(node) == _BRANCH_WIDTH:
            if pos == len(path):
                return proof
            child = node[int(path[pos], 16)]
            pos += 1
        else:
            encoded_path, child = node
            nibbles = encoded_path.hex()
            flag = int(nibbles[0], 16)
            rest = nibbles[1:] if flag & 1 else nibbles[2:]
            if path[pos : pos + len(rest)] != rest or flag & _LEAF_FLAG:
                return proof
            pos += len(rest)
        if isinstance(child, list):
            node = child
        elif not child:
            return proof
        else:
            proof.append(_raw(get_node, child))
            node = rlp.decode(proof[-1])


def _raw(get_node: Callable[[bytes], bytes | None], node_hash: bytes) -> bytes:
    data = get_node(node_hash)
    if data is None:
        raise MissingNodeError(node_hash)
    return data


def _load(get_node: Callable[[bytes], bytes | None], node_hash: bytes) -> Any:
    data = get_node(node_hash)
    if data is None:
        raise MissingNodeError(node_hash)
    return rlp.decode(data)


__all__ = ["trie_get", "trie_prove", "MissingNodeError"]
