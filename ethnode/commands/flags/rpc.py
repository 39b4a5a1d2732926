"""``ethnode-fast run`` flags for the public JSON-RPC endpoints (geth's names and defaults).

    --http               serve JSON-RPC over HTTP
    --http.addr IP       listening address (default 127.0.0.1)
    --http.port N        port (default 8545; 0 picks a free one)
    --http.api LIST      namespaces offered (default eth,net,web3; add admin, txpool as wanted)
    --http.vhosts LIST   host names accepted in the Host header (default localhost; * for any)
    --http.corsdomain LIST  origins whose web pages may call the API (default none; * for any)
    --ws                 serve JSON-RPC over WebSocket (with eth_subscribe)
    --ws.addr IP         listening address (default 127.0.0.1)
    --ws.port N          port (default 8546; 0 picks a free one; equal to --http.port: one server)
    --ws.api LIST        namespaces offered (default eth,net,web3)
    --ws.origins LIST    origins whose web pages may connect (default: localhost only; * for any)
    --ipcpath PATH       the IPC socket (default <datadir>/ethnode.ipc; a bare name goes in the datadir)
    --ipcdisable         no IPC endpoint
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ethnode.commands.flags import validators
from ethnode.crypto.keys import PrivateKey
from ethnode.ethapi.accounts import DevAccounts
from ethnode.ethapi.backend import P2PServer, public_apis
from ethnode.node.lifecycle import ServiceConstructor, ServiceContext
from ethnode.node.rpcstack import (
    DEFAULT_HTTP_ADDR,
    DEFAULT_HTTP_MODULES,
    DEFAULT_HTTP_PORT,
    DEFAULT_IPC_NAME,
    DEFAULT_WS_ADDR,
    DEFAULT_WS_MODULES,
    DEFAULT_WS_PORT,
    HTTPConfig,
    IPCConfig,
    RPCService,
    WSConfig,
)
from ethnode.rpc.endpoint import DEFAULT_VHOSTS


def parse_modules(text: str) -> tuple[str, ...]:
    """``"eth, net,admin"`` -> ("eth", "net", "admin") (geth SplitAndTrim); names are checked at start."""
    modules = tuple(dict.fromkeys(validators.split_and_trim(text)))
    for m in modules:
        if not m.replace("_", "").isalnum():
            raise argparse.ArgumentTypeError(f"invalid API name {m!r}")
    return modules


def parse_vhosts(text: str) -> tuple[str, ...]:
    """``"localhost, example.org"`` -> ("localhost", "example.org"); geth SplitAndTrim."""
    return tuple(dict.fromkeys(v.lower() for v in validators.split_and_trim(text)))


def split_origins(text: str) -> tuple[str, ...]:
    """``"https://a.example, *"`` -> ("https://a.example", "*"); geth SplitAndTrim."""
    return tuple(dict.fromkeys(validators.split_and_trim(text)))


def add_rpc_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("API")
    group.add_argument("--http", action="store_true", help="enable the HTTP-RPC server")
    group.add_argument("--http.addr", dest="http_addr", default=DEFAULT_HTTP_ADDR, metavar="IP",
                       help=f"HTTP-RPC server listening interface (default {DEFAULT_HTTP_ADDR})")
    group.add_argument("--http.port", dest="http_port", type=validators.port, default=DEFAULT_HTTP_PORT, metavar="N",
                       help=f"HTTP-RPC server listening port (default {DEFAULT_HTTP_PORT})")
    group.add_argument("--http.api", dest="http_api", type=parse_modules, default=DEFAULT_HTTP_MODULES,
                       metavar="LIST", help="APIs offered over the HTTP-RPC interface "
                       f"(default {','.join(DEFAULT_HTTP_MODULES)}; also admin, txpool)")
    group.add_argument("--http.vhosts", dest="http_vhosts", type=parse_vhosts, default=DEFAULT_VHOSTS,
                       metavar="LIST", help="comma separated host names from which to accept requests "
                       "(server enforced; * accepts any; default localhost)")
    group.add_argument("--http.corsdomain", dest="http_corsdomain", type=split_origins, default=(),
                       metavar="LIST", help="comma separated list of domains from which to accept cross origin "
                       "requests (browser enforced)")
    group.add_argument("--ws", action="store_true", help="enable the WS-RPC server")
    group.add_argument("--ws.addr", dest="ws_addr", default=DEFAULT_WS_ADDR, metavar="IP",
                       help=f"WS-RPC server listening interface (default {DEFAULT_WS_ADDR})")
    group.add_argument("--ws.port", dest="ws_port", type=validators.port, default=DEFAULT_WS_PORT, metavar="N",
                       help=f"WS-RPC server listening port (default {DEFAULT_WS_PORT})")
    group.add_argument("--ws.api", dest="ws_api", type=parse_modules, default=DEFAULT_WS_MODULES, metavar="LIST",
                       help=f"APIs offered over the WS-RPC interface (default {','.join(DEFAULT_WS_MODULES)})")
    group.add_argument("--ws.origins", dest="ws_origins", type=split_origins, default=(), metavar="LIST",
                       help="origins from which to accept websockets requests (default: localhost; * for any)")
    group.add_argument("--ipcpath", dest="ipcpath", metavar="PATH",
                       help=f"filename for IPC socket/pipe within the datadir (default {DEFAULT_IPC_NAME}; "
                       "explicit paths escape it)")
    group.add_argument("--ipcdisable", action="store_true", help="disable the IPC-RPC server")


def http_config_from_args(args: argparse.Namespace) -> HTTPConfig | None:
    if not args.http:
        return None
    return HTTPConfig(
        addr=args.http_addr,
        port=args.http_port,
        modules=args.http_api,
        vhosts=args.http_vhosts,
        cors=args.http_corsdomain,
    )


def ws_config_from_args(args: argparse.Namespace) -> WSConfig | None:
    if not args.ws:
        return None
    return WSConfig(addr=args.ws_addr, port=args.ws_port, modules=args.ws_api, origins=args.ws_origins)


def ipc_config_from_args(args: argparse.Namespace) -> IPCConfig | None:
    """geth: --ipcdisable and --ipcpath are exclusive (checked by ``check_ipc_flags``); IPC is on by default."""
    if args.ipcdisable:
        return None
    if args.ipcpath is not None:
        return IPCConfig(args.ipcpath, explicit=True)
    return IPCConfig()


def check_ipc_flags(args: argparse.Namespace) -> str | None:
    """geth flags.CheckExclusive(IPCDisabledFlag, IPCPathFlag); the fatal line, or None."""
    if args.ipcdisable and args.ipcpath is not None:
        return "flags --ipcdisable, --ipcpath can't be used at the same time"
    if args.ipcpath is not None and not args.ipcpath.strip():
        return "invalid --ipcpath: empty"
    return None


def rpc_service_constructor(args: argparse.Namespace, p2p: P2PServer,
                            dev_keys: Sequence[PrivateKey] = ()) -> ServiceConstructor | None:
    """The Node service constructor for ``--http``, ``--ws`` and IPC (None with all three off); register
    it after the eth service, whose namespaces it serves with the node's own.

    ``dev_keys``: ``run --dev``'s developer keys, served unlocked as geth --dev serves its dev
    account (eth_accounts, eth_sendTransaction, eth_sign...); none on any other chain."""
    http, ws, ipc = http_config_from_args(args), ws_config_from_args(args), ipc_config_from_args(args)
    if http is None and ws is None and ipc is None:
        return None
    accounts = DevAccounts(dev_keys)

    def construct(ctx: ServiceContext) -> RPCService:
        return RPCService(ctx, http, public_apis(ctx, p2p, accounts), ws=ws, ipc=ipc)

    return construct


__all__ = ["add_rpc_flags", "rpc_service_constructor", "http_config_from_args", "ws_config_from_args",
           "ipc_config_from_args", "check_ipc_flags", "parse_modules"]
