"""Run the benchmark suite once and print ratios measured in that one run.

    python benches/report.py                  # full run, all bench_*.py files
    python benches/report.py --quick          # CI: few rounds, same checks
    python benches/report.py --expect-compiled bench_rlp.py

Absolute times drift with the machine; ratios within one run do not, so the table is
in ratios against ethnode's compiled backend. ``--expect-compiled`` fails the run when a
compiled backend was expected but the pure twin ran (or its benchmarks were skipped).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["compiled", "pure", "pyrlp", "rusty", "native", "python-set"]

# Targets (this machine): checked and printed, not asserted as
# timed tests, since absolute times belong to the machine.
# (group, impl, items per call, limit in ns per item)
RLP_TARGETS = [
    ("rlp legacy_tx encode raw", "compiled", 1, 1000),
    ("rlp legacy_tx encode typed", "compiled", 1, 1000),
    ("rlp hashes_4096 decode raw", "compiled", 4096, 100),
    ("rlp hashes_4096 decode typed", "compiled", 4096, 100),
]


# RLPx targets: compiled frame codec >= 2x pure at <= 1 KiB and within 1.3x
# of the native keccak limit; >= 3000 handshakes/s/core; loopback stream >= 0.5x geth's
# BenchmarkThroughput at every core, measured in the same run (geth_throughput.py).
FRAME_SIZES = {"100B": 100, "1KiB": 1024, "16KiB": 16 * 1024, "1MiB": 1024 * 1024}
FRAME_VS_PURE_MIN, FRAME_VS_PURE_UP_TO = 2.0, 1024
FRAME_VS_LIMIT_MAX = 1.3
HANDSHAKES_PER_S_MIN = 3000
STREAM_VS_GETH_MIN = 0.5
STREAM_GROUP = "loopback stream"

# Import with execution (bench_execute.py): ethnode on revm at least half geth's Mgas/s on each
# workload, both measured in this run on the same chain file.
EXECUTE_VS_GETH_MIN = 0.5
EXECUTE_ENGINES = ("revm", "py-evm", "geth")

# JSON-RPC over HTTP under wrk (bench_rpc_wrk.py): ethnode at least 0.75x geth's requests/s per case.
RPC_VS_GETH_MIN = 0.75


def _fmt(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def run(files: list[str], quick: bool, extra: list[str]) -> tuple[int, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider",
               "--benchmark-only", f"--benchmark-json={out}", "--benchmark-disable-gc",
               "-o", "addopts=", "-o", "timeout=900"]
        if quick:
            cmd += ["--benchmark-min-rounds=3", "--benchmark-max-time=0.02", "--benchmark-warmup=off"]
        else:
            cmd += ["--benchmark-min-rounds=10", "--benchmark-max-time=0.5", "--benchmark-warmup=on"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        # cwd is benches/, not the checkout: `python -m pytest` puts cwd on sys.path, and the
        # installed ethnode (with its compiled extensions) must win over the source tree.
        proc = subprocess.run(cmd + extra, cwd=HERE, env=env, stdout=subprocess.PIPE, text=True)
        summary = [line for line in proc.stdout.splitlines() if line.strip()][-3:]
        print("\n".join(summary))
        data = json.loads(out.read_text()) if out.exists() else {"benchmarks": []}
        return proc.returncode, data


def per_item(data: dict) -> list[str]:
    """Lines for benchmarks that carry per-item counts or memory figures in extra_info."""
    lines = []
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        group, impl = b["group"] or b["name"], info.get("impl") or b["param"] or b["name"]
        if info.get("items", 1) > 1 and not group.startswith("rlp "):
            lines.append(f"  {group} [{impl}]: {_fmt(b['stats']['median'] * 1e9 / info['items'])} per item")
        if "bytes_per_entry" in info:
            lines.append(f"  {group} [{impl}]: {info['bytes_per_entry']} B per entry")
    return lines


def table(data: dict) -> dict[str, dict[str, float]]:
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for b in data["benchmarks"]:
        impl = b.get("extra_info", {}).get("impl") or b["param"] or b["name"]
        groups[b["group"] or b["name"]][impl] = b["stats"]["median"] * 1e9
    return groups


def print_table(groups: dict[str, dict[str, float]]) -> None:
    # The execute cases are whole child runs (interpreter start, datadir, geth init): their
    # figures are the import's own timer, printed by print_execute.
    groups = {name: g for name, g in groups.items() if not name.startswith("execute ")}
    if not groups:
        return
    impls = [i for i in ORDER if any(i in g for g in groups.values())]
    impls += sorted({i for g in groups.values() for i in g} - set(impls))
    head = ["benchmark (median)", *impls, *[f"{i}/compiled" for i in impls if i != "compiled"]]
    rows = []
    for name in sorted(groups):
        g = groups[name]
        base = g.get("compiled")
        cells = [name, *[_fmt(g[i]) if i in g else "-" for i in impls]]
        cells += [f"{g[i] / base:.1f}×" if base and i in g else "-" for i in impls if i != "compiled"]
        rows.append(cells)
    widths = [max(len(str(r[c])) for r in [head, *rows]) for c in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        pairs = enumerate(zip(r, widths, strict=True))
        cells = (str(c).ljust(w) if k == 0 else str(c).rjust(w) for k, (c, w) in pairs)
        print("  ".join(cells))


def _items(data: dict, group: str, impl: str) -> int:
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if (b["group"] or b["name"]) == group and (info.get("impl") or b["param"]) == impl:
            return int(info.get("items", 1))
    return 1


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_rlpx_targets(groups: dict[str, dict[str, float]], data: dict) -> None:
    """Frame codec vs pure and vs the native keccak limit; handshakes/s; stream vs geth (this run's)."""
    perm_group = "keccak-f1600 permutation (native)"
    perm_ns = None
    if "native" in groups.get(perm_group, {}):
        perm_ns = groups[perm_group]["native"] / _items(data, perm_group, "native")
    rows = []
    for label, size in FRAME_SIZES.items():
        g = groups.get(f"rlpx frame round trip {label}", {})
        if "compiled" not in g:
            continue
        # A round trip is one write and one read: twice one frame's permutations.
        limit = 2 * (4 + math.ceil((size + 32) / 136)) * perm_ns if perm_ns else None
        rows.append((label, size, g["compiled"], g.get("pure"), limit))
    if rows:
        note = f"one permutation {perm_ns:.0f} ns natively" if perm_ns else "no native permutation timing"
        print(f"\n  RLPx frame round trip (write + read), limit = 2 x (4 + ceil((n+32)/136)) permutations, {note}:")
        print(f"    {'size':>6} {'compiled':>10} {'pure':>10} {'limit':>10} {'pure/comp':>9} {'comp/limit':>10}")
        for label, _, comp, pure, limit in rows:
            cells = [_fmt(comp), _fmt(pure) if pure else "-", _fmt(limit) if limit else "-",
                     f"{pure / comp:.2f}×" if pure else "-", f"{comp / limit:.2f}×" if limit else "-"]
            print(f"    {label:>6} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, (10, 10, 10, 9, 10), strict=True)))
        for label, size, comp, pure, limit in rows:
            if pure and size <= FRAME_VS_PURE_UP_TO:
                ratio = pure / comp
                print(f"  {_verdict(ratio >= FRAME_VS_PURE_MIN)}  rlpx frame {label}: compiled {ratio:.2f}× faster "
                      f"than pure (≥ {FRAME_VS_PURE_MIN:g}×)")
            if limit:
                ratio = comp / limit
                print(f"  {_verdict(ratio <= FRAME_VS_LIMIT_MAX)}  rlpx frame {label}: compiled {ratio:.2f}× the "
                      f"native keccak limit (≤ {FRAME_VS_LIMIT_MAX:g}×)")
    for name, g in sorted(groups.items()):
        if name.startswith("rlpx handshake sans-IO"):
            for impl in ("compiled", "pure"):
                if impl in g:  # the target is the compiled backend's; the pure twin's is for comparison
                    rate = 1e9 / g[impl]
                    verdict = _verdict(rate >= HANDSHAKES_PER_S_MIN) if impl == "compiled" else "info"
                    print(f"  {verdict}  {name} [{impl}]: {rate:.0f} handshakes/s (≥ {HANDSHAKES_PER_S_MIN} per core)")
        elif name.startswith("rlpx handshake loopback"):
            for impl, ns in g.items():
                print(f"  info  {name} [{impl}]: {1e9 * _items(data, name, impl) / ns:.0f} handshakes/s")
    geth = data.get("geth_throughput", {})
    figures = {f["cpus"]: f for f in geth.get("figures", [])}
    best = figures[max(figures)] if figures else None  # every core: how geth runs
    for name, g in sorted(groups.items()):
        if not name.startswith(STREAM_GROUP):
            continue
        for impl in ("compiled", "pure"):
            if impl not in g:
                continue
            messages = _items(data, name, impl)
            seconds = g[impl] / 1e9
            mb_s, msgs_s = messages * 1024 / seconds / 1e6, messages / seconds
            line = f"{name} [{impl}]: {mb_s:.1f} MB/s, {msgs_s:,.0f} msgs/s"
            if best and "snappy" in name:
                ratio = mb_s / best["mb_per_s"]
                verdict = _verdict(ratio >= STREAM_VS_GETH_MIN) if impl == "compiled" else "info"
                others = "".join(f", {mb_s / f['mb_per_s']:.2f}× at -cpu {n}"
                                 for n, f in figures.items() if f is not best)
                print(f"  {verdict}  {line} = {ratio:.2f}× geth's {best['mb_per_s']:.1f} MB/s at -cpu {best['cpus']} "
                      f"(≥ {STREAM_VS_GETH_MIN:g}×{others}; both in this run)")
            else:
                print(f"  info  {line}" + ("" if best else f" (no geth here: {geth.get('reason', 'not measured')})"))


def _execute_cases(data: dict) -> dict[str, dict[str, dict]]:
    """workload -> engine -> extra_info of the bench_execute cases that ran."""
    cases: dict[str, dict[str, dict]] = defaultdict(dict)
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if (b.get("group") or "").startswith("execute ") and "mgas_per_s" in info:
            cases[info["workload"]][info["impl"]] = info
    return cases


def measure_geth(quick: bool) -> dict:
    """geth's BenchmarkThroughput now, right after ethnode's stream ran: its figures, or why there are none."""
    import geth_throughput

    figures, reason = geth_throughput.measure(quick)
    if reason is not None:
        print(f"\nno geth here: {reason}")
        return {"figures": [], "reason": reason}
    print(f"\ngeth {geth_throughput.GETH_VERSION} BenchmarkThroughput, measured in this run:")
    for f in figures:
        runs = ", ".join(f"{r:.1f}" for r in f.runs_mb_per_s)
        print(f"  -cpu {f.cpus}: {f.mb_per_s:.1f} MB/s (median of {len(f.runs_mb_per_s)}: {runs})")
    print(f"  {figures[0].command}")
    return {"figures": [{"cpus": f.cpus, "mb_per_s": f.mb_per_s, "runs_mb_per_s": f.runs_mb_per_s,
                         "version": f.version} for f in figures]}


def print_execute(data: dict) -> None:
    """Import with execution: Mgas/s and blocks/s per engine and workload, ratios, store growth.

    Every figure is the import's own timer (geth: its "Imported new chain segment" elapsed);
    state B/block is the growth of ethnode's state entries (trie nodes and code), db B/block
    that of its SQLite files.
    """
    cases = _execute_cases(data)
    if not cases:
        return
    print("\nimport with execution (best round; ×geth = Mgas/s and blocks/s over geth's on the same file):")
    head = ["workload", "engine", "blocks", "Mgas", "Mgas/s", "blocks/s", "×geth Mgas/s", "×geth blk/s",
            "state B/block", "db B/block"]
    rows, notes = [], []
    for workload, engines in cases.items():
        geth = engines.get("geth")
        for engine in EXECUTE_ENGINES:
            i = engines.get(engine)
            if i is None:
                continue
            partial = i["blocks"] < i.get("chain_blocks", i["blocks"])
            rows.append([workload, engine, i["range"] if partial else str(i["blocks"]), f"{i['mgas']:.1f}",
                         f"{i['mgas_per_s']:.1f}", f"{i['blocks_per_s']:.1f}",
                         f"{i['mgas_per_s'] / geth['mgas_per_s']:.2f}×" if geth and not partial else "-",
                         f"{i['blocks_per_s'] / geth['blocks_per_s']:.2f}×" if geth and not partial else "-",
                         f"{i['state_bytes_per_block']:,}" if "state_bytes_per_block" in i else "-",
                         f"{i['db_bytes_per_block']:,}" if "db_bytes_per_block" in i else "-"])
        revm, pyevm = engines.get("revm"), engines.get("py-evm")
        if pyevm:
            same = pyevm.get("revm_same_range") or (revm if revm and revm["blocks"] == pyevm["blocks"] else None)
            if same:
                notes.append(f"{workload}: revm {same['mgas_per_s'] / pyevm['mgas_per_s']:.1f}× py-evm's Mgas/s "
                             f"on blocks {pyevm['range']} (revm {same['mgas_per_s']:.1f} Mgas/s there)")
        if revm and geth:
            notes.append(f"{workload}: revm/geth {revm['mgas_per_s'] / geth['mgas_per_s']:.2f}× Mgas/s, "
                         f"{revm['blocks_per_s'] / geth['blocks_per_s']:.2f}× blocks/s")
        versions = ", ".join(f"{e} = {engines[e]['engine_version']}" for e in EXECUTE_ENGINES if e in engines)
        notes.append(f"{workload}: {versions}")
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  " + "  ".join(c.ljust(w) if k < 2 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths,
                                                                                                    strict=True))))
    for note in notes:
        print(f"  {note}")
    loads = [i["loadavg"] for engines in cases.values() for i in engines.values() if "loadavg" in i]
    cpus = max((i.get("cpus") or 1 for engines in cases.values() for i in engines.values()), default=1)
    if loads and max(loads) > cpus:
        print(f"  warning: the machine was busy (1-min load {min(loads):.1f}..{max(loads):.1f} on {cpus} CPUs, "
              "this run included): the cases ran at different times, so the ratios carry that noise")


def print_execute_targets(data: dict) -> None:
    for workload, engines in _execute_cases(data).items():
        revm, geth = engines.get("revm"), engines.get("geth")
        if revm and geth:
            ratio = revm["mgas_per_s"] / geth["mgas_per_s"]
            print(f"  {_verdict(ratio >= EXECUTE_VS_GETH_MIN)}  execute {workload}: revm {revm['mgas_per_s']:.1f} "
                  f"Mgas/s = {ratio:.2f}× geth's {geth['mgas_per_s']:.1f} (≥ {EXECUTE_VS_GETH_MIN:g}×)")
        elif revm:
            print(f"  n/a   execute {workload}: no geth figure in this run (quick mode, or geth not built)")


OBSERVER_GROUP = "eth observer NewPooledTransactionHashes 64"
OBSERVER_UNWATCHED_MAX = 1.10  # an unwatched bus costs the wire layer at most 10% (one lookup per message)


def print_observer(groups: dict[str, dict[str, float]]) -> None:
    g = groups.get(OBSERVER_GROUP, {})
    if "no-bus" not in g:
        return
    print(f"\n{OBSERVER_GROUP}, against no bus:")
    for impl in ("unwatched", "watched-announcements", "watched-all-messages"):
        if impl in g:
            print(f"  {impl}: {g[impl] / g['no-bus']:.2f}×")


def print_targets(groups: dict[str, dict[str, float]], data: dict | None = None) -> None:
    print("\ntargets:")
    for group, impl, items, limit in RLP_TARGETS:
        if impl in groups.get(group, {}):
            per_item = groups[group][impl] / items
            unit = " per item" if items > 1 else ""
            verdict = "PASS" if per_item <= limit else "MISS"
            print(f"  {verdict}  {group} [{impl}]: {_fmt(per_item)}{unit} (target ≤ {_fmt(limit)})")
    filt, look = groups.get("known cache filter 4096 packed hashes", {}), groups.get("known cache single lookup", {})
    if "compiled" in filt:
        per_hash = filt["compiled"] / 4096
        print(f"  {'PASS' if per_hash <= 5 else 'MISS'}  known cache filter [compiled]: {per_hash:.1f} ns/hash (≤ 5)")
    if "compiled" in look and "python-set" in look:
        ratio = look["compiled"] / look["python-set"]
        print(f"  {'PASS' if ratio <= 1.5 else 'MISS'}  known cache single lookup: {ratio:.2f}× a Python set (≤ 1.5×)")
    for name, g in sorted(groups.items()):
        if name.startswith("rlp ") and name.endswith(" typed") and "compiled" in g and "rusty" in g:
            ratio = g["rusty"] / g["compiled"]
            print(f"  {'PASS' if ratio >= 3 else 'MISS'}  {name}: rusty-rlp/compiled {ratio:.1f}× (≥ 3×)")
    obs = groups.get(OBSERVER_GROUP, {})
    if "no-bus" in obs and "unwatched" in obs:
        ratio = obs["unwatched"] / obs["no-bus"]
        verdict = "PASS" if ratio <= OBSERVER_UNWATCHED_MAX else "MISS"
        print(f"  {verdict}  eth observer events unwatched: {ratio:.2f}× no bus (≤ {OBSERVER_UNWATCHED_MAX}×)")
    print_rlpx_targets(groups, data or {})
    print_discv5(groups)
    print_execute_targets(data or {})


def print_rpc_wrk(data: dict) -> None:
    """wrk's requests/s per JSON-RPC case, ethnode against geth in this run."""
    rates: dict[str, dict[str, dict]] = defaultdict(dict)
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if "case" in info and "ethnode" in info and "geth" in info:
            rates[info["case"]] = {"ethnode": info["ethnode"], "geth": info["geth"]}
    if not rates:
        return
    print("\n  JSON-RPC over HTTP under wrk (keep-alive, both nodes up, runs alternating, median run):")
    for case in sorted(rates):
        ours, geth = rates[case].get("ethnode"), rates[case].get("geth")
        if ours is None or geth is None:
            continue
        ratio = ours["req_per_s"] / geth["req_per_s"]
        print(f"  {_verdict(ratio >= RPC_VS_GETH_MIN)}  {case}: ethnode {ours['req_per_s']:.0f} req/s "
              f"(p50 {ours['p50_ms']:.2f} ms, CPU {ours['node_cpu_share']:.2f}) = {ratio:.2f}× geth's "
              f"{geth['req_per_s']:.0f} (p50 {geth['p50_ms']:.2f} ms, CPU {geth['node_cpu_share']:.2f}) "
              f"(≥ {RPC_VS_GETH_MIN:g}×)")
        if ours["node_cpu_share"] > 0 and geth["node_cpu_share"] > 0:  # ethnode serves on one core, geth on all
            per_cpu = (ours["req_per_s"] / ours["node_cpu_share"]) / (geth["req_per_s"] / geth["node_cpu_share"])
            print(f"  info  {case} per node CPU-second: ethnode {ours['req_per_s'] / ours['node_cpu_share']:.0f}, "
                  f"geth {geth['req_per_s'] / geth['node_cpu_share']:.0f} ({per_cpu:.2f}×)")


def print_rpc_fanout(data: dict) -> None:
    """newHeads to 100 WebSockets after a tx: ethnode's times against geth's, same run."""
    rows = {b["extra_info"]["client"]: b["extra_info"] for b in data.get("benchmarks", [])
            if "fanout_clients" in b.get("extra_info", {})}
    if "ethnode" not in rows or "geth" not in rows:
        return
    ours, geth = rows["ethnode"], rows["geth"]
    print(f"\n  newHeads fan-out to {ours['fanout_clients']} WebSockets, tx sent -> block heard (median of rounds):")
    for key in ("first_ms", "median_ms", "last_ms"):
        print(f"  info  {key[:-3]}: ethnode {ours[key]:.1f} ms, geth {geth[key]:.1f} ms "
              f"(ethnode/geth {ours[key] / geth[key]:.2f}×)")


DISCV5_PING_GROUP = "discv5 handle ping in a session (unmask, decrypt, decode, seal+send pong)"


def print_discv5(groups: dict[str, dict[str, float]]) -> None:
    """discv5 PINGs answered per second in a session, compiled crypto against its pure twin."""
    g = groups.get(DISCV5_PING_GROUP, {})
    if "compiled" in g and "pure" in g:
        print(f"  info  discv5 pings answered/s: compiled {1e9 / g['compiled']:,.0f}, pure {1e9 / g['pure']:,.0f} "
              f"({g['pure'] / g['compiled']:.2f}× faster compiled)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="bench files (default: every benches/bench_*.py)")
    ap.add_argument("--quick", action="store_true", help="few rounds, for CI")
    ap.add_argument("--expect-compiled", action="store_true",
                    help="fail if a compiled backend is unavailable or its benchmarks were skipped")
    ap.add_argument("--json", type=Path, help="also save the raw pytest-benchmark JSON here")
    args, extra = ap.parse_known_args()
    files = [Path(f).name for f in args.files] or sorted(p.name for p in HERE.glob("bench_*.py"))
    code, data = run(files, args.quick, extra)
    if any((b.get("group") or "").startswith(STREAM_GROUP) for b in data["benchmarks"]):
        data["geth_throughput"] = measure_geth(args.quick)
    if args.json:
        args.json.write_text(json.dumps(data))
    groups = table(data)
    print_table(groups)
    extra = per_item(data)
    if extra:
        print("\nper item / memory:")
        print("\n".join(extra))
    print_execute(data)
    print_rpc_wrk(data)
    print_rpc_fanout(data)
    print_observer(groups)
    print_targets(groups, data)
    if code != 0:
        print(f"benchmark run failed (pytest exit {code})", file=sys.stderr)
        return 1
    if args.expect_compiled:
        import ethnode
        from ethnode._native import rust_module

        pure = {k: v.describe() for k, v in ethnode.backends().items() if v != "compiled"}
        missing = [g for g, row in groups.items()
                   if ("pure" in row and not any(i.startswith("compiled") for i in row))
                   or ("py-evm" in row and "revm" not in row)]
        if pure or rust_module()[0] is None or missing or not groups:
            print(f"compiled backend expected but not used: pure={pure} missing={missing}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
