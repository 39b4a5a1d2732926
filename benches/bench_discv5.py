"""discv5: packets handled per second in an established session, compiled vs pure crypto.

"handle ping" is the whole server-side cost of a PING that arrives in a session: unmask
the header (AES-128-CTR), open the message (AES-128-GCM), decode it, then build, seal,
mask and send the PONG. "decode" is the first half alone. Each runs once with the Rust
primitives ("compiled") and once with the pure twin (``cryptography`` + coincurve); the
RLP backend is whatever is selected for both, so the ratio is the crypto's.
"handshake" is the recipient side of one handshake (ECDH, HKDF, ID-signature check and
the first message), the per-new-peer cost.

    PYTHONPATH=. python -m pytest benches/bench_discv5.py --benchmark-only -q
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from ethnode.crypto.keys import PrivateKey
from ethnode.p2p import loop as p2p_loop
from ethnode.p2p.discover.v5_udp import Config, UDPv5
from ethnode.p2p.discover.v5wire import Codec, Whoareyou
from ethnode.p2p.discover.v5wire import crypto as v5crypto
from ethnode.p2p.discover.v5wire.messages import Ping
from ethnode.p2p.enode import Node
from ethnode.p2p.enr import ENR

_PRIMITIVES = {"mask": "v5_mask", "unmask_header": "v5_unmask_header", "encrypt_gcm": "v5_encrypt",
               "decrypt_gcm": "v5_decrypt", "ecdh": "v5_ecdh"}


def _use(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        impl = v5crypto.implementation(kind)
    except ImportError as exc:
        pytest.skip(f"compiled discv5 crypto unavailable: {exc}")
    for name, fn in _PRIMITIVES.items():
        monkeypatch.setattr(v5crypto, name, getattr(impl, fn))


def _client() -> tuple[Codec, ENR]:
    key = PrivateKey.generate()
    record = ENR.create(key, 1)
    return Codec(key, record.node_id, lambda: record), record


def _handshake(client: Codec, svc: UDPv5, addr: tuple[str, int]) -> None:
    """Establish a session as a real peer would: random packet, WHOAREYOU, handshake."""
    data, _ = client.encode(svc.local.id, addr, Ping(b"\x01", 1))
    svc.handle_packet(data, addr)
    # the service's WHOAREYOU went to ``addr``; take the challenge from its session cache instead
    challenge = svc.codec.current_challenge(client.local_id, addr)
    assert challenge is not None
    mine = Whoareyou(challenge.nonce, challenge.id_nonce, challenge.record_seq, node=svc.self_node,
                     challenge_data=challenge.challenge_data)
    data, _ = client.encode(svc.local.id, addr, Ping(b"\x02", 1), mine)
    svc.handle_packet(data, addr)
    assert svc.codec.session_node(client.local_id, addr) is not None


@pytest.mark.parametrize("kind", ["compiled", "pure"])
def test_handle_ping(benchmark: Any, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    _use(kind, monkeypatch)
    loop = p2p_loop.new_event_loop()
    try:
        svc = loop.run_until_complete(UDPv5(PrivateKey.generate(), config=Config(ping_interval=3600))
                                      .start("127.0.0.1", 0))
        sink = loop.run_until_complete(loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                                     local_addr=("127.0.0.1", 0)))[0]
        addr = sink.get_extra_info("sockname")[:2]
        client, _ = _client()
        _handshake(client, svc, addr)
        data, _ = client.encode(svc.local.id, addr, Ping(os.urandom(8), 1))
        before = svc.stats["out:PONG/v5"]
        benchmark.group = "discv5 handle ping in a session (unmask, decrypt, decode, seal+send pong)"
        benchmark.extra_info.update(impl=kind, items=1)
        benchmark(svc.handle_packet, data, addr)
        benchmark.extra_info["packets_per_s"] = round(1 / benchmark.stats.stats.mean)
        assert svc.stats["out:PONG/v5"] > before and not any(k.startswith("drop:") for k in svc.stats)
        sink.close()
        loop.run_until_complete(svc.close())
    finally:
        loop.close()


@pytest.mark.parametrize("kind", ["compiled", "pure"])
def test_decode_message(benchmark: Any, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    _use(kind, monkeypatch)
    a, record_a = _client()
    b, record_b = _client()
    addr = ("127.0.0.1", 30303)
    first, nonce = a.encode(b.local_id, addr, Ping(b"\x01", 1))
    b.decode(first, addr)
    w, _ = b.encode(a.local_id, addr, Whoareyou(nonce, os.urandom(16), 0))
    challenge = a.decode(w, addr)[2]
    challenge.node = Node.from_enr(record_b)
    hs, _ = a.encode(b.local_id, addr, Ping(b"\x01", 1), challenge)
    b.decode(hs, addr)
    data, _ = a.encode(b.local_id, addr, Ping(os.urandom(8), 7))
    benchmark.group = "discv5 decode a message packet (unmask, decrypt, decode)"
    benchmark.extra_info.update(impl=kind, items=1)
    _, _, msg = benchmark(b.decode, data, addr)
    assert isinstance(msg, Ping) and msg.enr_seq == 7
    benchmark.extra_info["packets_per_s"] = round(1 / benchmark.stats.stats.mean)


@pytest.mark.parametrize("kind", ["compiled", "pure"])
def test_handshake_recipient(benchmark: Any, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    _use(kind, monkeypatch)
    a, record_a = _client()
    b, record_b = _client()
    addr = ("127.0.0.1", 30303)

    def setup() -> tuple[tuple[bytes, tuple[str, int]], dict[str, Any]]:
        first, nonce = a.encode(b.local_id, addr, Ping(b"\x01", 1))
        w, _ = b.encode(a.local_id, addr, Whoareyou(nonce, os.urandom(16), 0))
        challenge = a.decode(w, addr)[2]
        challenge.node = Node.from_enr(record_b)
        hs, _ = a.encode(b.local_id, addr, Ping(b"\x01", 1), challenge)
        return (hs, addr), {}

    benchmark.group = "discv5 handshake, recipient side (ECDH, HKDF, id signature, first message)"
    benchmark.extra_info.update(impl=kind, items=1)
    src, node, msg = benchmark.pedantic(b.decode, setup=setup, rounds=200, warmup_rounds=5)
    assert src == a.local_id and node is not None and isinstance(msg, Ping)
