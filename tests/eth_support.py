"""Test plumbing for the eth tests: the ethtest chain, ethnode nodes on loopback, a scripted peer.

``EthNode`` is a p2p Server running an ``EthHandler`` over a chain and a pool, with no
discovery. ``ScriptedEth`` is a bare eth protocol handler a test drives by hand (send
anything, read what arrives), for the handshake mismatches and protocol violations that
ethnode itself would never send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chain_support import open_chain
from shared_support import shared_path

from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.chainfile import read_blocks
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.txpool import TxPool
from ethnode.core.types.block import Block
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.handler import EthHandler
from ethnode.eth.observer import HeadObserver
from ethnode.eth.protocols.eth.handshake import make_status
from ethnode.eth.protocols.eth.peer import EthPeer
from ethnode.eth.protocols.eth.protocol import PROTOCOL_LENGTHS, STATUS, SUPPORTED_VERSIONS
from ethnode.event import EventBus
from ethnode.p2p.config import ServerConfig
from ethnode.p2p.peer import Peer
from ethnode.p2p.protocol import Protocol, ProtocolChannel
from ethnode.p2p.server import Server

STEP = 10.0  # bound on any single wait
ETHTEST_HEAD = bytes.fromhex("44e3809c9a3cda717f00aea3a9da336d149612c8d5657fbc0028176ef8d94d2a")
ETHTEST_CHAIN_ID = 3503995874084926

_BLOCKS: list[Block] = []


def genesis_json() -> dict[str, Any]:
    return json.loads(shared_path("chains", "ethtest", "genesis.json").read_text())  # type: ignore[no-any-return]


def ethtest_blocks() -> list[Block]:
    if not _BLOCKS:
        _BLOCKS.extend(read_blocks(shared_path("chains", "ethtest", "chain.rlp").read_bytes()))
    return _BLOCKS


def ethtest_chain(upto: int = 600, *, execute: bool = False) -> BlockChain:
    """A fresh BlockChain in memory holding ethtest blocks 1..upto (executed with py-evm when asked:
    then every tx signature is checked too, as an executing node does)."""
    obj = genesis_json()
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db, execute=True) if execute else open_chain(db, verify_senders=False)
    chain._state_root_warned = True  # the import warning is noise here
    if upto:
        chain.insert_chain(ethtest_blocks()[:upto])
    return chain


_SHARED_CHAIN: list[BlockChain] = []


def shared_ethtest_chain() -> BlockChain:
    """One 600-block ethtest chain for the tests that only read it (built once per run)."""
    if not _SHARED_CHAIN:
        _SHARED_CHAIN.append(ethtest_chain(600))
    return _SHARED_CHAIN[0]


def executed_ethtest_chain(upto: int = 0) -> BlockChain:
    """``ethtest_chain`` executed: state, receipts and roots verified."""
    return ethtest_chain(upto, execute=True)


def local_server(protocols: Sequence[Protocol], **config: Any) -> Server:
    cfg = ServerConfig(listen_addr="127.0.0.1:0", no_discovery=True, **config)
    return Server(PrivateKey.generate(), cfg, protocols=list(protocols))


@dataclass
class EthNode:
    """An ethnode peer on loopback: Server + EthHandler (+ its pool and bus)."""

    handler: EthHandler
    server: Server
    txpool: Any
    bus: EventBus

    @property
    def chain(self) -> Any:
        return self.handler.chain

    async def stop(self) -> None:
        await self.handler.stop()
        await self.server.stop()


async def start_node(
    chain: BlockChain,
    *,
    versions: Sequence[int] = SUPPORTED_VERSIONS,
    network_id: int | None = None,
    txpool: Any = None,
    loops: bool = True,
    downloader: Any = None,
    tx_fetcher: Any = None,
    block_fetcher: Any = None,
    downloader_options: Any = None,
    **server_config: Any,
) -> EthNode:
    bus = EventBus()
    chain.events = bus  # the chain posts its head moves on this node's bus, as a node's chain does
    pool = txpool if txpool is not None else TxPool(chain, bus=bus, kzg=None)
    if txpool is not None:
        pool.bus = bus
    key = PrivateKey.generate()
    handler = EthHandler(
        chain, pool, network_id=network_id or chain.config.chain_id, node_id=keccak256(key.node_id), bus=bus,
        versions=versions, downloader=downloader, tx_fetcher=tx_fetcher, block_fetcher=block_fetcher,
        downloader_options=downloader_options,
    )
    cfg = ServerConfig(listen_addr="127.0.0.1:0", no_discovery=True, **server_config)
    server = Server(key, cfg, protocols=handler.protocols())
    await server.start()
    if loops:
        await handler.start()
    return EthNode(handler, server, pool, bus)


async def connect(a: EthNode, b: EthNode) -> tuple[EthPeer, EthPeer]:
    """b dials a; returns (a's EthPeer for b, b's EthPeer for a) once both registered them."""
    na, nb = len(a.handler.peers), len(b.handler.peers)
    await b.server.dial(a.server.enode)
    await asyncio.wait_for(asyncio.gather(a.handler.wait_for_peers(na + 1), b.handler.wait_for_peers(nb + 1)), STEP)
    a_side = a.handler.peers.peer(keccak256(b.server.node_id))
    b_side = b.handler.peers.peer(keccak256(a.server.node_id))
    assert a_side is not None and b_side is not None
    return a_side, b_side


class ScriptedEth:
    """An eth handler that does nothing on its own: the test sends and reads by hand."""

    def __init__(self, channel: ProtocolChannel) -> None:
        self.channel = channel
        self.inbox: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.skipped: list[tuple[int, bytes]] = []  # read past by expect(), kept for later ones
        self.tap: asyncio.Queue[tuple[ScriptedEth, int, bytes]] | None = None  # set: messages go there instead

    async def handle(self, code: int, payload: bytes) -> None:
        if self.tap is not None:
            self.tap.put_nowait((self, code, payload))
        else:
            self.inbox.put_nowait((code, payload))

    async def send(self, code: int, payload: bytes) -> None:
        await self.channel.send(code, payload)

    async def expect(self, code: int, timeout: float = STEP) -> bytes:
        """The payload of the next message with ``code`` (others are set aside for later calls)."""
        for i, (got, payload) in enumerate(self.skipped):
            if got == code:
                del self.skipped[i]
                return payload
        async with asyncio.timeout(timeout):
            while True:
                got, payload = await self.inbox.get()
                if got == code:
                    return payload
                self.skipped.append((got, payload))

    def drain(self) -> list[tuple[int, bytes]]:
        out, self.skipped = self.skipped, []
        while not self.inbox.empty():
            out.append(self.inbox.get_nowait())
        return out


@dataclass
class Scripted:
    server: Server
    peer: Peer
    eth: ScriptedEth

    async def stop(self) -> None:
        await self.server.stop()


async def scripted_peer(node: EthNode, version: int, *, status: bool = True) -> Scripted:
    """A scripted eth/``version`` peer connected to ``node``; with ``status``, it completes the
    handshake with a correct Status and waits until ``node`` has registered it."""
    server = local_server([Protocol("eth", version, PROTOCOL_LENGTHS[version], ScriptedEth)])
    await server.start()
    count = len(node.handler.peers)
    peer = await server.dial(node.server.enode)
    await asyncio.wait_for(peer.wait_ready(), STEP)
    eth = peer.handlers["eth"]
    assert isinstance(eth, ScriptedEth)
    if status:
        await eth.send(STATUS, make_status(version, node.handler.local_status()).encode())
        await eth.expect(STATUS)
        await asyncio.wait_for(node.handler.wait_for_peers(count + 1), STEP)
    return Scripted(server, peer, eth)


async def start_observer(*, observe: bool = True) -> tuple[EthNode, HeadObserver | None]:
    """An observer (``ethnode.eth.observer``) on the ethtest genesis alone: its pool has no state
    and is told each observed head, as the Ethereum service wires it (``observe``: False for a
    control node built the same way without observer mode)."""
    chain = ethtest_chain(0)
    bus = EventBus()
    chain.events = bus
    pool = TxPool(chain, bus=bus, kzg=None)
    key = PrivateKey.generate()
    handler: EthHandler | None = None

    def drop(peer: Any) -> None:
        assert handler is not None
        handler.remove_peer(peer)

    observer = HeadObserver(lambda: chain.current_header, on_head=pool.on_new_head, drop_peer=drop) if observe else None
    handler = EthHandler(chain, pool, network_id=chain.config.chain_id, node_id=keccak256(key.node_id), bus=bus,
                         observer=observer)
    server = Server(key, ServerConfig(listen_addr="127.0.0.1:0", no_discovery=True), protocols=handler.protocols())
    await server.start()
    await handler.start()
    return EthNode(handler, server, pool, bus), observer
