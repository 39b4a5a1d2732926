"""geth as the judge: pinned geth and devp2p binaries, built once into a cache folder.

``require_geth_tools()`` returns the folder holding ``geth`` and ``devp2p`` at
``GETH_VERSION``, building them with ``go install`` the first time (a few minutes on
two cores) into ``$ETHNODE_TOOLS_DIR`` or ``~/.cache/ethnode-tools``, under a file lock
so parallel test processes build once. Tests skip only when no Go toolchain exists; a
failed build fails them, with the build log's tail, because it means something is wrong
here rather than absent.

    PYTHONPATH=. python tests/gethtools.py     # build (or find) the tools and print where
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The newest geth (Dec 2026): eth/69-72, snap/1+2, discv5. Its eth-test chain is v1.17.8's byte for
# byte (Osaka at block 18, Amsterdam from 36); its suites judge the protocols as geth speaks them now.
GETH_VERSION = "v1.17.10"
GETH_MODULE = "github.com/ethereum/go-ethereum"
TOOLS = ("geth", "devp2p")
# The eth-test suite whose testdata is ../shared/chains/ethtest byte for byte (a Prague chain
# py-evm executes). The suite must match its chain, and v1.17.6+ ship an Osaka/Amsterdam one.
ETHTEST_VERSION = "v1.17.5"
BUILD_TIMEOUT = 45 * 60  # seconds; a cold build with module downloads takes ~3-4 min here


class GoMissing(RuntimeError):
    """No Go toolchain: the interop tests cannot run here."""


def cache_root() -> Path:
    root = os.environ.get("ETHNODE_TOOLS_DIR")
    return Path(root) if root else Path.home() / ".cache" / "ethnode-tools"


def tools_dir(version: str = GETH_VERSION) -> Path:
    return cache_root() / f"geth-{version}" / "bin"


def find_go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    fallback = Path("/usr/local/go/bin/go")
    return str(fallback) if fallback.exists() else None


def _installed(folder: Path, tools: tuple[str, ...] = TOOLS) -> bool:
    return all(os.access(folder / tool, os.X_OK) for tool in tools)


def ensure_geth_tools(log=sys.stderr, version: str = GETH_VERSION, tools: tuple[str, ...] = TOOLS) -> Path:  # type: ignore[no-untyped-def]
    """The folder with ``tools`` of geth ``version``; builds them once. Raises GoMissing or RuntimeError."""
    target = tools_dir(version)
    if _installed(target, tools):
        return target
    go = find_go()
    if go is None:
        raise GoMissing("no Go toolchain ('go' not on PATH): cannot build the pinned geth tools")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the tools
        if _installed(target, tools):
            return target
        staging = Path(tempfile.mkdtemp(prefix="bin.", dir=target.parent))
        packages = [f"{GETH_MODULE}/cmd/{tool}@{version}" for tool in tools]
        print(f"building {', '.join(packages)} into {target} (one-off, several minutes)", file=log)
        started = time.monotonic()
        env = {**os.environ, "GOBIN": str(staging), "CGO_ENABLED": os.environ.get("CGO_ENABLED", "1")}
        try:
            done = subprocess.run(
                [go, "install", *packages], env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
            )
            if done.returncode != 0 or not _installed(staging, tools):
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
                raise RuntimeError(f"go install of the geth {version} tools failed ({done.returncode}):\n{tail}")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        print(f"built the geth tools in {time.monotonic() - started:.0f} s", file=log)
    return target


def require_geth_tools(version: str = GETH_VERSION, tools: tuple[str, ...] = TOOLS) -> Path:
    """For tests: the tools folder, or skip (only) when there is no Go toolchain."""
    import pytest

    try:
        return ensure_geth_tools(version=version, tools=tools)
    except GoMissing as exc:
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


if __name__ == "__main__":
    print(ensure_geth_tools())
    print(ensure_geth_tools(version=ETHTEST_VERSION, tools=("devp2p",)))
