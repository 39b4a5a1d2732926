"""``init``, ``import`` and ``export``: the chain-file commands, as geth's ``chaincmd.go``.

    ethnode-fast init GENESIS.json --datadir D
    ethnode-fast import FILE.rlp [FILE.rlp ...] --datadir D
    ethnode-fast export FILE.rlp [FIRST [LAST]] --datadir D

The database lives in ``<datadir>/ethnode/chaindata``. A bad file or block ends the
command with one ``Fatal:`` line naming the block and the reason; every block before it
stays imported.

Import checks every header and body rule of the fork (see ``ethnode.core.blockchain``)
and executes every block (revm, or py-evm on a pure install): gas used, bloom, receipts root, requests hash and
state root must match the header, and receipts are stored. ``--noexec`` skips
execution (header/body rules only, no state, no receipts) and logs a warning saying so.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ethnode import strictjson
from ethnode.commands import logformat
from ethnode.commands.node import warn_if_slow
from ethnode.consensus import create_engine
from ethnode.core.blockchain import BlockChain, read_chain_config, setup_genesis
from ethnode.core.chainfile import BlockReader, ChainFileError, open_chain_file
from ethnode.core.configcompat import ConfigCompatError
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import chaindata_dir, open_database
from ethnode.errors import EthnodeError
from ethnode.logctx import kv

log = logging.getLogger("ethnode.cli")
DEFAULT_DATADIR = os.path.join("~", ".ethnode")  # geth: ~/.ethereum
EXIT_OK = 0
EXIT_FAILURE = 1  # geth Fatalf exits 1
EXIT_INTERRUPTED = 130


def _fatal(message: str) -> int:
    print(f"Fatal: {message}", file=sys.stderr)
    return EXIT_FAILURE


def _datadir(args: argparse.Namespace) -> str:
    return os.path.expanduser(args.datadir)


def _block_number(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a block number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"block number must not be negative: {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


# --- init ----------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    """Write the genesis block of GENESIS.json into the datadir's database."""
    path = args.genesis
    try:
        obj: Any = strictjson.load_file(path)
    except OSError as exc:
        return _fatal(f"failed to read genesis file {path}: {exc.strerror}")
    except (ValueError, UnicodeDecodeError) as exc:
        return _fatal(f"invalid genesis file {path}: {exc}")
    try:
        genesis = Genesis.from_json(obj)
    except EthnodeError as exc:
        return _fatal(f"invalid genesis file {path}: {exc}")
    try:
        db = open_database(_datadir(args))
    except EthnodeError as exc:
        return _fatal(str(exc))
    try:
        block_hash = setup_genesis(db, genesis, obj)
    except ConfigCompatError as exc:  # geth initGenesis: the stored head is past a fork the file moves
        return _fatal(f"Failed to write chain config: {exc}")
    except EthnodeError as exc:
        return _fatal(f"failed to write genesis block: {exc}")
    finally:
        db.close()
    where = chaindata_dir(_datadir(args))
    log.info("Successfully wrote genesis state", extra=kv(database=str(where), hash=block_hash))
    return EXIT_OK


# --- import --------------------------------------------------------------------------


def _open_chain(args: argparse.Namespace, *, execute: bool = False) -> BlockChain:
    db = open_database(_datadir(args))
    try:
        config = read_chain_config(db)
        return BlockChain(db, create_engine(config, db), config=config, execute=execute)  # nobody listens: no events
    except BaseException:
        db.close()
        raise


def cmd_import(args: argparse.Namespace) -> int:
    """Import chain files block by block; each block is committed before the next is read."""
    from ethnode.monitoring.progress import ImportProgress

    warn_if_slow()
    try:
        chain = _open_chain(args, execute=not args.noexec)
    except EthnodeError as exc:
        return _fatal(str(exc))
    try:
        for path in args.files:
            code = _import_file(chain, path, args.log_interval, ImportProgress)
            if code != EXIT_OK:
                return code
        head = chain.current_block
        verified = "verified" if chain.executor is not None else "unverified (--noexec)"
        log.info("Chain head", extra=kv(number=head.number, hash=head.hash, stateRoot=head.state_root,
                                        roots=verified))
        return EXIT_OK
    finally:
        chain.db.close()


def _import_file(chain: BlockChain, path: str, log_interval: float, progress_cls: Any) -> int:
    try:
        stream = open_chain_file(path)
    except OSError as exc:
        return _fatal(f"import {path}: cannot open: {exc.strerror}")
    size = None
    if not path.endswith(".gz"):
        try:
            size = os.fstat(stream.fileno()).st_size or None
        except OSError:
            size = None
    progress = progress_cls(os.path.basename(path), size, interval=log_interval)
    reader = BlockReader(stream)
    gas = [0]  # gas of the blocks written (not of known ones), for Mgas/s

    def on_block(block: Any, known: bool) -> None:
        if not known:
            gas[0] += block.header.gas_used
        progress.update(block, known, reader.offset)

    log.info("Importing blockchain", extra=kv(file=path))
    try:
        chain.insert_chain(reader, on_block=on_block)
    except KeyboardInterrupt:
        progress.finish(reader.offset)
        head = chain.current_block
        print(
            f"Fatal: import {path} interrupted; chain intact up to #{head.number} 0x{head.hash.hex()}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (ChainFileError, EthnodeError) as exc:
        progress.finish(reader.offset)
        return _fatal(f"import {path}: {exc}")
    finally:
        stream.close()
    progress.finish(reader.offset)
    mgas = gas[0] / progress.elapsed / 1e6 if progress.elapsed > 0 else 0.0
    log.info("Import done", extra=kv(("file", path), ("blocks", progress.count), ("known", progress.known),
                                     ("elapsed", f"{progress.elapsed:.3f}s"), ("blk/s", round(progress.rate)),
                                     ("mgas/s", f"{mgas:.1f}"), ("executed", "yes" if chain.executor else "no")))
    return EXIT_OK


# --- export --------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    """Write canonical blocks as RLP. With a range, append to the file, as geth does."""
    ranged = args.first is not None
    first = args.first if ranged else 0
    if args.last is not None and first > args.last:
        return _fatal(f"export failed: first block #{first} is after last block #{args.last}")
    try:
        chain = _open_chain(args)
    except EthnodeError as exc:
        return _fatal(str(exc))
    try:
        with open_chain_file(args.file, "ab" if ranged else "wb") as out:
            count = chain.export(out, first, args.last)
    except OSError as exc:
        return _fatal(f"export {args.file}: {exc.strerror}")
    except EthnodeError as exc:
        return _fatal(str(exc))
    finally:
        chain.db.close()
    log.info("Exported blockchain", extra=kv(file=args.file, blocks=count))
    return EXIT_OK


# --- wiring --------------------------------------------------------------------------


def _add_datadir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--datadir",
        default=DEFAULT_DATADIR,
        metavar="DIR",
        help=f"data directory for the databases (default {DEFAULT_DATADIR})",
    )


def register(subparsers: Any) -> None:
    """Add ``init``, ``import`` and ``export`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "init",
        help="bootstrap and initialize a new genesis block",
        description="Write the genesis block of GENESIS.json into the database.",
    )
    p.add_argument("genesis", metavar="GENESIS.json")
    _add_datadir(p)
    logformat.add_log_flags(p)
    p.set_defaults(func=cmd_init)

    p = subparsers.add_parser(
        "import",
        help="import a blockchain file",
        description="Import blocks from RLP chain files (.gz is gunzipped). Blocks are validated, "
        "executed (state root, receipts root, gas used, bloom and requests checked) and committed one by one.",
    )
    p.add_argument("files", nargs="+", metavar="FILE.rlp")
    _add_datadir(p)
    logformat.add_log_flags(p)
    p.add_argument(
        "--noexec",
        action="store_true",
        help="do not execute blocks: check header and body rules only (no state, no receipts, roots unverified)",
    )
    p.add_argument(
        "--log-interval",
        type=_non_negative_float,
        default=8.0,
        metavar="SECONDS",
        help="seconds between progress lines when stderr is not a terminal (0: every block)",
    )
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser(
        "export",
        help="export blockchain into file",
        description="Export canonical blocks FIRST..LAST (default: genesis to head) as RLP. With a range "
        "the file is appended to, as geth does; a .gz name is gzipped.",
    )
    p.add_argument("file", metavar="FILE.rlp")
    p.add_argument("first", nargs="?", type=_block_number, default=None, metavar="FIRST")
    p.add_argument("last", nargs="?", type=_block_number, default=None, metavar="LAST")
    _add_datadir(p)
    logformat.add_log_flags(p)
    p.set_defaults(func=cmd_export)

