"""Shared test plumbing: where ../shared lives, and the backend guard for CI."""

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


def pytest_report_header(config: pytest.Config) -> str:
    import ethnode

    mapping = ", ".join(f"{k}={v.describe()}" for k, v in ethnode.backends().items())
    return f"ethnode backends: {mapping}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Run from a scratch directory; with ETHNODE_REQUIRE_COMPILED=1 (CI), fail without compiled backends.

    The scratch cwd matters for child processes: ``python -m ethnode`` puts its cwd first on
    sys.path, and from the checkout that would import the source tree (no compiled
    extensions) instead of the ethnode under test.
    """
    import atexit
    import shutil
    import tempfile

    scratch = tempfile.mkdtemp(prefix="ethnode-tests-")
    os.chdir(scratch)
    atexit.register(shutil.rmtree, scratch, True)
    if os.environ.get("ETHNODE_REQUIRE_COMPILED") != "1":
        return
    import ethnode
    from ethnode._native import rust_module

    pure = {k: v.describe() for k, v in ethnode.backends().items() if v != "compiled"}
    mod, err = rust_module()
    if pure or mod is None:
        raise pytest.UsageError(f"ETHNODE_REQUIRE_COMPILED=1 but pure backends in use: {pure}; rust: {err}")


@pytest.fixture(params=["compiled", "pure"])
def rlp_impl(request: pytest.FixtureRequest) -> Any:
    """Each RLP implementation in turn; the compiled one skips only when it is not built."""
    from ethnode.rlp import implementation

    try:
        return implementation(request.param)
    except ImportError as exc:
        pytest.skip(f"compiled RLP unavailable: {exc}")


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
