"""The README's commands, run as written (a smoke test of the front door).

Every ``v/bin/ethnode-fast ...`` line of the README's shell blocks runs here in order, in a
scratch directory holding the files it names (``genesis.json`` and ``chain.rlp`` are the
shared eth-test chain). Long-running commands (``run``, ``discover``) are started, waited on
until they say they are up, and stopped with SIGTERM; the ``enode://…`` a later line needs
is the one an earlier ``run`` printed. Only what must change to run on a shared test
machine is changed: fixed ports become free ones, and ``--nodiscover --nat none`` are added
to a public network's command so no packet leaves loopback. The install and test commands
are what CI itself runs, so they are not repeated here.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import ENODE_LINE, RunProcess, child_env
from geth_support import free_port
from shared_support import SHARED

pytestmark = [pytest.mark.subprocess, pytest.mark.timeout(600)]

README = Path(__file__).resolve().parent.parent / "README.md"
PREFIX = "v/bin/ethnode-fast "
READY = {  # what a long-running command prints once it is up
    "run": r"HTTP server started +endpoint=|Started P2P networking +self=",
    "discover": r"UDP listener up|discovery|Discovery|self=",
}
NETWORK_FLAGS = ("--mainnet", "--sepolia", "--hoodi")


def readme_commands() -> list[list[str]]:
    """The ethnode-fast command lines of the README's shell blocks, comments dropped, ``&&`` split."""
    commands: list[list[str]] = []
    in_block = False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```sh" and not in_block
            continue
        if not in_block:
            continue
        code = line.split("  #", 1)[0].strip()
        for part in code.split("&&"):
            part = part.strip()
            if part.startswith(PREFIX):
                commands.append(shlex.split(part[len(PREFIX):]))
    return commands


def test_the_readme_names_its_commands() -> None:
    cmds = readme_commands()
    verbs = [c[0] for c in cmds]
    assert {"version", "init", "import", "run", "export", "discover", "key", "enode"} <= set(verbs), verbs
    assert any("--dev" in c for c in cmds) and any(f in c for c in cmds for f in NETWORK_FLAGS)


def _adapt(args: list[str], enode: str | None) -> list[str]:
    out = []
    for i, arg in enumerate(args):
        if args[i - 1] == "--port" and i > 0:
            arg = str(free_port())
        if arg == "enode://…":
            assert enode is not None, "the README uses an enode before any run printed one"
            arg = enode
        out.append(arg)
    if out[0] == "run":
        out += ["--http.port", "0", "--authrpc.port", "0", "--metrics.port", "0"]
        if "--ws" in out:
            out += ["--ws.port", "0"]
        if "--port" not in out:
            out += ["--port", "0"]
        if any(f in out for f in NETWORK_FLAGS):
            out += ["--nodiscover", "--nat", "none"]
    return out


def test_every_readme_command_runs(tmp_path: Path) -> None:
    ethtest = SHARED / "chains" / "ethtest"
    if not (ethtest / "chain.rlp").exists():
        pytest.skip(f"{ethtest} is absent (a fresh clone has no ../shared)")
    shutil.copy(ethtest / "genesis.json", tmp_path / "genesis.json")
    shutil.copy(ethtest / "chain.rlp", tmp_path / "chain.rlp")
    env = child_env()
    enode: str | None = None
    for raw in readme_commands():
        args = _adapt(raw, enode)
        if args[0] in READY:
            proc = RunProcess([], env=env, cwd=tmp_path, argv=[sys.executable, "-m", "ethnode", *args])
            try:
                match = proc.wait_for_line(READY[args[0]], timeout=60)
                assert match is not None
                found = re.search(ENODE_LINE, proc.output)
                if found and args[0] == "run":
                    enode = found.group(1)
            finally:
                code, _ = proc.stop(signal.SIGTERM)
            assert code == 0, f"{raw}: exit {code}\n{proc.output[-3000:]}"
            assert "Traceback" not in proc.output, proc.output[-3000:]
            continue
        done = subprocess.run([sys.executable, "-m", "ethnode", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{raw}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr
    # geth's export starts at the genesis block; the imported blocks follow byte for byte
    assert (tmp_path / "out.rlp").read_bytes().endswith((tmp_path / "chain.rlp").read_bytes())
    assert (tmp_path / "dev.json").exists() and (tmp_path / "nodekey").exists()
