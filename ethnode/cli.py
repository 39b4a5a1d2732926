"""``ethnode-fast``: the command line, shaped like geth's.

Bad flags and bad files get one clear line on stderr and a non-zero exit, never a
traceback: users who know geth expect ``Fatal: ...`` style failures.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

import ethnode
from ethnode._native import rust_module

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"ethnode {ethnode.__version__}")
    print(f"python {sys.version.split()[0]}")
    for path, backend in sorted(ethnode.backends().items()):
        print(f"{path}: {backend.describe()}")
    mod, error = rust_module()
    if mod is not None:
        print(f"rust module: loaded (ethnode._rust {mod.version()})")
    else:
        print(f"rust module: not loaded ({error})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """Run a devp2p node until SIGINT/SIGTERM; print its enode URL once listening.

    Only RLPx and the base protocol exist yet (no discovery, no eth), so the node
    accepts connections, exchanges Hello and keeps peers alive with pings.
    """
    import asyncio
    import logging
    import signal
    from pathlib import Path

    from ethnode.crypto.errors import InvalidKeyError
    from ethnode.crypto.keys import PrivateKey, load_private_key, save_private_key
    from ethnode.p2p import loop as p2p_loop
    from ethnode.p2p.listener import Listener
    from ethnode.p2p.peer import default_client_id

    def fatal(message: str) -> int:
        print(f"Fatal: {message}", file=sys.stderr)
        return 1

    levels = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}
    logging.basicConfig(
        level=levels.get(args.verbosity, logging.DEBUG if args.verbosity > 4 else logging.CRITICAL),
        format="%(levelname)-5s [%(asctime)s.%(msecs)03d] %(message)s",
        datefmt="%m-%d|%H:%M:%S",
        stream=sys.stderr,
    )
    if not 0 <= args.port <= 0xFFFF:
        return fatal(f"invalid --port {args.port}")
    if args.nodekey and args.nodekeyhex:
        return fatal("Options --nodekey and --nodekeyhex are mutually exclusive")
    try:
        if args.nodekeyhex:
            key = PrivateKey.from_hex(args.nodekeyhex)
        elif args.nodekey:
            key = load_private_key(args.nodekey)
        elif args.datadir:
            # geth keeps it in <datadir>/geth/nodekey; ours is the ethnode instance's
            path = Path(args.datadir) / "ethnode" / "nodekey"
            if path.exists():
                key = load_private_key(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                key = PrivateKey.generate()
                save_private_key(key, path)
        else:
            key = PrivateKey.generate()
    except InvalidKeyError as exc:
        return fatal(f"invalid node key: {exc}")
    except OSError as exc:
        return fatal(f"node key: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))

    log = logging.getLogger("ethnode.cli")

    async def serve() -> int:
        try:
            listener = Listener(key, client_id=default_client_id(args.identity), host=args.listenaddr,
                                port=args.port)
        except ValueError as exc:
            return fatal(f"invalid --identity: {exc}")
        try:
            await listener.start()
        except OSError as exc:
            return fatal(f"could not listen on {args.listenaddr or '*'}:{args.port}: {exc.strerror or exc}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("Started P2P networking self=%s", listener.enode)
        if not args.nodiscover:
            log.info("Discovery is not implemented yet; running as with --nodiscover")
        try:
            await stop.wait()
            log.info("Shutting down")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await listener.close()
        return 0

    return p2p_loop.run(serve())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ethnode-fast", description="An Ethereum devp2p peer node in Python.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser("version", help="print the version and which backend each hot path uses")
    run = sub.add_parser("run", help="run the node")
    run.add_argument("--nodiscover", action="store_true", help="disable peer discovery")
    run.add_argument("--port", type=int, default=30303, help="TCP listening port (0: any free port)")
    run.add_argument("--listenaddr", default="", metavar="IP", help="listening address (default: all)")
    run.add_argument("--nodekey", metavar="FILE", help="P2P node key file (64 hex digits)")
    run.add_argument("--nodekeyhex", metavar="HEX", help="P2P node key as hex (for testing)")
    run.add_argument("--datadir", metavar="DIR", help="data directory; keeps the node key across runs")
    run.add_argument("--identity", metavar="NAME", help="custom node name, part of the client id")
    run.add_argument("--verbosity", type=int, default=3, help="log level 0-5 (geth's: 3 is info)")
    return parser


COMMANDS = {"version": _cmd_version, "run": _cmd_run}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
