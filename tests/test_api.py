"""ethnode.api against real nodes on loopback: two in-memory EthNodes from one genesis, a tx put
in one node's pool reaching the other as an announcement or a broadcast, peer events with
Status and reason, the raw eth message tap, sending by name, an extra sub-protocol, and the
zero-cost rule (no bus subscription, so no observer event is even built, until someone listens).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from p2p_support import run_checked
from txpool_support import CHAIN_ID, KEYS, dyn, genesis_json

import ethnode
from ethnode import api
from ethnode.api import (
    ConfigError,
    EthMessage,
    EthNode,
    NodeConfig,
    PeerAdded,
    PeerDropped,
    SubProtocol,
    Transactions,
    TxAnnouncement,
    sedes,
)
from ethnode.core.types.transaction import address_of
from ethnode.errors import EthnodeError
from ethnode.eth.protocols.eth.events import EthMessageReceived, TxsAnnounced, TxsReceived
from ethnode.node import DatadirInUseError

STEP = 15.0


def funded_genesis() -> dict[str, Any]:
    obj = genesis_json()
    obj["alloc"] = {"0x" + address_of(k.node_id).hex(): {"balance": hex(10**21)} for k in KEYS[:4]}
    return obj


def _config(**kw: Any) -> NodeConfig:
    return NodeConfig(genesis=funded_genesis(), **kw)


async def _pair(**kw: Any) -> tuple[EthNode, EthNode]:
    a, b = EthNode(_config(**kw)), EthNode(_config(**kw))
    await a.start()
    await b.start()
    return a, b


def test_root_reexports_the_public_api() -> None:
    assert set(api.__all__) == ethnode._API_NAMES
    for name in api.__all__:
        assert getattr(ethnode, name) is getattr(api, name)
    with pytest.raises(AttributeError):
        ethnode.NoSuchThing  # noqa: B018


def test_config_errors_are_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown network 'nope'"):
        NodeConfig(network="nope")
    with pytest.raises(ConfigError, match="eth needs a chain"):
        NodeConfig()
    with pytest.raises(ConfigError, match="unsupported eth versions"):
        NodeConfig(genesis={}, eth_versions=(66,))

    # a preset with discovery starts from its bootnodes (not contacted here: nothing leaves loopback)
    assert NodeConfig(network="sepolia", discovery=True).discovery_bootnodes()[0].startswith("enr:")
    assert NodeConfig(network="sepolia").discovery_bootnodes() == ()
    assert NodeConfig(network="sepolia", discovery=True, bootnodes=["enode://x"]).discovery_bootnodes() == ["enode://x"]

    async def bad_bootnode() -> None:
        with pytest.raises(ConfigError, match="invalid bootnode"):
            await EthNode(NodeConfig(eth_versions=(), bootnodes=["enode://zz"])).start()

    run_checked(bad_bootnode, timeout=STEP)


def test_peer_events_messages_and_tx_observation() -> None:
    async def scenario() -> None:
        a, b = await _pair()
        try:
            added: asyncio.Queue[PeerAdded] = asyncio.Queue()
            b.on(PeerAdded, added.put_nowait)
            # nobody listens for tx events yet: the wire layer does not even build them
            assert not b.bus.subscribed(TxsAnnounced) and not b.bus.subscribed(EthMessageReceived)
            stream = b.subscribe(TxAnnouncement, Transactions, EthMessage)
            assert b.bus.subscribed(TxsAnnounced) and b.bus.subscribed(TxsReceived)
            info = await b.connect(a.enode)
            assert info.client_id is not None and info.client_id.startswith("ethnode/")
            assert "eth/69" in info.caps or "eth/71" in info.caps
            assert [p.id for p in b.peers()] == [info.id]
            first = await asyncio.wait_for(added.get(), STEP)
            assert first.peer.id == info.id and first.status is not None and first.status.network_id == CHAIN_ID
            assert first.eth_version == max(NodeConfig.eth_versions)

            tx = dyn(0, 0)
            assert a.eth is not None
            assert a.eth.txpool.add_locals([tx]) == [None]
            seen: dict[str, Any] = {}
            async with asyncio.timeout(STEP):
                async for ev in stream:
                    if isinstance(ev, (TxAnnouncement, Transactions)):
                        hashes = ev.hashes if isinstance(ev, TxAnnouncement) else [t.hash for t in ev.txs]
                        if tx.hash in hashes:
                            seen[type(ev).__name__] = ev
                    else:
                        seen.setdefault("names", set()).add(ev.name)
                    if "Transactions" in seen:
                        break
            full = seen["Transactions"]
            (got,) = [t for t in full.txs if t.hash == tx.hash]
            assert got.raw == tx.canonical and got.type == tx.type and full.peer.id == info.id
            assert full.time_ns > 0
            # one peer: a 1-peer broadcast sends the tx in full (⌈√1⌉ = 1), no announcement needed
            assert "Transactions" in seen["names"]
            stream.close()
            assert not b.bus.subscribed(TxsAnnounced)  # the last listener gone: back to zero cost

            dropped: asyncio.Queue[PeerDropped] = asyncio.Queue()
            b.on(PeerDropped, dropped.put_nowait)
            a.server.remove_peer(b.enode)  # a disconnects b: "disconnect requested"
            ev = await asyncio.wait_for(dropped.get(), STEP)
            assert ev.reason == "disconnect requested" and ev.remote_requested and ev.peer.id == info.id
        finally:
            await b.stop()
            await a.stop()

    run_checked(scenario, timeout=60)


def test_send_by_name_reaches_the_peer() -> None:
    async def scenario() -> None:
        a, b = await _pair()
        try:
            info = await b.connect(a.enode)
            messages = a.subscribe(EthMessage)
            tx = dyn(1, 0)
            await b.send(info, "Transactions", [tx.item()])
            async with asyncio.timeout(STEP):
                async for ev in messages:
                    if ev.name == "Transactions":
                        break
            assert ev.value[0] == tx.item() or bytes(ev.value[0]) == tx.canonical
            with pytest.raises(api.NodeAPIError, match="no eth/"):
                await b.send(info, "NoSuchMessage", [])
        finally:
            await b.stop()
            await a.stop()

    run_checked(scenario, timeout=60)


PING, PONG = 0, 1


def test_extra_subprotocol_is_offered_and_routed() -> None:
    async def scenario() -> None:
        got: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        async def handler(peer: api.SubPeer, code: int, value: Any, time_ns: int) -> None:
            if code == PING:
                await peer.send(PONG, [value[0], b"pong"])
            else:
                got.put_nowait(("pong", value))

        async def hello(peer: api.SubPeer) -> None:
            await peer.send(PING, [7, b"ping"])

        table = {PING: sedes.Tuple(sedes.uint64, sedes.binary), PONG: sedes.Tuple(sedes.uint64, sedes.binary)}
        server_proto = SubProtocol("demo", 1, table, handler)
        client_proto = SubProtocol("demo", 1, table, handler, on_connect=hello)
        a = EthNode(NodeConfig(eth_versions=(), protocols=[server_proto]))
        b = EthNode(NodeConfig(eth_versions=(), protocols=[client_proto]))
        await a.start()
        await b.start()
        try:
            info = await b.connect(a.enode)
            assert "demo/1" in info.caps
            kind, value = await asyncio.wait_for(got.get(), STEP)
            assert kind == "pong" and tuple(value) == (7, b"pong")
        finally:
            await b.stop()
            await a.stop()

    run_checked(scenario, timeout=60)


def test_subprotocol_violation_drops_the_peer() -> None:
    async def scenario() -> None:
        table = {0: sedes.Tuple(sedes.uint64)}
        proto = SubProtocol("demo", 1, table, lambda *args: None)
        a = EthNode(NodeConfig(eth_versions=(), protocols=[proto]))
        b = EthNode(NodeConfig(eth_versions=(), protocols=[proto]))
        await a.start()
        await b.start()
        try:
            dropped: asyncio.Queue[PeerDropped] = asyncio.Queue()
            b.on(PeerDropped, dropped.put_nowait)
            await b.connect(a.enode)
            (peer,) = b.server.peers()
            channel = next(iter(peer.handlers.values())).peer.channel
            await channel.send(0, b"\x01\x02")  # not an RLP list
            ev = await asyncio.wait_for(dropped.get(), STEP)
            assert ev.reason == "subprotocol error" and ev.remote_requested
        finally:
            await b.stop()
            await a.stop()

    run_checked(scenario, timeout=60)


def test_discovery_node_found_events() -> None:
    async def scenario() -> None:
        found: asyncio.Queue[api.NodeFound] = asyncio.Queue()
        a = EthNode(NodeConfig(eth_versions=(), discovery=True))
        a.on(api.NodeFound, found.put_nowait)
        await a.start()
        b = EthNode(NodeConfig(eth_versions=(), discovery=True, bootnodes=[a.enode]))
        b.on(api.NodeFound, found.put_nowait)
        await b.start()
        try:
            ids = {a.server.id: "a", b.server.id: "b"}
            seen: set[str] = set()
            while seen != {"discv4", "discv5"}:  # both protocols run on one socket, each with its table
                ev = await asyncio.wait_for(found.get(), STEP)
                assert ev.id in ids and ev.ip == "127.0.0.1" and ev.udp > 0
                assert ev.enode.startswith("enode://") and ev.time_ns > 0
                seen.add(ev.protocol)
        finally:
            await b.stop()
            await a.stop()

    run_checked(scenario, timeout=60)


def test_block_announcements_and_range_updates() -> None:
    async def scenario() -> None:
        a, b = await _pair(eth_versions=(68,))
        c, d = await _pair(eth_versions=(69,))
        try:
            blocks = b.subscribe(api.BlockAnnouncement)
            ranges = d.subscribe(api.BlockRangeUpdate)
            await b.connect(a.enode)
            await d.connect(c.enode)
            assert a.eth is not None and c.eth is not None
            head = a.eth.chain.current_block
            assert a.eth.handler.broadcast_block(head, False) == 1  # NewBlockHashes (eth/68)
            ann = await asyncio.wait_for(blocks.get(), STEP)
            assert (ann.hash, ann.number, ann.block) == (head.hash, 0, None)
            assert c.eth.handler.broadcast_block_range(force=True) == 1  # BlockRangeUpdate (eth/69)
            rng = await asyncio.wait_for(ranges.get(), STEP)
            assert (rng.earliest, rng.latest, rng.latest_hash) == (0, 0, c.eth.chain.current_block.hash)
        finally:
            for node in (d, c, b, a):
                await node.stop()

    run_checked(scenario, timeout=60)


def test_datadir_node_keeps_its_chain_and_key(tmp_path: Path) -> None:
    async def scenario() -> None:
        first = EthNode(_config(datadir=tmp_path / "d"))
        await first.start()
        enode_id = first.enode.split("@")[0]
        assert first.eth is not None
        genesis_hash = first.eth.chain.genesis_hash
        with pytest.raises(DatadirInUseError, match="already used by another process"):
            await EthNode(_config(datadir=tmp_path / "d")).start()  # the datadir lock holds
        await first.stop()
        again = EthNode(NodeConfig(datadir=tmp_path / "d"))  # no genesis needed: the datadir holds the chain
        await again.start()
        try:
            assert again.enode.split("@")[0] == enode_id
            assert again.eth is not None and again.eth.chain.genesis_hash == genesis_hash
        finally:
            await again.stop()

    run_checked(scenario, timeout=60)


def test_failed_start_releases_the_datadir(tmp_path: Path) -> None:
    async def scenario() -> None:
        a = EthNode(NodeConfig(eth_versions=()))
        await a.start()
        try:
            taken = f"127.0.0.1:{a.port}"
            b = EthNode(_config(datadir=tmp_path / "d", listen_addr=taken))
            b.on(PeerAdded, lambda ev: None)
            with pytest.raises(EthnodeError, match="could not listen"):
                await b.start()
            c = EthNode(_config(datadir=tmp_path / "d"))  # the lock was released, the genesis kept
            await c.start()
            await c.stop()
        finally:
            await a.stop()

    run_checked(scenario, timeout=60)
