"""``ethnode-fast crawl``: geth's nodes.json layout, the liveness score, the census, and a
crawl of a 30-node loopback network (ethnode nodes in this process, the crawler a child)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from crawl_support import NodeSpec, node_ids, start_network
from p2p_support import run_checked
from shared_support import subprocess_env

from ethnode.commands.crawl import duration
from ethnode.crawl.census import Census, client_name_version
from ethnode.crawl.crawler import Crawler
from ethnode.crawl.nodeset import GO_ZERO_TIME, NodeSet, NodeSetError
from ethnode.crawl.probe import ProbeResult
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p.discover.udp import DiscoveryTimeout
from ethnode.p2p.enode import Node
from ethnode.p2p.enr import ENR

CRAWL_BOUND = 60.0  # the whole network test, child start-up included
OTHER_CLIENT = "othercli/v2.0.0-beta/linux-amd64/go1.24"


def _signed_node(seq: int = 3) -> Node:
    key = PrivateKey.generate()
    record = ENR.create(key, seq, {"ip": bytes([127, 0, 0, 1]), "udp": 30303, "tcp": 30303})
    return Node.from_enr(record)


# -- nodes.json ------------------------------------------------------------------------------
def test_nodes_json_is_geths_layout_and_round_trips() -> None:
    node = _signed_node()
    text = json.dumps({node.id.hex(): {
        "seq": 3, "record": node.record.to_text(), "score": 2,  # type: ignore[union-attr]
        "firstResponse": "2026-12-01T10:00:00Z", "lastResponse": "2026-12-07T10:00:01Z",
        "lastCheck": "2026-12-07T10:00:01Z",
    }})
    nodes = NodeSet.from_json(json.loads(text))
    entry = nodes[node.id]
    assert entry.score == 2 and entry.seq == 3 and entry.node.tcp == 30303
    assert entry.last_check == datetime(2026, 12, 7, 10, 0, 1, tzinfo=UTC)
    assert nodes.to_json() == json.loads(text)


def test_nodes_json_zero_score_and_times_as_go_writes_them() -> None:
    nodes = NodeSet()
    node = _signed_node()
    nodes.add(node)
    out = nodes.to_json()[node.id.hex()]
    assert "score" not in out  # omitempty
    assert out["firstResponse"] == out["lastResponse"] == out["lastCheck"] == GO_ZERO_TIME
    assert NodeSet.from_json(nodes.to_json())[node.id].last_check is None


@pytest.mark.parametrize("mutate, message", [
    (lambda e, i: {i: {**e, "seq": 9}}, "'seq' does not match"),
    (lambda e, i: {"00" * 32: e}, "ID does not match"),
    (lambda e, i: {i: {**e, "record": "enr:xyz"}}, "invalid node"),
    (lambda e, i: {i: {**e, "lastCheck": "yesterday"}}, "invalid node"),
    (lambda e, i: [e], "JSON object"),
])
def test_nodes_json_checks_as_geth_verify(mutate, message) -> None:  # type: ignore[no-untyped-def]
    node = _signed_node()
    entry = {"seq": 3, "record": node.record.to_text()}  # type: ignore[union-attr]
    with pytest.raises(NodeSetError, match=message):
        NodeSet.from_json(mutate(entry, node.id.hex()))


# -- small parts -----------------------------------------------------------------------------
def test_duration_reads_go_syntax_and_seconds() -> None:
    assert duration("30m") == 1800
    assert duration("1h30m") == 5400
    assert duration("1.5s") == 1.5
    assert duration("250ms") == 0.25
    assert duration("12") == 12
    for bad in ("", "3q", "m", "5 s", "-1"):
        with pytest.raises(Exception, match="duration"):
            duration(bad)


def test_client_name_and_version_from_hello_client_ids() -> None:
    assert client_name_version("Geth/v1.17.10-stable-7a9c/linux-amd64/go1.24.1") == ("Geth", "v1.17.10-stable-7a9c")
    assert client_name_version("Geth/myident/v1.17.10-stable/linux-amd64/go1.24") == ("Geth", "v1.17.10-stable")
    assert client_name_version("reth/v1.9.0-abc/x86_64-unknown-linux-gnu") == ("reth", "v1.9.0-abc")
    assert client_name_version("weird") == ("weird", "(unknown)")
    assert client_name_version("") == ("(empty)", "(unknown)")


def test_rate_limiter_spaces_dials_evenly() -> None:
    """--rate N: the k-th dial waits until k/N s after the first (a lower bound: a busy machine only adds)."""
    from ethnode.crawl.crawler import RateLimiter

    async def main() -> None:
        loop = asyncio.get_running_loop()
        limiter = RateLimiter(50.0)
        start = loop.time()
        stamps = []
        for _ in range(6):
            await limiter.acquire()
            stamps.append(loop.time() - start)
        assert stamps[0] < 0.02
        assert all(t >= k * 0.02 * 0.95 for k, t in enumerate(stamps)), stamps  # k dials need k/50 s
        unlimited = RateLimiter(0)
        before = loop.time()
        for _ in range(100):
            await unlimited.acquire()
        assert loop.time() - before < 0.1

    run_checked(main, timeout=10)


class _Answers:
    """A resolver scripted per call: True answers with the node, False times out."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers

    async def request_enr(self, node: Node) -> Node:
        if self.answers.pop(0):
            return node
        raise DiscoveryTimeout("no ENRRESPONSE")


def test_score_rules_are_geths() -> None:
    """+1 per answer, halved per miss, removed at 0; a node that never answered is skipped."""
    async def main() -> None:
        silent, live = _signed_node(), _signed_node()
        dialed: list[Node] = []

        async def prober(n: Node) -> ProbeResult:
            dialed.append(n)
            return ProbeResult(error="dial: connection refused")

        crawler = Crawler(NodeSet(), _Answers([False, True, True, True, False, False]), prober,
                          bootnodes=[silent], revalidate_interval=0)
        assert await crawler.update_node(silent) == "incompatible"
        assert await crawler.update_node(live) == "added"
        assert await crawler.update_node(live) == "updated"
        assert await crawler.update_node(live) == "updated"
        assert crawler.output[live.id].score == 3
        assert await crawler.update_node(live) == "updated"  # missed: 3 // 2
        assert crawler.output[live.id].score == 1
        assert await crawler.update_node(live) == "removed"
        assert live.id not in crawler.output and live.id not in crawler.census.results
        assert dialed == [live] * 3  # dialed only after an answer
        assert crawler.stats.dial_failed == 3

    run_checked(main, timeout=10)


def test_census_counts_each_node_once_with_its_last_result() -> None:
    census = Census()
    a, b = _signed_node(), _signed_node()
    census.record(a, ProbeResult(error="dial: timeout"))
    census.record(a, ProbeResult(client_id="Geth/v1.17.10-stable/linux-amd64/go1.24", caps=["eth/69"]))
    census.record(b, ProbeResult(error="disconnected: too many peers", client_id=None))
    s = Census.from_json(json.loads(json.dumps(census.to_json()))).summary()
    assert s["nodes"] == 2 and s["ok"] == 1 and s["failed"] == 1
    assert s["clients"] == {"Geth": 1} and s["clientVersions"] == {"Geth/v1.17.10-stable": 1}
    assert s["dialErrors"] == {"disconnected: too many peers": 1}


# -- the probe, against real listeners ---------------------------------------------------------
def test_probe_reports_why_a_dial_failed() -> None:
    """Each failure is a census reason, never an exception: refused, full, and no eth to speak."""
    from geth_support import free_port
    from p2p_support import local_server

    from ethnode.crawl.probe import probe
    from ethnode.p2p.protocol import Protocol

    async def main() -> None:
        key = PrivateKey.generate()
        closed = Node(PrivateKey.generate().node_id, "127.0.0.1", 0, free_port())
        assert (await probe(closed, key, "crawler")).error == "dial: connection refused"
        full = local_server(max_peers=0)
        snap = local_server([Protocol("snap", 1, 8, lambda channel: None)], name="snaponly/v9.9.9/x")
        for server in (full, snap):
            await server.start()
        try:
            result = await probe(Node(full.node_id, "127.0.0.1", 0, full.port), key, "crawler")
            assert result.error == "disconnected: too many peers" and result.client_id is None
            result = await probe(Node(snap.node_id, "127.0.0.1", 0, snap.port), key, "crawler")
            assert result.error == "no common eth version"
            assert result.client_id == "snaponly/v9.9.9/x" and result.caps == ["snap/1"]
        finally:
            for server in (full, snap):
                await server.stop()

    run_checked(main, timeout=30)


# -- the command line ------------------------------------------------------------------------
def _crawl_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ethnode", "crawl", *args]


@pytest.mark.subprocess
def test_bad_input_is_one_fatal_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"zz": 1}')
    cases = [
        ([str(tmp_path / "n.json")], "no input nodes to start crawling"),
        ([str(bad)], "invalid node"),
        ([str(tmp_path / "n.json"), "--bootnodes", "enode://abc@1.2.3.4:1"], "invalid bootnode"),
        ([str(tmp_path / "n.json"), "--nodekeyhex", "zz", "--bootnodes", "x"], "invalid node key"),
    ]
    for args, message in cases:
        done = subprocess.run(_crawl_cmd(*args), capture_output=True, text=True, timeout=30, env=subprocess_env())
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1, done.stderr
        assert len(lines) == 1 and lines[0].startswith("Fatal: ") and message in lines[0], done.stderr


# -- a real crawl ----------------------------------------------------------------------------
async def _run_crawl(nodes: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *_crawl_cmd(str(nodes), "--addr", "127.0.0.1:0", "--rate", "0", "--log-interval", "1s", *args),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=subprocess_env())
    try:
        _, err = await asyncio.wait_for(proc.communicate(), CRAWL_BOUND)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, err.decode()


@pytest.mark.slow
@pytest.mark.subprocess
def test_crawl_finds_every_node_of_a_30_node_loopback_network(tmp_path: Path) -> None:
    specs = [NodeSpec(1337) for _ in range(20)] + [NodeSpec(4242, (68,), OTHER_CLIENT) for _ in range(10)]
    nodes_file = tmp_path / "nodes.json"

    async def main() -> tuple[dict, dict, set[str], str, str, str]:  # type: ignore[type-arg]
        net = await start_network(specs)
        try:
            rc, log = await _run_crawl(nodes_file, "--bootnodes", net.bootnode_url, "--timeout", "50s",
                                       "--idle", "3s")
            assert rc == 0, log
            nodes = json.loads(nodes_file.read_text())
            census = json.loads((tmp_path / "nodes.census.json").read_text())
            # resumed: the same files read back, every node checked moments ago (geth's 10 min rule)
            rc2, log2 = await _run_crawl(nodes_file, "--timeout", "30s", "--idle", "1s")
            assert rc2 == 0, log2
            return nodes, census, node_ids(net), net.bootnode.local.id.hex(), log, log2
        finally:
            await net.stop()

    nodes, census, ids, boot_id, log, log2 = run_checked(main, timeout=2 * CRAWL_BOUND + 20)
    assert set(nodes) == ids | {boot_id}, (census["summary"], log)
    for entry in nodes.values():
        assert entry["record"].startswith("enr:") and entry["score"] >= 1
        assert entry["lastResponse"] == entry["lastCheck"] != GO_ZERO_TIME
        assert ENR.from_text(entry["record"]).seq == entry["seq"]
    summary = census["summary"]
    assert summary["nodes"] == 31 and summary["ok"] == 30, census
    assert summary["dialErrors"] == {"no TCP endpoint": 1}  # the discovery-only bootnode
    assert summary["networkIds"] == expected_networks(specs)
    assert summary["clients"] == {"ethnode": 20, "othercli": 10}
    assert summary["clientVersions"]["othercli/v2.0.0-beta"] == 10
    assert summary["capabilities"]["eth/68"] == 30 and summary["capabilities"]["eth/69"] == 20
    assert len(summary["forkIds"]) == 1 and sum(summary["forkIds"].values()) == 30
    assert {n["eth"] for n in census["nodes"].values() if n["dial"] == "ok"} == {68, max(specs[0].versions)}
    assert "Crawling in progress" in log
    # the resumed run kept every node and re-checked none of them
    assert json.loads(nodes_file.read_text()) == nodes
    assert "ignored(recent)=0 " not in log2.splitlines()[-2], log2


@pytest.mark.slow
@pytest.mark.subprocess
def test_crawl_walks_discv5_with_v5(tmp_path: Path) -> None:
    """Nodes that run discv5 alone are found only when the crawl walks discv5 too (``--v5``)."""
    specs = [NodeSpec(1337) for _ in range(4)] + [NodeSpec(1337, v4=False) for _ in range(4)]

    async def main() -> tuple[dict, dict, set[str], set[str], str]:  # type: ignore[type-arg]
        net = await start_network(specs)
        try:
            v4_only = tmp_path / "v4.json"
            rc, log = await _run_crawl(v4_only, "--bootnodes", net.bootnode_url, "--timeout", "40s", "--idle", "3s")
            assert rc == 0, log
            both = tmp_path / "v5.json"
            rc, log = await _run_crawl(both, "--v5", "--bootnodes", net.bootnode_url, "--timeout", "40s",
                                       "--idle", "3s")
            assert rc == 0, log
            v5_ids = {keccak256(s.node_id).hex() for s, spec in zip(net.servers, net.specs, strict=True) if not spec.v4}
            return (json.loads(v4_only.read_text()), json.loads(both.read_text()), node_ids(net), v5_ids, log)
        finally:
            await net.stop()

    found_v4, found_both, ids, v5_ids, log = run_checked(main, timeout=2 * CRAWL_BOUND + 20)
    assert not v5_ids & set(found_v4) and set(found_v4) >= ids - v5_ids
    assert set(found_both) >= ids, log
    census = json.loads((tmp_path / "v5.census.json").read_text())["summary"]
    assert census["ok"] == 8, census


def expected_networks(specs: list[NodeSpec]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in specs:
        counts[str(s.network_id)] = counts.get(str(s.network_id), 0) + 1
    return counts


@pytest.mark.interop
@pytest.mark.subprocess
def test_crawl_finds_and_greets_a_geth_node(tmp_path: Path) -> None:
    """geth v1.17.10 joins the loopback network through the same bootnode; the crawler finds it,
    gets its record, and the census names its client, version and (mainnet-genesis) network."""
    from geth_support import start_geth, stop_geth
    from gethtools import GETH_VERSION, require_geth_tools

    geth_bin = require_geth_tools()
    specs = [NodeSpec(1337) for _ in range(5)]
    nodes_file = tmp_path / "nodes.json"

    async def main() -> tuple[dict, str, str]:  # type: ignore[type-arg]
        net = await start_network(specs)
        geth = None
        try:
            loop = asyncio.get_running_loop()
            geth = await loop.run_in_executor(None, lambda: start_geth(
                geth_bin, tmp_path / "geth", "--bootnodes", net.bootnode_url, discovery=True, network_id=4321))
            rc, log = await _run_crawl(nodes_file, "--bootnodes", net.bootnode_url, "--timeout", "40s",
                                       "--idle", "3s")
            assert rc == 0, log
            return json.loads((tmp_path / "nodes.census.json").read_text()), geth.key.node_id.hex(), log
        finally:
            if geth is not None:
                await asyncio.get_running_loop().run_in_executor(None, stop_geth, geth.proc)
            await net.stop()

    census, geth_pubkey, log = run_checked(main, timeout=CRAWL_BOUND + 40)
    (entry,) = [n for n in census["nodes"].values() if geth_pubkey in n["enode"]]
    assert entry["dial"] == "ok" and entry["client"].startswith(f"Geth/{GETH_VERSION}"), (entry, log)
    assert entry["networkId"] == 4321 and entry["eth"] >= 69
    summary = census["summary"]
    assert summary["clients"] == {"ethnode": 5, "Geth": 1}, summary
    assert summary["networkIds"] == {"1337": 5, "4321": 1}
    assert len(summary["genesis"]) == 2
