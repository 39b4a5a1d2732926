"""Known caches under peer churn: RSS before, at peak and after, compiled against pure in one run.

Waves of 160 peers, each with a tx cache (MAX_KNOWN_TXS) and a block cache
(MAX_KNOWN_BLOCKS) filled as announcements would fill them (a few thousand tx hashes,
every tenth peer past capacity), then all dropped. Each backend runs in a fresh child
process (``tests/test_knowncache_churn.py`` is the child), so RSS is the churn's alone;
the timed figure is the child's churn time, the RSS figures ride in ``extra_info``.
Quick runs (``report.py --quick``, or ``ETHNODE_BENCH_QUICK=1``) churn a few waves.

    PYTHONPATH=. python -m pytest benches/bench_churn_memory.py --benchmark-only -q -s
    python benches/bench_churn_memory.py [waves]     # just the figures
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_knowncache_churn import run_child  # noqa: E402

WAVES, QUICK_WAVES = 60, 5  # the issue measured 60 waves of 160 peers


def _quick(benchmark: Any) -> bool:
    return bool(benchmark.disabled or os.environ.get("ETHNODE_BENCH_QUICK") == "1"
                or getattr(benchmark, "_max_time", 1.0) < 0.1)


def _line(fig: dict[str, Any]) -> str:
    return (f"churn [{fig['backend']}]: {fig['waves']} waves x {fig['peers']} peers in {fig['churn_s']} s; "
            f"RSS before {fig['before_mb']} MB, peak {fig['peak_mb']} MB, after {fig['after_mb']} MB "
            f"({fig['after_mb'] / fig['before_mb']:.2f}x)")


@pytest.mark.parametrize("impl", ["compiled", "pure"])
def test_churn_memory(benchmark: Any, impl: str) -> None:
    if impl == "compiled":
        import ethnode

        backend = ethnode.backends()["known_cache"]
        if backend != "compiled":
            pytest.skip(f"compiled known cache not loaded: {backend.describe()}")
    benchmark.group = "known cache churn (child process)"
    waves = QUICK_WAVES if _quick(benchmark) else WAVES
    figures: dict[str, Any] = {}
    benchmark.pedantic(lambda: figures.update(run_child(pure=impl == "pure", waves=waves)), rounds=1, iterations=1)
    assert figures["backend"] == impl
    benchmark.extra_info.update(impl=impl, **{k: v for k, v in figures.items() if k != "backend"})
    print(f"\n  {_line(figures)}")


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else WAVES
    for pure in (False, True):
        print(_line(run_child(pure=pure, waves=runs)))
