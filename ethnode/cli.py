"""``ethnode-fast``: the command line, shaped like geth's.

Each command module under ``ethnode.commands`` adds its subcommands with
``register(subparsers)`` and sets ``func``; this file only wires them together. Bad
flags and bad files get one clear line on stderr and a non-zero exit, never a
traceback: users who know geth expect ``Fatal: ...`` style failures.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

import ethnode
from ethnode._native import rust_module

EXIT_USAGE = 2
EXIT_FAILURE = 1  # geth's Fatalf
# Command modules, in help order; one that is absent (not yet written) is skipped.
COMMAND_MODULES = (
    "ethnode.commands.node", "ethnode.commands.chain", "ethnode.commands.discover", "ethnode.commands.record",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"ethnode {ethnode.__version__}")
    print(f"python {sys.version.split()[0]}")
    from ethnode.core.execution import engine_description

    engine = engine_description()  # also records the execution backend listed below
    for path, backend in sorted(ethnode.backends().items()):
        print(f"{path}: {backend.describe()}")
    mod, error = rust_module()
    if mod is not None:
        print(f"rust module: loaded (ethnode._rust {mod.version()})")
    else:
        print(f"rust module: not loaded ({error})")
    print(f"execution engine: {engine}")
    return 0


def _command_modules() -> list[object]:
    modules = []
    for name in COMMAND_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports does not: a real error
                raise
    return modules


class _VersionAction(argparse.Action):
    """``--version``, as geth has it beside its ``version`` command: the same lines, exit 0."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and the backends, then exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        _cmd_version(namespace)
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ethnode-fast", description="An Ethereum devp2p peer node in Python.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    version = sub.add_parser("version", help="print the version and which backend each hot path uses")
    version.set_defaults(func=_cmd_version)
    for module in _command_modules():
        module.register(sub)  # type: ignore[attr-defined]
    parser.set_defaults(subcommands=sub.choices)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's parser, so the line names it (``ethnode-fast run: error: ...``)
        owner = args.subcommands.get(args.command, parser) if args.command else parser
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    setup_logging = getattr(args, "setup_logging", None)  # set by the commands' log flags (logformat)
    if setup_logging is not None:  # one logging set-up for every command, before it logs anything
        error = setup_logging(args)
        if error is not None:
            print(f"Fatal: {error}", file=sys.stderr)
            return EXIT_FAILURE
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
