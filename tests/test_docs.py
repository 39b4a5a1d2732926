"""The documentation builds with warnings as errors: mkdocs + mkdocstrings read the public API's
docstrings, so a broken cross-reference, a missing page or a renamed API name fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs not installed (pip install '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings not installed (pip install '.[docs]')")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("ethnode.api.EthNode.subscribe", "ethnode.api.NodeConfig", "ethnode.api.TxAnnouncement"):
        assert name in api, f"{name} missing from the API reference"
    assert (tmp_path / "site" / "tutorial" / "index.html").exists()
