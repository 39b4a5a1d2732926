"""geth's snap conformance suites (``devp2p rlpx snap-test`` and ``snap2-test``) against
``ethnode-fast run`` holding the suite's own chain, imported with execution.

The suites dial with eth and snap and address snap messages at a fixed offset: right
after the eth codes of the newest eth the suite speaks (``ethProtoLen`` in its
``protocol.go``). So each suite runs against an ethnode offering exactly the eth versions
that give that layout:

- **v1.17.5** (``ETHTEST_VERSION``, Prague chain): 18 eth codes, i.e. eth/70 and eth/69;
- **v1.17.10** (``GETH_VERSION``, Osaka/Amsterdam chain, executed by revm): 22 eth codes,
  i.e. eth/72 (skipped, saying why, on an install without revm or without eth/72).

Every test of both suites must pass: account ranges with their edge proofs (checked by
geth's ``VerifyRangeProof``), storage ranges, bytecodes, snap/1 trie nodes by path, the
snap/2 handshake, block access lists, and GetTrieNodes refused on snap/2.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_support import ENODE_LINE, RunProcess
from geth_support import ethtest_testdata
from gethtools import BUILD_TIMEOUT, ETHTEST_VERSION, GETH_VERSION, require_geth_tools
from shared_support import subprocess_env
from test_interop_geth_ethtest import (
    AUTHRPC_LINE,
    SUMMARY_LINE,
    _kill,
    _LineReader,
    _prepare_datadir,
    format_table,
    parse_suite_output,
)

from ethnode.eth.protocols.eth.protocol import PROTOCOL_LENGTHS

pytestmark = [pytest.mark.interop, pytest.mark.subprocess, pytest.mark.timeout(BUILD_TIMEOUT + 300)]

HOST = "127.0.0.1"
SUITE_BUDGET = 60.0  # seconds per suite; each passes in about a second here
SUITES = ("snap-test", "snap2-test")
# The tests each suite runs (geth cmd/devp2p/internal/ethtest/suite.go SnapTests, Snap2Tests).
EXPECTED = {
    "snap-test": ("Status", "AccountRange", "GetByteCodes", "GetTrieNodes", "GetStorageRanges"),
    "snap2-test": ("Status", "GetBlockAccessLists", "TrieNodesRemoved"),
}
# eth codes the suite's client assumes before snap (its ethProtoLen) -> eth versions giving that layout
ETH_LAYOUT = {ETHTEST_VERSION: (18, "70,69"), GETH_VERSION: (22, "72,71,70,69")}


def _eth_versions_for(version: str) -> str:
    length, versions = ETH_LAYOUT[version]
    newest = max(int(v) for v in versions.split(","))
    if PROTOCOL_LENGTHS.get(newest) != length:
        pytest.skip(f"the {version} snap suites address snap after eth/{newest}'s {length} message codes; "
                    f"ethnode does not speak eth/{newest} yet")
    if version == GETH_VERSION:
        from ethnode.core.execution import compiled_engine_error

        if compiled_engine_error() is not None:
            pytest.skip(f"the {version} chain (Osaka, Amsterdam) needs the revm engine: {compiled_engine_error()}")
    return versions


def _run_suite(devp2p: Path, suite: str, testdata: Path, enode: str, port: int, secret: str) -> tuple[str, str]:
    """(summary line, result table) of one suite; asserts every expected test ran and passed."""
    cmd = [str(devp2p), "rlpx", suite, "--chain", str(testdata), "--node", enode,
           "--engineapi", f"http://{HOST}:{port}", "--jwtsecret", secret]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=subprocess_env(), start_new_session=True)
    reader = _LineReader(proc)
    try:
        finished = reader.wait(time.monotonic() + SUITE_BUDGET)
    finally:
        _kill(proc)
    results = parse_suite_output(reader.lines)
    table = format_table(results, list(EXPECTED[suite]))
    summary = next((line for line in reversed(reader.lines) if SUMMARY_LINE.match(line)), "no summary line")
    log_tail = "\n".join(reader.lines[-60:])
    assert finished, f"{suite} did not finish in {SUITE_BUDGET:g} s:\n{table}\n{log_tail}"
    assert set(results) == set(EXPECTED[suite]), f"{suite} ran {sorted(results)}:\n{log_tail}"
    failed = sorted(name for name, r in results.items() if not r.passed)
    assert not failed, f"{suite} cases failed: {failed}\n{table}\n{log_tail}"
    counts = SUMMARY_LINE.match(summary)
    assert counts is not None and counts.group(1) == counts.group(2) == str(len(EXPECTED[suite])), summary
    if suite == "snap2-test":
        # Amsterdam blocks have access lists and ethnode stores them: none may come back empty.
        empties = [line for line in reader.lines if "server returned empty for known post-Amsterdam" in line]
        assert not empties, "\n".join(empties[:5])
    return summary, table


@pytest.mark.parametrize("version", [ETHTEST_VERSION, GETH_VERSION])
def test_geth_snap_suites(version: str, tmp_path: Path) -> None:
    versions = _eth_versions_for(version)
    devp2p = require_geth_tools(version, ("devp2p",)) / "devp2p"
    testdata = ethtest_testdata(version)
    datadir = tmp_path / "ethnode"
    _prepare_datadir(testdata, datadir, execute=True)
    secret = secrets.token_hex(32)
    jwt_file = tmp_path / "jwtsecret.hex"
    jwt_file.write_text(secret)
    run = RunProcess([
        "--datadir", str(datadir), "--port", "0", "--listenaddr", HOST, "--nodiscover", "--nat", "none",
        "--eth.versions", versions,
        "--authrpc.addr", HOST, "--authrpc.port", "0", "--authrpc.jwtsecret", str(jwt_file), "--verbosity", "4",
    ])
    try:
        enode = run.wait_for_line(ENODE_LINE).group(1)
        port = int(run.wait_for_line(AUTHRPC_LINE).group(1))
        for suite in SUITES:
            summary, table = _run_suite(devp2p, suite, testdata, enode, port, secret)
            print(f"\ndevp2p rlpx {suite} ({version}, executed, eth {versions}) against ethnode: {summary}\n{table}")
        assert run.proc.poll() is None, f"ethnode exited during the suites:\n{run.output[-3000:]}"
        assert "Traceback" not in run.output, run.output[-5000:]
    finally:
        run.stop(signal.SIGTERM)
