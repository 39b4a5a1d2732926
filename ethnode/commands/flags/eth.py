"""``ethnode-fast run`` flags for the Ethereum service and its Engine API, and the configs they make.

    --networkid N          network id in Status (default: the genesis chain id)
    --eth.versions LIST    eth versions offered, e.g. "69" or "68,69" ("none": no eth service)
    --authrpc.addr IP      Engine API listening address (default 127.0.0.1)
    --authrpc.port N       Engine API port (default 8551; 0 picks a free one)
    --authrpc.jwtsecret F  hex JWT secret file (default <datadir>/ethnode/jwtsecret, created if absent)
    --noexec               do not execute blocks (header/body rules only; the tx pool runs without state)

Bad values are reported by argparse in one line, before anything starts. The ``--authrpc.*``
values become an ``AuthRPCConfig`` that ``run`` hands to ``ethnode.eth.catalyst``'s ``register``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ethnode.commands.flags import validators
from ethnode.commands.flags.rpc import parse_vhosts
from ethnode.eth.catalyst.service import DEFAULT_AUTHRPC_ADDR, DEFAULT_AUTHRPC_PORT, AuthRPCConfig
from ethnode.eth.protocols.eth.protocol import PROTOCOL_LENGTHS, SUPPORTED_VERSIONS
from ethnode.eth.service import EthConfig, EthereumService
from ethnode.node.lifecycle import ServiceConstructor, ServiceContext
from ethnode.rpc.endpoint import DEFAULT_VHOSTS


def parse_versions(text: str) -> tuple[int, ...]:
    """``"68,69"`` -> (69, 68); ``"none"`` -> (); anything unsupported is an argparse error."""
    text = text.strip().lower()
    if text in ("none", "off", ""):
        return ()
    versions = set()
    for part in text.split(","):
        part = part.strip().removeprefix("eth/")
        if not (part.isascii() and part.isdigit()) or int(part) not in PROTOCOL_LENGTHS:
            supported = ",".join(map(str, sorted(PROTOCOL_LENGTHS)))
            raise argparse.ArgumentTypeError(f"unsupported eth version {part!r} (supported: {supported}, or none)")
        versions.add(int(part))
    return tuple(sorted(versions, reverse=True))


def _network_id(text: str) -> int:
    value = validators.integer(text)
    if not 0 < value < 2**64:
        raise argparse.ArgumentTypeError(f"network id must be between 1 and 2^64-1, got {value}")
    return value


def add_eth_flags(parser: argparse.ArgumentParser) -> None:
    """Add the eth and authrpc flags to ``run``."""
    versions = ",".join(map(str, sorted(SUPPORTED_VERSIONS)))
    group = parser.add_argument_group("Ethereum")
    group.add_argument("--networkid", type=_network_id, metavar="N",
                       help="network identifier in the eth Status (default: the genesis chain id)")
    group.add_argument("--eth.versions", dest="eth_versions", type=parse_versions, default=None,
                       metavar="LIST", help=f"eth protocol versions to offer (default {versions}; none: no eth)")
    group.add_argument("--authrpc.addr", dest="authrpc_addr", default=DEFAULT_AUTHRPC_ADDR, metavar="IP",
                       help=f"listening address of the authenticated Engine API (default {DEFAULT_AUTHRPC_ADDR})")
    group.add_argument("--authrpc.port", dest="authrpc_port", type=validators.port, default=DEFAULT_AUTHRPC_PORT,
                       metavar="N",
                       help=f"listening port of the authenticated Engine API (default {DEFAULT_AUTHRPC_PORT})")
    group.add_argument("--authrpc.vhosts", dest="authrpc_vhosts", type=parse_vhosts, default=DEFAULT_VHOSTS,
                       metavar="LIST", help="host names from which the Engine API accepts requests "
                       "(server enforced; * accepts any; default localhost)")
    group.add_argument("--noexec", action="store_true",
                       help="do not execute blocks: header and body rules only, no state, no receipts")
    group.add_argument("--observer", action=argparse.BooleanOptionalAction, default=None,
                       help="observer mode: follow the network's head by headers from peers (not executed; "
                       "eth_syncing shows it as highestBlock), admit txs without state checks and relay none. "
                       "Default: on for --mainnet/--sepolia/--hoodi on a datadir holding only the genesis")
    group.add_argument("--authrpc.jwtsecret", dest="authrpc_jwtsecret", metavar="FILE",
                       help="hex JWT secret file for the Engine API (default: <datadir>/ethnode/jwtsecret, "
                       "generated if absent)")


def eth_config_from_args(args: argparse.Namespace, max_peers: int | None = None) -> EthConfig:
    """``max_peers``: the p2p MaxPeers in effect (flag or config file); geth hands the same number
    to its eth handler, which caps eth peers by it and lowers the syncer's minimum peers to it."""
    return EthConfig(
        network_id=args.networkid,
        versions=SUPPORTED_VERSIONS if args.eth_versions is None else args.eth_versions,
        max_peers=max_peers,
        noexec=args.noexec,
        follow_head=getattr(args, "observer", None),
    )


def authrpc_config_from_args(args: argparse.Namespace) -> AuthRPCConfig:
    """Where the Engine API listens (``ethnode.eth.catalyst.register`` serves it)."""
    secret = args.authrpc_jwtsecret
    return AuthRPCConfig(
        addr=args.authrpc_addr,
        port=args.authrpc_port,
        jwtsecret=Path(secret).expanduser() if secret else None,
        vhosts=args.authrpc_vhosts,
    )


def eth_service_constructor(args: argparse.Namespace, max_peers: int | None = None) -> ServiceConstructor | None:
    """The Node service constructor for ``run``, or None when ``--eth.versions none``."""
    config = eth_config_from_args(args, max_peers)
    if not config.versions:
        return None

    def construct(ctx: ServiceContext) -> EthereumService:
        return EthereumService(ctx, config)

    return construct


__all__ = [
    "add_eth_flags", "eth_service_constructor", "eth_config_from_args", "authrpc_config_from_args", "parse_versions",
]
