"""The state database on the chain store: trie lookups, genesis state at ``init``, readers.

Engine-independent: nothing here executes a block (``test_execution`` does). Trie reads
are checked against tries written by ethnode's own builder and by py-trie, the library
py-evm writes state with, so the reader understands whatever the executor stores.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from chain_support import open_chain
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_support import shared_path

from ethnode import rlp
from ethnode.core.blockchain import setup_genesis
from ethnode.core.genesis import EMPTY_CODE_HASH, Genesis, state_nodes
from ethnode.core.rawdb import MemoryDB, schema
from ethnode.core.state import (
    HeadState,
    MissingNodeError,
    MissingStateError,
    StateDatabase,
    StateView,
    trie_get,
    write_genesis_state,
)
from ethnode.crypto.keccak import keccak256
from ethnode.trie import EMPTY_ROOT, trie_root

ADDR_A = bytes.fromhex("aa" * 20)
ADDR_B = bytes.fromhex("0b" * 20)


def _genesis_json(**alloc: Any) -> dict[str, Any]:
    return {
        "config": {"chainId": 1337, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0,
                   "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0, "istanbulBlock": 0,
                   "berlinBlock": 0, "londonBlock": 0, "terminalTotalDifficulty": 0, "shanghaiTime": 0},
        "gasLimit": "0x1c9c380",
        "difficulty": "0x0",
        "alloc": alloc,
    }


ALLOC = {
    "0x" + ADDR_A.hex(): {
        "balance": "0x1000",
        "nonce": "0x7",
        "code": "0x6000600055",
        "storage": {"0x01": "0x2a", "0x" + "ff" * 32: "0x" + "ab" * 32, "0x02": "0x00"},
    },
    "0x" + ADDR_B.hex(): {"balance": "12345678901234567890"},
}


# --- trie lookups ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.binary(min_size=1, max_size=4), st.binary(min_size=1, max_size=40), max_size=40),
       st.lists(st.binary(min_size=0, max_size=5), max_size=10))
def test_trie_get_reads_every_key_of_a_built_trie(items: dict[bytes, bytes], probes: list[bytes]) -> None:
    # Short keys and values: many nodes are embedded in their parents (< 32 bytes).
    nodes: dict[bytes, bytes] = {}
    root = trie_root(items.items(), nodes)
    for key, value in items.items():
        assert trie_get(nodes.get, root, key) == value
    for key in probes:
        assert trie_get(nodes.get, root, key) == items.get(key)


def test_trie_get_reads_tries_written_by_py_trie() -> None:
    hexary = pytest.importorskip("trie").HexaryTrie
    rng = random.Random(7)
    db: dict[bytes, bytes] = {}
    t = hexary(db)
    items = {}
    for _ in range(300):
        key = keccak256(rng.randbytes(8))[: rng.choice((1, 2, 32))]
        value = rng.randbytes(rng.randint(1, 70))
        t[key] = value
        items[key] = value
    for key in list(items)[:50]:  # deletions restructure the trie
        del t[key]
        del items[key]
    assert t.root_hash == trie_root(items.items())
    for key, value in items.items():
        assert trie_get(db.get, t.root_hash, key) == value
    assert trie_get(db.get, t.root_hash, b"\x00" * 32) is None


def test_missing_nodes_are_named() -> None:
    nodes: dict[bytes, bytes] = {}
    root = trie_root([(keccak256(bytes([i])), b"v" * 40) for i in range(20)], nodes)
    assert trie_get({}.get, EMPTY_ROOT, b"k") is None  # the empty trie needs no node
    with pytest.raises(MissingNodeError, match=root.hex()):
        trie_get({}.get, root, b"k")


# --- genesis state ---------------------------------------------------------------------


def test_genesis_state_is_written_at_setup_and_read_back() -> None:
    obj = _genesis_json(**ALLOC)
    genesis = Genesis.from_json(obj)
    db = MemoryDB()
    setup_genesis(db, genesis, obj)
    state = open_chain(db).state()
    assert state.root == genesis.header.state_root
    assert (state.balance(ADDR_A), state.nonce(ADDR_A), state.code(ADDR_A)) == (0x1000, 7, bytes.fromhex("6000600055"))
    assert state.storage(ADDR_A, 1) == 42 and state.storage(ADDR_A, b"\xff" * 32) == int("ab" * 32, 16)
    assert state.storage(ADDR_A, 2) == 0 and state.storage(ADDR_A, 3) == 0
    assert state.balance(ADDR_B) == 12345678901234567890 and state.code(ADDR_B) == b""
    assert state.code_hash(ADDR_B) == EMPTY_CODE_HASH and state.storage(ADDR_B, 1) == 0
    stranger = bytes(20)
    assert state.account(stranger) is None and (state.nonce(stranger), state.balance(stranger)) == (0, 0)
    # Every stored entry is content-addressed under the state prefix.
    entries = dict(db.iterate(schema.STATE_PREFIX))
    assert entries and all(keccak256(v) == k[1:] for k, v in entries.items())


def test_genesis_state_nodes_match_the_header_root() -> None:
    genesis = Genesis.from_json(json.loads(shared_path("chains", "ethtest", "genesis.json").read_text()))
    root, nodes = state_nodes(genesis.alloc)
    assert root == genesis.header.state_root and root in nodes
    view = StateView(_db_with(nodes), root)
    for address, account in genesis.alloc.items():
        assert (view.balance(address), view.nonce(address), view.code(address)) == (
            account.balance, account.nonce, account.code)


def _db_with(nodes: dict[bytes, bytes]) -> StateDatabase:
    store = MemoryDB()
    for k, v in nodes.items():
        store.put(schema.state_key(k), v)
    return StateDatabase(store)


def test_missing_genesis_state_is_rebuilt_when_execution_is_on() -> None:
    """A database initialised before state was stored gets its genesis state from the stored spec."""
    pytest.importorskip("eth", reason="py-evm is needed for execute=True")
    obj = _genesis_json(**ALLOC)
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    for key, _ in list(db.iterate(schema.STATE_PREFIX)):
        db.delete(key)
    chain = open_chain(db)
    with pytest.raises(MissingStateError):
        chain.state()
    assert chain.head_state_reader().balance(ADDR_B) is None  # unknown, not zero
    chain = open_chain(db, execute=True)
    assert chain.state().balance(ADDR_B) == 12345678901234567890


# --- database and readers --------------------------------------------------------------


def test_overlay_reaches_the_store_only_through_the_block_batch() -> None:
    store = MemoryDB()
    sdb = StateDatabase(store, cache_size=2)
    overlay = sdb.new_overlay()
    value = rlp.encode([b"x" * 40])
    key = keccak256(value)
    overlay.put(key, value)
    assert overlay.get(key) == value and sdb.get(key) is None and len(store) == 0
    batch = store.new_batch()
    overlay.write_to(batch)
    assert len(store) == 0
    batch.write()
    sdb.committed(overlay)
    assert sdb.get(key) == value and store.get(schema.state_key(key)) == value
    for i in range(5):  # the cache is bounded; evicted entries are read from the store again
        other = rlp.encode([bytes([i]) * 40])
        store.put(schema.state_key(keccak256(other)), other)
        assert sdb.get(keccak256(other)) == other
    assert len(sdb._cache) == 2 and sdb.get(key) == value


def test_state_view_refuses_an_unknown_root() -> None:
    with pytest.raises(MissingStateError, match="not in the database"):
        StateView(StateDatabase(MemoryDB()), b"\x01" * 32)
    assert StateView(StateDatabase(MemoryDB()), EMPTY_ROOT).balance(ADDR_A) == 0


def test_head_state_follows_the_head_and_answers_unknown_without_state() -> None:
    from ethnode.core.types.header import Header

    obj = _genesis_json(**ALLOC)
    genesis = Genesis.from_json(obj)
    store = MemoryDB()
    batch = store.new_batch()
    write_genesis_state(batch, genesis)
    batch.write()
    sdb = StateDatabase(store)
    head: list[Header] = [genesis.header]
    by_number = {0: genesis.header, 1: genesis.header.replace(number=1, state_root=b"\x02" * 32)}
    reader = HeadState(sdb, lambda: head[0], by_number.get)
    assert reader.nonce(ADDR_A) == 7 and reader.balance(ADDR_B) == 12345678901234567890
    assert reader.code(ADDR_A) == bytes.fromhex("6000600055") and reader.storage(ADDR_A, 1) == 42
    assert reader.nonce(ADDR_A, 0) == 7
    assert reader.nonce(ADDR_A, 1) is None and reader.nonce(ADDR_A, 5) is None  # no state / no block
    head[0] = by_number[1]
    assert reader.balance(ADDR_B) is None and reader.view() is None
