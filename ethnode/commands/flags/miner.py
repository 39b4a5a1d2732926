"""``ethnode-fast run`` flags for the dev chain and the miner, and the services they configure.

    --dev                  a proof-of-stake chain on the newest fork the engine runs, with a
                           funded developer account and a simulated beacon driving it through
                           the Engine API; HTTP JSON-RPC on, no p2p (in memory unless --datadir)
    --dev.clique           a one-signer Clique chain instead (London rules), sealed by this
                           node and propagated to peers over eth/68: for a dev network of nodes
    --dev.period N         seconds between blocks (default 0: a block per new transaction)
    --dev.key HEX          the developer/signer key (default: new, printed at start; with a
                           datadir kept in <datadir>/ethnode/devkey)
    --dev.gaslimit N       gas limit of the dev genesis (default 11500000, geth's)
    --dev.genesis-out FILE write the dev genesis JSON here, for other nodes' `init`
    --mine                 seal blocks on an initialised Clique chain with --miner.key
    --miner.key HEX|FILE   the signer key for --mine
    --miner.gaslimit N     gas ceiling blocks are steered to (default: the dev genesis limit
                           with --dev, else 60000000, geth's)
    --miner.gasprice WEI   minimum tip per gas of included txs (default 1000000, geth's)
    --miner.extradata TEXT vanity in the block extra-data (up to 32 bytes)
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ethnode.commands.flags.eth import authrpc_config_from_args, eth_config_from_args
from ethnode.commands.flags.validators import non_negative_int as uint
from ethnode.crypto.errors import InvalidKeyError
from ethnode.crypto.keys import PrivateKey, load_private_key
from ethnode.eth.catalyst.service import AuthRPCConfig, DevBeaconService
from ethnode.eth.service import EthereumService
from ethnode.event import EventSink
from ethnode.logctx import kv
from ethnode.miner.builder import DEFAULT_GAS_CEIL, DEFAULT_MIN_TIP, MAX_VANITY, MinerConfig
from ethnode.miner.dev import DEV_GAS_LIMIT, DevChain, DevError, parse_key, prepare_dev_chain
from ethnode.miner.service import MinerService
from ethnode.node.lifecycle import ServiceConstructor, ServiceContext

log = logging.getLogger("ethnode.miner")


def _extra(text: str) -> bytes:
    data = text.encode()
    if len(data) > MAX_VANITY:
        raise argparse.ArgumentTypeError(f"extra-data is {len(data)} bytes, the limit is {MAX_VANITY}")
    return data


# Flags that mean something only in a mode: (namespace field, flag, default).
_DEV_ONLY = (("dev_clique", "--dev.clique", False), ("dev_period", "--dev.period", 0), ("dev_key", "--dev.key", None),
             ("dev_gaslimit", "--dev.gaslimit", DEV_GAS_LIMIT), ("dev_genesis_out", "--dev.genesis-out", None))
_MINING_ONLY = (("miner_key", "--miner.key", None), ("miner_gaslimit", "--miner.gaslimit", None),
                ("miner_gasprice", "--miner.gasprice", DEFAULT_MIN_TIP), ("miner_extradata", "--miner.extradata", None))


def flags_without_their_mode(args: argparse.Namespace) -> list[str]:
    """WARN lines for flags given without the mode they belong to (``--dev.*`` without ``--dev``,
    ``--miner.*`` without ``--mine``/``--dev``): a flag that silently does nothing misleads, and geth
    says so the same way ("--metrics.port specified without --metrics.addr, ...")."""
    lines = []
    if not args.dev:
        given = [flag for dest, flag, default in _DEV_ONLY if getattr(args, dest) != default]
        if given:
            lines.append(f"{', '.join(given)} specified without --dev, developer chain settings are ignored")
    if not (args.dev or args.mine):
        given = [flag for dest, flag, default in _MINING_ONLY if getattr(args, dest) != default]
        if given:
            lines.append(f"{', '.join(given)} specified without --mine or --dev, miner settings are ignored")
    return lines


def add_miner_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Developer chain and miner")
    group.add_argument("--dev", action="store_true",
                       help="ephemeral proof-of-authority network with a pre-funded developer account, mining enabled")
    group.add_argument("--dev.clique", dest="dev_clique", action="store_true",
                       help="developer chain on Clique (proof of authority, London rules) instead of proof of stake")
    group.add_argument("--dev.period", dest="dev_period", type=uint, default=0, metavar="N",
                       help="block period in developer mode (0 = mine only if transaction pending)")
    group.add_argument("--dev.key", dest="dev_key", metavar="HEX",
                       help="developer account and signer key (default: generated and printed)")
    group.add_argument("--dev.gaslimit", dest="dev_gaslimit", type=uint, default=DEV_GAS_LIMIT, metavar="N",
                       help=f"initial block gas limit (default {DEV_GAS_LIMIT})")
    group.add_argument("--dev.genesis-out", dest="dev_genesis_out", metavar="FILE",
                       help="write the developer genesis JSON to FILE (for `ethnode-fast init` on other nodes)")
    group.add_argument("--mine", action="store_true", help="seal blocks on this Clique chain (needs --miner.key)")
    group.add_argument("--miner.key", dest="miner_key", metavar="HEX|FILE", help="signer key for --mine")
    group.add_argument("--miner.gaslimit", dest="miner_gaslimit", type=uint, metavar="N",
                       help=f"target gas ceiling for mined blocks (default {DEFAULT_GAS_CEIL}; --dev: its genesis's)")
    group.add_argument("--miner.gasprice", dest="miner_gasprice", type=uint, default=DEFAULT_MIN_TIP, metavar="WEI",
                       help=f"minimum gas tip for mining a transaction (default {DEFAULT_MIN_TIP})")
    group.add_argument("--miner.extradata", dest="miner_extradata", type=_extra, metavar="TEXT",
                       help="block extra-data set by the miner (up to 32 bytes)")


def prepare_dev(args: argparse.Namespace, datadir: str | None, events: EventSink | None = None) -> DevChain | None:
    """With ``--dev``: create or reopen the dev chain (``datadir`` None: in memory, posting on
    ``events``, the node's bus) and turn HTTP JSON-RPC on; None without ``--dev``. Raises
    ``DevError`` with one line for the user."""
    if not args.dev:
        return None
    if args.noexec:
        raise DevError("--dev seals blocks and needs block execution: drop --noexec")
    versions = args.eth_versions  # None: not given, the default versions
    if versions is not None and not versions and args.dev_clique:
        raise DevError("--dev.clique needs the eth protocol: drop --eth.versions none")
    dev = prepare_dev_chain(datadir, period=args.dev_period, key_hex=args.dev_key, gas_limit=args.dev_gaslimit,
                            genesis_out=args.dev_genesis_out, events=events, clique=args.dev_clique)
    args.http = True
    where = "in memory" if dev.datadir is None else str(dev.datadir)
    log.info("Using developer account", extra=kv(address=dev.address, key="0x" + dev.key.to_hex()))
    if dev.clique:
        log.info("Developer chain", extra=kv(where=where, chain_id=dev.genesis_json["config"]["chainId"],
                                             consensus="clique", period=dev.period, signer=dev.address))
    else:
        config = dev.genesis_json["config"]
        fork = "osaka" if "osakaTime" in config else "prague"
        log.info("Developer chain", extra=kv(where=where, chain_id=config["chainId"], consensus="proof-of-stake",
                                             fork=fork, period=dev.period, faucet=dev.address))
    for path in dev.genesis_files:
        if dev.clique:  # followers: ethnode-fast init PATH, then run --bootnodes <this enode>
            log.info("Dev genesis written", extra=kv(path=str(path), follow=f"ethnode-fast init {path}"))
        else:
            log.info("Dev genesis written", extra=kv(path=str(path)))
    return dev


def dev_eth_service_constructor(
    args: argparse.Namespace, dev: DevChain, max_peers: int | None = None
) -> ServiceConstructor:
    """The Ethereum service on the dev chain (the in-memory one when there is no datadir)."""
    config = eth_config_from_args(args, max_peers)

    def construct(ctx: ServiceContext) -> EthereumService:
        return EthereumService(ctx, config, chain=dev.chain)

    return construct


def dev_authrpc_config(args: argparse.Namespace, dev: DevChain) -> AuthRPCConfig | None:
    """The Engine API of a dev chain: None in memory without ``--authrpc.jwtsecret`` (no datadir
    for a secret, and a Clique chain has no consensus client)."""
    if dev.datadir is None and args.authrpc_jwtsecret is None:
        return None
    return authrpc_config_from_args(args)


def dev_beacon_constructor(args: argparse.Namespace, dev: DevChain) -> ServiceConstructor:
    """The simulated beacon of a proof-of-stake dev chain (register it after the Ethereum service)."""
    gas_ceil = args.miner_gaslimit if args.miner_gaslimit is not None else int(dev.genesis_json["gasLimit"], 0)
    config = MinerConfig(gas_ceil=gas_ceil, min_tip=args.miner_gasprice)
    if args.miner_extradata is not None:
        config.extra = args.miner_extradata
    else:
        config.extra = b""  # geth's dev blocks carry no extra-data: clients need no PoA middleware

    def construct(ctx: ServiceContext) -> DevBeaconService:
        return DevBeaconService(ctx, config, dev.period)

    return construct


def _miner_key(text: str) -> PrivateKey:
    path = Path(text).expanduser()
    try:
        return load_private_key(path) if path.exists() else parse_key(text)
    except (InvalidKeyError, OSError) as exc:
        raise DevError(f"invalid --miner.key: {exc}") from None


def miner_service_constructor(args: argparse.Namespace, dev: DevChain | None) -> ServiceConstructor | None:
    """The miner for ``--dev`` or ``--mine`` (register it after the Ethereum service); else None."""
    if dev is not None:
        if not dev.clique:
            return None  # a proof-of-stake dev chain is sealed by the simulated beacon
        key = dev.key
    elif args.mine:
        if not args.miner_key:
            raise DevError("--mine needs the signer key: --miner.key HEX|FILE")
        key = _miner_key(args.miner_key)
    else:
        return None
    gas_ceil = args.miner_gaslimit
    if gas_ceil is None:
        gas_ceil = int(dev.genesis_json["gasLimit"], 0) if dev is not None else DEFAULT_GAS_CEIL
    config = MinerConfig(gas_ceil=gas_ceil, min_tip=args.miner_gasprice)
    if args.miner_extradata is not None:
        config.extra = args.miner_extradata

    def construct(ctx: ServiceContext) -> MinerService:
        return MinerService(ctx, ctx.service(EthereumService), config, key)

    return construct


__all__ = [
    "add_miner_flags", "prepare_dev", "dev_beacon_constructor", "dev_eth_service_constructor", "dev_authrpc_config",
    "miner_service_constructor",
]
