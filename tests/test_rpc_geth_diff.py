"""Answers as geth's: geth v1.17.10 and ethnode hold the same executed chain and get the same
JSON-RPC requests over HTTP; every reply must match after JSON parsing (the result, or the
error's code, message and data).

Two chains (``CHAINS``): ../shared's v1.17.5 eth-test chain (Prague, 600 blocks; both
engines execute it) and v1.17.10's from geth's module testdata (Osaka at 18, Amsterdam from
36; executed by revm, so it needs the compiled engine). geth imports each as an archive
node (``--state.scheme hash --gcmode archive``) so that it, like ethnode, answers state
queries at every block. The requests are ``rpcdiff_support.cases``: every method both
serve, at several blocks, and the error cases.

``EXCLUDED`` methods answer differently by design; ``UNCOMPARABLE`` cases depend on the
wall clock or the miner; ``KNOWN`` are differences found and not yet fixed, each with the
reason. A known difference that disappears fails the test, so the list cannot go stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from geth_support import ethtest_testdata
from gethtools import GETH_VERSION, require_geth_tools
from rpcdiff_support import (
    Case,
    EthnodeHTTP,
    GethHTTP,
    ask_all,
    cases,
    differences,
    prepare_ethnode,
    prepare_geth,
)
from shared_support import shared_path
from tracediff_support import trace_cases

pytestmark = [pytest.mark.interop, pytest.mark.subprocess, pytest.mark.timeout(600)]

ARCHIVE_INIT = ("--state.scheme", "hash")
ARCHIVE = ("--gcmode", "archive")

# Cases whose answer depends on the wall clock or the miner, not on the chain.
UNCOMPARABLE = {
    "block pending full=False": "geth builds a pending block on the head (timestamp now, hash null); "
                                "ethnode answers the head for 'pending'",
    "block pending full=True": "as above",
    "fee history pending": "geth's range ends at its pending block (see above)",
}

# Differences found and not fixed here: (chain, case name) -> why.
KNOWN = {
    ("v1.17.10", "call gas too low"): "Amsterdam EIP-2780 intrinsic gas (15000 base for a call) is not in "
                                     "ethnode's pre-call checks (core/execution/precheck.py)",
    ("v1.17.10", "estimate callenv"): "Amsterdam EIP-2780 intrinsic gas in revm 43's call path",
    ("v1.17.10", "estimate no to"): "Amsterdam state-creation gas (EIP-8037) in revm 43's call path",
    ("v1.17.10", "estimate history contract"): "Amsterdam intrinsic and calldata-floor gas (EIP-2780 and its "
                                                "floor) in ethnode's estimator checks: geth 17539, ethnode refuses "
                                                "below the Prague floor of 21380",
    ("v1.17.10", "access list no to"): "as 'estimate no to' (EIP-8037 state-creation gas)",
    ("v1.17.10", "access list gas too low"): "as 'call gas too low' (EIP-2780 intrinsic gas)",
    ("v1.17.10", "access list invalid opcode"): "Amsterdam EIP-8037: geth caps a tx's execution gas at 2^24 "
                                                "(the rest is the state-gas reservoir), eth_call excepted; "
                                                "revm 43 spends the whole gas limit",
    **{("v1.17.10", f"estimate {name}"): "as 'estimate callenv' (EIP-2780 intrinsic gas), with overrides"
       for name in ("override code balance", "override state diff", "override state", "block override context",
                    "block override free context", "block override blob base fee", "override code on precompile",
                    "override move precompile", "override moved precompile source", "override call moved precompile",
                    "block override large blob base fee", "block override large base fee",
                    "block override difficulty", "override field case", "block override field case")},
    **{(chain, f"{method} block override {name}"): "the engines' block context holds a 64-bit number and base fee "
       "and a 128-bit blob base fee: ethnode refuses larger overrides (geth takes any 256-bit value)"
       for chain in ("v1.17.5", "v1.17.10") for method in ("call", "estimate")
       for name in ("huge number", "huge base fee", "huge blob base fee")},
    **{(chain, "estimate block override time back"): "geth v1.17.10's handler panics on it ('method handler "
       "crashed'); ethnode estimates" for chain in ("v1.17.5", "v1.17.10")},
}


@dataclass(frozen=True)
class Chain:
    label: str
    testdata: Path


def _chain(label: str) -> Chain:
    if label == "v1.17.5":
        return Chain(label, shared_path("chains", "ethtest", "chain.rlp").parent)
    from ethnode.core.execution import compiled_engine_error

    if compiled_engine_error() is not None:
        pytest.skip("the v1.17.10 chain schedules Osaka/Amsterdam: only the compiled engine (revm) executes it")
    return Chain(label, ethtest_testdata(GETH_VERSION))


@pytest.fixture(params=["v1.17.5", "v1.17.10"], scope="module")
def nodes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Chain, GethHTTP, EthnodeHTTP]]:
    """geth and ethnode serving HTTP over the same imported chain."""
    chain = _chain(request.param)
    geth_bin = require_geth_tools() / "geth"
    tmp = tmp_path_factory.mktemp(f"rpcdiff-{chain.label}")
    prepare_geth(geth_bin, chain.testdata, tmp / "geth", init_flags=ARCHIVE_INIT, import_flags=ARCHIVE)
    prepare_ethnode(chain.testdata, tmp / "ethnode")
    geth = GethHTTP(geth_bin, tmp / "geth", *ARCHIVE)
    try:
        ours = EthnodeHTTP(tmp / "ethnode")
        try:
            yield chain, geth, ours
            assert ours.run.proc.poll() is None, ours.run.output[-3000:]
            assert "Traceback" not in ours.run.output, ours.run.output[-5000:]
        finally:
            ours.stop()
    finally:
        geth.stop()


def test_ethnode_answers_as_geth(nodes: tuple[Chain, GethHTTP, EthnodeHTTP]) -> None:
    chain, geth, ours = nodes
    all_cases = cases(chain.testdata, geth.url)
    compared = [c for c in all_cases if c.name not in UNCOMPARABLE]
    want, got = ask_all(geth.url, compared), ask_all(ours.url, compared)
    found = differences(compared, want, got)
    known = {name for (label, name) in KNOWN if label == chain.label}
    unexpected = [d for d in found if d.split(":", 1)[0] not in known]
    fixed = known - {d.split(":", 1)[0] for d in found}
    print(f"\n{chain.label}: {len(compared)} requests compared, {len(found)} differ "
          f"({len(found) - len(unexpected)} known), {len(all_cases) - len(compared)} not comparable")
    assert not unexpected, f"{len(unexpected)} of {len(compared)} replies differ from geth's:\n" + "\n".join(unexpected)
    assert not fixed, f"known differences no longer differ (remove them from KNOWN): {sorted(fixed)}"
    # The comparison is not vacuous: most requests found something, and errors were compared too.
    results = [w for w in want if "result" in w and w["result"] not in (None, [], False)]
    errors = [w for w in want if "error" in w]
    assert len(results) > len(compared) // 2 and len(errors) >= 40, (len(results), len(errors))


# Trace differences found and not fixed here: (chain, case name) -> why.
KNOWN_TRACES: dict[tuple[str, str], str] = {
    (label, "trace struct logger"): "geth's default tracer, the struct logger (logger.Config: disableStorage, "
                                    "disableStack, enableMemory, enableReturnData, limit), is not implemented: "
                                    "ethnode answers that it serves callTracer and prestateTracer only"
    for label in ("v1.17.5", "v1.17.10")
}


def test_traces_as_geths(nodes: tuple[Chain, GethHTTP, EthnodeHTTP]) -> None:
    """debug_trace* with geth's callTracer and prestateTracer: blocks of every kind of tx the chain
    holds, single txs, debug_traceCall of a probe that enters every kind of frame, and the errors."""
    chain, geth, ours = nodes
    asked = trace_cases(chain.testdata, geth.url)
    want, got = ask_all(geth.url, asked), ask_all(ours.url, asked)
    found = differences(asked, want, got)
    known = {name for (label, name) in KNOWN_TRACES if label == chain.label}
    unexpected = [d for d in found if d.split(":", 1)[0] not in known]
    fixed = known - {d.split(":", 1)[0] for d in found}
    print(f"\n{chain.label}: {len(asked)} trace requests compared, {len(found)} differ "
          f"({len(found) - len(unexpected)} known)")
    assert not unexpected, f"{len(unexpected)} of {len(asked)} traces differ from geth's:\n" + "\n".join(unexpected)
    assert not fixed, f"known differences no longer differ (remove them from KNOWN_TRACES): {sorted(fixed)}"
    # Not vacuous: traces with inner calls, reverts with reasons, storage in prestates, and errors.
    text = json.dumps(want)
    assert text.count('"calls"') >= 2 and '"revertReason": "user error"' in text and '"storage"' in text, text[:500]
    assert '"post"' in text and sum("error" in w for w in want) >= 8


def test_uncomparable_cases_still_answer(nodes: tuple[Chain, GethHTTP, EthnodeHTTP]) -> None:
    """The wall-clock cases are not compared, but both answer them with a result."""
    chain, geth, ours = nodes
    pending = [c for c in cases(chain.testdata, geth.url) if c.name in UNCOMPARABLE]
    assert len(pending) == len(UNCOMPARABLE)
    for reply in ask_all(geth.url, pending) + ask_all(ours.url, pending):
        assert "result" in reply and reply["result"], json.dumps(reply)[:300]


def test_eth_config_with_forks_ahead(tmp_path: Path) -> None:
    """eth_config's ``next`` and ``last`` need forks still ahead of the head: the v1.17.5 chain's
    genesis alone (head time 0: Shanghai now, Cancun at 60, Prague at 120) with Osaka, BPO1 and
    Amsterdam scheduled far ahead, on both nodes after ``init`` only."""
    genesis = json.loads(shared_path("chains", "ethtest", "genesis.json").read_text())
    genesis["config"].update(osakaTime=4_000_000_000, bpo1Time=4_100_000_000, amsterdamTime=4_200_000_000)
    genesis["config"]["blobSchedule"].update(osaka={"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716},
                                             bpo1={"target": 10, "max": 15, "baseFeeUpdateFraction": 8346193})
    testdata = tmp_path / "testdata"
    testdata.mkdir()
    (testdata / "genesis.json").write_text(json.dumps(genesis))
    geth_bin = require_geth_tools() / "geth"
    prepare_geth(geth_bin, testdata, tmp_path / "geth", init_flags=ARCHIVE_INIT, import_flags=None)
    prepare_ethnode(testdata, tmp_path / "ethnode", import_chain=False)
    geth = GethHTTP(geth_bin, tmp_path / "geth", *ARCHIVE)
    try:
        ours = EthnodeHTTP(tmp_path / "ethnode")
        try:
            asked = [Case("config", "eth_config", []), Case("genesis", "eth_getBlockByNumber", ["latest", True]),
                     Case("proof", "eth_getProof", [json_address(genesis), ["0x0"], "latest"])]
            want, got = ask_all(geth.url, asked), ask_all(ours.url, asked)
            assert differences(asked, want, got) == [], differences(asked, want, got)
            config = want[0]["result"]
            assert config["current"]["activationTime"] == 0 and config["next"]["activationTime"] == 60
            assert config["last"]["activationTime"] == 4_200_000_000, config["last"]
        finally:
            ours.stop()
    finally:
        geth.stop()


def json_address(genesis: dict) -> str:  # type: ignore[type-arg]
    """A funded account of the genesis (any will do for a proof)."""
    return "0x" + sorted(genesis["alloc"])[-1].removeprefix("0x")
