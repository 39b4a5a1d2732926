"""The chain database: both store backends behind one interface, and the typed accessors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ethnode.core.rawdb import (
    DatabaseError,
    KeyValueStore,
    MemoryDB,
    SQLiteDB,
    accessors,
    chaindata_dir,
    open_database,
    schema,
)
from ethnode.core.rawdb.store import prefix_end
from ethnode.core.types import EMPTY_UNCLE_HASH, Block, Header, LegacyTx, Log, Receipt, Withdrawal
from ethnode.crypto.keys import PrivateKey
from ethnode.trie import EMPTY_ROOT


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyValueStore]:
    db: KeyValueStore = MemoryDB() if request.param == "memory" else SQLiteDB(tmp_path / "t.sqlite")
    yield db
    db.close()


def test_point_operations(store: KeyValueStore) -> None:
    assert store.get(b"k") is None and not store.has(b"k")
    store.put(b"k", b"v")
    assert store.get(b"k") == b"v" and store.has(b"k")
    store.put(b"k", b"w")
    assert store.get(b"k") == b"w"
    store.delete(b"k")
    store.delete(b"k")  # deleting an absent key is fine
    assert store.get(b"k") is None
    store.put(b"empty", b"")
    assert store.get(b"empty") == b"" and store.has(b"empty")


def test_batch_is_applied_whole_and_in_order(store: KeyValueStore) -> None:
    store.put(b"a", b"old")
    batch = store.new_batch()
    batch.put(b"a", b"1")
    batch.delete(b"a")
    batch.put(b"a", b"2")
    batch.put(b"b", b"3")
    batch.delete(b"c")
    assert len(batch) == 5 and batch.value_size > 0
    assert store.get(b"a") == b"old" and store.get(b"b") is None  # nothing before write()
    batch.write()
    assert store.get(b"a") == b"2" and store.get(b"b") == b"3"
    batch.reset()
    assert len(batch) == 0
    batch.write()  # an empty batch is a no-op


def test_iterate_prefix_and_start(store: KeyValueStore) -> None:
    for i in range(2500):  # more than one SQLite fetch chunk
        store.put(b"p" + i.to_bytes(2, "big"), i.to_bytes(2, "big"))
    store.put(b"o", b"before")
    store.put(b"q", b"after")
    store.put(b"\xff\xff", b"top")
    got = list(store.iterate(b"p"))
    assert [v for _, v in got] == [i.to_bytes(2, "big") for i in range(2500)]
    assert [k for k, _ in store.iterate(b"p", start=(2498).to_bytes(2, "big"))] == [
        b"p" + (2498).to_bytes(2, "big"),
        b"p" + (2499).to_bytes(2, "big"),
    ]
    assert list(store.iterate(b"\xff")) == [(b"\xff\xff", b"top")]
    assert len(list(store.iterate())) == 2503


def test_prefix_end() -> None:
    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
    assert prefix_end(b"") is None


def test_closed_store_raises(store: KeyValueStore) -> None:
    store.put(b"k", b"v")
    store.close()
    with pytest.raises(DatabaseError):
        store.get(b"k")


def test_sqlite_persists_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    with SQLiteDB(path) as db:
        batch = db.new_batch()
        batch.put(b"x", b"y")
        batch.write()
    with SQLiteDB(path) as db:
        assert db.get(b"x") == b"y"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with pytest.raises(ValueError):
        SQLiteDB(path, synchronous="SOMETIMES")


def test_sqlite_unopenable_path_is_a_database_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(DatabaseError, match="cannot open"):
        SQLiteDB(tmp_path / "dir.sqlite")


def test_open_database_layout_and_version(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    assert Path(db.path).parent == Path(chaindata_dir(tmp_path)) == tmp_path / "ethnode" / "chaindata"
    assert accessors.read_database_version(db) == schema.DATABASE_VERSION
    accessors.write_database_version(db, 99)
    db.close()
    with pytest.raises(DatabaseError, match="layout version 99"):
        open_database(tmp_path)


# --- accessors ---------------------------------------------------------------------------


def _block(number: int = 3) -> Block:
    key = PrivateKey(bytes.fromhex("46" * 32))
    txs = [LegacyTx(i, 1, 21000, bytes(20), 0, b"", 0, 0, 0).sign(key, chain_id=1) for i in range(2)]
    header = Header(
        bytes(32),
        EMPTY_UNCLE_HASH,
        bytes(20),
        EMPTY_ROOT,
        EMPTY_ROOT,
        EMPTY_ROOT,
        bytes(256),
        5,
        number,
        30_000_000,
        0,
        9,
        b"x",
        bytes(32),
        bytes(8),
        7,
        EMPTY_ROOT,
    )
    return Block.new(header, txs, [], [Withdrawal(1, 2, b"\x03" * 20, 4)])


def test_chain_accessors(store: KeyValueStore) -> None:
    block = _block()
    h, n = block.hash, block.number
    batch = store.new_batch()
    accessors.write_block(batch, block)
    accessors.write_td(batch, h, n, 12345)
    accessors.write_canonical_hash(batch, h, n)
    accessors.write_tx_lookups(batch, n, [tx.hash for tx in block.transactions])
    accessors.write_head_block_hash(batch, h)
    accessors.write_head_header_hash(batch, h)
    batch.write()
    assert accessors.read_header(store, h, n) == block.header
    assert accessors.read_header_number(store, h) == n
    assert accessors.read_block(store, h, n) == block
    assert accessors.read_block_rlp(store, h, n) == block.encode()
    assert accessors.read_td(store, h, n) == 12345
    assert accessors.read_canonical_hash(store, n) == h
    assert accessors.read_head_block_hash(store) == accessors.read_head_header_hash(store) == h
    tx = block.transactions[1]
    assert accessors.read_transaction(store, tx.hash) == (tx, h, n, 1)
    assert accessors.read_transaction(store, b"\x00" * 32) is None
    accessors.delete_tx_lookups(store, [tx.hash])
    assert accessors.read_tx_lookup(store, tx.hash) is None
    accessors.delete_canonical_hash(store, n)
    assert accessors.read_canonical_hash(store, n) is None
    assert accessors.read_block(store, b"\x01" * 32, n) is None


def test_receipts_and_genesis_json(store: KeyValueStore) -> None:
    receipts = [Receipt(2, 1, 21000, [Log(b"\x01" * 20, [b"\x02" * 32], b"")]), Receipt(0, 0, 42000)]
    accessors.write_receipts(store, b"\x09" * 32, 4, receipts)
    assert accessors.read_receipts(store, b"\x09" * 32, 4) == receipts
    assert accessors.read_receipts(store, b"\x08" * 32, 4) is None
    spec: dict[str, Any] = {"config": {"chainId": 5}, "alloc": {}}
    accessors.write_genesis_json(store, b"\x07" * 32, spec)
    assert accessors.read_genesis_json(store, b"\x07" * 32) == spec
    assert accessors.read_chain_config_json(store, b"\x07" * 32) == {"chainId": 5}


def test_corrupt_entries_raise_database_error(store: KeyValueStore) -> None:
    block = _block()
    store.put(schema.header_key(block.number, block.hash), b"\xc1\x00")
    store.put(schema.block_body_key(block.number, block.hash), b"\x80")
    store.put(schema.header_td_key(block.number, block.hash), b"\x00")
    store.put(schema.block_receipts_key(block.number, block.hash), b"\xc2\xc0")
    for read in (accessors.read_header, accessors.read_body, accessors.read_td, accessors.read_receipts):
        with pytest.raises(DatabaseError, match="corrupt"):
            read(store, block.hash, block.number)
