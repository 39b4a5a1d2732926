"""pytest hooks and fixtures: a scratch working directory, the backend guard for CI, the RLP fixture.

Helpers that test modules import live in ``*_support.py`` modules, never here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    import ethnode

    mapping = ", ".join(f"{k}={v.describe()}" for k, v in ethnode.backends().items())
    return [f"ethnode backends: {mapping}", f"ethnode imported from {os.path.dirname(ethnode.__file__)}"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Run from a scratch directory; with ETHNODE_REQUIRE_COMPILED=1 (CI), fail without compiled backends;
    with ETHNODE_REQUIRE_INSTALLED=1 (CI), fail unless ethnode is the installed wheel, not the checkout.

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
    if os.environ.get("ETHNODE_REQUIRE_INSTALLED") == "1":
        import ethnode

        if "site-packages" not in Path(ethnode.__file__).parts:
            raise pytest.UsageError(f"ETHNODE_REQUIRE_INSTALLED=1 but ethnode comes from {ethnode.__file__}")
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


@pytest.fixture(scope="session")
def dev_node(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One ``run --dev`` child with HTTP, WebSocket, the Engine API and IPC (``transport_support``)."""
    from transport_support import running_dev_node

    with running_dev_node(tmp_path_factory) as node:
        yield node
