"""The Server's sans-IO rules: the dial scheduler, NetRestrict lists, the inbound throttle,
``--nat`` parsing and ServerConfig's geth-derived limits. No sockets, no clock: time is
whatever number the test passes."""

from __future__ import annotations

import ipaddress
import random

import pytest

from ethnode.crypto.keys import PrivateKey
from ethnode.p2p.config import ConfigError, ServerConfig, join_host_port, split_host_port
from ethnode.p2p.dial import (
    DIAL_HISTORY_EXPIRATION,
    MAX_DIAL_BACKOFF,
    ConnFlag,
    DialRefused,
    DialScheduler,
    DialTask,
)
from ethnode.p2p.enode import Node
from ethnode.p2p.nat import ExtIP, NATError, PortMapper, parse_nat
from ethnode.p2p.netutil import ExpiringSet, InboundThrottle, Netlist

SELF = Node(PrivateKey.generate().node_id, "127.0.0.1", 30303, 30303)


def node(ip: str = "10.0.0.1", tcp: int = 30303) -> Node:
    return Node(PrivateKey.generate().node_id, ip, tcp, tcp)


def scheduler(**kw: object) -> DialScheduler:
    args: dict[str, object] = {"max_dial_peers": 4, "rng": random.Random(1)}
    args.update(kw)
    return DialScheduler(SELF.id, **args)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# The dial scheduler


def test_static_node_is_dialed_kept_and_redialed_after_the_history_expires() -> None:
    d = scheduler()
    n = node()
    assert d.add_static(n) and not d.add_static(n)
    [task] = d.poll(0.0)
    assert task.node is n and task.static and task.flags is ConnFlag.STATIC_DIALED
    assert d.poll(1.0) == []  # being dialed
    d.dial_done(task, ok=True)
    d.peer_added(n.id, task.flags)
    assert d.dial_peers == 1 and d.check_dial(n) is DialRefused.ALREADY_CONNECTED
    d.peer_removed(n.id, task.flags)  # dropped 10 s after the dial: too soon to dial again
    assert d.poll(10.0) == [] and d.check_dial(n) is DialRefused.RECENTLY_DIALED
    assert d.next_deadline() == DIAL_HISTORY_EXPIRATION  # geth: 35 s after the dial started
    [again] = d.poll(DIAL_HISTORY_EXPIRATION)
    assert again is task


def test_a_static_node_dropped_long_after_its_dial_is_redialed_at_once() -> None:
    d = scheduler()
    n = node()
    d.add_static(n)
    [task] = d.poll(0.0)
    d.dial_done(task, ok=True)
    d.peer_added(n.id, task.flags)
    assert d.poll(100.0) == []  # connected: the expired history does not matter
    d.peer_removed(n.id, task.flags)
    assert d.poll(100.0) == [task]


def test_failures_double_the_wait_up_to_the_cap_and_success_resets_it() -> None:
    d = scheduler()
    n = node()
    d.add_static(n)
    now, starts = 0.0, []
    for _ in range(8):
        [task] = d.poll(now)
        starts.append(now)
        d.dial_done(task, ok=False)
        now = d.next_deadline()
        assert now is not None
    waits = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert waits[:4] == [35.0, 70.0, 140.0, 280.0]
    assert waits[-1] == MAX_DIAL_BACKOFF and max(waits) == MAX_DIAL_BACKOFF
    [task] = d.poll(now)
    d.dial_done(task, ok=True)
    assert d.failures(n.id) == 0 and d.backoff(n.id) == DIAL_HISTORY_EXPIRATION


def test_dial_slots_follow_geth() -> None:
    d = scheduler(max_dial_peers=3, max_active_dials=4)
    assert d.free_slots() == 4  # min((3 - 0) * 2, 4)
    tasks = [d.offer(node(f"10.0.0.{i}"), 0.0) for i in range(5)]
    assert all(isinstance(t, DialTask) for t in tasks[:4]) and tasks[4] is DialRefused.NO_SLOT
    assert not d.wants_candidates()
    for t in tasks[:3]:
        assert isinstance(t, DialTask)
        d.dial_done(t, ok=True)
        d.peer_added(t.node.id, t.flags)
    assert d.dial_peers == 3 and d.free_slots() == -1  # full: (3 - 3) * 2 - 1 still dialing
    inbound = node("10.9.9.9")
    d.peer_added(inbound.id, ConnFlag.INBOUND)  # inbound peers do not use dial slots
    assert d.dial_peers == 3


def test_static_dials_come_before_candidates_and_share_the_slots() -> None:
    d = scheduler(max_dial_peers=1)  # two slots
    statics = [node(f"10.0.1.{i}") for i in range(3)]
    for n in statics:
        d.add_static(n)
    started = d.poll(0.0)
    assert len(started) == 2 and d.offer(node(), 0.0) is DialRefused.NO_SLOT
    d.dial_done(started[0], ok=False)
    [third] = d.poll(0.0)
    assert third.node not in (started[0].node, started[1].node)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: SELF, DialRefused.SELF),
        (lambda: Node(PrivateKey.generate().node_id, None), DialRefused.NO_ADDRESS),
        (lambda: node(tcp=0), DialRefused.NO_PORT),
        (lambda: node("192.168.1.1"), DialRefused.NET_RESTRICT),
    ],
    ids=["self", "no-ip", "no-tcp-port", "netrestrict"],
)
def test_candidates_that_are_never_dialed(make: object, reason: DialRefused) -> None:
    d = scheduler(net_restrict=Netlist.parse("10.0.0.0/8, 127.0.0.0/8"))
    assert d.offer(make(), 0.0) is reason  # type: ignore[operator]


def test_candidates_already_dialing_connected_pending_or_recent() -> None:
    d = scheduler()
    a, b, c = node("10.0.0.1"), node("10.0.0.2"), node("10.0.0.3")
    task = d.offer(a, 0.0)
    assert isinstance(task, DialTask)
    assert d.offer(a, 1.0) is DialRefused.ALREADY_DIALING
    d.dial_done(task, ok=False)
    assert d.offer(a, 2.0) is DialRefused.RECENTLY_DIALED
    d.peer_added(b.id, ConnFlag.INBOUND)
    assert d.offer(b, 2.0) is DialRefused.ALREADY_CONNECTED
    d.inbound_pending(c.id)
    assert d.offer(c, 2.0) is DialRefused.PENDING_INBOUND
    d.inbound_completed(c.id)
    assert isinstance(d.offer(c, 3.0), DialTask)


def test_a_static_node_that_connects_inbound_is_not_dialed_and_removal_stops_dials() -> None:
    d = scheduler()
    n = node()
    d.inbound_pending(n.id)
    d.add_static(n)
    assert d.poll(0.0) == []
    d.inbound_completed(n.id)
    d.peer_added(n.id, ConnFlag.INBOUND)
    assert d.poll(0.0) == []
    d.peer_removed(n.id, ConnFlag.INBOUND)
    assert d.remove_static(n.id) and not d.remove_static(n.id)
    assert d.poll(0.0) == []


def test_a_static_node_taken_by_a_dynamic_dial_is_not_dialed_twice() -> None:
    d = scheduler()
    n = node()
    d.add_static(n)  # pooled
    dyn = d.offer(n, 0.0)
    assert isinstance(dyn, DialTask) and dyn.flags is ConnFlag.DYN_DIALED
    assert d.poll(0.0) == []  # the pool member is skipped, not started a second time
    d.dial_done(dyn, ok=False)
    assert d.poll(DIAL_HISTORY_EXPIRATION * 2)[0].static


def test_looking_for_peers_stats() -> None:
    d = scheduler()
    assert d.stats_due(0.0) is None
    d.add_static(node())
    [task] = d.poll(1.0)
    d.dial_done(task, ok=False)
    assert d.stats_due(5.0) is None
    assert d.stats_due(10.0) == {"peercount": 0, "tried": 1, "static": 1}
    assert d.stats_due(15.0) is None


def test_conn_flag_names_as_geth() -> None:
    assert (ConnFlag.TRUSTED | ConnFlag.INBOUND).describe() == "trusted-inbound"
    assert ConnFlag.STATIC_DIALED.dialed and not ConnFlag.INBOUND.dialed


# ---------------------------------------------------------------------------------------
# netutil


def test_netlist_parse_and_contains() -> None:
    nets = Netlist.parse(" 10.0.0.0/8,\n127.0.0.0/8 , 192.168.1.7/24,fd00::/8")
    assert str(nets) == "10.0.0.0/8,127.0.0.0/8,192.168.1.0/24,fd00::/8"
    assert nets.contains("10.200.0.1") and nets.contains(ipaddress.ip_address("127.0.0.2"))
    assert nets.contains("192.168.1.200") and not nets.contains("192.168.2.1")
    assert nets.contains("fd12::1") and not nets.contains("::1") and not nets.contains(None)
    assert len(Netlist.parse("")) == 0
    for bad in ("10.0.0.0", "10.0.0.0/33", "x/8"):
        with pytest.raises(ValueError, match="invalid CIDR"):
            Netlist.parse(bad)


def test_inbound_throttle_per_ip_with_lan_exempt() -> None:
    throttle = InboundThrottle(30.0)
    wan, wan2, lan = (ipaddress.ip_address(a) for a in ("8.8.8.8", "1.1.1.1", "192.168.0.5"))
    assert throttle.check(wan, 0.0) is None
    assert throttle.check(wan, 29.0) == "too many attempts"
    assert throttle.check(wan2, 29.0) is None
    assert throttle.check(lan, 0.0) is None and throttle.check(lan, 0.1) is None  # geth AddrIsLAN
    assert throttle.check(wan, 30.5) is None  # expired
    strict = InboundThrottle(30.0, exempt=lambda ip: False)
    loop = ipaddress.ip_address("127.0.0.2")
    assert strict.check(loop, 0.0) is None and strict.check(loop, 1.0) == "too many attempts"


def test_expiring_set_orders_unlike_keys_and_keeps_the_later_deadline() -> None:
    s = ExpiringSet()
    s.add(ipaddress.ip_address("1.2.3.4"), 5.0)
    s.add(ipaddress.ip_address("::1"), 5.0)  # same deadline, incomparable keys
    s.add(b"k", 1.0)
    s.add(b"k", 3.0)
    s.add(b"k", 2.0)  # earlier: ignored
    assert s.next_expiry() == 3.0 and s.deadline(b"k") == 3.0
    expired: list[object] = []
    s.expire(3.0, expired.append)
    assert expired == [b"k"] and len(s) == 2 and s.next_expiry() == 5.0
    s.remove(ipaddress.ip_address("::1"))
    s.expire(10.0, expired.append)
    assert expired == [b"k", ipaddress.ip_address("1.2.3.4")] and s.next_expiry() is None


# ---------------------------------------------------------------------------------------
# --nat and ServerConfig


def test_parse_nat_as_geth() -> None:
    assert parse_nat("none") is None and parse_nat("") is None and parse_nat("off") is None
    assert parse_nat("extip:1.2.3.4") == ExtIP(ipaddress.ip_address("1.2.3.4"))
    assert parse_nat("ip:::1") == ExtIP(ipaddress.ip_address("::1"))
    assert parse_nat("any") == PortMapper("any")
    for named in ("UPnP", "pmp:192.168.0.1", "stun"):  # asked for by name: refused, not silently inert
        with pytest.raises(NATError, match="not implemented"):
            parse_nat(named)
    assert str(parse_nat("extip:1.2.3.4")) == "extip:1.2.3.4"
    for bad in ("extip", "extip:nothing", "carrier-pigeon"):
        with pytest.raises(NATError):
            parse_nat(bad)


def test_server_config_limits_follow_geth() -> None:
    cfg = ServerConfig()
    assert (cfg.max_peers, cfg.max_dialed_conns(), cfg.max_inbound_conns(), cfg.pending_limit()) == (50, 16, 34, 50)
    assert ServerConfig(max_peers=1).max_dialed_conns() == 1  # never zero while peers are allowed
    assert ServerConfig(max_peers=0).max_inbound_conns() == 0
    assert ServerConfig(max_peers=10, no_dial=True).max_inbound_conns() == 10
    assert ServerConfig(max_peers=12, dial_ratio=2).max_dialed_conns() == 6
    with pytest.raises(ConfigError):
        ServerConfig(max_peers=-1)
    with pytest.raises(ConfigError, match="ListenAddr"):
        ServerConfig(listen_addr="localhost:30303")


def test_host_port_split_and_join() -> None:
    assert split_host_port(":30303") == ("", 30303)
    assert split_host_port("[::1]:0") == ("::1", 0)
    assert join_host_port("::1", 5) == "[::1]:5" and join_host_port("", 5) == ":5"
    for bad in ("30303", "::1:5", "1.2.3.4:70000", "1.2.3.4:x"):
        with pytest.raises(ValueError):
            split_host_port(bad)


def test_server_config_from_geth_toml_table() -> None:
    key = PrivateKey.generate().node_id.hex()
    cfg = ServerConfig.from_toml({
        "MaxPeers": 5, "NoDial": True, "DiscoveryV4": False, "DiscAddr": ":30399",
        "TrustedNodes": [f"enode://{key}"], "NetRestrict": "10.0.0.0/8",
    })
    assert cfg.max_peers == 5 and cfg.no_dial and cfg.disc_addr == ":30399"
    assert not cfg.discovery_v4 and cfg.discovery_v5 and not cfg.no_discovery  # geth: v5 alone still runs
    assert cfg.trusted_nodes[0].pubkey.hex() == key and cfg.trusted_nodes[0].ip is None
    assert cfg.net_restrict == Netlist.parse("10.0.0.0/8")
    with pytest.raises(ConfigError, match=r"field 'Node\.P2P\.Bogus' is not defined"):
        ServerConfig.from_toml({"Bogus": 1})
    with pytest.raises(ConfigError, match=r"Node\.P2P\.NoDial: expected true or false"):
        ServerConfig.from_toml({"NoDial": "yes"})
    with pytest.raises(ConfigError, match=r"Node\.P2P\.StaticNodes: .*needs an IP"):
        ServerConfig.from_toml({"StaticNodes": [f"enode://{key}"]})
