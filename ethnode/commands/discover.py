"""``ethnode-fast discover``: run node discovery alone (discv4 and discv5 on one UDP port),
logging the table sizes over time.

Useful to test discovery against other nodes (geth's ``devp2p discv4 test`` and
``devp2p discv5 test`` point at it) and to crawl: with ``--lookup-interval`` it keeps running random lookups. On start
it prints its enode URL and its record on stdout, one per line, so scripts and tests can
pick them up; logs go to stderr.

The node key and node database live in ``<datadir>/ethnode/`` (``nodekey``, the same
file ``ethnode-fast run`` uses, and ``nodes.sqlite3``), so the identity and the learned
nodes survive restarts. Without ``--datadir`` the key is fresh and the DB in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from ethnode.commands import logformat
from ethnode.commands.flags.validators import boolean
from ethnode.crypto.errors import InvalidKeyError
from ethnode.crypto.keys import PrivateKey, load_private_key, save_private_key
from ethnode.privatefs import make_private_dirs

log = logging.getLogger("ethnode.p2p.discover")

DESCRIPTION = "Run node discovery (discv4 with ENR, discv5) alone, logging the table size over time."
DEFAULT_PORT = 30303  # geth's default listening port, UDP and TCP alike
DEFAULT_LOG_INTERVAL = 10.0  # seconds between table-size log lines
NODEKEY_FILE = "nodekey"
NODEDB_FILE = "nodes.sqlite3"


def register(subparsers: Any) -> None:
    """Add the ``discover`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser("discover", help="run node discovery (discv4, discv5) alone and log the table size",
                              description=DESCRIPTION)
    _add_arguments(p)
    p.set_defaults(func=run)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootnodes", default="", metavar="URLS",
                   help="comma-separated enode:// URLs or enr: records to bootstrap from")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP listening port (0: any free port)")
    p.add_argument("--listenaddr", default="0.0.0.0", metavar="IP", help="listening address (default: all)")
    p.add_argument("--datadir", metavar="DIR", help="data directory for the node key and node database")
    p.add_argument("--nodekey", metavar="FILE", help="P2P node key file (64 hex digits)")
    p.add_argument("--nodekeyhex", metavar="HEX", help="P2P node key as hex (for testing)")
    logformat.add_log_flags(p)
    p.add_argument("--log-interval", type=float, default=DEFAULT_LOG_INTERVAL, metavar="SECONDS",
                   help="how often to log the table size (0: never)")
    for version in ("v4", "v5"):
        p.add_argument(f"--discovery.{version}", f"--disc{version}", dest=f"discovery_{version}", nargs="?",
                       const=True, default=True, type=boolean, metavar="BOOL",
                       help=f"enables the {version.upper()} discovery mechanism (default true)")
    p.add_argument("--lookup-interval", type=float, default=0.0, metavar="SECONDS",
                   help="run a random lookup this often, to crawl (0: only geth's periodic refresh)")


def _fatal(message: str) -> int:
    print(f"Fatal: {message}", file=sys.stderr)
    return 1


def _load_key(args: argparse.Namespace) -> PrivateKey:
    if args.nodekeyhex:
        return PrivateKey.from_hex(args.nodekeyhex)
    if args.nodekey:
        return load_private_key(args.nodekey)
    if args.datadir:
        path = Path(args.datadir) / "ethnode" / NODEKEY_FILE
        if path.exists():
            return load_private_key(path)
        make_private_dirs(path.parent)
        key = PrivateKey.generate()
        save_private_key(key, path)
        return key
    return PrivateKey.generate()


def run(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; the exit code is 0, or 1 with one ``Fatal:`` line."""
    from ethnode.p2p import loop as p2p_loop
    from ethnode.p2p.discover.nodedb import NodeDB
    from ethnode.p2p.discover.udp import Config, UDPv4
    from ethnode.p2p.discover.v5_udp import Config as ConfigV5
    from ethnode.p2p.discover.v5_udp import UDPv5
    from ethnode.p2p.enode import NodeURLError, parse_node

    if not 0 <= args.port <= 0xFFFF:
        return _fatal(f"invalid --port {args.port}")
    if args.nodekey and args.nodekeyhex:
        return _fatal("Options --nodekey and --nodekeyhex are mutually exclusive")
    if not (args.discovery_v4 or args.discovery_v5):
        return _fatal("nothing to run: --discovery.v4=false and --discovery.v5=false")
    try:
        key = _load_key(args)
    except InvalidKeyError as exc:
        return _fatal(f"invalid node key: {exc}")
    except OSError as exc:
        return _fatal(f"node key: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    bootnodes = []
    for text in filter(None, (s.strip() for s in args.bootnodes.split(","))):
        try:
            node = parse_node(text)
            node.validate_complete()
        except NodeURLError as exc:
            return _fatal(f"invalid bootnode {text[:40]!r}: {exc}")
        bootnodes.append(node)
    try:
        db = NodeDB(Path(args.datadir) / "ethnode" / NODEDB_FILE if args.datadir else None)
    except (OSError, sqlite3.Error) as exc:
        return _fatal(f"node database: {exc}")

    async def serve() -> int:
        services: list[Any] = []
        v5cfg = ConfigV5(bootnodes=bootnodes)
        try:
            if args.discovery_v4:
                v4 = await UDPv4(key, db=db, config=Config(bootnodes=bootnodes)).start(args.listenaddr, args.port)
                services.append(v4)
                if args.discovery_v5:  # on discv4's socket, as geth's Server runs them
                    services.append(UDPv5(key, local=v4.local, db=db, config=v5cfg).attach(v4))
            else:
                services.append(await UDPv5(key, db=db, config=v5cfg).start(args.listenaddr, args.port))
        except OSError as exc:
            return _fatal(f"could not listen on {args.listenaddr}:{args.port}: {exc.strerror or exc}")
        service = services[0]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        me = service.self_node
        print(me.enode_url(), flush=True)
        print(service.local.record.to_text(), flush=True)
        helpers = []
        for svc in services:
            if args.log_interval > 0:
                helpers.append(asyncio.ensure_future(_log_table(svc, args.log_interval)))
            if args.lookup_interval > 0:
                helpers.append(asyncio.ensure_future(_crawl(svc, args.lookup_interval)))
        try:
            await stop.wait()
            log.info("Shutting down")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for h in helpers:
                h.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            for svc in reversed(services):
                await svc.close()
        return 0

    try:
        return p2p_loop.run(serve())
    finally:
        db.close()


async def _log_table(service: Any, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        stats = service.stats
        log.info("Discovery table nodes=%d db=%d in=%d out=%d dropped=%d proto=%s", len(service.table),
                 len(service.db), sum(v for k, v in stats.items() if k.startswith("in:")),
                 sum(v for k, v in stats.items() if k.startswith("out:")),
                 sum(v for k, v in stats.items() if k.startswith("drop:")),
                 "v5" if type(service).__name__ == "UDPv5" else "v4")


async def _crawl(service: Any, interval: float) -> None:
    await service.initialized.wait()
    while True:
        found = await service.lookup_random()
        log.debug("Random lookup found %d nodes, table has %d", len(found), len(service.table))
        await asyncio.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    """``ethnode-fast discover`` on its own (tests, ``python -m ethnode.commands.discover``)."""
    parser = argparse.ArgumentParser(prog="ethnode-fast discover", description=DESCRIPTION)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    error = logformat.setup_from_args(args)  # what ethnode.cli.main does before every command
    if error is not None:
        return _fatal(error)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
