"""The p2p Server on loopback: discovery-driven peering, limits, static redials, per-IP and
NetRestrict rules, the admin API, peer events and shutdown.

Every wait is for an event (a PeerEvent on the bus, a peer's end, a closed socket) and
bounded; nothing sleeps to let things happen. Linux routes all of 127.0.0.0/8 to
loopback, so 127.0.0.2 and 127.0.0.3 serve as distinct source IPs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from p2p_support import STEP_TIMEOUT, RawPeer, run_checked

from ethnode.commands.flags.p2p import server_factory
from ethnode.crypto.keys import PrivateKey
from ethnode.event import EventBus, Subscription
from ethnode.node import DatadirInUseError, Node, NodeConfig
from ethnode.p2p.config import ServerConfig
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.discover.udp import Config as DiscoveryConfig
from ethnode.p2p.enode import parse_enode
from ethnode.p2p.nat import parse_nat
from ethnode.p2p.netutil import Netlist
from ethnode.p2p.peer import Peer
from ethnode.p2p.rlpx.transport import ConnectionClosedError
from ethnode.p2p.server import PeerEvent, PeerEventType, Server

HOST = "127.0.0.1"
GRAPH_TIMEOUT = 20.0  # ten nodes typically connect in well under a second


def server(key: PrivateKey | None = None, bus: EventBus | None = None, **config: Any) -> Server:
    """A server on a free loopback port; discovery off unless ``no_discovery=False`` is given."""
    config.setdefault("listen_addr", f"{HOST}:0")
    config.setdefault("no_discovery", True)
    return Server(key or PrivateKey.generate(), ServerConfig(**config), bus=bus)


def dialer(**config: Any) -> Server:
    """A server that only dials (no listener, no discovery)."""
    return server(listen_addr=None, **config)


async def until(sub: Subscription, condition: Callable[[], bool], timeout: float = STEP_TIMEOUT) -> None:
    """Wait, event by event, until ``condition()`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await sub.get()


async def next_event(sub: Subscription, kind: PeerEventType, timeout: float = STEP_TIMEOUT) -> PeerEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await sub.get()
            if event.type is kind:
                return event


def connected_components(servers: list[Server]) -> int:
    index = {s.node_id: i for i, s in enumerate(servers)}
    parent = list(range(len(servers)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, s in enumerate(servers):
        for p in s.peers():
            j = index.get(p.remote_id)
            if j is not None:
                parent[root(i)] = root(j)
    return len({root(i) for i in range(len(servers))})


# ---------------------------------------------------------------------------------------
# Discovery to peers


def test_ten_nodes_with_one_bootnode_become_a_connected_graph() -> None:
    async def scenario() -> None:
        bus = EventBus()
        sub = bus.subscribe(PeerEvent)
        boot = server(bus=bus, no_discovery=False)
        await boot.start()
        servers = [boot]
        try:
            for _ in range(9):
                s = server(bus=bus, no_discovery=False, bootnodes=[boot.self_node])
                await s.start()
                servers.append(s)
            assert boot.self_node.udp == boot.port  # discovery on the TCP port by default
            await until(sub, lambda: connected_components(servers) == 1, GRAPH_TIMEOUT)
            # everyone found someone other than the bootnode: the graph is not just a star
            assert any(p.remote_id != boot.node_id for s in servers[1:] for p in s.peers())
        finally:
            await asyncio.gather(*(s.stop() for s in servers))
        assert all(not s.peers() for s in servers)

    run_checked(scenario, timeout=GRAPH_TIMEOUT + 15)


def test_nodes_with_discv5_alone_find_each_other_and_connect() -> None:
    """``--discovery.v4=false``: discv5 on its own socket feeds the dialer by itself."""

    async def scenario() -> None:
        bus = EventBus()
        sub = bus.subscribe(PeerEvent)
        boot = server(bus=bus, no_discovery=False, discovery_v4=False)
        await boot.start()
        servers = [boot]
        try:
            assert boot.discovery is None and boot.discovery_v5 is not None
            assert boot.self_node.udp == boot.discovery_v5.port == boot.port
            for _ in range(4):
                s = server(bus=bus, no_discovery=False, discovery_v4=False, bootnodes=[boot.self_node])
                await s.start()
                servers.append(s)
            await until(sub, lambda: connected_components(servers) == 1, GRAPH_TIMEOUT)
            assert all(s.discovery_v5 is not None and s.discovery_v5.stats["in:PONG/v5"] +
                       s.discovery_v5.stats["in:NODES/v5"] > 0 for s in servers[1:])
        finally:
            await asyncio.gather(*(s.stop() for s in servers))

    run_checked(scenario, timeout=GRAPH_TIMEOUT + 15)


def test_discv4_and_discv5_share_the_servers_udp_port() -> None:
    async def scenario() -> None:
        srv = server(no_discovery=False)
        await srv.start()
        try:
            assert srv.discovery is not None and srv.discovery_v5 is not None
            assert srv.discovery_v5.port == srv.discovery.port == srv.self_node.udp
            assert srv.discovery_v5.local is srv.discovery.local  # one record for both
        finally:
            await srv.stop()
        off = server(no_discovery=False, discovery_v4=False, discovery_v5=False)
        await off.start()
        try:
            assert off.discovery is None and off.discovery_v5 is None
        finally:
            await off.stop()

    run_checked(scenario, timeout=20)


# ---------------------------------------------------------------------------------------
# Limits


def test_max_peers_holds_under_30_dialers_and_trusted_nodes_still_get_in() -> None:
    max_peers = 6  # a third for our own dials: 4 inbound slots

    async def scenario() -> None:
        bus = EventBus()
        sub = bus.subscribe(PeerEvent)
        target = server(bus=bus, max_peers=max_peers)
        await target.start()
        dialers = [dialer() for _ in range(30)]
        trusted = dialer()
        target.add_trusted_peer(trusted.self_node)
        live, most = 0, 0
        try:
            for d in [*dialers, trusted]:
                await d.start()

            async def attempt(d: Server) -> Peer:
                peer = await d.dial(target.enode)
                try:
                    await asyncio.wait_for(peer.wait_ready(), STEP_TIMEOUT)
                except ConnectionClosedError:
                    pass
                return peer

            peers = await asyncio.gather(*(attempt(d) for d in dialers))
            refused = [p for p in peers if p.reason is not None]
            accepted = [p for p in peers if p.reason is None]
            assert len(accepted) == ServerConfig(max_peers=max_peers).max_inbound_conns() == 4
            assert len(refused) == 26
            assert all(p.reason is DiscReason.TOO_MANY_PEERS and p.remote_requested for p in refused)
            assert target.peer_count() == 4
            extra = await trusted.dial(target.enode)  # trusted: exempt from both limits
            await asyncio.wait_for(extra.wait_ready(), STEP_TIMEOUT)
            assert target.peer_count() == 5
            while not sub.queue.empty():  # the events agree: never more than the limits
                event = sub.queue.get_nowait()
                live += 1 if event.type is PeerEventType.ADD else -1
                most = max(most, live)
            assert most == 5
        finally:
            await target.stop()
            await asyncio.gather(*(d.stop() for d in [*dialers, trusted]))
        assert all(p.reason is DiscReason.QUITTING for p in accepted)  # stop said goodbye to each

    run_checked(scenario)


def test_inbound_attempts_are_throttled_per_ip() -> None:
    async def scenario() -> None:
        target = server(throttle_lan=True)  # geth exempts LAN sources; loopback stands in for WAN here
        await target.start()
        try:
            first = await asyncio.open_connection(HOST, target.port, local_addr=("127.0.0.2", 0))
            again = await asyncio.open_connection(HOST, target.port, local_addr=("127.0.0.2", 0))
            other = await RawPeer.connect(HOST, target.port, target.node_id)  # from 127.0.0.1: allowed
            assert await asyncio.wait_for(again[0].read(), STEP_TIMEOUT) == b""  # closed unheard
            await other.exchange_hello([])
            first[1].close()
            other.close()
            again[1].close()
        finally:
            await target.stop()

    run_checked(scenario)


def test_netrestrict_limits_whom_we_accept_and_dial() -> None:
    async def scenario() -> None:
        target = server(net_restrict=Netlist.parse("127.0.0.2/32"))
        outside = server()
        await target.start()
        await outside.start()
        try:
            reader, writer = await asyncio.open_connection(HOST, target.port, local_addr=("127.0.0.3", 0))
            assert await asyncio.wait_for(reader.read(), STEP_TIMEOUT) == b""
            writer.close()
            raw = await asyncio.open_connection(HOST, target.port, local_addr=("127.0.0.2", 0))
            assert target._pending  # inside the list: it gets a handshake
            raw[1].close()
            assert target._sched is not None
            assert target._sched.check_dial(outside.self_node) is not None  # 127.0.0.1: not dialed
        finally:
            await target.stop()
            await outside.stop()

    run_checked(scenario)


# ---------------------------------------------------------------------------------------
# Static peers and the admin API


def test_a_static_peer_is_redialed_after_the_remote_restarts() -> None:
    async def scenario() -> None:
        bus = EventBus()
        sub = bus.subscribe(PeerEvent)
        b_key = PrivateKey.generate()
        b = server(b_key)
        await b.start()
        port = b.port
        a = server(bus=bus, static_nodes=[b.self_node], dial_history_expiration=0.1, max_dial_backoff=0.4)
        await a.start()
        try:
            added = await next_event(sub, PeerEventType.ADD)
            assert added.node_id == b_key.node_id and not added.inbound
            await b.stop()
            dropped = await next_event(sub, PeerEventType.DROP)
            assert dropped.reason is DiscReason.QUITTING and dropped.remote_requested
            b = server(b_key, listen_addr=f"{HOST}:{port}")  # same key, same port
            await b.start()
            again = await next_event(sub, PeerEventType.ADD)
            assert again.node_id == b_key.node_id and [p.remote_id for p in a.peers()] == [b_key.node_id]
            # remove_peer: disconnected with "requested", and no longer static
            assert a.remove_peer(b.self_node)
            gone = await next_event(sub, PeerEventType.DROP)
            assert gone.reason is DiscReason.REQUESTED and not gone.remote_requested
            assert a._sched is not None and not a._sched.static
        finally:
            await a.stop()
            await b.stop()

    run_checked(scenario)


def test_add_peer_and_trusted_peer_at_runtime() -> None:
    async def scenario() -> None:
        bus = EventBus()
        sub = bus.subscribe(PeerEvent)
        full = server(bus=bus, max_peers=0)  # accepts no one but trusted nodes
        a = server()
        await full.start()
        await a.start()
        try:
            peer = await a.dial(full.enode)
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(peer.wait_ready(), STEP_TIMEOUT)
            assert peer.reason is DiscReason.TOO_MANY_PEERS
            full.add_trusted_peer(a.enode)
            assert a.add_peer(full.enode) and not a.add_peer(full.enode)
            event = await next_event(sub, PeerEventType.ADD)
            assert event.node_id == a.node_id and event.inbound
            assert event.id == a.id  # geth's enode.ID alongside the public key
            full.remove_trusted_peer(a.enode)  # stays connected, as in geth
            assert full.peer_count() == 1
        finally:
            await a.stop()
            await full.stop()

    run_checked(scenario)


def test_simultaneous_dials_keep_exactly_one_connection() -> None:
    async def scenario() -> None:
        bus = EventBus()
        sub = bus.subscribe(PeerEvent)
        a, b = server(bus=bus), server(bus=bus)
        await a.start()
        await b.start()
        try:
            results = await asyncio.gather(a.dial(b.enode), b.dial(a.enode), return_exceptions=True)
            assert any(isinstance(r, Peer) for r in results)
            await until(sub, lambda: a.peer_count() == b.peer_count() == 1 and not a._conns.keys() - {b.id}
                        and len(a._conns) == len(b._conns) == 1)
            [pa], [pb] = a.peers(), b.peers()
            assert pa.inbound != pb.inbound  # both ends of one connection
        finally:
            await a.stop()
            await b.stop()

    run_checked(scenario)


def test_self_dial_is_refused() -> None:
    async def scenario() -> None:
        a = server()
        await a.start()
        try:
            with pytest.raises(Exception, match="connected to self"):
                await a.dial(a.enode)
        finally:
            await a.stop()

    run_checked(scenario)


# ---------------------------------------------------------------------------------------
# Identity: NAT, ports, the Node


def test_enode_address_nat_extip_and_split_discovery_port() -> None:
    async def scenario() -> None:
        plain = server()
        ext = server(nat=parse_nat("extip:203.0.113.7"), no_discovery=False)
        split = server(no_discovery=False, disc_addr=f"{HOST}:0",
                       discovery=DiscoveryConfig(refresh_interval=3600.0))
        for s in (plain, ext, split):
            await s.start()
        try:
            assert plain.enode == f"enode://{plain.node_id.hex()}@{HOST}:{plain.port}?discport=0"  # as geth
            node = parse_enode(ext.enode)
            assert str(node.ip) == "203.0.113.7" and node.tcp == node.udp == ext.port
            node = parse_enode(split.enode)
            assert node.tcp == split.port and node.udp != split.port
            assert split.discovery is not None and node.udp == split.discovery.port
        finally:
            for s in (plain, ext, split):
                await s.stop()

    run_checked(scenario)


def test_node_runs_the_server_and_refuses_a_second_instance(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = EventBus()
        p2p = ServerConfig(listen_addr=f"{HOST}:0")
        node = Node(NodeConfig(datadir=tmp_path), server_factory(p2p, bus), bus=bus)
        await node.start()
        try:
            srv = node.server
            assert isinstance(srv, Server) and srv.running and srv.discovery is not None
            assert srv.node_id == node.node_key.node_id  # type: ignore[union-attr]
            assert srv.config.node_database == tmp_path / "ethnode" / "nodes.sqlite3"
            second = Node(NodeConfig(datadir=tmp_path), server_factory(p2p))
            with pytest.raises(DatadirInUseError, match="datadir already used by another process"):
                await second.start()
        finally:
            await node.stop()
        assert not srv.running

    run_checked(scenario)
