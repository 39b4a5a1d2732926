"""Where a recording goes: SQLite (stdlib, the default) or rotating Parquet files (pyarrow).

Three tables, the same columns in both formats:

- ``events``: one row per observation: a tx announced or delivered by a peer, a block
  announced, a block range update. Per-peer timestamps of one tx are its rows here.
- ``txs``: each transaction once, when first seen: peer, type, size and its raw bytes.
- ``peers``: peer added (with client id, caps and Status) and dropped (with the reason).

Writes come in batches from the recorder (one transaction, or one row group, per batch),
on a worker thread, so the event loop never waits on the disk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ethnode.errors import EthnodeError

# (name, SQLite type, pyarrow type name): the one schema both sinks write.
TABLES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "events": (
        ("time_ns", "INTEGER", "int64"), ("kind", "TEXT", "string"), ("peer", "TEXT", "string"),
        ("hash", "TEXT", "string"), ("number", "INTEGER", "int64"), ("type", "INTEGER", "int64"),
        ("size", "INTEGER", "int64"), ("earliest", "INTEGER", "int64"),
    ),
    "txs": (
        ("hash", "TEXT PRIMARY KEY", "string"), ("first_seen_ns", "INTEGER", "int64"),
        ("first_peer", "TEXT", "string"), ("type", "INTEGER", "int64"), ("size", "INTEGER", "int64"),
        ("raw", "BLOB", "binary"),
    ),
    "peers": (
        ("time_ns", "INTEGER", "int64"), ("event", "TEXT", "string"), ("peer", "TEXT", "string"),
        ("client_id", "TEXT", "string"), ("caps", "TEXT", "string"), ("address", "TEXT", "string"),
        ("inbound", "INTEGER", "int64"), ("eth_version", "INTEGER", "int64"), ("network_id", "INTEGER", "int64"),
        ("genesis", "TEXT", "string"), ("fork_hash", "TEXT", "string"), ("fork_next", "INTEGER", "int64"),
        ("head", "TEXT", "string"), ("td", "TEXT", "string"), ("earliest", "INTEGER", "int64"),
        ("latest", "INTEGER", "int64"), ("reason", "TEXT", "string"), ("reason_code", "INTEGER", "int64"),
        ("remote_requested", "INTEGER", "int64"),
    ),
}
PARQUET_ROTATE_ROWS = 1_000_000  # rows per Parquet file before the next one starts


class RecordError(EthnodeError):
    """The output cannot be written or read (one line naming the path)."""


Rows = dict[str, list[tuple[Any, ...]]]


class Sink(Protocol):
    path: Path

    def write(self, rows: Rows) -> None: ...

    def close(self) -> None: ...


class SQLiteSink:
    """One SQLite file; each batch is one transaction (WAL, so readers can watch it grow)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            for table, cols in TABLES.items():
                self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{c} {t}' for c, t, _ in cols)})")
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise RecordError(f"output {self.path}: {exc}") from None
        self._inserts = {
            table: f"INSERT {'OR IGNORE ' if table == 'txs' else ''}INTO {table} VALUES "
                   f"({', '.join('?' * len(cols))})"
            for table, cols in TABLES.items()
        }

    def write(self, rows: Rows) -> None:
        with self._db:
            for table, batch in rows.items():
                if batch:
                    self._db.executemany(self._inserts[table], batch)

    def close(self) -> None:
        self._db.close()


class ParquetSink:
    """A directory of ``<table>-<n>.parquet`` files; each batch a row group, a new file every
    ``rotate_rows`` rows (a file becomes readable when it is closed: at rotation or stop)."""

    def __init__(self, path: str | Path, rotate_rows: int = PARQUET_ROTATE_ROWS) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise RecordError("Parquet output needs pyarrow: pip install 'ethnode[record]'") from None
        self._pa, self._pq = pa, pq
        self.path = Path(path).expanduser()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordError(f"output {self.path}: {exc.strerror or exc}") from None
        if any(self.path.glob("*.parquet")):
            raise RecordError(f"output {self.path}: already holds Parquet files (choose an empty directory)")
        self.rotate_rows = rotate_rows
        self._schemas = {
            table: pa.schema([(name, getattr(pa, kind)()) for name, _, kind in cols]) for table, cols in TABLES.items()
        }
        self._writers: dict[str, Any] = {}
        self._rows: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._files: dict[str, int] = dict.fromkeys(TABLES, 0)

    def write(self, rows: Rows) -> None:
        for table, batch in rows.items():
            if not batch:
                continue
            columns = list(zip(*batch, strict=True))
            schema = self._schemas[table]
            arrays = [self._pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)]
            writer = self._writers.get(table)
            if writer is None:
                name = self.path / f"{table}-{self._files[table]:05d}.parquet"
                writer = self._writers[table] = self._pq.ParquetWriter(name, schema)
                self._files[table] += 1
            writer.write_table(self._pa.Table.from_arrays(arrays, schema=schema))
            self._rows[table] += len(batch)
            if self._rows[table] >= self.rotate_rows:
                writer.close()
                del self._writers[table]
                self._rows[table] = 0

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def open_sink(path: str | Path, fmt: str = "sqlite") -> Sink:
    if fmt == "sqlite":
        return SQLiteSink(path)
    if fmt == "parquet":
        return ParquetSink(path)
    raise RecordError(f"unknown output format {fmt!r} (sqlite, parquet)")


def load(path: str | Path, table: str = "events") -> Any:
    """A recording's table as a ``pandas.DataFrame`` (SQLite file or Parquet directory)."""
    try:
        import pandas as pd
    except ImportError:
        raise RecordError("loading a recording needs pandas: pip install pandas") from None
    if table not in TABLES:
        raise RecordError(f"no table {table!r} (tables: {', '.join(TABLES)})")
    where = Path(path).expanduser()
    if where.is_dir():
        files = sorted(where.glob(f"{table}-*.parquet"))
        columns = [name for name, _, _ in TABLES[table]]
        if not files:
            return pd.DataFrame(columns=columns)
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if not where.is_file():
        raise RecordError(f"no recording at {where}")
    db = sqlite3.connect(f"file:{where}?mode=ro", uri=True)
    try:
        return pd.read_sql_query(f"SELECT * FROM {table}", db)  # noqa: S608 (table checked above)
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise RecordError(f"{where}: {exc}") from None
    finally:
        db.close()


def columns(table: str) -> Sequence[str]:
    return [name for name, _, _ in TABLES[table]]


__all__ = ["TABLES", "SQLiteSink", "ParquetSink", "open_sink", "load", "columns", "RecordError", "Sink", "Rows"]
