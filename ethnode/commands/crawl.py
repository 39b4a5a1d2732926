"""``ethnode-fast crawl NODES.json``: walk discv4, greet every live node, write nodes.json and a census.

geth's ``devp2p discv4 crawl`` is the anchor: the same nodes.json layout (either tool can
resume the other's file), the same flags where geth has them (``--bootnodes``,
``--nodekey``, ``--addr``, ``--timeout``, ``--parallel``), the same liveness score. Beyond
it: each live node is dialed for RLPx + Hello + eth Status at ``--rate`` dials a second,
and what they said is tallied in ``--census`` (default ``NODES.census.json``). The crawl
resumes from the files it finds, logs one progress line every ``--log-interval`` seconds,
writes both files at every such line and at the end, and stops at ``--timeout`` (or after
``--idle`` seconds without a new node). Without ``--bootnodes`` or a network flag only the
nodes already in the file are used: no public address is contacted unasked. ``--v5`` also
walks discv5 on the same socket (as geth's node runs both).

Differences from geth: the timeout counts from the start (geth's starts once the input set
is revalidated), the walk also starts from the file's nodes (so a resumed crawl needs no
bootnode), and each live node's table is read with a few FINDNODEs besides the lookups.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from pathlib import Path
from typing import Any

from ethnode.commands import logformat
from ethnode.commands.flags.validators import non_negative_int, split_and_trim
from ethnode.logctx import kv

log = logging.getLogger("ethnode.crawl")

DESCRIPTION = ("Crawl the discovery DHT: update a nodes.json file (geth's layout) with the nodes found, "
               "dial each live one for Hello and eth Status, and write a census of what they said.")
DEFAULT_TIMEOUT = "30m"  # geth crawlTimeoutFlag
DEFAULT_RATE = 10.0  # TCP dials a second
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float:
    """Go's time.ParseDuration (``30m``, ``1h30m``, ``45s``), or plain seconds; in seconds."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pos, value = 0, 0.0
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"negative duration {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def register(subparsers: Any) -> None:
    """Add the ``crawl`` subcommand to an argparse subparsers object."""
    from ethnode.commands.flags.network import add_network_flags

    p = subparsers.add_parser("crawl", help="crawl discv4 for nodes; write nodes.json and a census",
                              description=DESCRIPTION)
    p.add_argument("nodes", metavar="NODES.json", help="nodes file to update (read first when it exists)")
    p.add_argument("--census", metavar="FILE", help="census file (default: NODES.census.json)")
    p.add_argument("--bootnodes", metavar="URLS", help="comma-separated enode:// URLs or enr: records to start from")
    add_network_flags(p)
    p.add_argument("--addr", default="0.0.0.0:0", metavar="IP:PORT", help="UDP listening address (default 0.0.0.0:0)")
    p.add_argument("--nodekey", metavar="FILE", help="node key file (default: a fresh key)")
    p.add_argument("--nodekeyhex", metavar="HEX", help="node key as hex")
    p.add_argument("--timeout", type=duration, default=duration(DEFAULT_TIMEOUT), metavar="DURATION",
                   help=f"time limit for the crawl, Go syntax or seconds (default {DEFAULT_TIMEOUT})")
    p.add_argument("--idle", type=duration, default=0.0, metavar="DURATION",
                   help="also stop once no new node was found for this long and none is left to check (default 0: off)")
    p.add_argument("--parallel", type=non_negative_int, default=16, metavar="N",
                   help="how many nodes are checked at once (default 16)")
    p.add_argument("--rate", type=positive_float, default=DEFAULT_RATE, metavar="N",
                   help=f"at most N TCP dials a second (default {DEFAULT_RATE:g}; 0: no limit)")
    p.add_argument("--v5", "--discovery.v5", dest="v5", action="store_true",
                   help="also walk discv5 (on the same UDP socket), and ask its nodes for records over it")
    p.add_argument("--nodial", action="store_true", help="only discovery, as geth's crawl: no Hello/Status dials")
    p.add_argument("--revalidate", type=duration, default=duration("10m"), metavar="DURATION",
                   help="skip nodes checked less than this long ago (default 10m, as geth)")
    p.add_argument("--log-interval", type=duration, default=duration("8s"), metavar="DURATION",
                   help="one progress line this often (default 8s; 0: none)")
    logformat.add_log_flags(p)
    p.set_defaults(func=run)


def _fatal(message: str) -> int:
    print(f"Fatal: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    """Crawl until the timeout (or SIGINT/SIGTERM); the exit code is 0, or 1 with one ``Fatal:`` line."""
    from ethnode.commands.flags.network import selected
    from ethnode.crawl.census import Census
    from ethnode.crawl.nodeset import NodeSet, NodeSetError, load_nodes
    from ethnode.crypto.errors import InvalidKeyError
    from ethnode.crypto.keys import PrivateKey, load_private_key
    from ethnode.p2p.config import parse_bootnode, split_host_port
    from ethnode.p2p.enode import NodeURLError

    if args.nodekey and args.nodekeyhex:
        return _fatal("Options --nodekey and --nodekeyhex are mutually exclusive")
    try:
        key = (PrivateKey.from_hex(args.nodekeyhex) if args.nodekeyhex
               else load_private_key(args.nodekey) if args.nodekey else PrivateKey.generate())
    except InvalidKeyError as exc:
        return _fatal(f"invalid node key: {exc}")
    except OSError as exc:
        return _fatal(f"node key: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    try:
        host, port = split_host_port(args.addr)
    except ValueError as exc:
        return _fatal(f"invalid --addr {args.addr!r}: {exc}")
    network = selected(args)
    texts = split_and_trim(args.bootnodes) if args.bootnodes is not None else list(network.bootnodes) if network else []
    bootnodes = []
    for text in texts:
        try:
            bootnodes.append(parse_bootnode(text))
        except NodeURLError as exc:
            return _fatal(f"invalid bootnode {text[:40]!r}: {exc}")
    nodes_path = Path(args.nodes)
    census_path = Path(args.census) if args.census else nodes_path.with_name(
        nodes_path.name.removesuffix(".json") + ".census.json")
    try:
        input_set = load_nodes(nodes_path) if nodes_path.exists() else NodeSet()
        census = Census.load(census_path) if census_path.exists() else Census()
    except NodeSetError as exc:
        return _fatal(str(exc))
    if not input_set and not bootnodes:
        return _fatal("no input nodes to start crawling (give --bootnodes, a network flag, or a nodes file)")
    for path in (nodes_path, census_path):
        if not path.parent.is_dir():
            return _fatal(f"{path}: no such directory {path.parent}")
    from ethnode.p2p import loop as p2p_loop

    return p2p_loop.run(_crawl(args, key, host, port, input_set, bootnodes, census, nodes_path, census_path))


async def _crawl(args: argparse.Namespace, key: Any, host: str, port: int, input_set: Any, bootnodes: list[Any],
                 census: Any, nodes_path: Path, census_path: Path) -> int:
    from ethnode.crawl.crawler import Crawler, FirstAnswer, V4Source, V5Source
    from ethnode.crawl.nodeset import write_json
    from ethnode.crawl.probe import probe
    from ethnode.p2p.discover.udp import Config, UDPv4
    from ethnode.p2p.peer import default_client_id

    # The walk starts from the bootnodes and from every node the file already holds: a resumed
    # crawl needs no bootnode (geth's starts its walk from the bootnodes alone).
    seeds = {n.id: n for n in [*input_set.nodes(), *bootnodes] if n.udp_addr is not None}
    disc = UDPv4(key, config=Config(bootnodes=list(seeds.values())))
    try:
        await disc.start(host or "0.0.0.0", port)
    except OSError as exc:
        return _fatal(f"could not listen on {args.addr}: {exc.strerror or exc}")
    client_id = default_client_id("crawler")

    def save(output: Any, census_now: Any) -> None:
        try:
            write_json(nodes_path, output.to_json())
            census_now.save(census_path)
        except OSError as exc:
            log.error("Could not write the crawl output", extra=kv(err=str(exc.strerror or exc)))

    # Sources: the discv4 random walk. A discv5 walk (its own UDP service on the same port) is
    # one more NodeSource here, its nodes resolved by that service.
    v4 = V4Source(disc)
    sources: list[Any] = [v4]
    resolver: Any = disc
    v5 = None
    if args.v5:  # geth setupDiscovery: discv5 reads what discv4 cannot parse on the one socket
        from ethnode.p2p.discover.v5_udp import Config as ConfigV5
        from ethnode.p2p.discover.v5_udp import UDPv5

        v5 = UDPv5(key, local=disc.local, db=disc.db, config=ConfigV5(bootnodes=list(seeds.values()))).attach(disc)
        sources.append(V5Source(v5))
        resolver = FirstAnswer(disc, v5)
    crawler = Crawler(
        input_set, resolver, None if args.nodial else (lambda n: probe(n, key, client_id)), bootnodes=bootnodes,
        sources=sources, census=census, revalidate_interval=args.revalidate, parallel=args.parallel,
        dials_per_second=args.rate, on_save=save, on_live=[s.on_live for s in sources],
    )
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted = asyncio.Event()

    def on_signal() -> None:
        interrupted.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    log.info("Crawling", extra=kv(self=disc.self_node.enode_url(), input=len(input_set), bootnodes=len(bootnodes),
                                  timeout=f"{args.timeout:g}s"))
    run = loop.create_task(crawler.run(args.timeout, idle=args.idle, log_interval=args.log_interval))
    stop = loop.create_task(interrupted.wait())
    try:
        await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            log.info("Interrupted, writing what was found")
            # the crawl's own shutdown path writes the files: end it with a zero timeout
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            save(crawler.output, crawler.census)
        else:
            run.result()
    finally:
        stop.cancel()
        await asyncio.gather(stop, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if v5 is not None:
            await v5.close()
        await disc.close()
    summary = crawler.census.summary()
    log.info("Crawl done", extra=kv(
        nodes=len(crawler.output), dialed_ok=summary["ok"], failed=summary["failed"],
        clients=",".join(f"{k}:{v}" for k, v in summary["clients"].items()) or "-",
        networks=",".join(f"{k}:{v}" for k, v in summary["networkIds"].items()) or "-"))
    return 0


__all__ = ["register", "run", "duration"]
