"""``EthNode``: build, start and watch an ethnode from Python, through the public event types.

It wires the same parts ``ethnode-fast run`` does (``Node``, the p2p ``Server``, the
``EthereumService``) from one ``NodeConfig``, and turns the node's internal bus events
into ``ethnode.api.events`` for callbacks (``on``) and async iterators (``subscribe``).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ethnode.api.config import ConfigError, NodeConfig
from ethnode.api.events import (
    BlockAnnouncement,
    BlockRangeUpdate,
    EthMessage,
    NodeFound,
    PeerAdded,
    PeerDropped,
    PeerInfo,
    ReceivedTx,
    StatusInfo,
    Transactions,
    TxAnnouncement,
)
from ethnode.api.hub import DEFAULT_STREAM_SIZE, Callback, EventStream, Hub
from ethnode.consensus import create_engine
from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB, open_database
from ethnode.core.types.transaction import BlobTxWithSidecar
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.eth.protocols.eth.events import (
    BlockRangeUpdated,
    BlocksAnnounced,
    EthMessageReceived,
    EthPeerRegistered,
    TxsAnnounced,
    TxsReceived,
)
from ethnode.eth.protocols.eth.handshake import AnyStatus
from ethnode.eth.protocols.eth.protocol import Status68, message
from ethnode.eth.service import EthConfig, EthereumService
from ethnode.event import EventBus
from ethnode.node import Node
from ethnode.node import NodeConfig as _InternalNodeConfig
from ethnode.node.datadir import DatadirLock
from ethnode.p2p.config import ServerConfig, parse_bootnode, parse_static_node
from ethnode.p2p.enode import Node as EnodeNode
from ethnode.p2p.enode import NodeURLError
from ethnode.p2p.peer import Peer, default_client_id
from ethnode.p2p.protocol import Protocol
from ethnode.p2p.server import NODE_DB_FILE, PeerEvent, PeerEventType, Server

CONNECT_TIMEOUT = 10.0  # seconds connect() waits for Hello (and the eth handshake)


class NodeAPIError(EthnodeError):
    """The node cannot do what was asked (not started, unknown peer, ...)."""


def peer_info(peer: Peer) -> PeerInfo:
    """The public view of a connected p2p peer."""
    hello = peer.remote_hello
    return PeerInfo(
        keccak256(peer.remote_id), peer.remote_id, peer.client_id,
        tuple(str(c) for c in hello.caps) if hello is not None else (), peer.conn.remote_address, peer.inbound,
    )


def status_info(status: AnyStatus) -> StatusInfo:
    if isinstance(status, Status68):
        return StatusInfo(status.version, status.network_id, status.genesis, status.fork_id.hash, status.fork_id.next,
                          status.head, td=status.td)
    return StatusInfo(status.version, status.network_id, status.genesis, status.fork_id.hash, status.fork_id.next,
                      status.latest_hash, earliest=status.earliest, latest=status.latest)


def received_tx(tx: Any) -> ReceivedTx:
    raw = tx.network_encoding() if isinstance(tx, BlobTxWithSidecar) else tx.canonical
    return ReceivedTx(tx.hash, tx.type, raw, tx)


class EthNode:
    """A running ethnode: ``async with EthNode(NodeConfig(...)) as node:`` or ``await start()``/``stop()``.

    Watch it with ``on(kind, callback)`` or ``subscribe(*kinds)``; kinds are the classes
    of ``ethnode.api.events``. Talk to peers with ``connect``, ``send`` and the sub-protocols
    given in the config.
    """

    def __init__(self, config: NodeConfig | None = None) -> None:
        self.config = config or NodeConfig(eth_versions=())
        self.bus = EventBus()  # the node's internal bus; not part of the stable API
        self.node: Node | None = None
        self._infos: weakref.WeakKeyDictionary[Peer, PeerInfo] = weakref.WeakKeyDictionary()
        self._hub = Hub(self.bus, self._routes())
        self._lock: DatadirLock | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the chain (in memory or in the datadir), the p2p server and eth; start listening."""
        if self.node is not None:
            raise NodeAPIError("node already started")
        cfg = self.config
        bootnodes = [self._parse(parse_bootnode, url, "bootnode") for url in cfg.discovery_bootnodes()]
        statics = [self._parse(parse_static_node, url, "static node") for url in cfg.static_nodes]
        if cfg.nodekey_hex is not None:
            try:
                PrivateKey.from_hex(cfg.nodekey_hex)
            except (EthnodeError, ValueError) as exc:
                raise ConfigError(f"invalid nodekey_hex: {exc}") from None
        datadir = Path(cfg.datadir).expanduser().absolute() if cfg.datadir is not None else None
        chain = None
        if datadir is not None:
            lock = DatadirLock(datadir)
            lock.acquire()  # DatadirInUseError before anything else is touched
            self._lock = lock
        self._hub.activate()  # listeners added before start see the first peers too
        try:
            if cfg.eth_versions:
                chain = self._prepare_chain(datadir)
            extra = [p.p2p_protocol() for p in cfg.protocols]

            def build_server(node_config: _InternalNodeConfig, key: PrivateKey, protocols: list[Protocol]) -> Server:
                scfg = ServerConfig(
                    name=default_client_id(cfg.identity), listen_addr=cfg.listen_addr or None,
                    no_discovery=not cfg.discovery, max_peers=cfg.max_peers, bootnodes=list(bootnodes),
                    static_nodes=list(statics), nat=None, node_database=node_config.resolve_path(NODE_DB_FILE),
                )
                return Server(key, scfg, protocols=[*protocols, *extra], bus=self.bus)

            node = Node(_InternalNodeConfig(datadir=datadir, identity=cfg.identity, nodekey_hex=cfg.nodekey_hex),
                        build_server, bus=self.bus, lock=self._lock)
            if cfg.eth_versions:
                eth_config = EthConfig(network_id=cfg.network_id, versions=tuple(cfg.eth_versions),
                                       max_peers=cfg.max_peers, noexec=not cfg.execute, observer=not cfg.execute)

                def build_eth(ctx: Any) -> EthereumService:
                    service = EthereumService(ctx, eth_config, chain=chain)
                    service.handler.syncer.enabled = cfg.sync
                    return service

                node.register(build_eth)
            await node.start()
        except BaseException:
            await self._hub.close()
            if chain is not None:
                chain.db.close()
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            raise
        self.node = node
        self._chain = chain
        # Both protocols keep a table of their own (as geth's); NodeFound tells them apart by ``protocol``.
        for protocol, discovery in (("discv4", self.server.discovery), ("discv5", self.server.discovery_v5)):
            if discovery is not None:
                discovery.table.on_added = self._discovery_hook(protocol)

    def _prepare_chain(self, datadir: Path | None) -> BlockChain | None:
        """The in-memory chain, or None after writing the genesis into the datadir (the service opens it)."""
        genesis = self.config.genesis_json()
        try:
            if datadir is None:
                assert genesis is not None
                db = MemoryDB()
                setup_genesis(db, Genesis.from_json(genesis), genesis)
                chain_config = ChainConfig.from_json(genesis["config"])
                return BlockChain(db, create_engine(chain_config, db), config=chain_config, events=self.bus,
                                  execute=self.config.execute)
            if genesis is not None:
                store = open_database(datadir)
                try:
                    setup_genesis(store, Genesis.from_json(genesis), genesis)
                finally:
                    store.close()
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"invalid genesis: {exc}") from None
        return None

    @staticmethod
    def _parse(parse: Callable[[str], EnodeNode], url: str, what: str) -> EnodeNode:
        try:
            return parse(url)
        except (NodeURLError, ValueError) as exc:
            raise ConfigError(f"invalid {what} {url[:40]!r}: {exc}") from None

    async def stop(self) -> None:
        """Disconnect every peer (QUITTING), stop listening, close the chain; listeners end."""
        await self._hub.close()
        node, self.node = self.node, None
        if node is not None:
            await node.stop()  # releases the datadir lock it was given
            self._lock = None
            if self._chain is not None:
                self._chain.db.close()

    async def __aenter__(self) -> EthNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- identity and peers ------------------------------------------------------------------

    @property
    def server(self) -> Server:
        if self.node is None or self.node.server is None:
            raise NodeAPIError("node not started")
        return self.node.server  # type: ignore[return-value]

    @property
    def eth(self) -> EthereumService | None:
        """The eth service (chain, pool, handler); not part of the stable API."""
        if self.node is None:
            return None
        return self.node.services.get(EthereumService)  # type: ignore[return-value]

    @property
    def enode(self) -> str:
        """Our enode URL, for ``--bootnodes`` or ``admin_addPeer`` of other nodes."""
        return self.server.enode

    @property
    def port(self) -> int:
        return self.server.port

    def peers(self) -> list[PeerInfo]:
        """Peers past Hello."""
        return [self._info(p) for p in self.server.peers()]

    def add_peer(self, enode: str) -> None:
        """Keep a connection to ``enode`` (dialed now and redialed when it drops)."""
        self.server.add_peer(self._parse(parse_static_node, enode, "enode"))

    async def connect(self, enode: str, timeout: float = CONNECT_TIMEOUT) -> PeerInfo:
        """Dial ``enode`` once and wait until it is a peer (with eth: its Status handshake done)."""
        node = self._parse(parse_static_node, enode, "enode")
        # with eth a peer counts once its Status is in; without, once the server added it
        kind = EthPeerRegistered if self.eth is not None else PeerEvent
        added = self.bus.subscribe(kind, 64)
        try:
            async with asyncio.timeout(timeout):
                peer = await self.server.dial(node)
                await peer.wait_ready()
                while True:
                    ev = await added.get()
                    if kind is EthPeerRegistered and ev.peer.channel.peer is peer:
                        break
                    if kind is PeerEvent and ev.type is PeerEventType.ADD and ev.node_id == peer.remote_id:
                        break
            return self._info(peer)
        except TimeoutError:
            raise NodeAPIError(f"{enode[:40]}...: no handshake within {timeout:g} s") from None
        finally:
            added.unsubscribe()

    async def send(self, peer: PeerInfo | bytes, code: int | str, value: Any, request_id: int | None = None) -> None:
        """Send an eth message, by code or name (``"Transactions"``), encoded by ethnode's message table."""
        eth = self.eth
        if eth is None:
            raise NodeAPIError("this node runs no eth protocol")
        target = eth.handler.peers.peer(peer.id if isinstance(peer, PeerInfo) else peer)
        if target is None:
            raise NodeAPIError("no such eth peer")
        msg = self._message(target.version, code)
        await target.channel.send(msg.code, msg.encode(value, request_id))

    @staticmethod
    def _message(version: int, code: int | str) -> Any:
        if isinstance(code, str):
            for c in range(0x20):
                found = message(version, c)
                if found is not None and found.name == code:
                    return found
            raise NodeAPIError(f"no eth/{version} message named {code!r}")
        found = message(version, code)
        if found is None:
            raise NodeAPIError(f"no eth/{version} message {code:#x}")
        return found

    # --- events ------------------------------------------------------------------------------

    def on(self, kind: type | Sequence[type], callback: Callable[[Any], Any]) -> Callback:
        """Call ``callback(event)`` for every event of ``kind`` (a class of ``ethnode.api.events``,
        or several); an async callback is scheduled as a task. ``.cancel()`` the result to stop.
        May be called before ``start()``, to see the very first peers."""
        kinds = frozenset(kind if isinstance(kind, (list, tuple, set, frozenset)) else (kind,))
        return self._hub.add(Callback(self._hub, kinds, callback))  # type: ignore[return-value]

    def subscribe(self, *kinds: type, maxsize: int = DEFAULT_STREAM_SIZE) -> EventStream:
        """An async iterator of events of these kinds (bounded: a slow reader loses the oldest)."""
        if not kinds:
            raise TypeError("subscribe() needs at least one event type")
        return self._hub.add(EventStream(self._hub, frozenset(kinds), maxsize))  # type: ignore[return-value]

    def dropped_events(self) -> int:
        """Internal events lost between the node and the listeners (the hub fell behind)."""
        return self._hub.pump_drops()

    def _discovery_hook(self, protocol: str) -> Callable[[EnodeNode], None]:
        """The table hook a discovery protocol calls with each node it adds."""
        bus = self.bus

        def found(node: EnodeNode) -> None:
            if bus.subscribed(NodeFound):
                bus.post(NodeFound(node.enode_url(), node.id, str(node.ip) if node.ip is not None else None,
                                   node.udp, node.tcp, protocol, time.time_ns()))

        return found

    def _info(self, peer: Peer) -> PeerInfo:
        info = self._infos.get(peer)
        if info is None:
            info = self._infos[peer] = peer_info(peer)
        return info

    def _routes(self) -> dict[type, list[tuple[type, Any]]]:
        info = self._info

        def added_p2p(ev: PeerEvent) -> list[PeerAdded]:
            if ev.type is not PeerEventType.ADD or self.eth is not None:
                return []  # with eth, a peer is added once its Status is in
            return [PeerAdded(_event_info(ev), None, None, time.time_ns())]

        def added_eth(ev: EthPeerRegistered) -> list[PeerAdded]:
            return [PeerAdded(info(ev.peer.channel.peer), status_info(ev.status), ev.peer.version, ev.received_ns)]

        def dropped(ev: PeerEvent) -> list[PeerDropped]:
            if ev.type is not PeerEventType.DROP or ev.reason is None:
                return []
            return [PeerDropped(_event_info(ev), ev.reason.description, int(ev.reason), ev.remote_requested,
                                time.time_ns())]

        def eth_message(ev: EthMessageReceived) -> list[EthMessage]:
            p = ev.peer
            return [EthMessage(info(p.channel.peer), p.version, ev.code, ev.name, ev.value, ev.size, ev.received_ns)]

        def announced(ev: TxsAnnounced) -> list[TxAnnouncement]:
            return [TxAnnouncement(info(ev.peer.channel.peer), tuple(ev.hashes), bytes(ev.types), tuple(ev.sizes),
                                   ev.received_ns)]

        def txs(ev: TxsReceived) -> list[Transactions]:
            return [Transactions(info(ev.peer.channel.peer), tuple(received_tx(t) for t in ev.txs), ev.pooled,
                                 ev.received_ns)]

        def blocks(ev: BlocksAnnounced) -> list[BlockAnnouncement]:
            who = info(ev.peer.channel.peer)
            return [BlockAnnouncement(who, a.hash, a.number, ev.block, ev.td, ev.received_ns) for a in ev.announcements]

        def block_range(ev: BlockRangeUpdated) -> list[BlockRangeUpdate]:
            r = ev.block_range
            return [BlockRangeUpdate(info(ev.peer.channel.peer), r.earliest, r.latest, r.latest_hash, ev.received_ns)]

        return {
            PeerAdded: [(PeerEvent, added_p2p), (EthPeerRegistered, added_eth)],
            PeerDropped: [(PeerEvent, dropped)],
            EthMessage: [(EthMessageReceived, eth_message)],
            TxAnnouncement: [(TxsAnnounced, announced)],
            Transactions: [(TxsReceived, txs)],
            BlockAnnouncement: [(BlocksAnnounced, blocks)],
            BlockRangeUpdate: [(BlockRangeUpdated, block_range)],
            NodeFound: [(NodeFound, lambda ev: [ev])],
        }


def _event_info(ev: PeerEvent) -> PeerInfo:
    return PeerInfo(keccak256(ev.node_id), ev.node_id, ev.client_id, tuple(str(c) for c in ev.caps),
                    ev.remote_address, ev.inbound)


__all__ = ["EthNode", "NodeAPIError", "peer_info", "status_info", "received_tx", "CONNECT_TIMEOUT"]
