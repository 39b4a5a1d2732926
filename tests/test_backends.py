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
