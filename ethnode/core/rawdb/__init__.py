"""The chain database: a key-value store interface, its backends, and typed accessors.

Backends: ``MemoryDB`` (tests, throw-away chains) and ``SQLiteDB`` (on disk, WAL mode;
see ``sqlitedb`` for why SQLite and the measurements). ``open_database`` opens the one
under a node's data directory: ``<datadir>/ethnode/chaindata/``, as geth uses
``<datadir>/geth/chaindata``.
"""

from __future__ import annotations

import os

from ethnode.core.rawdb import accessors, schema
from ethnode.core.rawdb.memorydb import MemoryDB
from ethnode.core.rawdb.sqlitedb import SQLiteDB
from ethnode.core.rawdb.store import Batch, DatabaseError, KeyValueStore

CLIENT_DIR = "ethnode"  # geth: "geth"
CHAINDATA_DIR = "chaindata"


def chaindata_dir(datadir: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(datadir), CLIENT_DIR, CHAINDATA_DIR)


def has_chain(datadir: str | os.PathLike[str]) -> bool:
    """Whether the data directory holds an initialised chain (a genesis block), without creating one."""
    from ethnode.core.rawdb.sqlitedb import SQLITE_FILENAME

    if not os.path.exists(os.path.join(chaindata_dir(datadir), SQLITE_FILENAME)):
        return False
    db = SQLiteDB.open_dir(chaindata_dir(datadir))
    try:
        return accessors.read_canonical_hash(db, 0) is not None
    finally:
        db.close()


def open_database(datadir: str | os.PathLike[str]) -> SQLiteDB:
    """Open (creating) the chain database of a data directory; checks the layout version."""
    db = SQLiteDB.open_dir(chaindata_dir(datadir))
    version = accessors.read_database_version(db)
    if version is None:
        accessors.write_database_version(db)
    elif version != schema.DATABASE_VERSION:
        db.close()
        raise DatabaseError(
            f"{db.path}: database layout version {version}, this ethnode supports {schema.DATABASE_VERSION}"
        )
    return db


__all__ = [
    "KeyValueStore",
    "Batch",
    "DatabaseError",
    "MemoryDB",
    "SQLiteDB",
    "accessors",
    "schema",
    "open_database",
    "chaindata_dir",
    "has_chain",
]
