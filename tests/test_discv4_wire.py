"""discv4 packets: the EIP-8 vectors, signing and every way a datagram can be refused.

Decision under test (documented in v4wire): the EIP-8 "ping v555" and "pong" vectors put
a list where EIP-868's optional enr-seq goes. They are accepted with ``enr_seq=None``
(a list cannot be a sequence number, so it is an extension element, which EIP-8 says
to skip); a *byte string* in that slot is an enr-seq and must be a canonical uint64.
"""

from __future__ import annotations

import ipaddress
import time

import pytest
from shared_support import load_vector

from ethnode import rlp
from ethnode.crypto import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p.discover import v4wire
from ethnode.p2p.discover.v4wire import (
    ENRRequest,
    ENRResponse,
    FindNode,
    Neighbors,
    Ping,
    Pong,
    WireNode,
)
from ethnode.p2p.enr import ENR

KEY = PrivateKey.from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")


def _ip(ip_hex: str) -> bytes:
    return bytes.fromhex(ip_hex)


def _endpoint(d: dict) -> v4wire.Endpoint:  # type: ignore[type-arg]
    return v4wire.Endpoint(_ip(d["ip_hex"]), d["udp_port"], d["tcp_port"])


def _raw_packet(key: PrivateKey, ptype: int, body: bytes) -> bytes:
    """hash || sig || type || body for arbitrary (possibly invalid) body bytes."""
    signed = bytes([ptype]) + body
    sig = key.sign(keccak256(signed))
    return keccak256(sig + signed) + sig + signed


VECTOR_COUNT = 6  # packets in ../shared/vectors/discv4/packets.json


def _vectors() -> list[dict]:  # type: ignore[type-arg]
    packets = load_vector("discv4", "packets.json")["packets"]
    assert len(packets) == VECTOR_COUNT
    return packets  # type: ignore[no-any-return]


@pytest.mark.parametrize("index", range(VECTOR_COUNT))
def test_vectors_decode(index: int) -> None:
    case = _vectors()[index]
    data = bytes.fromhex(case["hex"])
    expected = case["decoded_derived"]
    packet, pubkey, mac = v4wire.decode(data)
    assert packet.TYPE == expected["packet_type"]
    assert pubkey.hex() == expected["signer_pubkey"] == KEY.node_id.hex()
    assert mac.hex() == expected["hash"]
    f = expected["fields"]
    assert packet.expiration == f["expiration"]
    if isinstance(packet, Ping):
        assert packet.version == f["version"]
        assert packet.from_ == _endpoint(f["from"])
        assert packet.to == _endpoint(f["to"])
        extra = expected["additional_list_elements_rlp"]
        if not extra:
            assert packet.enr_seq is None
        elif extra[0] == "01":
            assert packet.enr_seq == 1  # EIP-868 reading of "ping v4 with extra elements" (geth: ENRSeq 1)
        else:
            assert extra[0].startswith("c") and packet.enr_seq is None  # the list: read as absent
    elif isinstance(packet, Pong):
        assert packet.to == _endpoint(f["to"])
        assert packet.ping_hash.hex() == f["ping_hash"]
        assert packet.enr_seq is None
    elif isinstance(packet, FindNode):
        assert packet.target.hex() == f["target"]
    elif isinstance(packet, Neighbors):
        assert [(n.ip.hex(), n.udp, n.tcp, n.id.hex()) for n in packet.nodes] == [
            (n["ip_hex"], n["udp_port"], n["tcp_port"], n["node_id"]) for n in f["nodes"]
        ]


def test_vectors_cover_the_two_pre_868_packets() -> None:
    """The decision is exercised: two vectors have a list in the enr-seq slot and still decode."""
    listy = [c for c in _vectors() if c["decoded_derived"]["additional_list_elements_rlp"][:1]
             and c["decoded_derived"]["additional_list_elements_rlp"][0].startswith("c")
             and c["decoded_derived"]["packet_type"] in (1, 2)]
    assert len(listy) == 2
    for c in listy:
        packet, _, _ = v4wire.decode(bytes.fromhex(c["hex"]))
        assert packet.enr_seq is None


def test_enr_seq_byte_string_must_be_canonical() -> None:
    ep = v4wire.Endpoint(b"\x7f\x00\x00\x01", 1, 1)
    base = [4, list(ep), list(ep), 2**40]
    ok = _raw_packet(KEY, v4wire.PING, rlp.encode([*base, 7, b"junk", [1, 2]]))
    assert v4wire.decode(ok)[0].enr_seq == 7
    for bad_seq in (b"\x00\x07", b"\x01" * 9):  # leading zero; more than 64 bits
        with pytest.raises(v4wire.MalformedPacketError):
            v4wire.decode(_raw_packet(KEY, v4wire.PING, rlp.encode([*base, bad_seq])))
    pong_base = [list(ep), b"\x11" * 32, 2**40]
    assert v4wire.decode(_raw_packet(KEY, v4wire.PONG, rlp.encode([*pong_base, [b"x"], 5])))[0].enr_seq is None
    with pytest.raises(v4wire.MalformedPacketError):
        v4wire.decode(_raw_packet(KEY, v4wire.PONG, rlp.encode([*pong_base, b"\x00"])))


def test_round_trip_every_type() -> None:
    exp = v4wire.expiration_from_now()
    ep = v4wire.make_endpoint(ipaddress.IPv4Address("10.0.0.1"), 30303, 30304)
    record = ENR.create(KEY, 9, {"udp": 30303})
    packets = [
        Ping(4, ep, v4wire.make_endpoint(ipaddress.IPv6Address("2001:db8::1"), 1, 0), exp, 12),
        Ping(4, ep, ep, exp),
        Pong(ep, b"\xaa" * 32, exp, 3),
        FindNode(KEY.node_id, exp),
        Neighbors([WireNode(b"\x01\x02\x03\x04", 30303, 30303, KEY.node_id)], exp),
        Neighbors([], exp),
        ENRRequest(exp),
        ENRResponse(b"\xbb" * 32, record.encode()),
    ]
    for packet in packets:
        data, mac = v4wire.encode(KEY, packet)
        decoded, pubkey, mac2 = v4wire.decode(data)
        assert decoded == packet and type(decoded) is type(packet)
        assert pubkey == KEY.node_id and mac2 == mac == data[:32]
        assert len(data) <= v4wire.MAX_PACKET_SIZE
    decoded_record = ENR.decode(v4wire.decode(v4wire.encode(KEY, packets[-1])[0])[0].record)
    assert decoded_record == record


def test_trailing_data_and_extra_elements_tolerated() -> None:
    exp = v4wire.expiration_from_now()
    body = rlp.encode([KEY.node_id, exp, b"future", [1, [2]]]) + b"\x00\xff trailing junk"
    packet, _, _ = v4wire.decode(_raw_packet(KEY, v4wire.FINDNODE, body))
    assert packet == FindNode(KEY.node_id, exp)


def test_integrity_checks() -> None:
    data, _ = v4wire.encode(KEY, FindNode(KEY.node_id, v4wire.expiration_from_now()))
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(v4wire.BadHashError):
        v4wire.decode(bytes(flipped))
    # a changed payload with a recomputed hash recovers some other key, never KEY
    rehashed = keccak256(bytes(flipped[32:])) + bytes(flipped[32:])
    try:
        assert v4wire.decode(rehashed)[1] != KEY.node_id
    except v4wire.PacketError:
        pass
    # recovery id 2 is never produced by a signer: the signature is refused outright
    bad_v = bytearray(data)
    bad_v[96] = 2
    bad_v[:32] = keccak256(bytes(bad_v[32:]))
    with pytest.raises(v4wire.BadSignatureError):
        v4wire.decode(bytes(bad_v))
    zero_sig = bytearray(data)
    zero_sig[32:97] = bytes(65)
    zero_sig[:32] = keccak256(bytes(zero_sig[32:]))
    with pytest.raises(v4wire.BadSignatureError):
        v4wire.decode(bytes(zero_sig))


def test_size_and_type_checks() -> None:
    with pytest.raises(v4wire.PacketTooSmallError):
        v4wire.decode(b"\x00" * 97)
    with pytest.raises(v4wire.PacketTooSmallError):
        v4wire.decode(b"")
    exp = v4wire.expiration_from_now()
    big = _raw_packet(KEY, v4wire.FINDNODE, rlp.encode([KEY.node_id, exp]) + b"\x00" * 1200)
    assert len(big) > v4wire.MAX_PACKET_SIZE
    with pytest.raises(v4wire.PacketTooLargeError):
        v4wire.decode(big)
    for ptype in (0, 7, 66, 255):
        with pytest.raises(v4wire.UnknownPacketError):
            v4wire.decode(_raw_packet(KEY, ptype, rlp.encode([4, exp])))
    with pytest.raises(v4wire.PacketTooLargeError):
        v4wire.encode(KEY, ENRResponse(b"x" * 32, rlp.encode(b"y" * 1200)))


@pytest.mark.parametrize(
    ("ptype", "body"),
    [
        (v4wire.PING, rlp.encode(b"not a list")),
        (v4wire.PING, b""),
        (v4wire.PING, b"\xf8"),  # truncated header
        (v4wire.PING, rlp.encode([4, [b"\x7f\x00\x00\x01", 1, 1], [b"", 0, 0]])),  # no expiration
        (v4wire.PING, rlp.encode([4, [b"\x7f\x00\x00\x01", 70000, 1], [b"", 0, 0], 1])),  # port > 16 bits
        (v4wire.PING, rlp.encode([4, [b"\x00" * 17, 1, 1], [b"", 0, 0], 1])),  # 17-byte IP
        (v4wire.PING, rlp.encode([4, [b"\x7f\x00\x00\x01", 1, 1, 9], [b"", 0, 0], 1])),  # extra in endpoint
        (v4wire.PONG, rlp.encode([[b"", 0, 0], [b"hash"], 1])),  # hash as a list
        (v4wire.FINDNODE, rlp.encode([b"\x01" * 63, 1])),  # 63-byte target
        (v4wire.FINDNODE, rlp.encode([b"\x01" * 64, b"\x00\x01"])),  # non-canonical expiration
        (v4wire.NEIGHBORS, rlp.encode([[[b"\x01\x02\x03\x04", 1, 1]], 1])),  # node without id
        (v4wire.NEIGHBORS, rlp.encode([b"nodes", 1])),
        (v4wire.ENR_REQUEST, rlp.encode([])),
        (v4wire.ENR_RESPONSE, rlp.encode([b"\x01" * 32])),
    ],
)
def test_malformed_bodies(ptype: int, body: bytes) -> None:
    with pytest.raises(v4wire.MalformedPacketError):
        v4wire.decode(_raw_packet(KEY, ptype, body))


def test_expiration_semantics() -> None:
    now = time.time()
    assert not v4wire.expired(v4wire.expiration_from_now(now), now)
    assert v4wire.expiration_from_now(now) == int(now + 20)
    assert v4wire.expired(int(now) - 1, now)
    assert v4wire.expired(0, now)
    # geth's conformance suite sends -t as a uint64; read as int64 it is in the past
    assert v4wire.expired(2**64 - int(now + 20), now)
    assert v4wire.expired(2**63, now)
    assert not v4wire.expired(2**63 - 1, now)


def test_neighbors_split_below_the_packet_limit() -> None:
    exp = v4wire.expiration_from_now()
    worst = [WireNode(b"\xff" * 16, 0xFFFF, 0xFFFF, KEY.node_id) for _ in range(16)]  # IPv6, 3-byte ports
    packets = v4wire.neighbors_packets(worst, exp)
    assert [len(p.nodes) for p in packets] == [12, 4]
    for p in packets:
        data, _ = v4wire.encode(KEY, p)
        assert len(data) <= v4wire.MAX_PACKET_SIZE
    assert [len(p.nodes) for p in v4wire.neighbors_packets(worst[:12], exp)] == [12]
    assert [len(p.nodes) for p in v4wire.neighbors_packets(worst * 2, exp)] == [12, 12, 8]
    empty = v4wire.neighbors_packets([], exp)
    assert len(empty) == 1 and empty[0].nodes == []
    # 13 worst-case nodes would not fit: the limit of 12 is what keeps packets legal
    with pytest.raises(v4wire.PacketTooLargeError):
        v4wire.encode(KEY, Neighbors(worst[:13], exp))
