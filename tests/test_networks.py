"""The public networks by name (--mainnet, --sepolia, --hoodi): geth v1.17.10's genesis files,
fork IDs equal to geth's ``forkid_test.go`` vectors, and the command line joining them.

Nothing here contacts the internet: bootnodes are parsed as data, nodes run with
``--nodiscover`` on loopback.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest
from cli_support import RunProcess, child_env, cli_command

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.forkid import ForkID, new_id
from ethnode.core.genesis import Genesis
from ethnode.core.networks import HOODI, MAINNET, NETWORKS, SEPOLIA
from ethnode.p2p.config import parse_bootnode

# geth params: MainnetGenesisHash, SepoliaGenesisHash, HoodiGenesisHash
GENESIS_HASHES = {
    "mainnet": "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3",
    "sepolia": "25a5cc106eea7138acab33231d7160d69cb777ee0c2c553fcddf5138993e6dd9",
    "hoodi": "bbe312868b376a3001692a646dd2d7d1e4406380dfd86b98aa8a34d1557c971b",
}
# geth v1.17.10 core/forkid/forkid_test.go TestCreation: (head number, head time, hash, next)
FORKIDS = {
    "mainnet": [
        (0, 0, 0xFC64EC04, 1150000), (1920000, 0, 0x91D1F948, 2463000), (15050000, 0, 0xF0AFD0E3, 1681338455),
        (30000000, 1746612311, 0xC376CF8B, 1764798551), (30000000, 1764798551, 0x5167E2A6, 1765290071),
        (30000000, 1765290071, 0xCBA2A1C0, 1767747671), (50000000, 2000000000, 0x07C9462E, 0),
    ],
    "sepolia": [
        (0, 0, 0xFE3366E7, 1735371), (1735371, 0, 0xB96CBD13, 1677557088),
        (1735372, 1760427360, 0xE2AE4999, 1761017184), (1735372, 1761607008, 0x268956B6, 1791294816),
        (1735372, 1791294816, 0x6C1D9423, 0), (1735372, 2000000000, 0x6C1D9423, 0),
    ],
    "hoodi": [
        (0, 0, 0xBEF71D30, 1742999832), (123, 1742999832, 0x0929E24E, 1761677592),
        (123, 1761677592, 0xE7E0E7FF, 1762365720), (123, 2000000000, 0x23AA1351, 0),
    ],
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_genesis_hash_and_config(name: str) -> None:
    network = NETWORKS[name]
    genesis = Genesis.from_json(network.genesis_json())
    assert genesis.hash.hex() == GENESIS_HASHES[name] == network.genesis_hash.hex()
    assert network.network_id == genesis.config.chain_id
    for number, time, checksum, nxt in FORKIDS[name]:
        got = new_id(genesis.config, genesis.hash, genesis.header.time, number, time)
        assert got == ForkID(checksum.to_bytes(4, "big"), nxt), (name, number, time)


def test_allocations_and_bootnodes_are_complete() -> None:
    assert len(MAINNET.genesis_json()["alloc"]) == 8893  # geth's mainnetAllocData
    assert len(SEPOLIA.genesis_json()["alloc"]) == 15 and len(HOODI.genesis_json()["alloc"]) == 335
    for network in NETWORKS.values():
        nodes = [parse_bootnode(text) for text in network.bootnodes]  # parsed, never dialed here
        assert len(nodes) >= 8 and all(n.udp for n in nodes)
        assert network.dns.startswith("enrtree://") and network.name in network.dns
    sepolia = ChainConfig.from_json(SEPOLIA.genesis_json()["config"])
    assert sepolia.amsterdam_time == 1791294816  # 2026-10-06, scheduled in geth v1.17.10


@pytest.mark.subprocess
def test_run_sepolia_writes_its_genesis_and_refuses_another_chain(tmp_path: Path) -> None:
    datadir = tmp_path / "d"
    run = RunProcess(["--sepolia", "--datadir", str(datadir), "--nodiscover", "--nat", "none", "--port", "0",
                      "--eth.versions", "71,70,69,68",
                      "--listenaddr", "127.0.0.1", "--authrpc.port", "0"], env=child_env())
    try:
        line = run.wait_for_line(
            r"Initialised chain configuration +chain_id=([\d,]+) +network_id=([\d,]+) +genesis=0x(\w+)")
        assert line.groups() == ("11,155,111", "11,155,111", GENESIS_HASHES["sepolia"])  # geth's thousands
        assert "Writing default sepolia genesis block" in run.output
    finally:
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0, run.output
    done = subprocess.run(cli_command("run", "--hoodi", "--datadir", str(datadir), "--nodiscover", "--nat", "none"),
                          capture_output=True, text=True, env=child_env(), timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    fatal = [line for line in done.stderr.splitlines() if line.startswith("Fatal:")]
    assert len(fatal) == 1 and "holds another chain" in fatal[0] and "hoodi" in fatal[0], done.stderr
    both = subprocess.run(cli_command("run", "--sepolia", "--mainnet"), capture_output=True, text=True,
                          env=child_env(), timeout=60)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_network_flag_sets_bootnodes_and_testnet_datadir() -> None:
    import argparse

    from ethnode.commands import node as node_cmd

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    node_cmd.register(sub)
    args = parser.parse_args(["run", "--hoodi"])
    settings = node_cmd.RunSettings()
    node_cmd.apply_flags(args, settings)
    assert settings.datadir.endswith("hoodi")
    assert len(settings.p2p.bootnodes) == len(HOODI.bootnodes)
    args = parser.parse_args(["run", "--hoodi", "--bootnodes", HOODI.bootnodes[0]])
    settings = node_cmd.RunSettings()
    node_cmd.apply_flags(args, settings)
    assert len(settings.p2p.bootnodes) == 1  # --bootnodes wins, as geth's
    assert re.match(r"enr:|enode://", HOODI.bootnodes[0]) and json.dumps(HOODI.dns)
