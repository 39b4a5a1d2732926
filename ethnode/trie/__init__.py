"""Merkle Patricia trie roots (the hexary, keccak256 trie of the yellow paper, appendix D).

Only roots are needed so far (state, storage, transactions, receipts, withdrawals), so
the trie is built in one pass over the sorted key set instead of being kept as a mutable
structure: see ``ethnode.trie.build``.
"""

from ethnode.trie.build import EMPTY_ROOT, ordered_trie_root, secure_trie_root, trie_root
from ethnode.trie.encoding import hex_prefix

__all__ = ["EMPTY_ROOT", "trie_root", "secure_trie_root", "ordered_trie_root", "hex_prefix"]
