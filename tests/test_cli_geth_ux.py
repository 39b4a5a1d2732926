"""The command line as geth users expect it (issue 19): each case the issue measured, run as a user runs it.

Errors are one line and a non-zero exit (no traceback); flags that would do nothing are
said so in one WARN line, as geth's ``--metrics.port specified without --metrics.addr``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import RunProcess, cli_command, start_run_command, stop_run_command
from shared_support import subprocess_env

CHILD_TIMEOUT = 60  # seconds for a one-shot command on a busy machine


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ethnode", *args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=CHILD_TIMEOUT, cwd=cwd)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.mark.subprocess
def test_version_flag_prints_what_the_version_command_prints() -> None:
    flag, command = _cli("--version"), _cli("version")
    assert flag.returncode == command.returncode == 0
    assert flag.stdout == command.stdout and flag.stdout.startswith("ethnode ")


@pytest.mark.subprocess
@pytest.mark.parametrize("command", ["run", "init", "import", "export", "discover"])
def test_bad_flag_after_a_command_names_the_command(command: str) -> None:
    extra = {"init": ["g.json"], "import": ["c.rlp"], "export": ["c.rlp"]}.get(command, [])
    done = _cli(command, *extra, "--no-such-flag")
    assert done.returncode == 2
    assert _one_line(done) == f"ethnode-fast {command}: error: unrecognized arguments: --no-such-flag"


@pytest.mark.subprocess
def test_init_on_an_unwritable_datadir_is_one_fatal_line(tmp_path: Path) -> None:
    genesis = tmp_path / "dev.json"
    genesis.write_text(json.dumps({"config": {"chainId": 1}, "difficulty": "0x1", "gasLimit": "0x1000", "alloc": {}}))
    done = _cli("init", str(genesis), "--datadir", "/proc/x")
    assert done.returncode == 1 and _one_line(done).startswith("Fatal: /proc/x")


@pytest.mark.subprocess
def test_init_with_a_100k_deep_genesis_is_one_fatal_line(tmp_path: Path) -> None:
    genesis = tmp_path / "deep.json"
    genesis.write_text("[" * 100_000 + "]" * 100_000)
    done = _cli("init", str(genesis), "--datadir", str(tmp_path / "d"))
    assert done.returncode == 1 and _one_line(done).startswith(f"Fatal: invalid genesis file {genesis}: ")


@pytest.mark.subprocess
def test_run_on_a_datadir_that_is_a_file_is_one_fatal_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    done = _cli("run", "--datadir", str(afile), "--nodiscover", "--nat", "none", "--port", "0")
    assert done.returncode == 1 and _one_line(done) == f"Fatal: datadir {afile}: not a directory"


@pytest.mark.subprocess
@pytest.mark.parametrize("mode", ["upnp", "pmp", "pmp:127.0.0.1", "stun"])
def test_nat_mechanisms_not_implemented_are_refused(tmp_path: Path, mode: str) -> None:
    done = _cli("run", "--datadir", str(tmp_path), "--nodiscover", "--nat", mode, "--port", "0")
    line = _one_line(done)
    assert done.returncode == 1 and line.startswith(f"Fatal: invalid --nat {mode!r}: ") and "not implemented" in line
    assert not (tmp_path / "ethnode").exists()  # refused before the node started


def test_help_says_which_nat_modes_work(capsys: pytest.CaptureFixture[str]) -> None:
    from ethnode.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--nat SPEC NAT: extip:IP (a known external address), none, or any (default any:" in text
    assert "upnp, pmp and stun are not implemented and refused" in text


@pytest.mark.subprocess
def test_dev_and_miner_flags_without_their_mode_are_a_warning(tmp_path: Path) -> None:
    run, _ = start_run_command("--nodiscover", "--nat", "none", "--dev.period", "2", "--dev.key", "11" * 32,
                               "--miner.gasprice", "7", datadir=tmp_path)
    try:
        dev = run.wait_for_line(r"^WARN \[.*\] --dev\.period, --dev\.key specified without --dev")
        miner = run.wait_for_line(r"^WARN \[.*\] --miner\.gasprice specified without --mine or --dev")
    finally:
        code, out = stop_run_command(run)
    assert code == 0, out
    assert dev.string.endswith("developer chain settings are ignored")
    assert miner.string.endswith("miner settings are ignored")
    assert sum(line.startswith("WARN") for line in out.splitlines()) == 2, out  # nothing else to warn about


@pytest.mark.subprocess
def test_geth_config_with_an_eth_section_runs_and_names_what_it_ignores(tmp_path: Path) -> None:
    config = tmp_path / "geth.toml"
    config.write_text("[Eth]\nNetworkId = 4242\nSyncMode = 'snap'\nNoPruning = true\n"
                      "[Eth.Miner]\nGasCeil = 60000000\n"
                      "[Node.P2P]\nNoDiscovery = true\nNAT = 'none'\n")
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps({"config": {"chainId": 77, "homesteadBlock": 0, "londonBlock": 0},
                                   "difficulty": "0x1", "gasLimit": "0x1000000", "alloc": {}}))
    datadir = tmp_path / "d"
    assert _cli("init", str(genesis), "--datadir", str(datadir)).returncode == 0
    run = RunProcess([], argv=cli_command("run", "--datadir", str(datadir), "--config", str(config), "--port", "0",
                                          "--listenaddr", "127.0.0.1", "--authrpc.port", "0", "--ipcdisable",
                                          "--eth.versions", "69"))
    try:
        ignored = run.wait_for_line(r"^WARN .*Config file fields ethnode does not use were ignored +fields=(\S+)")
        run.wait_for_line(r"^WARN .*Eth\.SyncMode=snap runs as full sync")
        started = run.wait_for_line(r"Initialised chain configuration +chain_id=77 +network_id=4242 ")
    finally:
        code, out = run.stop()
    assert code == 0, out
    assert ignored.group(1) == "Eth.NoPruning,Eth.Miner.GasCeil" and started
