"""ENR (EIP-778, "v4" scheme), enode URLs and the local node record.

The EIP-778 example record is the anchor: decoding, re-signing (RFC 6979 signatures are
deterministic, so ``ENR.create`` must reproduce it byte for byte), text form and node id.
Rule violations are tested on records that carry a *valid* signature, so that each
rejection is for the rule under test and not for a broken signature.
"""

from __future__ import annotations

import base64
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_support import load_vector

from ethnode import rlp
from ethnode.crypto import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p.enode import (
    LocalNode,
    Node,
    NodeURLError,
    distance_cmp,
    log_distance,
    parse_enode,
    parse_node,
)
from ethnode.p2p.enr import ENR, SIZE_LIMIT, ENRError

KEY = PrivateKey.from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")


def _signed_raw(key: PrivateKey, seq: int, pairs: list[tuple[bytes, object]], *, sig: bytes | None = None) -> bytes:
    """A record with pairs exactly as given (any order, duplicates) and a valid v4 signature."""
    content = rlp.encode([seq, *[x for k, v in pairs for x in (k, v)]])
    signature = key.sign(keccak256(content))[:64] if sig is None else sig
    return rlp.encode([signature, seq, *[x for k, v in pairs for x in (k, v)]])


def _base_pairs(key: PrivateKey) -> list[tuple[bytes, object]]:
    return [(b"id", b"v4"), (b"secp256k1", key.public_key.to_compressed())]


# -- the EIP-778 vector --------------------------------------------------------------------------


def test_vector_decodes() -> None:
    v = load_vector("enr", "enr.json")
    record = ENR.from_text(v["text"])
    assert record.seq == v["seq"] == 1
    assert record.node_id.hex() == v["node_id"]
    assert record.ip == ipaddress.IPv4Address("127.0.0.1")
    assert record.udp == 30303
    assert record.tcp is None
    assert record.identity_scheme == b"v4"
    assert record.signature.hex() == v["derived"]["signature"]
    assert record.public_key.to_compressed().hex() == v["derived"]["pubkey_compressed"]
    assert record.encode().hex() == v["derived"]["rlp_hex"]
    assert record.signing_content().hex() == v["derived"]["content_rlp_hex"]
    assert keccak256(record.signing_content()).hex() == v["derived"]["signing_hash_keccak256_content"]
    assert record.to_text() == v["text"]


def test_vector_reproduced_by_signing() -> None:
    v = load_vector("enr", "enr.json")
    key = PrivateKey.from_hex(v["private_key"])
    record = ENR.create(key, 1, {"ip": ipaddress.IPv4Address("127.0.0.1"), "udp": 30303})
    assert record.to_text() == v["text"]
    assert ENR.decode(record.encode()) == record


def test_vector_as_node() -> None:
    v = load_vector("enr", "enr.json")
    node = parse_node(v["text"])
    assert node.id.hex() == v["node_id"]
    assert node.pubkey.hex() == v["derived"]["pubkey_uncompressed_xy"]
    assert (str(node.ip), node.udp, node.tcp, node.seq) == ("127.0.0.1", 30303, 0, 1)
    assert node.enode_url() == f"enode://{node.pubkey.hex()}@127.0.0.1:0?discport=30303"


# -- structural rules ------------------------------------------------------------------------------


def test_unknown_entries_round_trip_and_verify() -> None:
    eth = [[bytes.fromhex("fc64ec04"), 1150000]]  # an "eth" fork-id entry, a nested list
    record = ENR.create(KEY, 7, {"eth": eth, "zzz": b"\x00" * 3, "tcp": 30303})
    again = ENR.decode(record.encode())
    assert again.get("eth") == rlp.encode(eth)
    assert list(again.keys()) == sorted(again.keys())
    assert (again.tcp, again.seq) == (30303, 7)


def test_size_cap() -> None:
    with pytest.raises(ENRError, match="300"):
        ENR.create(KEY, 1, {"big": b"x" * 250})
    raw = _signed_raw(KEY, 1, [*_base_pairs(KEY), (b"zz", b"x" * 200)])
    assert len(raw) > SIZE_LIMIT
    with pytest.raises(ENRError, match="300"):
        ENR.decode(raw)
    fits = ENR.create(KEY, 1, {"big": b"x" * 150})
    assert len(fits) <= SIZE_LIMIT


def test_valid_handcrafted_record_is_accepted() -> None:
    raw = _signed_raw(KEY, 3, _base_pairs(KEY))
    assert ENR.decode(raw).seq == 3


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([(b"secp256k1", KEY.public_key.to_compressed()), (b"id", b"v4")], "not sorted"),
        ([(b"id", b"v4"), (b"id", b"v4"), (b"secp256k1", KEY.public_key.to_compressed())], "duplicate"),
        ([(b"id", b"v5"), (b"secp256k1", KEY.public_key.to_compressed())], "identity scheme"),
        ([(b"id", b"v4")], "secp256k1"),
        ([(b"id", b"v4"), (b"secp256k1", b"\x02" + b"\xff" * 32)], "secp256k1"),
        ([(b"id", b"v4"), (b"secp256k1", [b"a"])], "secp256k1"),
    ],
)
def test_rule_violations_rejected(pairs: list[tuple[bytes, object]], message: str) -> None:
    with pytest.raises(ENRError, match=message):
        ENR.decode(_signed_raw(KEY, 1, pairs))


def test_structural_garbage_rejected() -> None:
    good = ENR.create(KEY, 1, {"udp": 1}).encode()
    cases = {
        "not a list": rlp.encode(b"abc"),
        "fewer than two": rlp.encode([b"\x01" * 64]),
        "incomplete pair": rlp.encode([b"\x01" * 64, 1, b"id"]),
        "trailing": good + b"\x00",
        "signature is a list": rlp.encode([[b"x"], 1]),
        "seq is a list": rlp.encode([b"x" * 64, [1]]),
        "key is a list": rlp.encode([b"x" * 64, 1, [b"id"], b"v4"]),
        "non-canonical seq": rlp.encode([b"x" * 64, b"\x00\x01"]),
        "seq too big": rlp.encode([b"x" * 64, 2**64]),
        "truncated": good[:-3],
        "empty": b"",
    }
    for label, raw in cases.items():
        with pytest.raises(ENRError):
            ENR.decode(raw)
        assert label


def test_bad_signatures_rejected() -> None:
    record = ENR.create(KEY, 5, {"udp": 30303})
    other = PrivateKey.generate()
    forged = _signed_raw(other, 5, [*_base_pairs(KEY), (b"udp", 30303)])  # KEY's pubkey, other's signature
    with pytest.raises(ENRError, match="signature"):
        ENR.decode(forged)
    short = _signed_raw(KEY, 5, [*_base_pairs(KEY), (b"udp", 30303)], sig=record.signature[:63])
    with pytest.raises(ENRError, match="signature"):
        ENR.decode(short)
    # a changed value under the old signature
    tampered = _signed_raw(KEY, 5, [*_base_pairs(KEY), (b"udp", 30304)], sig=record.signature)
    with pytest.raises(ENRError, match="signature"):
        ENR.decode(tampered)
    # a bumped seq under the old signature
    with pytest.raises(ENRError, match="signature"):
        ENR.decode(_signed_raw(KEY, 6, [*_base_pairs(KEY), (b"udp", 30303)], sig=record.signature))
    # verify=False is for our own database only
    assert ENR.decode(tampered, verify=False).udp == 30304


def test_text_form_errors() -> None:
    text = ENR.create(KEY, 1).to_text()
    body = text[4:]
    for bad in (body, "enr:" + body + "=", "enr:" + body.replace("-", "+"), "enr:" + body[:-1] + "!", "enode:x"):
        with pytest.raises(ENRError):
            ENR.from_text(bad)
    assert ENR.from_text("  " + text + "\n").seq == 1
    assert "=" not in text and base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def test_malformed_known_entries_count_as_absent() -> None:
    record = ENR.create(KEY, 1, {"ip": b"\x01\x02\x03", "udp": 70000, "tcp": [1], "ip6": b"\x00" * 16})
    assert record.ip is None and record.udp is None and record.tcp is None
    assert record.ip6 == ipaddress.IPv6Address("::")


def test_create_rejects_bad_seq_and_values() -> None:
    with pytest.raises(ENRError):
        ENR.create(KEY, -1)
    with pytest.raises(ENRError):
        ENR.create(KEY, 2**64)
    with pytest.raises(ENRError):
        ENR.create(KEY, 1, {"x": -5})
    with pytest.raises(TypeError):
        ENR(1)  # type: ignore[call-arg]


entry_keys = st.binary(min_size=1, max_size=8).filter(lambda k: k not in (b"id", b"secp256k1"))
entry_values = st.one_of(st.binary(max_size=20), st.integers(0, 2**32), st.lists(st.binary(max_size=4), max_size=3))


@settings(max_examples=60, deadline=None)
@given(seq=st.integers(0, 2**64 - 1), entries=st.dictionaries(entry_keys, entry_values, max_size=5))
def test_create_decode_round_trip(seq: int, entries: dict[bytes, object]) -> None:
    try:
        record = ENR.create(KEY, seq, entries)
    except ENRError:
        return  # over 300 bytes
    again = ENR.from_text(record.to_text())
    assert again == record and again.seq == seq
    assert again.node_id == keccak256(KEY.node_id)
    assert {k: rlp.decode(v) for k, v in again.entries().items() if k not in (b"id", b"secp256k1")} == {
        k: rlp.decode(rlp.encode(v)) for k, v in entries.items()
    }


# -- Node and enode URLs ---------------------------------------------------------------------------


def test_enode_url_round_trip() -> None:
    pub = KEY.node_id.hex()
    cases = [
        (f"enode://{pub}@10.3.58.6:30303", ("10.3.58.6", 30303, 30303)),
        (f"enode://{pub}@10.3.58.6:30303?discport=30301", ("10.3.58.6", 30301, 30303)),
        (f"enode://{pub}@[2001:db8::1]:30303", ("2001:db8::1", 30303, 30303)),
        (f"enode://{pub}@[::ffff:1.2.3.4]:30303", ("1.2.3.4", 30303, 30303)),
    ]
    for url, (ip, udp, tcp) in cases:
        node = parse_enode(url)
        assert (str(node.ip), node.udp, node.tcp) == (ip, udp, tcp)
        assert node.pubkey == KEY.node_id and node.id == keccak256(KEY.node_id) and node.seq == 0
        assert parse_enode(node.enode_url()) == node
    assert parse_enode(cases[1][0]).enode_url() == cases[1][0]
    bare = parse_enode(f"enode://{pub}")
    assert bare.ip is None and bare.enode_url() == f"enode://{pub}"
    assert parse_enode(pub.upper()).pubkey == KEY.node_id


@pytest.mark.parametrize(
    "url",
    [
        "http://{pub}@1.2.3.4:30303",
        "enode://{pub}@1.2.3.4",
        "enode://{pub}@1.2.3.4:99999",
        "enode://{pub}@1.2.3.4:30303?discport=x",
        "enode://{pub}@1.2.3.4:30303?discport=70000",
        "enode://{pub}@bootnode.example.org:30303",
        "enode://@1.2.3.4:30303",
        "enode://{short}@1.2.3.4:30303",
        "enode://{offcurve}@1.2.3.4:30303",
        "enode://zz{rest}@1.2.3.4:30303",
        "enr:garbage",
        "something else",
        # Unicode digits pass str.isdigit() but not int(): found by fuzzing, once a bare ValueError.
        "enode://{pub}@1.2.3.4:0\u00b3",
        "enode://{pub}@1.2.3.4:30303?discport=0\u00b3",
        "enode://{pub}@1.2.3.4:30303?discport=\u0663\u0660",
    ],
)
def test_enode_url_errors(url: str) -> None:
    pub = KEY.node_id.hex()
    text = url.format(pub=pub, short=pub[:-2], offcurve="00" * 64, rest=pub[2:])
    with pytest.raises(NodeURLError):
        parse_node(text)


def test_node_from_enr_prefers_global_address() -> None:
    both = ENR.create(KEY, 1, {"ip": ipaddress.IPv4Address("192.168.1.2"), "udp": 1000, "tcp": 1001,
                               "ip6": ipaddress.IPv6Address("2a00:1450::1"), "udp6": 2000})
    node = Node.from_enr(both)
    assert (str(node.ip), node.udp, node.tcp) == ("2a00:1450::1", 2000, 1001)
    v4 = Node.from_enr(ENR.create(KEY, 1, {"ip": ipaddress.IPv4Address("8.8.8.8"), "udp": 1000,
                                           "ip6": ipaddress.IPv6Address("::1")}))
    assert (str(v4.ip), v4.udp) == ("8.8.8.8", 1000)
    none = Node.from_enr(ENR.create(KEY, 1))
    assert none.ip is None and none.udp_addr is None
    with pytest.raises(NodeURLError):
        none.validate_complete()


def test_distances() -> None:
    a = bytes(32)
    assert log_distance(a, a) == 0
    assert log_distance(a, b"\x80" + bytes(31)) == 256
    assert log_distance(a, bytes(31) + b"\x01") == 1
    assert distance_cmp(a, bytes(31) + b"\x01", bytes(31) + b"\x02") == -1
    assert distance_cmp(a, bytes(31) + b"\x02", bytes(31) + b"\x02") == 0


# -- the local node ---------------------------------------------------------------------------------


def test_local_node_bumps_seq_only_on_change() -> None:
    stored: list[int] = []
    ln = LocalNode(KEY, seq=41, on_seq=stored.append)
    ln.set_fallback_ip("127.0.0.1")
    ln.set_fallback_udp(30303)
    first = ln.record
    assert first.seq == 42 and stored == [42]
    assert ln.record is first  # unchanged: no re-signing
    ln.set_fallback_udp(30303)
    ln.set("tcp", 30303)
    assert ln.record.seq == 43 and ln.node.tcp == 30303
    ln.set("tcp", 30303)
    assert ln.record.seq == 43
    ln.delete("tcp")
    assert ln.record.seq == 44 and ln.record.tcp is None
    assert stored == [42, 43, 44]
    assert ENR.decode(ln.record.encode()).node_id == ln.id


def test_local_node_fresh_seq_is_time_based() -> None:
    ln = LocalNode(KEY)
    assert ln.record.seq > 1_600_000_000_000  # ms since the epoch, above anything published before


def test_local_node_endpoint_prediction() -> None:
    clock = [1000.0]
    ln = LocalNode(KEY, seq=1, clock=lambda: clock[0])
    ln.set_fallback_ip("127.0.0.1")
    ln.set_fallback_udp(30303)
    assert ln.record.seq == 2
    external = (ipaddress.IPv4Address("203.0.114.7"), 40404)
    for i in range(9):  # nine voters are not enough
        ln.udp_endpoint_statement(ipaddress.IPv4Address(f"8.8.8.{i}"), external)
    assert str(ln.node.ip) == "127.0.0.1" and ln.record.seq == 2
    ln.udp_endpoint_statement(ipaddress.IPv4Address("8.8.8.9"), external)
    node = ln.node
    assert (str(node.ip), node.udp, node.seq) == ("203.0.114.7", 40404, 3)
    clock[0] += 10_000  # statements age out: back to the fallback endpoint
    ln.udp_endpoint_statement(ipaddress.IPv4Address("8.8.8.1"), external)
    assert (str(ln.node.ip), ln.node.udp, ln.node.seq) == ("127.0.0.1", 30303, 4)
    ln.set_static_ip("10.0.0.1")  # a static IP beats any prediction
    assert str(ln.node.ip) == "10.0.0.1"
