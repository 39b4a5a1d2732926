"""geth's own ``BenchmarkThroughput`` (``p2p/rlpx``), run by ``report.py`` beside ethnode's loopback stream.

A figure measured on another day says little about today's machine (the stream figures
here move by a third with the other jobs on the box), so geth is measured in the same
run: ``go test -bench`` in the geth module as the Go toolchain keeps it (its module cache;
nothing is written there, the build goes to the Go build cache), at one core and at all
of them. No Go toolchain or no module: no figure, and the report says "no geth here".

    python benches/geth_throughput.py [--quick]      # the figures alone
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

GETH_MODULE = "github.com/ethereum/go-ethereum"
GETH_VERSION = "v1.17.10"  # the newest pinned geth (tests/gethtools.py GETH_VERSION)
PACKAGE = "./p2p/rlpx"
BENCH = "^BenchmarkThroughput$"
GO_TIMEOUT = 900  # seconds: a cold build of the package and its dependencies is ~20 s here
_RESULT = re.compile(r"^BenchmarkThroughput(?:-(\d+))?\s+\d+\s+([\d.]+) ns/op\s+([\d.]+) MB/s", re.M)


@dataclass
class GethThroughput:
    """geth's MB/s (payload bytes read, ``b.SetBytes(1024)``) at one GOMAXPROCS: median of the runs."""

    cpus: int
    runs_mb_per_s: list[float] = field(default_factory=list)
    version: str = GETH_VERSION
    command: str = ""

    @property
    def mb_per_s(self) -> float:
        return statistics.median(self.runs_mb_per_s)


def find_go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    default = Path("/usr/local/go/bin/go")
    return str(default) if default.exists() else None


def _go_env() -> dict[str, str]:
    # -mod=mod: the module cache copy has no vendor dir; local toolchain: never fetch another Go
    return {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}


def module_dir(go: str) -> Path | str:
    """The geth module's source in the Go module cache, or why there is none."""
    done = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, env=_go_env(), timeout=60)
    path = Path(done.stdout.strip()) / f"{GETH_MODULE}@{GETH_VERSION}"
    if (path / PACKAGE / "rlpx_test.go").exists():
        return path
    done = subprocess.run([go, "mod", "download", "-json", f"{GETH_MODULE}@{GETH_VERSION}"], capture_output=True,
                          text=True, env=_go_env(), timeout=GO_TIMEOUT)
    if done.returncode != 0:
        return f"go mod download {GETH_MODULE}@{GETH_VERSION} failed: {done.stderr.strip()[-200:]}"
    return Path(json.loads(done.stdout)["Dir"])


def measure(quick: bool = False) -> tuple[list[GethThroughput], str | None]:
    """geth's figures at one core and at every core, or ([], the reason there are none)."""
    go = find_go()
    if go is None:
        return [], "no Go toolchain"
    where = module_dir(go)
    if isinstance(where, str):
        return [], where
    cores = os.cpu_count() or 1
    cpus = "1" if cores == 1 else f"1,{cores}"
    command = [go, "test", "-run", "^$", "-bench", BENCH, "-benchtime", "0.2s" if quick else "1s",
               "-count", "1" if quick else "5", "-cpu", cpus, PACKAGE]
    try:
        done = subprocess.run(command, cwd=where, capture_output=True, text=True, env=_go_env(), timeout=GO_TIMEOUT)
    except subprocess.TimeoutExpired:
        return [], f"go test did not finish within {GO_TIMEOUT} s"
    if done.returncode != 0:
        return [], f"go test failed: {(done.stdout + done.stderr).strip()[-300:]}"
    figures: dict[int, GethThroughput] = {}
    shown = "go " + " ".join(command[1:]) + f"  (in {where})"
    for match in _RESULT.finditer(done.stdout):
        n = int(match.group(1) or 1)
        figures.setdefault(n, GethThroughput(n, command=shown)).runs_mb_per_s.append(float(match.group(3)))
    if not figures:
        return [], f"no BenchmarkThroughput result in: {done.stdout.strip()[-300:]}"
    return [figures[n] for n in sorted(figures)], None


if __name__ == "__main__":
    found, reason = measure("--quick" in sys.argv)
    if reason:
        print(f"no geth here: {reason}")
    for figure in found:
        print(f"geth {figure.version} BenchmarkThroughput -cpu {figure.cpus}: {figure.mb_per_s:.1f} MB/s "
              f"(runs {', '.join(f'{r:.1f}' for r in figure.runs_mb_per_s)})")
