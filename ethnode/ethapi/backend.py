"""The namespaces a node serves over its services (geth ``ethapi.GetAPIs``, ``node/api.go``).

The Ethereum service and the node container sit below the JSON-RPC namespaces, so they
do not build them; the command line asks for ``public_apis`` and hands them to the RPC
service (``ethnode.node.rpcstack``: HTTP, WebSocket, IPC), as geth's backend registers its
APIs on the stack.
"""

from __future__ import annotations

from collections.abc import Callable

from ethnode.consensus.beacon import Beacon
from ethnode.consensus.clique import Clique
from ethnode.consensus.engine import Engine
from ethnode.eth.service import EthereumService
from ethnode.ethapi.accesslist import AccessListAPI
from ethnode.ethapi.accounts import AccountAPI, DevAccounts
from ethnode.ethapi.admin import AdminAPI
from ethnode.ethapi.blocks import BlockAPI
from ethnode.ethapi.clique import CliqueRPC
from ethnode.ethapi.config import ConfigAPI
from ethnode.ethapi.debug import DebugAPI
from ethnode.ethapi.eth import EthAPI
from ethnode.ethapi.filters import FilterAPI
from ethnode.ethapi.net import NetAPI
from ethnode.ethapi.proof import ProofAPI
from ethnode.ethapi.subscriptions import SubscriptionAPI
from ethnode.ethapi.tracers import TracerAPI
from ethnode.ethapi.txpool import TxPoolAPI
from ethnode.ethapi.web3 import Web3API
from ethnode.node.lifecycle import ServiceContext, ServiceNotFoundError
from ethnode.p2p.peer import default_client_id
from ethnode.p2p.server import Server
from ethnode.rpc.api import API

P2PServer = Callable[[], Server | None]  # the node's running p2p Server; it is built after the services


def eth_apis(eth: EthereumService, accounts: DevAccounts | None = None) -> list[API]:
    """``eth_``, ``debug_``, ``txpool_``, and ``clique_`` on a Clique chain (geth Clique.APIs: served when asked for).

    ``accounts``: the unlocked keys ``eth_accounts``/``eth_sendTransaction``/``eth_sign*`` use
    (``run --dev``'s); without them those methods answer as geth without unlocked accounts.
    """
    api = EthAPI(eth)
    apis = [
        API("eth", api),
        API("eth", AccountAPI(api, accounts)),
        API("eth", FilterAPI(eth.chain, eth.ctx.bus)),  # geth filters.FilterAPI; drains the bus when called
        API("eth", SubscriptionAPI(eth.chain, eth.ctx.bus, eth.downloader)),  # eth_subscribe (WebSocket, IPC)
        API("eth", BlockAPI(eth, api)),
        API("eth", ProofAPI(api)),  # eth_getProof
        API("eth", AccessListAPI(api)),  # eth_createAccessList
        API("eth", ConfigAPI(eth.chain)),  # eth_config
        API("debug", DebugAPI(api)),  # debug_getRaw*
        API("debug", TracerAPI(api)),  # debug_trace*
        API("txpool", TxPoolAPI(eth.txpool, eth.chain)),
    ]
    clique = _clique(eth.chain.engine)
    if clique is not None:
        apis.append(API("clique", CliqueRPC(clique.api(eth.chain))))
    return apis


def _clique(engine: Engine) -> Clique | None:
    """The Clique engine, alone or as the pre-merge part of Beacon."""
    if isinstance(engine, Beacon):
        engine = engine.ethone
    return engine if isinstance(engine, Clique) else None


def node_apis(ctx: ServiceContext, p2p: P2PServer, eth: EthereumService | None) -> list[API]:
    """``web3_``, ``net_`` and ``admin_``: the node's own (``eth`` None on a p2p-only node)."""

    def client_version() -> str:
        server = p2p()
        return server.client_id if server is not None else default_client_id(ctx.config.identity)

    def network_id() -> int | None:
        return None if eth is None else eth.network_id

    return [
        API("web3", Web3API(client_version)),
        API("net", NetAPI(p2p, network_id)),
        API("admin", AdminAPI(p2p, lambda: eth)),
    ]


def public_apis(ctx: ServiceContext, p2p: P2PServer, accounts: DevAccounts | None = None) -> list[API]:
    """Every namespace for ``--http``, over the Ethereum service built before (if any);
    ``accounts`` as for ``eth_apis``."""
    try:
        eth: EthereumService | None = ctx.service(EthereumService)
    except ServiceNotFoundError:
        eth = None
    return node_apis(ctx, p2p, eth) + (eth_apis(eth, accounts) if eth is not None else [])


__all__ = ["public_apis", "eth_apis", "node_apis", "P2PServer"]
