"""The backend seam and the CLI that reports it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import ethnode
from ethnode._native import FORCE_PURE, Backend

TIMEOUT = 60


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ethnode`` outside the checkout, so the installed package is the one used."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ethnode", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=TIMEOUT,
        cwd=tempfile.gettempdir(),
    )


def test_backends_reports_every_hot_path() -> None:
    mapping = ethnode.backends()
    assert "rlp" in mapping
    for path, backend in mapping.items():
        assert backend in ("compiled", "pure"), path
        assert isinstance(backend, Backend)
        if backend == "pure":
            assert backend.error, f"{path} is pure with no reason recorded"


@pytest.mark.subprocess
def test_force_pure_env_var() -> None:
    code = "import ethnode; print(sorted(set(ethnode.backends().values())))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "ETHNODE_NO_EXTENSIONS": "1"},
        timeout=TIMEOUT,
        cwd=tempfile.gettempdir(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['pure']"


def test_version_command() -> None:
    out = run_cli("version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"ethnode {ethnode.__version__}\n")
    assert "rlp: compiled" in out.stdout or "rlp: pure" in out.stdout
    assert "rust module:" in out.stdout


def test_dash_dash_version_prints_what_version_prints() -> None:
    """geth has both ``geth version`` and ``geth --version``; so does ethnode-fast."""
    flag, command = run_cli("--version"), run_cli("version")
    assert flag.returncode == 0 and flag.stdout == command.stdout, flag.stderr


def test_pure_hot_paths_not_asked_for_get_one_warn_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without a compiler runs pure and must say so once at start; a forced-pure run does not."""
    from ethnode import _native

    selected = {path: Backend("compiled") for path in _native._selected}
    selected["rlp"] = Backend("pure", "ModuleNotFoundError: No module named '_crlp'")
    monkeypatch.setattr(_native, "_selected", selected)
    monkeypatch.setattr(_native, "FORCE_PURE", False)
    line = _native.slow_paths_warning()
    assert line is not None and "paths=" in line and "rlp" in line and "No module named '_crlp'" in line
    monkeypatch.setattr(_native, "FORCE_PURE", True)
    assert _native.slow_paths_warning() is None
    monkeypatch.setattr(_native, "FORCE_PURE", False)
    monkeypatch.setattr(_native, "_selected", {k: Backend("compiled") for k in selected})
    assert _native.slow_paths_warning() is None


@pytest.mark.subprocess
def test_import_warns_when_pure_was_not_asked_for(tmp_path: Path) -> None:
    """The no-toolchain install, simulated: the compiled RLP module fails to import."""
    code = (
        "import sys, importlib.abc\n"
        "class Refuse(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'ethnode.rlp._crlp': raise ImportError('no C compiler here')\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "from ethnode.cli import main\n"
        "sys.exit(main(['import', '--noexec', sys.argv[1], '--datadir', sys.argv[2]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "none.rlp"), str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=TIMEOUT, cwd=tempfile.gettempdir(),
                         env={k: v for k, v in os.environ.items() if k != "ETHNODE_NO_EXTENSIONS"})
    warns = [line for line in out.stderr.splitlines() if line.startswith("WARN") and "pure Python" in line]
    assert len(warns) == 1 and "rlp" in warns[0] and "no C compiler here" in warns[0], out.stderr
    forced = subprocess.run([sys.executable, "-m", "ethnode", "import", "--noexec", str(tmp_path / "none.rlp"),
                             "--datadir", str(tmp_path / "d")], capture_output=True, text=True, timeout=TIMEOUT,
                            cwd=tempfile.gettempdir(), env={**os.environ, "ETHNODE_NO_EXTENSIONS": "1"})
    assert "pure Python" not in forced.stderr  # asked for: no warning


@pytest.mark.subprocess
def test_run_warns_once_at_start_when_the_rust_module_is_missing(tmp_path: Path) -> None:
    """``run`` as a user without cargo gets it: the WARN line names the Rust paths and why, once, before start-up."""
    from cli_support import ENODE_LINE, HOST, RunProcess, child_env

    code = (
        "import sys, importlib.abc\n"
        "class Refuse(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'ethnode._rust': raise ImportError('no cargo here')\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "from ethnode.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [sys.executable, "-c", code, "run", "--datadir", str(tmp_path / "d"), "--port", "0", "--listenaddr", HOST,
            "--nodiscover", "--nat", "none", "--ipcdisable", "--eth.versions", "none"]
    env = {k: v for k, v in child_env().items() if k != "ETHNODE_NO_EXTENSIONS"}
    run = RunProcess([], argv=argv, env=env, cwd=tmp_path)
    try:
        run.wait_for_line(ENODE_LINE)
    finally:
        run.stop()
    warns = [line for line in run.lines if line.startswith("WARN") and "pure Python" in line]
    assert len(warns) == 1, run.output
    assert "execution" in warns[0] and "rlpx_frame" in warns[0] and "no cargo here" in warns[0], warns[0]
    assert run.lines.index(warns[0]) < next(i for i, line in enumerate(run.lines) if ENODE_LINE.search(line))


def test_version_command_forced_pure() -> None:
    out = run_cli("version", env={"ETHNODE_NO_EXTENSIONS": "1"})
    assert out.returncode == 0, out.stderr
    assert "rlp: pure (ETHNODE_NO_EXTENSIONS is set)" in out.stdout
    assert "rust module: not loaded (ETHNODE_NO_EXTENSIONS is set)" in out.stdout
    assert "compiled" not in out.stdout


@pytest.mark.skipif(FORCE_PURE, reason="compiled backends forced off")
def test_compiled_build_is_in_use_when_built() -> None:
    """When the extension file exists, importing it must have worked."""
    from importlib.util import find_spec

    if find_spec("ethnode.rlp._crlp") is None:
        pytest.skip("ethnode.rlp._crlp was not built in this install")
    assert ethnode.backends()["rlp"] == "compiled"


def test_bad_flag_is_one_line_and_nonzero() -> None:
    out = run_cli("--no-such-flag")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "unrecognized arguments" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_bad_key_file_is_one_line(tmp_path: Path) -> None:
    out = run_cli("run", "--nodiscover", "--port", "0", "--nodekey", str(tmp_path / "missing"))
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("Fatal: ")
    assert "Traceback" not in out.stderr
