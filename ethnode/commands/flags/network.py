"""``run --mainnet | --sepolia | --hoodi``: join a public network by name, as geth's flags do.

The datadir defaults to ``<default datadir>/<name>`` for the testnets (geth: ``~/.ethereum/
sepolia``), the network's genesis (full allocation, every scheduled fork) is written on
first run, a datadir holding another chain is refused, and the network's bootnodes are used
unless ``--bootnodes`` names others. Without one of these flags nothing changes: an empty
datadir stays a p2p-only node, and no public bootnode is ever contacted unasked.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ethnode.core.blockchain import setup_genesis
from ethnode.core.errors import GenesisMismatchError
from ethnode.core.genesis import Genesis
from ethnode.core.networks import NETWORKS, Network
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.rawdb import open_database
from ethnode.errors import EthnodeError

log = logging.getLogger("ethnode.cli")


class NetworkError(EthnodeError):
    """The datadir cannot hold this network's chain; one line for the user."""


def add_network_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Network").add_mutually_exclusive_group()
    group.add_argument("--mainnet", dest="network", action="store_const", const="mainnet",
                       help="Ethereum mainnet")
    group.add_argument("--sepolia", dest="network", action="store_const", const="sepolia",
                       help="Sepolia network: pre-configured proof-of-stake test network")
    group.add_argument("--hoodi", dest="network", action="store_const", const="hoodi",
                       help="Hoodi network: pre-configured proof-of-stake test network")


def selected(args: argparse.Namespace) -> Network | None:
    name = getattr(args, "network", None)
    return None if name is None else NETWORKS[name]


def network_datadir(default: str, network: Network) -> str:
    """geth: mainnet in the default datadir itself, a testnet in a subdirectory named after it."""
    return default if network.name == "mainnet" else os.path.join(default, network.name)


def prepare_network_datadir(datadir: str | os.PathLike[str], network: Network) -> bytes:
    """Write ``network``'s genesis into an empty datadir, or check the one there; returns its hash."""
    try:
        db = open_database(datadir)
    except EthnodeError as exc:
        raise NetworkError(str(exc)) from None
    try:
        stored = rawdb.read_canonical_hash(db, 0)
        if stored is not None and stored != network.genesis_hash:
            raise NetworkError(
                f"database in {Path(datadir).expanduser()} holds another chain (genesis 0x{stored.hex()}), "
                f"not {network.name} (0x{network.genesis_hash.hex()})"
            )
        if stored is None:
            obj = network.genesis_json()
            log.info("Writing default %s genesis block", network.name)
            setup_genesis(db, Genesis.from_json(obj), obj)
        return network.genesis_hash
    except GenesisMismatchError as exc:
        raise NetworkError(str(exc)) from None
    finally:
        db.close()


__all__ = ["add_network_flags", "selected", "network_datadir", "prepare_network_datadir", "NetworkError"]
