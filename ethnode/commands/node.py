"""``run``, ``key generate`` and ``enode``: a Node with the p2p Server, and its key helpers.

    ethnode-fast run --datadir D --port P [--bootnodes URLS] [--config FILE.toml] ...
    ethnode-fast key generate [FILE]
    ethnode-fast enode --nodekey FILE

Settings come from geth's defaults, then ``--config FILE.toml`` (geth's layout:
``[Node]`` and ``[Node.P2P]``), then flags, so a flag always wins, as in geth. Static
and trusted nodes come from the TOML file only (geth 1.17 dropped the JSON files).
``run`` logs its enode URL once at start-up ("Started P2P networking self=enode://...")
and stops cleanly on SIGINT/SIGTERM, sending every peer Disconnect "client quitting".

Anything the user got wrong (a flag, a key file, a config key, a port or datadir in
use) ends the command with one ``Fatal:`` line and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sqlite3
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ethnode.commands import logformat
from ethnode.commands.flags.eth import add_eth_flags
from ethnode.commands.flags.metrics import add_metrics_flags
from ethnode.commands.flags.miner import add_miner_flags, flags_without_their_mode
from ethnode.commands.flags.network import add_network_flags
from ethnode.commands.flags.network import selected as selected_network
from ethnode.commands.flags.p2p import add_p2p_flags
from ethnode.commands.flags.rpc import add_rpc_flags, check_ipc_flags
from ethnode.commands.flags.validators import split_and_trim
from ethnode.crypto.errors import InvalidKeyError
from ethnode.crypto.keys import PrivateKey, load_private_key, save_private_key
from ethnode.errors import EthnodeError
from ethnode.logctx import kv
from ethnode.p2p.config import (
    DEFAULT_LISTEN_ADDR,
    DEFAULT_PORT,
    ConfigError,
    ServerConfig,
    join_host_port,
    parse_bootnode,
    split_host_port,
)
from ethnode.p2p.enode import Node, NodeURLError
from ethnode.p2p.nat import DEFAULT_NAT, NATError, parse_nat
from ethnode.p2p.netutil import Netlist

DEFAULT_DATADIR = os.path.join("~", ".ethnode")  # geth: ~/.ethereum
EXIT_FAILURE = 1  # geth's Fatalf exit status
_NODE_KEYS = ("DataDir", "UserIdent", "P2P")  # the [Node] keys ethnode implements


class _Fatal(Exception):
    """One line for the user; the command exits 1."""


def _fatal(message: str) -> int:
    print(f"Fatal: {message}", file=sys.stderr)
    return EXIT_FAILURE


def warn_if_slow() -> None:
    """The one start-up WARN line of ``run`` and ``import`` when compiled hot paths are missing."""
    from ethnode._native import slow_paths_warning
    from ethnode.core.execution import default_engine

    default_engine()  # records the execution backend (py-evm without revm), the slowest pure path
    message = slow_paths_warning()
    if message is not None:
        logging.getLogger("ethnode.cli").warning(message)


# -- settings ----------------------------------------------------------------------------------
@dataclass
class RunSettings:
    """What ``run`` starts: node-level settings plus the p2p ServerConfig."""

    datadir: str = DEFAULT_DATADIR
    identity: str | None = None
    p2p: ServerConfig = field(default_factory=lambda: ServerConfig(nat=parse_nat(DEFAULT_NAT)))
    network_id: int | None = None  # [Eth] NetworkId
    ignored: list[str] = field(default_factory=list)  # config fields geth has and ethnode does not use
    notes: list[str] = field(default_factory=list)  # config values ethnode applies otherwise than geth


ETH_TOML_KEYS = ("NetworkId", "SyncMode")  # the [Eth] fields ethnode applies; geth's others are named and ignored
SYNC_MODES = ("full", "snap")  # geth ethconfig.SyncMode's texts; ethnode syncs full blocks only


def _flat_keys(prefix: str, table: dict[str, Any]) -> list[str]:
    """``Eth.Miner.GasCeil`` for each leaf of a nested table, so the ignored ones are named exactly."""
    names = []
    for key, value in table.items():
        names.extend(_flat_keys(f"{prefix}.{key}", value) if isinstance(value, dict) else [f"{prefix}.{key}"])
    return names


def load_toml(path: str, settings: RunSettings) -> None:
    """Apply a geth-style TOML file; _Fatal naming the file and the key on any problem."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise _Fatal(f"config file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _Fatal(f"config file {path}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nesting level
        raise _Fatal(f"config file {path}: invalid TOML: nested too deep") from None
    for key in data:
        if key not in ("Node", "Eth"):
            raise _Fatal(f"config file {path}: field '{key}' is not defined (supported: Node, Eth)")
    eth = data.get("Eth", {})
    if not isinstance(eth, dict):
        raise _Fatal(f"config file {path}: Eth: expected a table")
    for key, value in eth.items():
        if key not in ETH_TOML_KEYS:
            settings.ignored.extend(_flat_keys(f"Eth.{key}", value) if isinstance(value, dict) else [f"Eth.{key}"])
        elif key == "SyncMode":
            if value not in SYNC_MODES:  # geth's UnmarshalText error
                raise _Fatal(f"config file {path}: Eth.SyncMode: unknown sync mode {json.dumps(value)}")
            if value != "full":
                settings.notes.append(f"Eth.SyncMode={value} runs as full sync (ethnode has no snap sync)")
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**64:
            raise _Fatal(f"config file {path}: Eth.{key}: expected a positive integer")
        else:
            settings.network_id = value
    node = data.get("Node", {})
    if not isinstance(node, dict):
        raise _Fatal(f"config file {path}: Node: expected a table")
    for key, value in node.items():
        if key not in _NODE_KEYS:
            raise _Fatal(f"config file {path}: field 'Node.{key}' is not defined (supported: {', '.join(_NODE_KEYS)})")
        if key == "P2P":
            if not isinstance(value, dict):
                raise _Fatal(f"config file {path}: Node.P2P: expected a table")
            try:
                ServerConfig.from_toml(value, base=settings.p2p)
            except ConfigError as exc:
                raise _Fatal(f"config file {path}: {exc}") from None
        elif not isinstance(value, str):
            raise _Fatal(f"config file {path}: Node.{key}: expected a string")
        elif key == "DataDir":
            settings.datadir = value
        else:
            settings.identity = value or None


def apply_flags(args: argparse.Namespace, settings: RunSettings) -> None:
    """Flags given on the command line override the file and the defaults (geth's order)."""
    p2p = settings.p2p
    network = selected_network(args)
    if network is not None:
        if args.dev:
            raise _Fatal(f"--dev and --{network.name} cannot be combined")
        from ethnode.commands.flags.network import network_datadir

        settings.datadir = network_datadir(settings.datadir, network)
        if args.bootnodes is None and not p2p.bootnodes:
            p2p.bootnodes = [parse_bootnode(text) for text in network.bootnodes]
    if args.datadir is not None:
        settings.datadir = args.datadir
    if args.networkid is None and settings.network_id is not None:
        args.networkid = settings.network_id  # the flag wins over the file, as in geth
    if args.identity is not None:
        settings.identity = args.identity
    for flag, value in (("--port", args.port), ("--discovery.port", args.discovery_port)):
        if value is not None and not 0 <= value <= 0xFFFF:
            raise _Fatal(f"invalid {flag} {value}")
    try:
        host, port = split_host_port(p2p.listen_addr or DEFAULT_LISTEN_ADDR)
    except ValueError as exc:
        raise _Fatal(f"invalid ListenAddr: {exc}") from None
    if args.listenaddr is not None:
        host = args.listenaddr
    if args.port is not None:
        port = args.port
    if args.listenaddr is not None or args.port is not None:
        p2p.listen_addr = join_host_port(host, port)
    if args.discovery_port is not None:
        p2p.disc_addr = join_host_port(host, args.discovery_port)
    if args.maxpeers is not None:
        p2p.max_peers = args.maxpeers
    if args.maxpendpeers is not None:
        p2p.max_pending_peers = args.maxpendpeers
    for flag in ("v4", "v5"):  # geth CheckExclusive(DiscoveryV4Flag, NoDiscoverFlag), and v5 likewise
        value = getattr(args, f"discovery_{flag}", None)
        if value is not None and args.nodiscover:
            raise _Fatal(f"Flags --discovery.{flag}, --nodiscover can't be used at the same time")
        if value is not None:
            setattr(p2p, f"discovery_{flag}", value)
    if args.nodiscover:
        p2p.no_discovery = True
    if args.bootnodes is not None:
        p2p.bootnodes = []
        for text in split_and_trim(args.bootnodes):
            try:
                p2p.bootnodes.append(parse_bootnode(text))
            except NodeURLError as exc:
                raise _Fatal(f"invalid bootnode {text[:40]!r}: {exc}") from None
    if args.netrestrict is not None:
        try:
            p2p.net_restrict = Netlist.parse(args.netrestrict)
        except ValueError as exc:
            raise _Fatal(f"invalid --netrestrict: {exc}") from None
    if getattr(args, "dev", False) and not getattr(args, "dev_clique", False):
        # geth --dev: a one-node chain with no p2p. Here only unless asked: --port/--listenaddr
        # open the listener, --maxpeers lets peers in, --bootnodes/--discovery.port start discovery.
        if args.port is None and args.listenaddr is None:
            p2p.listen_addr = ""
        if args.maxpeers is None:
            p2p.max_peers = 0
        if args.bootnodes is None and args.discovery_port is None:
            p2p.no_discovery = True
    if args.nat is not None:
        try:
            p2p.nat = parse_nat(args.nat)
        except NATError as exc:
            raise _Fatal(str(exc)) from None
    try:
        p2p.__post_init__()
    except ConfigError as exc:
        raise _Fatal(str(exc)) from None


def _check_key(args: argparse.Namespace) -> None:
    """Fail on a bad key before touching the datadir, as geth does while building its config."""
    if args.nodekey and args.nodekeyhex:
        raise _Fatal("Options --nodekey and --nodekeyhex are mutually exclusive")
    try:
        if args.nodekeyhex:
            PrivateKey.from_hex(args.nodekeyhex)
        elif args.nodekey:
            load_private_key(args.nodekey)
    except InvalidKeyError as exc:
        raise _Fatal(f"invalid node key: {exc}") from None
    except OSError as exc:
        raise _Fatal(f"node key: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None


# -- run ---------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    """Start a Node with the p2p Server and run until SIGINT/SIGTERM."""
    try:
        settings = RunSettings()
        if args.config:
            load_toml(args.config, settings)
        apply_flags(args, settings)
        _check_key(args)
        _check_identity(settings.identity)
        ipc_error = check_ipc_flags(args)
        if ipc_error is not None:
            raise _Fatal(ipc_error)
        if Path(settings.datadir).expanduser().exists() and not Path(settings.datadir).expanduser().is_dir():
            raise _Fatal(f"datadir {settings.datadir}: not a directory")
    except _Fatal as exc:
        return _fatal(str(exc))
    warn_if_slow()
    for line in flags_without_their_mode(args):
        logging.getLogger("ethnode.cli").warning(line)
    if settings.ignored:
        logging.getLogger("ethnode.cli").warning("Config file fields ethnode does not use were ignored",
                                                 extra=kv(fields=settings.ignored))
    for note in settings.notes:
        logging.getLogger("ethnode.cli").warning(note)
    from ethnode.p2p import loop as p2p_loop

    return p2p_loop.run(_serve(args, settings))


def _check_identity(identity: str | None) -> None:
    from ethnode.p2p.peer import Hello, default_client_id

    try:
        Hello.create(default_client_id(identity), [], 0, bytes(64))
    except ValueError as exc:
        raise _Fatal(f"invalid --identity: {exc}") from None


async def _serve(args: argparse.Namespace, settings: RunSettings) -> int:
    from ethnode.commands.flags.eth import authrpc_config_from_args, eth_service_constructor
    from ethnode.commands.flags.metrics import metrics_service_constructor
    from ethnode.commands.flags.miner import (
        dev_authrpc_config,
        dev_beacon_constructor,
        dev_eth_service_constructor,
        miner_service_constructor,
        prepare_dev,
    )
    from ethnode.commands.flags.p2p import server_factory
    from ethnode.commands.flags.rpc import rpc_service_constructor
    from ethnode.eth.catalyst import service as catalyst
    from ethnode.event import EventBus
    from ethnode.node import DatadirInUseError, Node, NodeConfig
    from ethnode.node.datadir import DatadirLock

    log = logging.getLogger("ethnode.cli")
    bus = EventBus()
    datadir: Path | None = Path(settings.datadir).expanduser()
    lock = None
    try:  # --dev without a datadir keeps everything in memory, as geth --dev does
        given = args.datadir is not None or settings.datadir != DEFAULT_DATADIR
        network = selected_network(args)
        if (args.dev and given or network is not None) and datadir is not None:
            # The dev chain's (or the network's genesis) database is opened before the node exists:
            # lock the datadir first, so a second process fails without touching it.
            lock = DatadirLock(datadir)
            lock.acquire()
        if network is not None and datadir is not None:
            from ethnode.commands.flags.network import prepare_network_datadir

            prepare_network_datadir(datadir, network)
        dev = prepare_dev(args, settings.datadir if given else None, bus)
        if dev is not None:
            datadir = dev.datadir
        miner_service = miner_service_constructor(args, dev)
    except (EthnodeError, OSError, sqlite3.Error) as exc:
        if lock is not None:
            lock.release()
        return _fatal(_describe(exc))
    config = NodeConfig(
        datadir=datadir, identity=settings.identity,
        nodekey_file=Path(args.nodekey) if args.nodekey else None, nodekey_hex=args.nodekeyhex or None,
    )
    node = Node(config, server_factory(settings.p2p, bus), bus=bus, lock=lock)
    max_peers = settings.p2p.max_peers
    eth_service = (dev_eth_service_constructor(args, dev, max_peers) if dev is not None
                   else eth_service_constructor(args, max_peers))
    if dev is None and eth_service is not None and args.eth_versions is None and datadir is not None:
        from ethnode.core.rawdb import has_chain

        if not has_chain(datadir):  # geth would write mainnet's genesis; we have no mainnet state to write
            log.warning("No chain in the datadir: running p2p only (no eth); "
                        "`ethnode-fast init GENESIS.json --datadir %s` to serve eth", datadir)
            eth_service = None
    if eth_service is not None:
        node.register(eth_service)
        authrpc = dev_authrpc_config(args, dev) if dev is not None else authrpc_config_from_args(args)
        if authrpc is not None:
            catalyst.register(node, authrpc)  # geth catalyst.Register(stack, backend): the Engine API on it
    if miner_service is not None:
        node.register(miner_service)  # after eth: it seals on that service's chain and pool
    if dev is not None and not dev.clique and eth_service is not None:
        node.register(dev_beacon_constructor(args, dev))  # the PoS dev chain's consensus client

    def p2p() -> Any:
        return node.server  # built in node.start, after the services

    dev_keys = [dev.key] if dev is not None else []  # eth_accounts, eth_sendTransaction, eth_sign...
    if (rpc_service := rpc_service_constructor(args, p2p, dev_keys=dev_keys)) is not None:
        node.register(rpc_service)  # after eth: it serves the APIs of the services built before it
    node.register(metrics_service_constructor(args, p2p))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def interrupted(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("Already shutting down")
        else:
            log.info("Got %s, shutting down...", sig.name)
        stop.set()

    # handlers first: the enode line is printed during start, and a signal may follow at once
    for sig in signals:
        loop.add_signal_handler(sig, interrupted, sig)
    try:
        try:
            await node.start()
        except DatadirInUseError as exc:
            return _fatal(str(exc))
        except (EthnodeError, OSError, sqlite3.Error) as exc:
            return _fatal(_describe(exc))
        try:
            await stop.wait()
        finally:
            await node.stop()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return 0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


# -- key / enode -------------------------------------------------------------------------------
def cmd_key_generate(args: argparse.Namespace) -> int:
    """Write a new node key to FILE (mode 0600, refusing to overwrite), or print it."""
    key = PrivateKey.generate()
    if args.file is None:
        print(key.to_hex())
        return 0
    path = Path(args.file)
    if path.exists():
        return _fatal(f"key file {path} already exists")
    try:
        save_private_key(key, path)
    except OSError as exc:
        return _fatal(f"key file {path}: {exc.strerror or exc}")
    print(key.node_id.hex())
    return 0


def cmd_enode(args: argparse.Namespace) -> int:
    """Print the enode URL a node with this key would have."""
    try:
        if args.nodekey and args.nodekeyhex:
            raise _Fatal("Options --nodekey and --nodekeyhex are mutually exclusive")
        if args.nodekeyhex:
            key = PrivateKey.from_hex(args.nodekeyhex)
        elif args.nodekey:
            key = load_private_key(args.nodekey)
        elif args.datadir:
            key = load_private_key(Path(args.datadir).expanduser() / "ethnode" / "nodekey")
        else:
            raise _Fatal("one of --nodekey, --nodekeyhex or --datadir is required")
        for flag, value in (("--port", args.port), ("--discovery.port", args.discovery_port)):
            if value is not None and not 0 <= value <= 0xFFFF:
                raise _Fatal(f"invalid {flag} {value}")
        udp = args.port if args.discovery_port is None else args.discovery_port
        node = Node(key.node_id, args.ip, udp, args.port)
    except _Fatal as exc:
        return _fatal(str(exc))
    except InvalidKeyError as exc:
        return _fatal(f"invalid node key: {exc}")
    except OSError as exc:
        return _fatal(f"node key: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    except ValueError as exc:
        return _fatal(f"invalid --ip: {exc}")
    print(node.enode_url())
    return 0


# -- wiring ------------------------------------------------------------------------------------
def _add_key_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodekey", metavar="FILE", help="P2P node key file (64 hex digits)")
    p.add_argument("--nodekeyhex", metavar="HEX", help="P2P node key as hex (for testing)")


def register(subparsers: Any) -> None:
    """Add ``run``, ``key`` and ``enode`` to an argparse subparsers object."""
    run = subparsers.add_parser(
        "run", help="run the node",
        description="Run a node: the p2p server with discovery, until SIGINT/SIGTERM.",
    )
    run.add_argument("--datadir", metavar="DIR", help=f"data directory (default {DEFAULT_DATADIR})")
    run.add_argument("--config", metavar="FILE.toml", help="geth-style TOML config file ([Node], [Node.P2P])")
    run.add_argument("--identity", metavar="NAME", help="custom node name, part of the client id")
    _add_key_flags(run)
    add_p2p_flags(run)
    logformat.add_log_flags(run)
    add_eth_flags(run)
    add_rpc_flags(run)
    add_metrics_flags(run)
    add_miner_flags(run)
    add_network_flags(run)
    run.set_defaults(func=cmd_run)

    key = subparsers.add_parser("key", help="node key helpers", description="Node key helpers.")
    key_sub = key.add_subparsers(dest="key_command", metavar="COMMAND", required=True)
    gen = key_sub.add_parser("generate", help="generate a node key",
                             description="Write a new node key to FILE (mode 0600), or print it when no FILE.")
    gen.add_argument("file", nargs="?", metavar="FILE")
    gen.set_defaults(func=cmd_key_generate)

    enode = subparsers.add_parser("enode", help="print the enode URL of a node key",
                                  description="Print the enode URL of a node key.")
    _add_key_flags(enode)
    enode.add_argument("--datadir", metavar="DIR", help="read the key from DIR/ethnode/nodekey")
    enode.add_argument("--ip", default="127.0.0.1", help="IP address for the URL (default 127.0.0.1)")
    enode.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N", help="TCP port (default 30303)")
    enode.add_argument("--discovery.port", dest="discovery_port", type=int, metavar="N",
                       help="UDP port when it differs from --port")
    enode.set_defaults(func=cmd_enode)


__all__ = ["register", "cmd_run", "cmd_key_generate", "cmd_enode", "load_toml", "apply_flags", "RunSettings"]
