"""Where ../shared lives and how child processes find the ethnode under test: the plumbing
every test module may import (``conftest.py`` keeps only pytest hooks and fixtures)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ETHNODE_SHARED", ROOT.parent / "shared"))
VECTORS = SHARED / "vectors"


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the calling test with the reason it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (a fresh clone has no ../shared; set ETHNODE_SHARED)")
    return path


def load_vector(*parts: str) -> Any:
    """A JSON file under ../shared/vectors, or skip with the reason it is absent."""
    return json.loads(shared_path("vectors", *parts).read_text())


def both_rlp_impls() -> tuple[Any, Any]:
    """(compiled, pure) for differential tests; skips when the compiled one is not built."""
    from ethnode.rlp import implementation

    try:
        return implementation("compiled"), implementation("pure")
    except ImportError as exc:
        pytest.skip(f"compiled RLP unavailable: {exc}")


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that must import the same ethnode as this test run.

    That is the installed package in CI (with its compiled extensions) and the source tree
    in development: the parent of whichever ``ethnode`` this process imported.
    """
    import ethnode

    here = str(Path(ethnode.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, **extra}
