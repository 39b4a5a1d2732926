"""``ethnode-fast record``: join a network as an observer and write down everything it sees.

    ethnode-fast record --genesis genesis.json --peers enode://... --out rec.sqlite3
    ethnode-fast record --sepolia --out sepolia/ --format parquet --duration 600

Peers (connect and disconnect with reason, client id, caps, Status), tx announcements
(time, peer, hash, type, size), txs (first seen: time, peer, raw bytes) and every
per-peer delivery, block announcements and BlockRangeUpdates, timestamped with
``time.time_ns()``. The node is an ``ethnode.api.EthNode`` that never syncs and does not
execute (an observer); the recording is ``ethnode.record``'s (SQLite by default, Parquet
with pyarrow). On SIGINT/SIGTERM or after ``--duration`` it flushes and prints a summary.
``python -c "import ethnode.record as r; print(r.load('rec.sqlite3'))"`` reads it back.

Anything the user got wrong ends the command with one ``Fatal:`` line and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
from typing import Any

from ethnode.commands import logformat
from ethnode.commands.flags.eth import parse_versions
from ethnode.commands.flags.network import add_network_flags
from ethnode.commands.flags.validators import non_negative_int, split_and_trim
from ethnode.commands.node import warn_if_slow
from ethnode.errors import EthnodeError
from ethnode.logctx import kv

DESCRIPTION = "Join a network as an observer and record what it sees (peers, tx and block announcements, txs)."
DEFAULT_OUT = "record.sqlite3"
EXIT_FAILURE = 1


def _fatal(message: str) -> int:
    print(f"Fatal: {message}", file=sys.stderr)
    return EXIT_FAILURE


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("record", help="record what the network shows an observer node", description=DESCRIPTION)
    p.add_argument("--out", default=DEFAULT_OUT, metavar="PATH",
                   help=f"SQLite file, or a directory for --format parquet (default {DEFAULT_OUT})")
    p.add_argument("--format", choices=("sqlite", "parquet"), default="sqlite",
                   help="output format (parquet needs pyarrow: the 'record' extra)")
    p.add_argument("--genesis", metavar="FILE", help="genesis file of the network to join (or --mainnet, ...)")
    p.add_argument("--datadir", metavar="DIR", help="keep the node key and chain here (default: in memory)")
    p.add_argument("--peers", metavar="URLS", help="comma-separated enode:// URLs to connect to and keep")
    p.add_argument("--bootnodes", metavar="URLS", help="comma-separated enode:// URLs or enr: records for discovery")
    p.add_argument("--nodiscover", action="store_true", help="no discv4 (peers only from --peers)")
    p.add_argument("--listenaddr", default="0.0.0.0", metavar="IP", help="listening address (default: all)")
    p.add_argument("--port", type=int, default=30303, metavar="N", help="TCP and UDP port (0: any free port)")
    p.add_argument("--maxpeers", type=non_negative_int, default=50, metavar="N", help="maximum peers (default 50)")
    p.add_argument("--networkid", type=int, metavar="N", help="network id in Status (default: the chain id)")
    p.add_argument("--eth.versions", dest="eth_versions", type=parse_versions, default=None, metavar="LIST",
                   help="eth versions to offer (default: all ethnode speaks)")
    p.add_argument("--nodekeyhex", metavar="HEX", help="P2P node key as hex")
    p.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after this long")
    logformat.add_log_flags(p)
    add_network_flags(p)
    p.set_defaults(func=cmd_record)


def cmd_record(args: argparse.Namespace) -> int:
    from ethnode.api import ConfigError, NodeConfig
    from ethnode.record import RecordError, open_sink

    if not 0 <= args.port <= 0xFFFF:
        return _fatal(f"invalid --port {args.port}")
    if args.eth_versions == ():
        return _fatal("record needs the eth protocol: drop --eth.versions none")
    if args.genesis is None and args.network is None and args.datadir is None:
        return _fatal("which network? give --genesis FILE, --mainnet, --sepolia, --hoodi "
                      "or a --datadir holding a chain")
    if args.genesis is not None and args.network is not None:
        return _fatal(f"--genesis and --{args.network} cannot be combined")
    extra: dict[str, Any] = {}
    if args.eth_versions is not None:
        extra["eth_versions"] = args.eth_versions
    if args.bootnodes is not None:  # else a network preset brings its own
        extra["bootnodes"] = split_and_trim(args.bootnodes)
    try:
        config = NodeConfig(
            datadir=args.datadir, network=args.network, genesis=args.genesis, network_id=args.networkid,
            listen_addr=f"{args.listenaddr}:{args.port}" if ":" not in args.listenaddr
            else f"[{args.listenaddr}]:{args.port}",
            static_nodes=split_and_trim(args.peers) if args.peers else (), max_peers=args.maxpeers,
            discovery=not args.nodiscover, nodekey_hex=args.nodekeyhex, **extra,
        )
        if config.genesis is not None:
            config.genesis = config.genesis_json()  # a bad file fails here, before any output is created
        sink = open_sink(args.out, args.format)
    except (ConfigError, RecordError) as exc:
        return _fatal(str(exc))
    warn_if_slow()
    from ethnode.p2p import loop as p2p_loop

    return p2p_loop.run(_record(config, sink, args.duration))


async def _record(config: Any, sink: Any, duration: float | None) -> int:
    from ethnode.api import EthNode, PeerAdded, PeerDropped
    from ethnode.record import Recorder

    log = logging.getLogger("ethnode.record")
    node = EthNode(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await node.start()
        except (EthnodeError, OSError, sqlite3.Error) as exc:
            await asyncio.to_thread(sink.close)
            return _fatal(str(exc) or type(exc).__name__)
        node.on(PeerAdded, lambda ev: log.info("Recorder peer added", extra=kv(
            id=ev.peer.id_hex[:16], name=ev.peer.client_id, caps=list(ev.peer.caps))))
        node.on(PeerDropped, lambda ev: log.info("Recorder peer dropped", extra=kv(id=ev.peer.id_hex[:16],
                                                                                   reason=ev.reason)))
        recorder = Recorder(node, sink)
        await recorder.start()
        log.info("Recording self=%s out=%s", node.enode, sink.path)
        try:
            async with asyncio.timeout(duration):
                await stop.wait()
        except TimeoutError:
            pass
        summary = await recorder.stop()
        await node.stop()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    for line in summary.lines():
        log.info("Recording summary %s", line)
        print(line)
    print(f"output: {sink.path}")
    return 0


__all__ = ["register", "cmd_record"]
