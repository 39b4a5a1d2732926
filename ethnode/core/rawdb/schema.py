"""Database keys, laid out as geth's ``core/rawdb/schema.go`` so the layout reads familiar.

Numbers are 8-byte big-endian so that keys of one kind sort by block number.
"""

from __future__ import annotations

DATABASE_VERSION = 1  # bump when the layout changes; a mismatch refuses to open
DATABASE_VERSION_KEY = b"DatabaseVersion"

HEAD_HEADER_KEY = b"LastHeader"  # hash of the head of the header chain
HEAD_BLOCK_KEY = b"LastBlock"  # hash of the head block (header and body stored)
HEAD_FINALIZED_KEY = b"LastFinalized"  # hash of the last block the consensus layer finalized
HEAD_SAFE_KEY = b"LastSafe"  # hash of the last block the consensus layer called safe

HEADER_PREFIX = b"h"  # h + num + hash -> header RLP
HEADER_TD_SUFFIX = b"t"  # h + num + hash + t -> total difficulty (RLP uint)
HEADER_HASH_SUFFIX = b"n"  # h + num + n -> canonical hash
HEADER_NUMBER_PREFIX = b"H"  # H + hash -> num (8 bytes)
BLOCK_BODY_PREFIX = b"b"  # b + num + hash -> body RLP
BLOCK_RECEIPTS_PREFIX = b"r"  # r + num + hash -> receipts (eth/69 list form)
BLOCK_ACCESS_LIST_PREFIX = b"a"  # a + num + hash -> the block's EIP-7928 access list (RLP), Amsterdam on
TX_LOOKUP_PREFIX = b"l"  # l + tx hash -> number of the canonical block holding it
CONFIG_PREFIX = b"ethereum-config-"  # + genesis hash -> chain config JSON
GENESIS_PREFIX = b"ethereum-genesis-"  # + genesis hash -> genesis JSON
# S + keccak256 -> a state or storage trie node, or contract code (both are content-addressed,
# so one namespace holds them; geth's hash scheme keys nodes by the bare hash and code by "c" + hash).
STATE_PREFIX = b"S"


def encode_number(number: int) -> bytes:
    return number.to_bytes(8, "big")


def header_key(number: int, block_hash: bytes) -> bytes:
    return HEADER_PREFIX + encode_number(number) + block_hash


def header_td_key(number: int, block_hash: bytes) -> bytes:
    return header_key(number, block_hash) + HEADER_TD_SUFFIX


def header_hash_key(number: int) -> bytes:
    return HEADER_PREFIX + encode_number(number) + HEADER_HASH_SUFFIX


def header_number_key(block_hash: bytes) -> bytes:
    return HEADER_NUMBER_PREFIX + block_hash


def block_body_key(number: int, block_hash: bytes) -> bytes:
    return BLOCK_BODY_PREFIX + encode_number(number) + block_hash


def block_receipts_key(number: int, block_hash: bytes) -> bytes:
    return BLOCK_RECEIPTS_PREFIX + encode_number(number) + block_hash


def block_access_list_key(number: int, block_hash: bytes) -> bytes:
    return BLOCK_ACCESS_LIST_PREFIX + encode_number(number) + block_hash


def tx_lookup_key(tx_hash: bytes) -> bytes:
    return TX_LOOKUP_PREFIX + tx_hash


def config_key(genesis_hash: bytes) -> bytes:
    return CONFIG_PREFIX + genesis_hash


def genesis_key(genesis_hash: bytes) -> bytes:
    return GENESIS_PREFIX + genesis_hash


def state_key(node_hash: bytes) -> bytes:
    return STATE_PREFIX + node_hash
