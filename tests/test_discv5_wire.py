"""discv5 wire: the devp2p spec's test vectors, on both crypto backends, and the codec's refusals.

Vectors from devp2p ``discv5/discv5-wire-test-vectors.md``: the four packets decode with
node B's key, and encoding with the vectors' fixed nonce, masking IV and ephemeral key
reproduces them byte for byte. Every test runs once with the Rust primitives and once
with the pure twin (the codec's crypto module is pointed at each in turn).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from ethnode.crypto.keys import PrivateKey
from ethnode.p2p.discover.v5wire import crypto
from ethnode.p2p.discover.v5wire.codec import Codec, InvalidHeader, PacketError, Unknown, Whoareyou
from ethnode.p2p.discover.v5wire.messages import (
    Findnode,
    InvalidRequestID,
    Nodes,
    Ping,
    Pong,
    TalkRequest,
    TalkResponse,
    decode_message,
)
from ethnode.p2p.discover.v5wire.session import Session, SessionCache
from ethnode.p2p.enode import Node
from ethnode.p2p.enr import ENR

KEY_A = PrivateKey.from_hex("eef77acb6c6a6eebc5b363a475ac583ec7eccdb42b6481424c60f59aa326547f")
KEY_B = PrivateKey.from_hex("66fb62bfbd66b9177a138c1e5cddbe4f7c30c343e94e68df8769459cb1cde628")
ID_A = bytes.fromhex("aaaa8419e9f49d0083561b48287df592939a8d19947d8c0ef88f2a4856a69fbb")
ID_B = bytes.fromhex("bbbb9d047f0488c0b5a93c1c3f2d8bafc7c8ff337024a55434a0d0555de64db9")
NONCE = bytes.fromhex("ffffffffffffffffffffffff")
REQ_NONCE = bytes.fromhex("0102030405060708090a0b0c")
ID_NONCE = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
EPH_KEY = PrivateKey.from_hex("0288ef00023598499cb6c940146d050d2b1fb914198c327f76aad590bead68b6")
CHALLENGE0 = bytes.fromhex("000000000000000000000000000000006469736376350001010102030405060708090a0b0c"
                           "00180102030405060708090a0b0c0d0e0f100000000000000000")
CHALLENGE1 = CHALLENGE0[:-1] + b"\x01"
ADDR = ("127.0.0.1", 30303)


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


PING_PACKET = _hex("""
    00000000000000000000000000000000088b3d4342774649325f313964a39e55
    ea96c005ad52be8c7560413a7008f16c9e6d2f43bbea8814a546b7409ce783d3
    4c4f53245d08dab84102ed931f66d1492acb308fa1c6715b9d139b81acbdcc""")
WHOAREYOU_PACKET = _hex("""
    00000000000000000000000000000000088b3d434277464933a1ccc59f5967ad
    1d6035f15e528627dde75cd68292f9e6c27d6b66c8100a873fcbaed4e16b8d""")
HANDSHAKE_PACKET = _hex("""
    00000000000000000000000000000000088b3d4342774649305f313964a39e55
    ea96c005ad521d8c7560413a7008f16c9e6d2f43bbea8814a546b7409ce783d3
    4c4f53245d08da4bb252012b2cba3f4f374a90a75cff91f142fa9be3e0a5f3ef
    268ccb9065aeecfd67a999e7fdc137e062b2ec4a0eb92947f0d9a74bfbf44dfb
    a776b21301f8b65efd5796706adff216ab862a9186875f9494150c4ae06fa4d1
    f0396c93f215fa4ef524f1eadf5f0f4126b79336671cbcf7a885b1f8bd2a5d83
    9cf8""")
HANDSHAKE_ENR_PACKET = _hex("""
    00000000000000000000000000000000088b3d4342774649305f313964a39e55
    ea96c005ad539c8c7560413a7008f16c9e6d2f43bbea8814a546b7409ce783d3
    4c4f53245d08da4bb23698868350aaad22e3ab8dd034f548a1c43cd246be9856
    2fafa0a1fa86d8e7a3b95ae78cc2b988ded6a5b59eb83ad58097252188b902b2
    1481e30e5e285f19735796706adff216ab862a9186875f9494150c4ae06fa4d1
    f0396c93f215fa4ef524e0ed04c3c21e39b1868e1ca8105e585ec17315e755e6
    cfc4dd6cb7fd8e1a1f55e49b4b5eb024221482105346f3c82b15fdaae36a3bb1
    2a494683b4a3c7f2ae41306252fed84785e2bbff3b022812d0882f06978df84a
    80d443972213342d04b9048fc3b1d5fcb1df0f822152eced6da4d3f6df27e70e
    4539717307a0208cd208d65093ccab5aa596a34d7511401987662d8cf62b1394
    71""")

_PRIMITIVES = {"mask": "v5_mask", "unmask_header": "v5_unmask_header", "encrypt_gcm": "v5_encrypt",
               "decrypt_gcm": "v5_decrypt", "ecdh": "v5_ecdh"}


def _impl(kind: str) -> Any:
    try:
        return crypto.implementation(kind)
    except ImportError as exc:
        pytest.skip(f"compiled backend unavailable: {exc}")


@pytest.fixture(params=["compiled", "pure"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the codec's primitives at one backend for the test."""
    impl = _impl(request.param)
    for name, fn in _PRIMITIVES.items():
        monkeypatch.setattr(crypto, name, getattr(impl, fn))
    return impl


def _record(key: PrivateKey, seq: int) -> ENR:
    return ENR.create(key, seq)


def _fixed(iv: bytes = bytes(16), nonce: bytes = NONCE, eph: PrivateKey = EPH_KEY) -> SessionCache:
    return SessionCache(nonce_gen=lambda _c: nonce, masking_iv_gen=lambda: iv, ephemeral_key_gen=lambda: eph)


def _codec(key: PrivateKey, seq: int = 1, sc: SessionCache | None = None) -> Codec:
    record = _record(key, seq)
    return Codec(key, record.node_id, lambda: record, sc=sc or SessionCache())


# -- primitives ----------------------------------------------------------------------------


def test_node_ids_of_the_vector_keys() -> None:
    assert _record(KEY_A, 1).node_id == ID_A and _record(KEY_B, 1).node_id == ID_B


def test_ecdh_vector(backend: Any) -> None:
    pub = bytes.fromhex("039961e4c2356d61bedb83052c115d311acb3a96f5777296dcf297351130266231")
    sk = bytes.fromhex("fb757dc581730490a1d7a00deea65e9b1936924caaea8f44d476014856b68736")
    assert backend.v5_ecdh(sk, pub).hex() == "033b11a2a1f214567e1537ce5e509ffd9b21373247f2a3ff6841f4976f53165e7e"
    assert backend.v5_ecdh(sk, b"\x02" + b"\x00" * 32) is None  # not on the curve
    assert backend.v5_ecdh(sk, b"") is None


def test_key_derivation_vector(backend: Any) -> None:
    eph = bytes.fromhex("fb757dc581730490a1d7a00deea65e9b1936924caaea8f44d476014856b68736")
    dest = bytes.fromhex("0317931e6e0840220642f230037d285d122bc59063221ef3226b1f403ddc69ca91")
    shared = backend.v5_ecdh(eph, dest)
    initiator, recipient = crypto.derive_keys(shared, ID_A, ID_B, CHALLENGE0)
    assert initiator.hex() == "dccc82d81bd610f4f76d3ebe97a40571"
    assert recipient.hex() == "ac74bb8773749920b0d3a8881c173ec5"


def test_id_signature_vector() -> None:
    key = PrivateKey.from_hex("fb757dc581730490a1d7a00deea65e9b1936924caaea8f44d476014856b68736")
    eph = bytes.fromhex("039961e4c2356d61bedb83052c115d311acb3a96f5777296dcf297351130266231")
    sig = crypto.make_id_signature(key, CHALLENGE0, eph, ID_B)
    assert sig.hex() == ("94852a1e2318c4e5e9d422c98eaf19d1d90d876b29cd06ca7cb7546d0fff7b48"
                         "4fe86c09a064fe72bdbef73ba8e9c34df0cd2b53e9d65528c2c7f336d5dfc6e6")
    assert crypto.verify_id_signature(key.public_key, sig, CHALLENGE0, eph, ID_B)
    assert not crypto.verify_id_signature(key.public_key, sig, CHALLENGE1, eph, ID_B)


def test_gcm_vector(backend: Any) -> None:
    key = bytes.fromhex("9f2d77db7004bf8a1a85107ac686990b")
    nonce = bytes.fromhex("27b5af763c446acd2749fe8e")
    ad = bytes.fromhex("93a7400fa0d6a694ebc24d5cf570f65d04215b6ac00757875e3f3a5f42107903")
    ct = backend.v5_encrypt(key, nonce, bytes.fromhex("01c20101"), ad)
    assert ct.hex() == "a5d12a2d94b8ccb3ba55558229867dc13bfa3648"
    assert backend.v5_decrypt(key, nonce, ct, ad) == bytes.fromhex("01c20101")
    assert backend.v5_decrypt(key, nonce, ct, ad[:-1] + b"\x00") is None  # header tampered
    assert backend.v5_decrypt(key, nonce, ct[:-1] + bytes((ct[-1] ^ 1,)), ad) is None  # bad tag
    assert backend.v5_decrypt(key, nonce, ct[:5], ad) is None  # shorter than a tag


def test_backends_agree_byte_for_byte() -> None:
    """Random inputs (and the spec packets) through both backends: identical results."""
    rust, pure = _impl("compiled"), _impl("pure")
    for packet in (PING_PACKET, WHOAREYOU_PACKET, HANDSHAKE_PACKET, HANDSHAKE_ENR_PACKET, b"\x00" * 38,
                   b"\x01" * 39, os.urandom(100)):
        assert rust.v5_unmask_header(ID_B, packet) == pure.v5_unmask_header(ID_B, packet)
    for n in (0, 1, 15, 16, 17, 100, 1200):
        key, iv, nonce, data, ad = os.urandom(16), os.urandom(16), os.urandom(12), os.urandom(n), os.urandom(n % 50)
        dest = os.urandom(32)
        assert rust.v5_mask(dest, iv, data) == pure.v5_mask(dest, iv, data)
        ct = rust.v5_encrypt(key, nonce, data, ad)
        assert ct == pure.v5_encrypt(key, nonce, data, ad)
        assert rust.v5_decrypt(key, nonce, ct, ad) == pure.v5_decrypt(key, nonce, ct, ad) == data
        bad = bytearray(ct)
        bad[n // 2] ^= 0x40
        assert rust.v5_decrypt(key, nonce, bytes(bad), ad) is pure.v5_decrypt(key, nonce, bytes(bad), ad) is None
        a, b = PrivateKey.generate(), PrivateKey.generate()
        pub = b.public_key.to_compressed()
        assert rust.v5_ecdh(a.secret, pub) == pure.v5_ecdh(a.secret, pub)
        assert rust.v5_ecdh(a.secret, pub) == pure.v5_ecdh(b.secret, a.public_key.to_compressed())
    for fn, args in (("v5_encrypt", (b"k", NONCE, b"", b"")), ("v5_decrypt", (bytes(16), b"n", b"", b"")),
                     ("v5_mask", (b"short", bytes(16), b"")), ("v5_mask", (bytes(32), b"iv", b""))):
        with pytest.raises(ValueError):
            getattr(rust, fn)(*args)
        with pytest.raises(ValueError):
            getattr(pure, fn)(*args)


# -- packet vectors ------------------------------------------------------------------------


def test_decode_ping_message_vector(backend: Any) -> None:
    b = _codec(KEY_B)
    b.sc.store_session(ID_A, ADDR, Session(write_key=bytes(16), read_key=bytes(16)), Node.from_enr(_record(KEY_A, 1)))
    src, node, packet = b.decode(PING_PACKET, ADDR)
    assert src == ID_A and node is None
    assert packet == Ping(bytes.fromhex("00000001"), 2)


def test_encode_ping_message_vector(backend: Any) -> None:
    a = _codec(KEY_A, sc=_fixed())
    a.sc.store_session(ID_B, ADDR, Session(write_key=bytes(16), read_key=bytes(16)), Node.from_enr(_record(KEY_B, 1)))
    data, nonce = a.encode(ID_B, ADDR, Ping(bytes.fromhex("00000001"), 2))
    assert (data, nonce) == (PING_PACKET, NONCE)


def test_whoareyou_vector(backend: Any) -> None:
    b = _codec(KEY_B)  # every vector packet is addressed to node B
    src, node, packet = b.decode(WHOAREYOU_PACKET, ADDR)
    assert isinstance(packet, Whoareyou) and node is None and src == bytes(32)
    assert (packet.nonce, packet.id_nonce, packet.record_seq) == (REQ_NONCE, ID_NONCE, 0)
    assert packet.challenge_data == CHALLENGE0
    a = _codec(KEY_A, sc=_fixed())
    data, nonce = a.encode(ID_B, ADDR, Whoareyou(REQ_NONCE, ID_NONCE, 0))
    assert (data, nonce) == (WHOAREYOU_PACKET, REQ_NONCE)
    assert a.current_challenge(ID_B, ADDR) is not None


@pytest.mark.parametrize("packet,seq,read_key,with_record", [
    (HANDSHAKE_PACKET, 1, "4f9fac6de7567d1e3b1241dffe90f662", False),
    (HANDSHAKE_ENR_PACKET, 0, "53b1c075f41876423154e157470c2f48", True),
])
def test_handshake_vectors(backend: Any, packet: bytes, seq: int, read_key: str, with_record: bool) -> None:
    challenge = CHALLENGE1 if seq else CHALLENGE0
    b = _codec(KEY_B)
    known_a = Node.from_enr(_record(KEY_A, 1)) if not with_record else None
    b.sc.store_sent_handshake(ID_A, ADDR, Whoareyou(REQ_NONCE, ID_NONCE, seq, node=known_a, challenge_data=challenge))
    src, node, msg = b.decode(packet, ADDR)
    assert src == ID_A and node is not None and node.id == ID_A
    assert msg == Ping(bytes.fromhex("00000001"), 1)
    session = b.sc.session(ID_A, ADDR)
    assert session is not None and session.read_key.hex() == read_key
    assert b.current_challenge(ID_A, ADDR) is None  # the challenge is used up
    # the sender's side, with the vector's randomness, produces the same bytes
    record_a = node.record if with_record else _record(KEY_A, 1)
    assert record_a is not None and record_a.seq == 1
    a = Codec(KEY_A, ID_A, lambda: record_a, sc=_fixed())
    whoareyou = Whoareyou(REQ_NONCE, ID_NONCE, seq, node=Node.from_enr(_record(KEY_B, 1)), challenge_data=challenge)
    data, nonce = a.encode(ID_B, ADDR, Ping(bytes.fromhex("00000001"), 1), whoareyou)
    assert (data, nonce) == (packet, NONCE)


# -- a full exchange and refusals ----------------------------------------------------------


def _exchange() -> tuple[Codec, Codec]:
    """A and B with an established session (A initiated), through real encode/decode."""
    a, b = _codec(KEY_A, 5), _codec(KEY_B, 7)
    first, nonce = a.encode(ID_B, ADDR, Ping(b"\x01", 5))
    _, _, unknown = b.decode(first, ADDR)
    assert unknown == Unknown(nonce)
    w, _ = b.encode(ID_A, ADDR, Whoareyou(nonce, os.urandom(16), 0))
    _, _, challenge = a.decode(w, ADDR)
    assert isinstance(challenge, Whoareyou)
    challenge.node = Node.from_enr(_record(KEY_B, 7))
    hs, _ = a.encode(ID_B, ADDR, Ping(b"\x01", 5), challenge)
    src, node, msg = b.decode(hs, ADDR)
    assert src == ID_A and node is not None and node.seq == 5 and msg == Ping(b"\x01", 5)
    return a, b


def test_session_both_ways(backend: Any) -> None:
    a, b = _exchange()
    reply, _ = b.encode(ID_A, ADDR, Pong(b"\x01", 7, bytes([127, 0, 0, 1]), 30303))
    assert a.decode(reply, ADDR)[2] == Pong(b"\x01", 7, bytes([127, 0, 0, 1]), 30303)
    msgs = [Findnode(b"\x02", [0, 255, 256]), Nodes(b"\x03", 2, [_record(KEY_A, 5)]),
            TalkRequest(b"", b"proto", b"hello"), TalkResponse(b"\x04", b"")]
    for m in msgs:
        data, _ = a.encode(ID_B, ADDR, m)
        assert b.decode(data, ADDR)[2] == m
    # the same session from another address is unknown there: a new handshake is needed
    data, nonce = a.encode(ID_B, ADDR, Ping(b"\x05", 5))
    assert b.decode(data, ("127.0.0.2", 30303))[2] == Unknown(nonce)


def test_malformed_packets_are_refused(backend: Any) -> None:
    a, b = _exchange()
    good, nonce = a.encode(ID_B, ADDR, Ping(b"\x09", 5))
    with pytest.raises(InvalidHeader):
        b.decode(good[:62], ADDR)  # truncated below the minimum
    with pytest.raises(InvalidHeader):
        _codec(KEY_A).decode(good, ADDR)  # masked for B: unmasks to garbage anywhere else
    with pytest.raises(InvalidHeader):
        b.decode(os.urandom(200), ADDR)  # noise
    tampered = bytearray(good)
    tampered[-1] ^= 1  # bad GCM tag: cannot be opened, so the sender is asked to handshake
    assert b.decode(bytes(tampered), ADDR)[2] == Unknown(nonce)
    # a sealed message that is not a valid message
    session = a.sc.session(ID_B, ADDR)
    assert session is not None
    for bad in (b"", b"\x09\xc0", b"\x01\xc3\x01\x02\x03", b"\x01" + bytes.fromhex("c2") + b"\x01"):
        data, _ = a.encode(ID_B, ADDR, _Raw(bad))
        with pytest.raises(PacketError):
            b.decode(data, ADDR)
    # a handshake nobody asked for
    other = _codec(PrivateKey.generate())
    challenge = Whoareyou(nonce, bytes(16), 0, node=Node.from_enr(_record(KEY_B, 7)),
                          challenge_data=bytes(63))
    data, _ = other.encode(ID_B, ADDR, Ping(b"\x01", 1), challenge)
    with pytest.raises(PacketError, match="not in handshake"):
        b.decode(data, ADDR)


class _Raw:
    """A plaintext that bypasses message encoding, to seal malformed messages."""

    def __init__(self, plaintext: bytes) -> None:
        self.plaintext = plaintext

    def encode(self) -> bytes:
        return self.plaintext


def test_message_decoding_rules() -> None:
    with pytest.raises(InvalidRequestID):
        decode_message(Ping(bytes(9), 1).encode())
    assert decode_message(Ping(bytes(8), 1).encode()) == Ping(bytes(8), 1)
    for bad in (b"\x01\xc2\x80\x00", b"\x02\xc4\x80\x01\x82\x7f\x00\x80", b"\x03\xc2\x80\x80", b"\x07\xc0"):
        with pytest.raises(Exception) as info:
            decode_message(bad)
        assert isinstance(info.value, ValueError)


def test_mutated_packets_only_ever_raise_packet_errors(backend: Any) -> None:
    """Every byte flip, cut and extension of the vector packets decodes or raises PacketError."""
    import random

    rng = random.Random(5)
    known_a = Node.from_enr(_record(KEY_A, 1))
    b = _codec(KEY_B)
    seen: set[str] = set()
    for packet, challenge in ((PING_PACKET, None), (WHOAREYOU_PACKET, None), (HANDSHAKE_PACKET, CHALLENGE1),
                              (HANDSHAKE_ENR_PACKET, CHALLENGE0)):
        for i in range(300):
            data = bytearray(packet)
            mode = i % 3
            if mode == 0:
                pos = rng.randrange(len(data))
                data[pos] ^= 1 << rng.randrange(8)
            elif mode == 1:
                del data[rng.randrange(len(data)):]
            else:
                data += os.urandom(rng.randrange(1, 40))
            b.sc.store_session(ID_A, ADDR, Session(bytes(16), bytes(16)), known_a)
            if challenge is not None:
                seq = challenge[-1]
                b.sc.store_sent_handshake(ID_A, ADDR, Whoareyou(REQ_NONCE, ID_NONCE, seq,
                                                                node=known_a if seq else None,
                                                                challenge_data=challenge))
            try:
                b.decode(bytes(data), ADDR)
                seen.add("ok")
            except PacketError as exc:
                seen.add(type(exc).__name__)
    assert {"ok", "InvalidHeader", "PacketError"} <= seen
