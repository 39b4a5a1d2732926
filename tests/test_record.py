"""ethnode.record in process: a recorder on one in-memory EthNode, txs put into its peer's pool,
every one recorded once with its raw bytes and a per-peer row, in SQLite and in Parquet, read
back with one ``load`` call; and the ``record`` command's bad-input lines."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_support import child_env, cli_command
from p2p_support import run_checked
from test_api import _pair
from txpool_support import dyn

from ethnode.api import Transactions
from ethnode.record import Recorder, load, open_sink

pd = pytest.importorskip("pandas")

N_TXS = 12


def _record(tmp_path: Path, fmt: str) -> tuple[Path, Any, list[Any], bytes]:
    out = tmp_path / ("rec.sqlite3" if fmt == "sqlite" else "rec")

    async def scenario() -> tuple[Any, list[Any], bytes]:
        a, b = await _pair()
        try:
            recorder = Recorder(b, open_sink(out, fmt), batch_rows=5, flush_interval=0.2)
            await recorder.start()
            done = b.subscribe(Transactions)
            info = await b.connect(a.enode)
            txs = [dyn(k, n) for k in range(2) for n in range(N_TXS // 2)]
            assert a.eth is not None and a.eth.txpool.add_locals(txs) == [None] * N_TXS
            want = {tx.hash for tx in txs}
            async with asyncio.timeout(20):
                async for ev in done:
                    want -= {t.hash for t in ev.txs}
                    if not want:
                        break
            summary = await recorder.stop()
            return summary, txs, info.id
        finally:
            await b.stop()
            await a.stop()

    summary, txs, peer_id = run_checked(scenario, timeout=60)
    return out, summary, txs, peer_id


@pytest.mark.parametrize("fmt", ["sqlite", "parquet"])
def test_recorder_writes_every_tx_once_with_per_peer_rows(tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out, summary, txs, peer_id = _record(tmp_path, fmt)
    assert summary.unique_txs == N_TXS and summary.peers == 1 and summary.lost == 0
    recorded = load(out, "txs")
    assert sorted(recorded["hash"]) == sorted(tx.hash.hex() for tx in txs)
    raw = dict(zip(recorded["hash"], recorded["raw"], strict=True))
    assert all(bytes(raw[tx.hash.hex()]) == tx.canonical for tx in txs)
    assert set(recorded["first_peer"]) == {peer_id.hex()}
    events = load(out)  # the default table: every observation
    tx_rows = events[events["kind"].isin(["tx_broadcast", "tx_pooled", "tx_announcement"])]
    assert set(tx_rows["hash"]) == {tx.hash.hex() for tx in txs}
    assert (tx_rows["time_ns"] > 0).all() and set(tx_rows["peer"]) == {peer_id.hex()}
    peers = load(out, "peers")
    added = peers[peers["event"] == "add"]
    assert list(added["peer"]) == [peer_id.hex()] and added["client_id"].iloc[0].startswith("ethnode/")
    assert added["network_id"].iloc[0] == 1337
    # b stopped after the recorder: no drop row, and nothing lost in between
    assert summary.duplicates_per_tx >= 0 and "unique_txs=12" in summary.lines()[0]


def _fatal_line(*args: str) -> str:
    done = subprocess.run(cli_command("record", *args), capture_output=True, text=True, env=child_env(), timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Fatal: "), done.stderr
    return lines[0]


@pytest.mark.subprocess
def test_record_bad_input_is_one_fatal_line(tmp_path: Path) -> None:
    assert "which network?" in _fatal_line("--out", str(tmp_path / "x.sqlite3"))
    missing = tmp_path / "nope.json"
    assert "genesis file" in _fatal_line("--genesis", str(missing), "--out", str(tmp_path / "x.sqlite3"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "invalid JSON" in _fatal_line("--genesis", str(bad), "--out", str(tmp_path / "x.sqlite3"))
    assert "invalid static node" in _fatal_line("--sepolia", "--peers", "enode://zz", "--nodiscover",
                                               "--out", str(tmp_path / "x.sqlite3"))
    assert "eth protocol" in _fatal_line("--sepolia", "--eth.versions", "none")


def test_load_names_what_is_missing(tmp_path: Path) -> None:
    from ethnode.record import RecordError

    with pytest.raises(RecordError, match="no recording at"):
        load(tmp_path / "absent.sqlite3")
    with pytest.raises(RecordError, match="no table 'nope'"):
        load(tmp_path, "nope")


def test_parquet_files_rotate_and_load_as_one_frame(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from ethnode.record import ParquetSink, RecordError

    sink = ParquetSink(tmp_path / "p", rotate_rows=4)
    for batch in range(5):
        sink.write({"events": [(batch * 10 + i, "tx_broadcast", "aa", f"{batch}{i}", None, 2, 100, None)
                               for i in range(3)]})
    sink.close()
    files = sorted(p.name for p in (tmp_path / "p").glob("events-*.parquet"))
    assert files == ["events-00000.parquet", "events-00001.parquet", "events-00002.parquet"]
    frame = load(tmp_path / "p")
    assert len(frame) == 15 and sorted(frame["time_ns"]) == sorted(b * 10 + i for b in range(5) for i in range(3))
    assert len(load(tmp_path / "p", "txs")) == 0  # no rows: an empty frame with the table's columns
    with pytest.raises(RecordError, match="already holds Parquet files"):
        ParquetSink(tmp_path / "p")
