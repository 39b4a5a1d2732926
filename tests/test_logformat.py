"""Log lines in geth's three formats (``log/format.go``, slog's text and JSON handlers), one set-up for every command.

Formatter cases are checked against the bytes geth v1.17.10 writes for the same record
(level names, 40-column message, value quoting, thousands separators); the command cases
run ``ethnode.cli.main`` as a user would, with ``--log.format`` and ``--log.file``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
from pathlib import Path

import pytest

from ethnode.cli import main
from ethnode.commands import logformat
from ethnode.commands.logformat import JSONFormatter, LogfmtFormatter, TerminalFormatter
from ethnode.logctx import kv

GENESIS = {"config": {"chainId": 1337, "homesteadBlock": 0, "londonBlock": 0}, "difficulty": "0x1",
           "gasLimit": "0x1000000", "alloc": {}}
TERMINAL_LINE = re.compile(r"^(TRACE|DEBUG|INFO |WARN |ERROR|CRIT )\[\d\d-\d\d\|\d\d:\d\d:\d\d\.\d{3}\] ")


def _record(msg: str, *args: object, level: int = logging.INFO, extra: dict[str, object] | None = None
            ) -> logging.LogRecord:
    record = logging.LogRecord("ethnode.test", level, __file__, 1, msg, args, None)
    for key, value in (extra or {}).items():
        setattr(record, key, value)
    return record


def _body(line: str) -> str:
    """The line after ``LEVEL[MM-DD|HH:MM:SS.mmm] ``."""
    match = TERMINAL_LINE.match(line)
    assert match, line
    return line[match.end():]


def test_terminal_levels_are_geths_aligned_names() -> None:
    fmt = TerminalFormatter()
    seen = [fmt.format(_record("x", level=level))[:6] for level in
            (logformat.TRACE, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)]
    assert seen == ["TRACE[", "DEBUG[", "INFO [", "WARN [", "ERROR[", "CRIT ["]


def test_terminal_message_padding_and_values() -> None:
    fmt = TerminalFormatter()
    line = fmt.format(_record("Started P2P networking", extra=kv(self="enode://ab@127.0.0.1:30303")))
    assert _body(line) == "Started P2P networking" + " " * 18 + " self=enode://ab@127.0.0.1:30303"
    line = fmt.format(_record("Values", extra=kv(
        ("blk/s", 12), big=1234567, small=99999, neg=-123456, ok=True, none=None, ratio=1.5, raw=b"\x01\xff",
        words="two words", eq="a=b", quote='say "hi"', empty="", mods=["eth", "net"], gone=["eth"],
        err=ValueError("bad thing"))))
    assert _body(line) == (
        "Values" + " " * 34 + " blk/s=12 big=1,234,567 small=99999 neg=-123,456 ok=true none=<nil> ratio=1.500"
        ' raw=0x01ff words="two words" eq="a=b" quote="say \\"hi\\"" empty= mods=eth,net gone=eth'
        ' err="bad thing"')
    assert "[" not in _body(line).split(" mods=")[1]  # no Python list reprs


def test_terminal_pads_each_key_to_its_widest_value_as_geth() -> None:
    fmt = TerminalFormatter()
    fmt.format(_record("One", extra=kv(endpoint="127.0.0.1:30303", auth=True)))
    line = fmt.format(_record("Two", extra=kv(endpoint="1.2.3.4:1", auth=False)))
    assert _body(line).endswith(" endpoint=1.2.3.4:1" + " " * 6 + " auth=false")


def test_terminal_text_records_are_split_at_their_pairs() -> None:
    fmt = TerminalFormatter()
    line = fmt.format(_record("Miner started period=%d etherbase=0x%s", 0, "ab"))
    assert _body(line) == "Miner started" + " " * 27 + " period=0 etherbase=0xab"
    line = fmt.format(_record("Looking for peers peercount=%d note=%s", 3, '"a b"'))
    assert _body(line).endswith(' peercount=3 note="a b"')
    assert _body(fmt.format(_record("Shutting down"))) == "Shutting down"  # no pairs: no padding
    # a message whose text cannot be split is kept as written (geth quotes a message holding "=")
    assert _body(fmt.format(_record("Head #%d at t=%d is old", 1, 2))) == "Head #1 at t=2 is old"
    assert _body(fmt.format(_record("Bad = sign", extra=kv(a=1)))).startswith('"Bad = sign"')


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    line = TerminalFormatter(colour=True).format(_record("Hello", extra=kv(a=1), level=logging.WARNING))
    assert line.startswith("\x1b[33mWARN \x1b[0m[") and " \x1b[33ma\x1b[0m=1" in line
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not logformat._colour_wanted()
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            monkeypatch.setattr(sys, "stderr", tty)
            assert logformat._colour_wanted()
            monkeypatch.setenv("TERM", "dumb")
            assert not logformat._colour_wanted()
    finally:
        os.close(leader)
        os.close(follower)


def test_logfmt_is_slogs_text_handler() -> None:
    line = LogfmtFormatter().format(_record("Started P2P networking", level=logging.WARNING,
                                            extra=kv(self="enode://x", n=1234567, words="a b", empty="",
                                                     mods=["eth", "net"])))
    assert re.fullmatch(r't=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} lvl=warn msg="Started P2P networking" '
                        r'self=enode://x n=1234567 words="a b" empty="" mods=eth,net', line), line
    line = LogfmtFormatter().format(_record("Miner started period=%d", 2))
    assert line.endswith('lvl=info msg="Miner started" period=2')


def test_json_is_slogs_json_handler() -> None:
    line = JSONFormatter().format(_record("Imported blocks", level=logging.ERROR,
                                          extra=kv(("blk/s", 7), number=600, hash=b"\xab", ok=False,
                                                   mods=["eth"], none=None)))
    obj = json.loads(line)
    assert list(obj) == ["t", "lvl", "msg", "blk/s", "number", "hash", "ok", "mods", "none"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?(Z|[+-]\d\d:\d\d)", obj["t"])
    assert obj["lvl"] == "error" and obj["msg"] == "Imported blocks" and obj["number"] == 600
    assert obj["hash"] == "0xab" and obj["ok"] is False and obj["mods"] == ["eth"] and obj["none"] is None
    legacy = json.loads(JSONFormatter().format(_record('Peer gone id=%s count=%d why="%s"', "ab", 3, "x y")))
    assert legacy == {**{k: legacy[k] for k in ("t", "lvl")}, "msg": "Peer gone", "id": "ab", "count": 3,
                      "why": "x y"}


# -- the commands ------------------------------------------------------------------------------
def _genesis(tmp_path: Path) -> Path:
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(GENESIS))
    return path


def test_init_logs_in_each_format_and_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    genesis = _genesis(tmp_path)
    assert main(["init", str(genesis), "--datadir", str(tmp_path / "a")]) == 0
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "Successfully" in x]
    wrote = r"Successfully wrote genesis state +database=\S+chaindata hash=0x[0-9a-f]{64}$"
    assert re.match(TERMINAL_LINE.pattern + wrote, line), line
    assert main(["init", str(genesis), "--datadir", str(tmp_path / "b"), "--log.format", "logfmt"]) == 0
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "Successfully" in x]
    assert line.startswith("t=") and ' lvl=info msg="Successfully wrote genesis state" database=' in line
    log_file = tmp_path / "logs" / "ethnode.log"
    log_file.parent.mkdir()
    assert main(["init", str(genesis), "--datadir", str(tmp_path / "c"), "--log.format", "json",
                 "--log.file", str(log_file)]) == 0
    err = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    written = [json.loads(x) for x in log_file.read_text().splitlines()]
    assert written == err and any(obj["msg"] == "Successfully wrote genesis state" for obj in written)
    assert main(["init", str(genesis), "--datadir", str(tmp_path / "c"), "--log.file", str(log_file)]) == 0
    text = log_file.read_text().splitlines()
    assert len(text) > len(written) and TERMINAL_LINE.match(text[-1])  # appended, no colour codes
    assert "\x1b[" not in log_file.read_text()


def test_verbosity_silences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(_genesis(tmp_path)), "--datadir", str(tmp_path / "d"), "--verbosity", "2"]) == 0
    assert "Successfully" not in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "message"), [
    (["--log.format", "xml"], "Fatal: unknown log format: xml"),
    (["--log.file", "/proc/no/such/dir/x.log"], "Fatal: failed to open log file /proc/no/such/dir/x.log: "),
])
def test_bad_log_flags_are_one_fatal_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
                                          message: str) -> None:
    for command in (["init", str(_genesis(tmp_path))], ["run"], ["import", "x.rlp"], ["export", "x.rlp"],
                    ["discover"]):
        assert main([*command, "--datadir", str(tmp_path / "e"), *flags]) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(message), (command, err)
    assert not (tmp_path / "e").exists()  # refused before the command touched anything


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    """main() installs handlers on the root logger; leave it as the next test expects."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
