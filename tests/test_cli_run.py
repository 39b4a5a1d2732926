"""``ethnode-fast run``, ``key generate`` and ``enode``: as a user (and geth's tooling) sees them.

Real processes where the process is the point (signals, exit status, the datadir lock,
ports in use); in-process ``main()`` calls for flag and config-file checks, which never
get as far as starting anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_support import (
    ENODE_LINE,
    EXIT_BOUND,
    HOST,
    RunProcess,
    child_env,
    cli_command,
    start_run_command,
    stop_run_command,
)
from p2p_support import RawPeer, reason_of, run_checked

from ethnode.cli import main
from ethnode.commands.node import RunSettings, apply_flags, load_toml
from ethnode.crypto.keys import PrivateKey, load_private_key
from ethnode.p2p.config import ServerConfig
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.enode import parse_enode
from ethnode.p2p.peer import DISCONNECT
from ethnode.p2p.protocol import Capability
from ethnode.p2p.server import Server

TINY_GENESIS = {
    "config": {"chainId": 4242, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0,
               "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0, "istanbulBlock": 0,
               "berlinBlock": 0, "londonBlock": 0, "terminalTotalDifficulty": 0, "shanghaiTime": 0},
    "difficulty": "0x0", "gasLimit": "0x1c9c380", "alloc": {},
}


@pytest.mark.subprocess
def test_run_without_a_chain_runs_p2p_only_unless_eth_is_asked_for(tmp_path: Path) -> None:
    """A fresh datadir still gives a reachable node (p2p only, one warning line), as issue checks expect."""
    cmd = [sys.executable, "-m", "ethnode", "run", "--datadir", str(tmp_path), "--port", "0", "--listenaddr", HOST,
           "--nodiscover", "--authrpc.port", "0"]  # no --eth.versions: cli_command() is bypassed on purpose
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=child_env())
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "enode://" in line:
                break
        assert any("running p2p only" in ln and "ethnode-fast init" in ln for ln in lines), lines
        assert any("enode://" in ln for ln in lines), lines
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


@pytest.mark.subprocess
def test_run_with_eth_needs_init_then_serves(tmp_path: Path) -> None:
    """With the eth service (the default), `run` wants a chain: one clear line, then works after init."""
    base = ["run", "--datadir", str(tmp_path), "--port", "0", "--listenaddr", HOST, "--nodiscover",
            "--authrpc.port", "0", "--eth.versions", "69,68"]
    done = subprocess.run(cli_command(*base), capture_output=True, text=True, env=child_env(), timeout=30)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Fatal: ") and "ethnode-fast init" in last and "Traceback" not in done.stderr
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(TINY_GENESIS))
    init = subprocess.run(cli_command("init", str(genesis), "--datadir", str(tmp_path)),
                          capture_output=True, text=True, env=child_env(), timeout=30)
    assert init.returncode == 0, init.stderr
    run = RunProcess(base[1:])
    try:
        run.wait_for_line(ENODE_LINE)
    finally:
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0, run.output
    assert "Traceback" not in run.output


@pytest.mark.subprocess
def test_run_serves_hello_and_stops_on_sigint(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    run, enode = start_run_command("--nodiscover", "--nodekeyhex", key.to_hex(), "--identity", "probe",
                                   datadir=tmp_path)
    try:
        assert parse_enode(enode).pubkey == key.node_id
        assert sum("enode://" in line for line in run.lines) == 1, run.output  # one line, as geth

        async def scenario() -> None:
            node = Server(PrivateKey.generate(), ServerConfig(listen_addr=None, no_discovery=True))
            await node.start()
            try:
                peer = await node.dial(enode)
                hello = await asyncio.wait_for(peer.wait_ready(), 5)
                assert hello.client_name.startswith("ethnode/probe/v")
            finally:
                await node.stop()
            assert peer.reason is DiscReason.QUITTING  # our own stop

        run_checked(scenario)
    finally:
        code, out = stop_run_command(run, signal.SIGINT)
    assert code == 0, out
    assert "Traceback" not in out


@pytest.mark.subprocess
def test_sigterm_sends_quitting_to_every_peer_and_exits_within_5s(tmp_path: Path) -> None:
    run, enode = start_run_command(datadir=tmp_path)  # discovery on, as by default
    node = parse_enode(enode)
    elapsed: list[float] = []

    async def scenario() -> list[list[tuple[int, Any]]]:
        peers = [await RawPeer.connect(HOST, node.tcp, node.pubkey) for _ in range(3)]
        for raw in peers:
            await raw.exchange_hello([Capability("les", 4)])
        loop = asyncio.get_running_loop()
        stopping = loop.run_in_executor(None, run.stop, signal.SIGTERM, 10.0)
        got = await asyncio.gather(*(raw.read_until_eof(EXIT_BOUND, pong=True) for raw in peers))
        for raw in peers:
            raw.close()
        code, took = await stopping
        assert code == 0, run.output
        elapsed.append(took)
        return list(got)

    try:
        messages = run_checked(scenario)
    finally:
        run.stop(signal.SIGKILL)
    for got in messages:
        assert reason_of(got) == DiscReason.QUITTING, got
        assert got[-1][0] == DISCONNECT
    assert elapsed[0] < EXIT_BOUND, f"exit took {elapsed[0]:.1f} s"
    assert "Traceback" not in run.output


@pytest.mark.subprocess
def test_enode_is_stable_across_restarts_and_key_is_private(tmp_path: Path) -> None:
    enodes = []
    for _ in range(2):
        run, enode = start_run_command("--nodiscover", datadir=tmp_path)
        enodes.append(parse_enode(enode).pubkey)
        assert stop_run_command(run)[0] == 0
    assert enodes[0] == enodes[1]
    keyfile = tmp_path / "ethnode" / "nodekey"
    assert keyfile.stat().st_mode & 0o777 == 0o600
    assert load_private_key(keyfile).node_id == enodes[0]


@pytest.mark.subprocess
def test_second_instance_on_a_datadir_is_refused_at_once(tmp_path: Path) -> None:
    run, _ = start_run_command("--nodiscover", datadir=tmp_path)
    try:
        start = time.monotonic()
        done = subprocess.run(cli_command("run", "--datadir", str(tmp_path), "--port", "0", "--listenaddr", HOST),
                              capture_output=True, text=True, env=child_env(), timeout=30)
        took = time.monotonic() - start
    finally:
        code, out = stop_run_command(run)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"Fatal: datadir already used by another process: {tmp_path}"
    assert "enode://" not in done.stderr and "Traceback" not in done.stderr
    assert took < 10
    assert code == 0, out


@pytest.mark.subprocess
def test_dev_on_a_locked_datadir_is_refused_before_its_database_is_opened(tmp_path: Path) -> None:
    from ethnode.node.datadir import DatadirLock

    lock = DatadirLock(tmp_path)
    lock.acquire()  # as a running node holds it
    try:
        args = cli_command("run", "--dev", "--datadir", str(tmp_path), "--port", "0", "--listenaddr", HOST)
        done = subprocess.run(args, capture_output=True, text=True, env=child_env(), timeout=30)
    finally:
        lock.release()
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"Fatal: datadir already used by another process: {tmp_path}"
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LOCK"]  # no chain database, no dev key written


@pytest.mark.subprocess
def test_port_in_use_and_bad_key_file_give_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "badkey"
    bad.write_text("not hex at all\n")
    done = subprocess.run(cli_command("run", "--datadir", str(tmp_path / "a"), "--nodekey", str(bad)),
                          capture_output=True, text=True, env=child_env(), timeout=30)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "invalid node key" in done.stderr
    run, enode = start_run_command("--nodiscover", datadir=tmp_path / "b")
    try:
        port = str(parse_enode(enode).tcp)
        done = subprocess.run(cli_command("run", "--datadir", str(tmp_path / "c"), "--port", port, "--listenaddr", HOST,
                                   "--nodiscover"), capture_output=True, text=True, env=child_env(), timeout=30)
    finally:
        stop_run_command(run)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Fatal: could not listen on") and "TCP" in last, done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------
# Flags and config files (in-process: they fail before anything starts)


def test_flag_validators_are_shared() -> None:
    """One reading of a number, a port, a list, whichever flag carries it (numbers as geth's flags: 0x.. too)."""
    import argparse

    from ethnode.cli import build_parser
    from ethnode.commands.flags import validators

    assert validators.non_negative_int("0x10") == 16 and validators.non_negative_int("7") == 7
    assert validators.port("0") == 0 and validators.port("65535") == 65535
    for bad in ("-1", "65536", "0x10"):
        with pytest.raises(argparse.ArgumentTypeError):
            validators.port(bad)
    assert validators.split_and_trim(" a, b,,c ,") == ["a", "b", "c"]
    args = build_parser().parse_args(["run", "--maxpeers", "0x20", "--dev.period", "0x3",
                                      "--http.api", "eth, net,,eth"])
    assert (args.maxpeers, args.dev_period, args.http_api) == (32, 3, ("eth", "net"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodekey", "/nonexistent/nodekey"], "No such file"),
        (["--nodekeyhex", "zz"], "invalid node key"),
        (["--nodekeyhex", "00" * 32], "invalid node key"),
        (["--nodekeyhex", "11" * 32, "--nodekey", "x"], "mutually exclusive"),
        (["--port", "70000"], "invalid --port"),
        (["--discovery.port", "-1"], "invalid --discovery.port"),
        (["--port", "abc"], "invalid int value"),
        (["--maxpeers", "-3"], "must be >= 0"),
        (["--maxpeers", "many"], "not a number"),
        (["--dev.period", "-1"], "must be >= 0"),
        (["--http.port", "65536"], "port out of range"),
        (["--metrics.port", "x"], "not a port number"),
        (["--no-such-flag"], "unrecognized arguments"),
        (["--identity", "x" * 3000], "invalid --identity"),
        (["--bootnodes", "enode://zz@127.0.0.1:1"], "invalid bootnode"),
        (["--netrestrict", "10.0.0.0/8,nonsense"], "invalid --netrestrict"),
        (["--nat", "upnp:x"], "invalid --nat"),
        (["--nat", "upnp"], "upnp port mapping is not implemented"),  # once parsed and silently inert
        (["--nat", "teleport"], "unknown mechanism"),
        (["--nodiscover", "--discovery.v5"], "Flags --discovery.v5, --nodiscover can't be used at the same time"),
        (["--discovery.v4=false", "--nodiscover"], "Flags --discovery.v4, --nodiscover can't be used"),
        (["--discovery.v4=maybe"], "invalid boolean value 'maybe'"),
        (["--listenaddr", "not-an-ip"], "invalid ListenAddr"),
        (["--config", "/nonexistent.toml"], "config file /nonexistent.toml"),
        (["--datadir", "/etc/hostname"], "not a directory"),  # once a warning, then a failure
    ],
)
def test_bad_flags_give_one_line(args: list[str], message: str, capsys: Any, tmp_path: Path) -> None:
    try:
        code = main(["run", "--datadir", str(tmp_path), *args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "LOCK").exists()  # nothing was started


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[Eth]\nNetworkId = 'one'\n", "Eth.NetworkId: expected a positive integer"),
        ("[Eth]\nSyncMode = 'light'\n", 'Eth.SyncMode: unknown sync mode "light"'),
        ("[Metrics]\nEnabled = true\n", "field 'Metrics' is not defined"),
        ("[Node]\nHTTPHost = 'x'\n", "field 'Node.HTTPHost' is not defined"),
        ("[Node.P2P]\nMaxPeerz = 3\n", "field 'Node.P2P.MaxPeerz' is not defined"),
        ("[Node.P2P]\nMaxPeers = 'ten'\n", "Node.P2P.MaxPeers: expected an integer"),
        ("[Node.P2P]\nStaticNodes = ['enode://00@1.2.3.4:5']\n", "Node.P2P.StaticNodes"),
        ("[Node.P2P]\nNetRestrict = ['10.0.0.0/33']\n", "Node.P2P.NetRestrict"),
        ("[Node.P2P\n", "invalid TOML"),
        ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deep"),  # once a RecursionError traceback
    ],
)
def test_bad_config_files_give_one_line_naming_the_key(text: str, message: str, capsys: Any,
                                                       tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    assert main(["run", "--datadir", str(tmp_path), "--config", str(config)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_config_file_then_flags_as_geth(tmp_path: Path) -> None:
    static, trusted, boot = (PrivateKey.generate().node_id.hex() for _ in range(3))
    config = tmp_path / "config.toml"
    config.write_text(
        "[Node]\n"
        f"DataDir = '{tmp_path / 'dd'}'\n"
        "UserIdent = 'fromfile'\n"
        "[Node.P2P]\n"
        "MaxPeers = 7\n"
        "MaxPendingPeers = 9\n"
        "NoDiscovery = true\n"
        "ListenAddr = '127.0.0.1:30999'\n"
        f"BootstrapNodes = ['enode://{boot}@10.0.0.1:30303']\n"
        f"StaticNodes = ['enode://{static}@10.0.0.2:30303']\n"
        f"TrustedNodes = ['enode://{trusted}@10.0.0.3:30303']\n"
        "NetRestrict = ['10.0.0.0/8', '127.0.0.0/8']\n"
        "NAT = 'extip:1.2.3.4'\n"
        "[Eth]\n"  # geth's section: what ethnode has is applied, the rest named as ignored
        "NetworkId = 12345\n"
        "SyncMode = 'snap'\n"
        "NoPruning = true\n"
        "[Eth.Miner]\n"
        "GasCeil = 60000000\n"
    )
    settings = RunSettings()
    load_toml(str(config), settings)
    assert settings.network_id == 12345 and settings.ignored == ["Eth.NoPruning", "Eth.Miner.GasCeil"]
    assert settings.notes == ["Eth.SyncMode=snap runs as full sync (ethnode has no snap sync)"]
    p2p = settings.p2p
    assert settings.datadir == str(tmp_path / "dd") and settings.identity == "fromfile"
    assert (p2p.max_peers, p2p.max_pending_peers, p2p.no_discovery) == (7, 9, True)
    assert p2p.listen_addr == "127.0.0.1:30999"
    assert [n.pubkey.hex() for n in p2p.static_nodes] == [static]
    assert [n.pubkey.hex() for n in p2p.trusted_nodes] == [trusted]
    assert [n.pubkey.hex() for n in p2p.bootnodes] == [boot]
    assert p2p.net_restrict is not None and p2p.net_restrict.contains("10.9.9.9")
    assert not p2p.net_restrict.contains("192.168.1.1")
    assert str(p2p.nat) == "extip:1.2.3.4"
    # flags win over the file
    args = _run_args("--port", "4000", "--maxpeers", "3", "--identity", "flag", "--discovery.port", "4001")
    apply_flags(args, settings)
    assert p2p.listen_addr == "127.0.0.1:4000" and p2p.disc_addr == "127.0.0.1:4001"
    assert p2p.max_peers == 3 and settings.identity == "flag"
    assert (p2p.max_dialed_conns(), p2p.max_inbound_conns()) == (1, 2)
    assert args.networkid == 12345  # from the file: no --networkid given
    flagged = _run_args("--networkid", "7")
    apply_flags(flagged, settings)
    assert flagged.networkid == 7


def _run_args(*argv: str) -> Any:
    from ethnode.cli import build_parser

    return build_parser().parse_args(["run", *argv])


def test_geth_defaults() -> None:
    args = _run_args()
    settings = RunSettings()
    apply_flags(args, settings)
    p2p = settings.p2p
    assert settings.datadir == os.path.join("~", ".ethnode")
    assert p2p.listen_addr == ":30303" and p2p.disc_addr == ""
    assert (p2p.max_peers, p2p.pending_limit(), p2p.max_dialed_conns(), p2p.max_inbound_conns()) == (50, 50, 16, 34)
    assert not p2p.no_discovery and str(p2p.nat) == "any" and args.verbosity == 3
    assert p2p.discovery_v4 and p2p.discovery_v5  # geth: both on by default, one UDP socket


@pytest.mark.parametrize(("argv", "v4", "v5"), [
    (["--discovery.v4=false"], False, True),
    (["--discv4=false", "--discovery.v5"], False, True),
    (["--discovery.v5=0"], True, False),
    (["--discovery.v4", "--discovery.v5=false"], True, False),
])
def test_discovery_version_flags(argv: list[str], v4: bool, v5: bool) -> None:
    settings = RunSettings()
    apply_flags(_run_args(*argv), settings)
    assert (settings.p2p.discovery_v4, settings.p2p.discovery_v5, settings.p2p.no_discovery) == (v4, v5, False)


# ---------------------------------------------------------------------------------------
# key generate / enode


def test_key_generate_and_enode(tmp_path: Path, capsys: Any) -> None:
    keyfile = tmp_path / "k"
    assert main(["key", "generate", str(keyfile)]) == 0
    node_id = capsys.readouterr().out.strip()
    key = load_private_key(keyfile)
    assert key.node_id.hex() == node_id
    assert keyfile.stat().st_mode & 0o777 == 0o600
    assert main(["key", "generate", str(keyfile)]) == 1  # never overwrites a key
    assert "already exists" in capsys.readouterr().err
    assert main(["enode", "--nodekey", str(keyfile)]) == 0
    assert capsys.readouterr().out.strip() == f"enode://{node_id}@127.0.0.1:30303"
    assert main(["enode", "--nodekey", str(keyfile), "--ip", "10.1.2.3", "--port", "1", "--discovery.port", "2"]) == 0
    assert capsys.readouterr().out.strip() == f"enode://{node_id}@10.1.2.3:1?discport=2"
    assert main(["key", "generate"]) == 0
    printed = capsys.readouterr().out.strip()
    assert PrivateKey.from_hex(printed).to_hex() == printed
    assert main(["enode", "--nodekey", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Fatal: node key: No such file"), err
