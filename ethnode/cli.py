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
    print("ethnode-fast run: not yet implemented (the node arrives with the p2p Server issue)",
          file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ethnode-fast", description="An Ethereum devp2p peer node in Python.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser("version", help="print the version and which backend each hot path uses")
    sub.add_parser("run", help="run the node")
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
