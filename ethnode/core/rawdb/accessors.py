"""Typed reads and writes of chain data (geth ``core/rawdb/accessors_chain.go``).

Writers take anything with ``put``/``delete`` (the store or a batch), so the chain can
group every write for a block into one atomic batch. Readers return None for absent data
and raise ``DatabaseError`` for data that is present but does not decode: corruption is
not the same thing as a missing block.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from ethnode import rlp
from ethnode.core.rawdb import schema
from ethnode.core.rawdb.store import DatabaseError
from ethnode.core.types.block import Block, Body, block_rlp_from_parts
from ethnode.core.types.header import Header
from ethnode.core.types.receipt import Receipt, ReceiptError, decode_receipts_eth69, encode_receipts_eth69
from ethnode.core.types.transaction import Transaction, TransactionError


class Reader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def has(self, key: bytes) -> bool: ...


class Writer(Protocol):
    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


def _corrupt(what: str, exc: Exception) -> DatabaseError:
    return DatabaseError(f"corrupt {what} in database: {exc}")


# --- canonical chain and hash -> number ----------------------------------------------


def read_canonical_hash(db: Reader, number: int) -> bytes | None:
    return db.get(schema.header_hash_key(number))


def write_canonical_hash(db: Writer, block_hash: bytes, number: int) -> None:
    db.put(schema.header_hash_key(number), block_hash)


def delete_canonical_hash(db: Writer, number: int) -> None:
    db.delete(schema.header_hash_key(number))


def read_header_number(db: Reader, block_hash: bytes) -> int | None:
    data = db.get(schema.header_number_key(block_hash))
    return None if data is None else int.from_bytes(data, "big")


# --- headers, bodies, blocks ---------------------------------------------------------


def read_header_rlp(db: Reader, block_hash: bytes, number: int) -> bytes | None:
    return db.get(schema.header_key(number, block_hash))


def read_header(db: Reader, block_hash: bytes, number: int) -> Header | None:
    data = read_header_rlp(db, block_hash, number)
    if data is None:
        return None
    try:
        header: Header = Header.decode(data)
    except rlp.DecodingError as exc:
        raise _corrupt(f"header #{number}", exc) from None
    header.__dict__["hash"] = block_hash  # the key is the hash; spare a keccak
    return header


def has_header(db: Reader, block_hash: bytes, number: int) -> bool:
    return db.has(schema.header_key(number, block_hash))


def write_header(db: Writer, header: Header, header_rlp: bytes | None = None) -> None:
    """The header and its hash -> number entry."""
    block_hash, number = header.hash, header.number
    db.put(schema.header_key(number, block_hash), header_rlp if header_rlp is not None else header.encode())
    db.put(schema.header_number_key(block_hash), schema.encode_number(number))


def read_body_rlp(db: Reader, block_hash: bytes, number: int) -> bytes | None:
    return db.get(schema.block_body_key(number, block_hash))


def read_body(db: Reader, block_hash: bytes, number: int) -> Body | None:
    data = read_body_rlp(db, block_hash, number)
    if data is None:
        return None
    try:
        return Body.decode(data)  # type: ignore[no-any-return]
    except rlp.DecodingError as exc:
        raise _corrupt(f"body #{number}", exc) from None


def has_body(db: Reader, block_hash: bytes, number: int) -> bool:
    return db.has(schema.block_body_key(number, block_hash))


def write_body(db: Writer, block_hash: bytes, number: int, body_rlp: bytes) -> None:
    db.put(schema.block_body_key(number, block_hash), body_rlp)


def read_block(db: Reader, block_hash: bytes, number: int) -> Block | None:
    header = read_header(db, block_hash, number)
    if header is None:
        return None
    body = read_body(db, block_hash, number)
    if body is None:
        return None
    return Block.from_body(header, body)


def read_block_rlp(db: Reader, block_hash: bytes, number: int) -> bytes | None:
    """The block's RLP straight from the stored header and body bytes (used by export)."""
    header = read_header_rlp(db, block_hash, number)
    body = read_body_rlp(db, block_hash, number)
    if header is None or body is None:
        return None
    return block_rlp_from_parts(header, body)


def write_block(db: Writer, block: Block) -> None:
    write_header(db, block.header)
    write_body(db, block.hash, block.number, block.body().encode())


# --- total difficulty ----------------------------------------------------------------


def read_td(db: Reader, block_hash: bytes, number: int) -> int | None:
    data = db.get(schema.header_td_key(number, block_hash))
    if data is None:
        return None
    try:
        return rlp.sedes.big_endian_int.decode(data)  # type: ignore[no-any-return]
    except rlp.DecodingError as exc:
        raise _corrupt(f"total difficulty #{number}", exc) from None


def write_td(db: Writer, block_hash: bytes, number: int, td: int) -> None:
    db.put(schema.header_td_key(number, block_hash), rlp.encode(td))


# --- receipts ------------------------------------------------------------------------


def read_receipts(db: Reader, block_hash: bytes, number: int) -> list[Receipt] | None:
    data = db.get(schema.block_receipts_key(number, block_hash))
    if data is None:
        return None
    try:
        return decode_receipts_eth69(data)
    except ReceiptError as exc:
        raise _corrupt(f"receipts #{number}", exc) from None


def write_receipts(db: Writer, block_hash: bytes, number: int, receipts: Iterable[Receipt]) -> None:
    db.put(schema.block_receipts_key(number, block_hash), encode_receipts_eth69(receipts))


def read_block_access_list(db: Reader, block_hash: bytes, number: int) -> bytes | None:
    """The RLP access list execution built for the block (eth/71 serves it), or None."""
    return db.get(schema.block_access_list_key(number, block_hash))


def write_block_access_list(db: Writer, block_hash: bytes, number: int, bal: bytes) -> None:
    db.put(schema.block_access_list_key(number, block_hash), bal)


# --- tx lookup -----------------------------------------------------------------------


def read_tx_lookup(db: Reader, tx_hash: bytes) -> int | None:
    data = db.get(schema.tx_lookup_key(tx_hash))
    return None if data is None else int.from_bytes(data, "big")


def write_tx_lookups(db: Writer, number: int, tx_hashes: Iterable[bytes]) -> None:
    value = schema.encode_number(number)
    for h in tx_hashes:
        db.put(schema.tx_lookup_key(h), value)


def delete_tx_lookups(db: Writer, tx_hashes: Iterable[bytes]) -> None:
    for h in tx_hashes:
        db.delete(schema.tx_lookup_key(h))


def read_transaction(db: Reader, tx_hash: bytes) -> tuple[Transaction, bytes, int, int] | None:
    """(tx, block hash, block number, index) of a tx in the canonical chain (geth ReadTransaction)."""
    number = read_tx_lookup(db, tx_hash)
    if number is None:
        return None
    block_hash = read_canonical_hash(db, number)
    if block_hash is None:
        return None
    body = read_body(db, block_hash, number)
    if body is None:
        return None
    try:
        for i, tx in enumerate(body.transactions):
            if tx.hash == tx_hash:
                return tx, block_hash, number, i  # type: ignore[return-value]
    except TransactionError as exc:
        raise _corrupt(f"transaction in body #{number}", exc) from None
    return None


# --- head pointers -------------------------------------------------------------------


def read_head_header_hash(db: Reader) -> bytes | None:
    return db.get(schema.HEAD_HEADER_KEY)


def write_head_header_hash(db: Writer, block_hash: bytes) -> None:
    db.put(schema.HEAD_HEADER_KEY, block_hash)


def read_head_block_hash(db: Reader) -> bytes | None:
    return db.get(schema.HEAD_BLOCK_KEY)


def write_head_block_hash(db: Writer, block_hash: bytes) -> None:
    db.put(schema.HEAD_BLOCK_KEY, block_hash)


def read_finalized_block_hash(db: Reader) -> bytes | None:
    return db.get(schema.HEAD_FINALIZED_KEY)


def write_finalized_block_hash(db: Writer, block_hash: bytes) -> None:
    db.put(schema.HEAD_FINALIZED_KEY, block_hash)


def read_safe_block_hash(db: Reader) -> bytes | None:
    return db.get(schema.HEAD_SAFE_KEY)


def write_safe_block_hash(db: Writer, block_hash: bytes) -> None:
    db.put(schema.HEAD_SAFE_KEY, block_hash)


# --- metadata ------------------------------------------------------------------------


def read_database_version(db: Reader) -> int | None:
    data = db.get(schema.DATABASE_VERSION_KEY)
    return None if data is None else int.from_bytes(data, "big")


def write_database_version(db: Writer, version: int = schema.DATABASE_VERSION) -> None:
    db.put(schema.DATABASE_VERSION_KEY, version.to_bytes(8, "big"))


def read_genesis_json(db: Reader, genesis_hash: bytes) -> dict[str, Any] | None:
    data = db.get(schema.genesis_key(genesis_hash))
    if data is None:
        return None
    try:
        return json.loads(data)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise _corrupt("genesis", exc) from None


def write_genesis_json(db: Writer, genesis_hash: bytes, genesis: dict[str, Any]) -> None:
    """The genesis spec (config and alloc): enough to rebuild the chain config and genesis state."""
    db.put(schema.genesis_key(genesis_hash), json.dumps(genesis, sort_keys=True).encode())
    db.put(schema.config_key(genesis_hash), json.dumps(genesis.get("config", {}), sort_keys=True).encode())


def read_chain_config_json(db: Reader, genesis_hash: bytes) -> dict[str, Any] | None:
    data = db.get(schema.config_key(genesis_hash))
    if data is None:
        return None
    try:
        return json.loads(data)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise _corrupt("chain config", exc) from None
