"""``ethnode-fast init / import / export`` on the ethtest chain, including damage and SIGKILL.

Most commands run in-process through ``ethnode.cli.main``; the crash test runs
the import in a child process fed through a FIFO, so the child is certainly mid-import
(it has more blocks to process) when it is killed, without any sleep.
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from chain_support import open_chain
from shared_support import shared_path, subprocess_env

from ethnode.cli import main
from ethnode.core.blockchain import STATE_ROOT_WARNING, BlockChain
from ethnode.core.chainfile import read_blocks
from ethnode.core.rawdb import open_database
from ethnode.core.types import Block
from ethnode.monitoring.progress import ImportProgress

HEAD_HASH = "0x44e3809c9a3cda717f00aea3a9da336d149612c8d5657fbc0028176ef8d94d2a"
CHILD_TIMEOUT = 60  # seconds; the whole import takes well under one


def _files() -> tuple[Path, Path]:
    return shared_path("chains", "ethtest", "genesis.json"), shared_path("chains", "ethtest", "chain.rlp")


def _init(datadir: Path) -> None:
    genesis, _ = _files()
    assert main(["init", str(genesis), "--datadir", str(datadir)]) == 0


def _open(datadir: Path) -> BlockChain:
    return open_chain(open_database(datadir))


def _fatal_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Fatal:")]


def _assert_consistent(chain: BlockChain, blocks: list[Block]) -> int:
    """The head block exists and every canonical ancestor is the chain file's block."""
    head = chain.current_block
    assert head.hash == blocks[head.number - 1].hash if head.number else True
    assert chain.has_block(head.hash, head.number)
    for n in range(1, head.number + 1):
        want = blocks[n - 1].hash
        assert chain.get_canonical_hash(n) == want
        assert chain.has_block(want, n) and chain.get_td(want, n) is not None
    assert chain.get_canonical_hash(head.number + 1) is None
    return head.number  # type: ignore[no-any-return]


def test_init_import_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    genesis, chain_file = _files()
    datadir = tmp_path / "d"
    _init(datadir)
    assert (datadir / "ethnode" / "chaindata").is_dir()
    assert main(["init", str(genesis), "--datadir", str(datadir)]) == 0  # idempotent, as geth
    capsys.readouterr()
    assert main(["import", str(chain_file), "--datadir", str(datadir)]) == 0
    err = capsys.readouterr().err
    assert STATE_ROOT_WARNING not in err and "executed=yes" in err and "mgas/s=" in err
    assert re.search(rf"number=600 +hash={HEAD_HASH}", err) and "roots=verified" in err and "blk/s=" in err
    chain = _open(datadir)
    assert chain.current_block.number == 600 and "0x" + chain.current_block.hash.hex() == HEAD_HASH
    head = chain.current_block
    assert chain.get_receipts(head.hash, 600) is not None  # every executed block has its receipts stored
    chain.db.close()

    out = tmp_path / "out.rlp"
    assert main(["export", str(out), "1", "600", "--datadir", str(datadir)]) == 0
    assert out.read_bytes() == chain_file.read_bytes()
    full = tmp_path / "full.rlp"
    assert main(["export", str(full), "--datadir", str(datadir)]) == 0
    data = full.read_bytes()
    assert data.endswith(chain_file.read_bytes()) and read_blocks(data)[0].number == 0
    gz = tmp_path / "part.rlp.gz"
    assert main(["export", str(gz), "1", "10", "--datadir", str(datadir)]) == 0
    assert main(["export", str(gz), "11", "20", "--datadir", str(datadir)]) == 0  # a range appends, as geth
    import gzip

    assert [b.number for b in read_blocks(gzip.decompress(gz.read_bytes()))] == list(range(1, 21))
    # Re-importing the exported file (genesis included) is a no-op.
    capsys.readouterr()
    assert main(["import", str(full), "--datadir", str(datadir)]) == 0
    assert "known=601" in capsys.readouterr().err


def test_noexec_import_checks_headers_and_bodies_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, chain_file = _files()
    blocks = read_blocks(chain_file.read_bytes())
    datadir = tmp_path / "d"
    _init(datadir)
    first = tmp_path / "first.rlp"
    first.write_bytes(b"".join(b.encode() for b in blocks[:20]))
    capsys.readouterr()
    assert main(["import", str(first), "--noexec", "--datadir", str(datadir)]) == 0
    err = capsys.readouterr().err
    assert err.count(STATE_ROOT_WARNING) == 1 and "executed=no" in err and 'roots="unverified (--noexec)"' in err
    chain = _open(datadir)
    with_txs = next(b for b in blocks[:20] if b.tx_items)
    assert chain.get_receipts(with_txs.hash, with_txs.number) is None  # nothing executed, nothing stored
    chain.db.close()
    # Executing on top of blocks that were never executed cannot work: one line says why.
    assert main(["import", str(chain_file), "--datadir", str(datadir)]) == 1
    (line,) = _fatal_lines(capsys.readouterr().err)
    assert "state of block #20" in line and "--noexec" in line, line


def test_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datadir = tmp_path / "d"
    _init(datadir)
    capsys.readouterr()
    assert main(["export", str(tmp_path / "x.rlp"), "5", "2", "--datadir", str(datadir)]) == 1
    assert main(["export", str(tmp_path / "x.rlp"), "0", "9", "--datadir", str(datadir)]) == 1
    lines = _fatal_lines(capsys.readouterr().err)
    assert lines == [
        "Fatal: export failed: first block #5 is after last block #2",
        "Fatal: export failed: last block #9 is beyond the head block #0",
    ]


def _corrupt_block(data: bytes, blocks: list[Block], number: int) -> bytes:
    """Flip the last byte of block ``number``'s first tx (its signature's s): still valid RLP."""
    start = sum(len(b.encode()) for b in blocks[: number - 1])
    item = blocks[number - 1].tx_items[0]
    pos = data.index(item, start) + len(item) - 1
    return data[:pos] + bytes((data[pos] ^ 0xFF,)) + data[pos + 1 :]


def test_corrupted_block_stops_the_import_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, chain_file = _files()
    data = chain_file.read_bytes()
    blocks = read_blocks(data)
    bad = tmp_path / "bad.rlp"
    bad.write_bytes(_corrupt_block(data, blocks, 301))
    datadir = tmp_path / "d"
    _init(datadir)
    capsys.readouterr()
    assert main(["import", str(bad), "--datadir", str(datadir)]) == 1
    lines = _fatal_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert re.fullmatch(
        r"Fatal: import .*bad\.rlp: invalid block #301 \(0x[0-9a-f]{64}\): "
        r"transaction root hash mismatch \(header value [0-9a-f]{64}, calculated [0-9a-f]{64}\)",
        lines[0],
    ), lines[0]
    chain = _open(datadir)
    assert _assert_consistent(chain, blocks) == 300
    chain.db.close()
    # The good file then completes the chain.
    assert main(["import", str(chain_file), "--datadir", str(datadir)]) == 0
    chain = _open(datadir)
    assert _assert_consistent(chain, blocks) == 600
    chain.db.close()


def test_truncated_file_names_the_block_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, chain_file = _files()
    data = chain_file.read_bytes()
    blocks = read_blocks(data)
    cut = sum(len(b.encode()) for b in blocks[:450])
    bad = tmp_path / "short.rlp"
    bad.write_bytes(data[: cut + 7])
    datadir = tmp_path / "d"
    _init(datadir)
    capsys.readouterr()
    # About reading the file, not executing it: --noexec keeps the test quick.
    assert main(["import", str(bad), "--noexec", "--datadir", str(datadir)]) == 1
    (line,) = _fatal_lines(capsys.readouterr().err)
    assert f"block 451 of the file (byte offset {cut}): truncated block" in line
    chain = _open(datadir)
    assert _assert_consistent(chain, blocks) == 450
    chain.db.close()


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datadir = tmp_path / "d"
    genesis_file, _ = _files()
    bad_json = tmp_path / "g.json"
    bad_json.write_text("{not json")
    no_config = tmp_path / "h.json"
    no_config.write_text('{"alloc": {}}')
    runs = [
        (["init", str(tmp_path / "missing.json")], "failed to read genesis file"),
        (["init", str(bad_json)], "invalid genesis file"),
        (["init", str(no_config)], "config: missing"),
        (["import", str(tmp_path / "x.rlp")], "database has no genesis block"),
    ]
    for argv, message in runs:
        assert main([*argv, "--datadir", str(datadir)]) == 1
        lines = _fatal_lines(capsys.readouterr().err)
        assert len(lines) == 1 and message in lines[0], (argv, lines)
    assert main(["init", str(genesis_file), "--datadir", "/proc/x"]) == 1  # once a traceback
    (line,) = _fatal_lines(capsys.readouterr().err)
    assert "cannot create the database" in line
    _init(datadir)
    capsys.readouterr()
    assert main(["import", str(tmp_path / "x.rlp"), "--datadir", str(datadir)]) == 1
    (line,) = _fatal_lines(capsys.readouterr().err)
    assert "cannot open: No such file or directory" in line
    other = tmp_path / "other.json"
    genesis, _ = _files()
    other.write_text(genesis.read_text().replace('"0x68697665636861696e"', '"0x00"'))
    assert main(["init", str(other), "--datadir", str(datadir)]) == 1
    (line,) = _fatal_lines(capsys.readouterr().err)
    assert "incompatible genesis" in line
    assert main([]) == 2


def test_progress_bar_on_a_terminal() -> None:
    blocks = read_blocks(_files()[1].read_bytes())[:5]
    out = io.StringIO()
    progress = ImportProgress("chain.rlp", 10_000, stream=out, bar=True)
    progress.interval = 0
    for i, b in enumerate(blocks):
        progress.update(b, False, 2_000 * i)
    progress.finish(10_000)
    text = out.getvalue()
    assert text.startswith("\rImporting chain.rlp [....") and " 40.0% #3 " in text and "blk/s" in text
    last = text.rsplit("\r", 1)[1]
    assert last.startswith("Importing chain.rlp [" + "#" * 30 + "] 100.0% #5 ") and last.endswith("\n")


# --- SIGKILL mid-import ------------------------------------------------------------------


@pytest.mark.subprocess
@pytest.mark.timeout(CHILD_TIMEOUT)
def test_sigkill_during_import_leaves_a_consistent_database(tmp_path: Path) -> None:
    _, chain_file = _files()
    data = chain_file.read_bytes()
    blocks = read_blocks(data)
    datadir = tmp_path / "d"
    _init(datadir)
    fifo = tmp_path / "feed.rlp"
    os.mkfifo(fifo)
    fed = sum(len(b.encode()) for b in blocks[:300])
    env = subprocess_env()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from ethnode.cli import main; sys.exit(main(sys.argv[1:]))",
            "import",
            str(fifo),
            "--datadir",
            str(datadir),
            "--log-interval",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    killed = threading.Event()

    def feed() -> None:
        # Keep the pipe open until the child is dead, so it never sees end of file.
        try:
            with open(fifo, "wb") as f:
                f.write(data[:fed])
                f.flush()
                killed.wait(CHILD_TIMEOUT)
        except BrokenPipeError:
            pass

    lines: queue.Queue[str | None] = queue.Queue()

    def read_stderr() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.put(line)
        lines.put(None)

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for t in threads:
        t.start()
    committed = 0
    try:
        while committed < 100:
            line = lines.get(timeout=CHILD_TIMEOUT)
            assert line is not None, "child exited before committing 100 blocks"
            m = re.search(r"Imported blocks .*number=(\d+)", line)
            if m:
                committed = int(m.group(1))
        child.send_signal(signal.SIGKILL)  # the child still has up to 200 fed blocks to go
        assert child.wait(CHILD_TIMEOUT) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        killed.set()
        for t in threads:
            t.join(CHILD_TIMEOUT)

    chain = _open(datadir)
    head = _assert_consistent(chain, blocks)
    assert 100 <= head <= 300
    chain.db.close()
    assert main(["import", str(chain_file), "--datadir", str(datadir)]) == 0
    chain = _open(datadir)
    assert _assert_consistent(chain, blocks) == 600
    assert "0x" + chain.current_block.hash.hex() == HEAD_HASH
    chain.db.close()


def test_datadir_and_database_are_private(tmp_path: Path) -> None:
    """As geth's: every directory created 0700, the database files 0600 (they were 0755/0644)."""
    datadir = tmp_path / "new" / "d"
    _init(datadir)
    chain = _open(datadir)  # a second open leaves existing modes alone
    chain.db.close()
    for directory in (tmp_path / "new", datadir, datadir / "ethnode", datadir / "ethnode" / "chaindata"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    files = sorted((datadir / "ethnode" / "chaindata").iterdir())
    assert files and any(f.name == "chain.sqlite" for f in files)
    for f in files:  # chain.sqlite and, while open, its -wal/-shm
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
