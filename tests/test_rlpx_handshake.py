"""The sans-IO RLPx handshake against the EIP-8 vectors and against itself."""

from __future__ import annotations

import pytest
from shared_support import load_vector

from ethnode import rlp
from ethnode.crypto import ECIESDecryptError, PrivateKey, ecies, keccak256_hasher
from ethnode.errors import EthnodeError
from ethnode.p2p.rlpx.handshake import (
    LEGACY_ACK_SIZE,
    LEGACY_AUTH_SIZE,
    MAX_PACKET_SIZE,
    AckBody,
    AuthBody,
    HandshakeError,
    Initiator,
    Recipient,
    Secrets,
)


@pytest.fixture(autouse=True, params=["compiled", "pure"])
def crypto_backend(request, monkeypatch):
    """Run every test with each backend of the curve-heavy steps and of ECIES."""
    from ethnode.p2p.rlpx import handshake

    try:
        monkeypatch.setattr(handshake, "_crypto", handshake.handshake_crypto_implementation(request.param))
        monkeypatch.setattr(ecies, "_impl", ecies.ecies_implementation(request.param))
    except ImportError as exc:
        pytest.skip(f"compiled backend unavailable: {exc}")
    return request.param


@pytest.fixture(scope="module")
def vec():
    return load_vector("rlpx", "eip8_handshake.json")


def _keys(vec):
    k = vec["keys"]
    return (
        PrivateKey.from_hex(k["static_key_A"]),
        PrivateKey.from_hex(k["static_key_B"]),
        PrivateKey.from_hex(k["ephemeral_key_A"]),
        PrivateKey.from_hex(k["ephemeral_key_B"]),
        bytes.fromhex(k["nonce_A"]),
        bytes.fromhex(k["nonce_B"]),
    )


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _recipient_b(vec) -> Recipient:
    _, b, _, eph_b, _, nonce_b = _keys(vec)
    return Recipient(b, ephemeral_key=eph_b, nonce=nonce_b)


def _initiator_a(vec) -> Initiator:
    a, b, eph_a, _, nonce_a, _ = _keys(vec)
    return Initiator(a, b.public_key, ephemeral_key=eph_a, nonce=nonce_a)


def _vector_packet(vec, kind: str, name: str) -> tuple[bytes, dict]:
    entry = next(e for e in vec[kind] if e["name"] == name)
    packet = bytes.fromhex(entry["hex"])
    assert len(packet) == entry["length_bytes"]
    return packet, entry["decoded_derived"]


# --- vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["auth1", "auth2", "auth3"])
def test_recipient_reads_vector_auth(vec, name):
    packet, decoded = _vector_packet(vec, "auth", name)
    rec = _recipient_b(vec)
    assert rec.packet_size(packet) == len(packet)
    assert rec.receive_auth(packet).hex() == decoded["initiator_pubkey"]
    assert rec.remote_pubkey is not None
    ack = rec.ack_message()
    assert (len(ack) == LEGACY_ACK_SIZE) == (name == "auth1")  # answered in the auth's format
    s = rec.secrets()
    assert s.remote_pubkey.hex() == vec["derived_public_keys"]["static_pubkey_A"]
    assert s.aes.hex() == vec["secrets"]["aes-secret"]
    assert s.mac.hex() == vec["secrets"]["mac-secret"]
    nonce_b = bytes.fromhex(vec["keys"]["nonce_B"])
    assert s.ingress_mac_seed == _xor(s.mac, nonce_b) + packet
    nonce_a = bytes.fromhex(decoded["initiator_nonce"])
    assert s.egress_mac_seed == _xor(s.mac, nonce_a) + ack


@pytest.mark.parametrize("name", ["auth2", "auth3"])
def test_vector_auth_body_fields_and_extra_elements(vec, name):
    packet, d = _vector_packet(vec, "auth", name)
    b = _keys(vec)[1]
    plain = ecies.decrypt(b, packet[2:], packet[:2])
    assert len(plain) == d["auth_body_list_length_bytes"] + d["padding_length_bytes"]
    body_bytes = plain[: d["auth_body_list_length_bytes"]]
    body = AuthBody.decode(body_bytes)
    assert body.signature.hex() == d["signature"]
    assert body.pubkey.hex() == d["initiator_pubkey"]
    assert body.nonce.hex() == d["initiator_nonce"]
    assert body.version == d["auth_vsn"]
    extra = rlp.decode(body_bytes)[4:]
    assert [rlp.encode(e).hex() for e in extra] == d["additional_list_elements_rlp"]


@pytest.mark.parametrize("name", ["ack2", "ack3"])
def test_vector_ack_body_fields_and_extra_elements(vec, name):
    packet, d = _vector_packet(vec, "ack", name)
    a = _keys(vec)[0]
    plain = ecies.decrypt(a, packet[2:], packet[:2])
    body_bytes = plain[: d["ack_body_list_length_bytes"]]
    body = AckBody.decode(body_bytes)
    assert body.ephemeral_pubkey.hex() == d["recipient_ephemeral_pubkey"]
    assert body.nonce.hex() == d["recipient_nonce"]
    assert body.version == d["ack_vsn"]
    assert [rlp.encode(e).hex() for e in rlp.decode(body_bytes)[3:]] == d["additional_list_elements_rlp"]


@pytest.mark.parametrize("name", ["ack1", "ack2", "ack3"])
def test_initiator_reads_vector_ack(vec, name):
    packet, _ = _vector_packet(vec, "ack", name)
    ini = _initiator_a(vec)
    auth = ini.auth_message()
    assert ini.packet_size(packet) == len(packet)
    s = ini.receive_ack(packet)
    assert s.remote_pubkey.hex() == vec["derived_public_keys"]["static_pubkey_B"]
    assert s.aes.hex() == vec["secrets"]["aes-secret"]
    assert s.mac.hex() == vec["secrets"]["mac-secret"]
    nonce_a, nonce_b = _keys(vec)[4:]
    assert s.egress_mac_seed == _xor(s.mac, nonce_b) + auth
    assert s.ingress_mac_seed == _xor(s.mac, nonce_a) + packet


def test_vector_secrets_and_ingress_mac_foo(vec):
    """(Auth2, Ack2): node B's aes-secret, mac-secret and ingress-mac after "foo"."""
    assert vec["secrets"]["auth_message"] == "auth2" and vec["secrets"]["ack_message"] == "ack2"
    auth2, _ = _vector_packet(vec, "auth", "auth2")
    ack2, _ = _vector_packet(vec, "ack", "ack2")
    rec = _recipient_b(vec)
    rec.receive_auth(auth2)
    rec.ack_message()
    s = rec.secrets()
    assert s.aes.hex() == vec["secrets"]["aes-secret"]
    assert s.mac.hex() == vec["secrets"]["mac-secret"]
    mac = keccak256_hasher()
    mac.update(s.ingress_mac_seed)
    mac.update(b"foo")
    assert mac.digest().hex() == vec["secrets"]["ingress-mac_foo"]
    # Node A, having sent Auth2, sees the same state as B's ingress from its egress side.
    ini = _initiator_a(vec)
    ini._auth = auth2  # pin the auth bytes A sent in the vector (ours carry random padding)
    sa = ini.receive_ack(ack2)
    assert (sa.aes, sa.mac) == (s.aes, s.mac)
    assert sa.egress_mac_seed == s.ingress_mac_seed


# --- round trips -----------------------------------------------------------------------


def _round_trip(ini: Initiator, rec: Recipient) -> tuple[Secrets, Secrets]:
    auth = ini.auth_message()
    assert rec.receive_auth(auth) == ini.privkey.node_id
    ack = rec.ack_message()
    return ini.receive_ack(ack), rec.secrets()


@pytest.mark.parametrize("_", range(5))
def test_round_trip_random_keys_matching_secrets(_):
    a, b = PrivateKey.generate(), PrivateKey.generate()
    si, sr = _round_trip(Initiator(a, b.node_id), Recipient(b))
    assert si.remote_pubkey == b.node_id and sr.remote_pubkey == a.node_id
    assert si.aes == sr.aes and si.mac == sr.mac
    assert si.egress_mac_seed == sr.ingress_mac_seed
    assert si.ingress_mac_seed == sr.egress_mac_seed
    assert si.egress_mac_seed != si.ingress_mac_seed
    assert len(si.aes) == len(si.mac) == 32


def test_fresh_randomness_each_handshake():
    a, b = PrivateKey.generate(), PrivateKey.generate()
    s1, _ = _round_trip(Initiator(a, b.public_key), Recipient(b))
    s2, _ = _round_trip(Initiator(a, b.public_key), Recipient(b))
    assert s1.aes != s2.aes


def test_eip8_auth_has_padding_and_size_prefix():
    a, b = PrivateKey.generate(), PrivateKey.generate()
    auth = Initiator(a, b.public_key).auth_message()
    assert int.from_bytes(auth[:2], "big") == len(auth) - 2
    body_len = len(AuthBody(b"\x00" * 65, b"\x00" * 64, b"\x00" * 32, 4).encode())
    assert 2 + ecies.OVERHEAD + body_len + 100 <= len(auth) < 2 + ecies.OVERHEAD + body_len + 200
    assert len(auth) > LEGACY_AUTH_SIZE


def test_legacy_auth_gets_legacy_ack_and_same_secrets(vec):
    """B answers pre-EIP-8 Auth1 with a 210-byte ack that A reads; both agree."""
    auth1, _ = _vector_packet(vec, "auth", "auth1")
    rec = _recipient_b(vec)
    rec.receive_auth(auth1)
    ack = rec.ack_message()
    assert len(ack) == LEGACY_ACK_SIZE
    ini = _initiator_a(vec)
    ini._auth = auth1  # A "sent" the legacy Auth1
    assert ini.packet_size(ack + b"trailing frame") == LEGACY_ACK_SIZE
    si, sr = ini.receive_ack(ack), rec.secrets()
    assert si.aes.hex() == vec["secrets"]["aes-secret"]
    assert (si.aes, si.mac) == (sr.aes, sr.mac)
    assert si.egress_mac_seed == sr.ingress_mac_seed
    assert si.ingress_mac_seed == sr.egress_mac_seed


@pytest.mark.parametrize("name", ["auth1", "auth2"])
def test_packet_size_streaming(vec, name):
    """Fed a byte at a time with a frame behind it, packet_size never overshoots the packet."""
    packet, _ = _vector_packet(vec, "auth", name)
    stream = packet + b"\xaa" * 64
    rec = _recipient_b(vec)
    buffered = 0
    while True:
        need = rec.packet_size(stream[:buffered])
        assert need <= len(packet)
        if buffered >= need:
            break
        buffered += 1
    assert need == len(packet)
    assert rec.receive_auth(stream[:need]) == _keys(vec)[0].node_id


# --- rejection -------------------------------------------------------------------------


def test_oversize_declared_packet_rejected_before_reading():
    rec = Recipient(PrivateKey.generate())
    ini = Initiator(PrivateKey.generate(), PrivateKey.generate().public_key)
    ini.auth_message()
    too_big = (MAX_PACKET_SIZE + 1).to_bytes(2, "big")
    for side in (rec, ini):
        with pytest.raises(HandshakeError):
            side.packet_size(too_big)
        with pytest.raises(HandshakeError):
            side.packet_size(b"\xff\xff")
        assert side.packet_size(MAX_PACKET_SIZE.to_bytes(2, "big")) == MAX_PACKET_SIZE + 2
    with pytest.raises(HandshakeError):
        rec.receive_auth(too_big + b"\x00" * (MAX_PACKET_SIZE + 1))
    with pytest.raises(HandshakeError):
        ini.receive_ack(too_big + b"\x00" * (MAX_PACKET_SIZE + 1))


@pytest.mark.parametrize("name", ["auth1", "auth2", "auth3"])
@pytest.mark.parametrize("position", [5, 100, -1])
def test_tampered_auth_ciphertext(vec, name, position):
    packet, _ = _vector_packet(vec, "auth", name)
    bad = bytearray(packet)
    bad[position] ^= 0x40
    with pytest.raises(ECIESDecryptError):
        _recipient_b(vec).receive_auth(bytes(bad))


def test_tampered_ack_ciphertext():
    a, b = PrivateKey.generate(), PrivateKey.generate()
    ini, rec = Initiator(a, b.public_key), Recipient(b)
    rec.receive_auth(ini.auth_message())
    bad = bytearray(rec.ack_message())
    bad[50] ^= 1
    with pytest.raises(ECIESDecryptError):
        ini.receive_ack(bytes(bad))


def test_auth_for_another_node(vec):
    auth2, _ = _vector_packet(vec, "auth", "auth2")
    with pytest.raises(ECIESDecryptError):
        Recipient(PrivateKey.generate()).receive_auth(auth2)


def test_truncated_or_extended_packet(vec):
    auth2, _ = _vector_packet(vec, "auth", "auth2")
    with pytest.raises(HandshakeError):
        _recipient_b(vec).receive_auth(auth2[:-1])
    with pytest.raises(HandshakeError):
        _recipient_b(vec).receive_auth(auth2 + b"\x00")
    with pytest.raises(HandshakeError):
        _recipient_b(vec).receive_auth(b"\x01")


def _seal_auth(b: PrivateKey, plaintext: bytes) -> bytes:
    prefix = (len(plaintext) + ecies.OVERHEAD).to_bytes(2, "big")
    return prefix + ecies.encrypt(b.public_key, plaintext, prefix)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"\x80" + b"\x00" * 120,  # not a list
        rlp.encode([b"\x01" * 65, b"\x02" * 64]) + b"\x00" * 100,  # too few elements
        rlp.encode([b"\x01" * 64, b"\x02" * 64, b"\x03" * 32, 4]) + b"\x00" * 100,  # short signature
        b"\xf9\x01\x00" + b"\x00" * 100,  # list longer than the plaintext
    ],
)
def test_malformed_auth_body(plaintext):
    b = PrivateKey.generate()
    with pytest.raises(HandshakeError):
        Recipient(b).receive_auth(_seal_auth(b, plaintext))


def test_auth_with_unrecoverable_signature_or_bad_pubkey():
    a, b = PrivateKey.generate(), PrivateKey.generate()
    bad_sig = AuthBody(b"\x00" * 65, a.node_id, b"\x07" * 32, 4).encode() + b"\x00" * 100
    with pytest.raises(HandshakeError):
        Recipient(b).receive_auth(_seal_auth(b, bad_sig))
    bad_key = AuthBody(b"\x01" * 65, b"\x01" * 64, b"\x07" * 32, 4).encode() + b"\x00" * 100
    with pytest.raises(HandshakeError):
        Recipient(b).receive_auth(_seal_auth(b, bad_key))


def test_legacy_auth_with_wrong_ephemeral_hash(vec):
    auth1, _ = _vector_packet(vec, "auth", "auth1")
    b = _keys(vec)[1]
    plain = bytearray(ecies.decrypt(b, auth1))
    plain[70] ^= 1  # inside keccak256(ephemeral-pubk)
    forged = ecies.encrypt(b.public_key, bytes(plain))
    assert len(forged) == LEGACY_AUTH_SIZE
    with pytest.raises(HandshakeError, match="ephemeral"):
        _recipient_b(vec).receive_auth(forged)


def test_ack_with_invalid_ephemeral_key():
    a, b = PrivateKey.generate(), PrivateKey.generate()
    ini = Initiator(a, b.public_key)
    ini.auth_message()
    body = AckBody(b"\x01" * 64, b"\x02" * 32, 4).encode() + b"\x00" * 100
    prefix = (len(body) + ecies.OVERHEAD).to_bytes(2, "big")
    with pytest.raises(HandshakeError):
        ini.receive_ack(prefix + ecies.encrypt(a.public_key, body, prefix))


def test_every_rejection_is_an_ethnode_error():
    assert issubclass(HandshakeError, EthnodeError) and issubclass(ECIESDecryptError, EthnodeError)


def test_api_misuse_is_a_bug_not_a_peer_error():
    a, b = PrivateKey.generate(), PrivateKey.generate()
    with pytest.raises(RuntimeError):
        Initiator(a, b.public_key).receive_ack(b"\x00" * 10)
    rec = Recipient(b)
    with pytest.raises(RuntimeError):
        rec.ack_message()
    with pytest.raises(RuntimeError):
        rec.secrets()
    rec.receive_auth(Initiator(a, b.public_key).auth_message())
    with pytest.raises(RuntimeError):
        rec.secrets()
    with pytest.raises(ValueError):
        Recipient(b, nonce=b"\x00" * 31)


def test_secrets_repr_hides_key_material():
    a, b = PrivateKey.generate(), PrivateKey.generate()
    si, _ = _round_trip(Initiator(a, b.public_key), Recipient(b))
    assert si.aes.hex() not in repr(si) and si.mac.hex() not in repr(si)
    with pytest.raises(AttributeError):
        si.aes = b""  # type: ignore[misc]


def test_eip8_packet_starting_with_0x04_is_not_mistaken_for_legacy():
    """A big EIP-8 auth (declared size 0x04xx) first looks like a legacy one; it must still be read."""
    a, b, eph = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    nonce = b"\x42" * 32
    sig = eph.sign(_xor(a.ecdh(b.public_key), nonce))
    body = AuthBody(sig, a.node_id, nonce, 4).encode()
    plaintext = body + b"\x00" * (1100 - ecies.OVERHEAD - len(body))
    packet = _seal_auth(b, plaintext)
    assert packet[0] == 0x04 and len(packet) == 1102
    rec = Recipient(b)
    assert rec.packet_size(packet[:100]) == LEGACY_AUTH_SIZE  # can't tell yet; never overshoots
    assert rec.packet_size(packet[:LEGACY_AUTH_SIZE]) == 1102
    assert rec.receive_auth(packet) == a.node_id


def test_secrets_drive_the_frame_codec():
    """Both sides' Secrets plug into FrameCodec and frames flow both ways."""
    frame = pytest.importorskip("ethnode.p2p.rlpx.frame")
    a, b = PrivateKey.generate(), PrivateKey.generate()
    si, sr = _round_trip(Initiator(a, b.public_key), Recipient(b))
    ci = frame.FrameCodec(si.aes, si.mac, si.egress_mac_seed, si.ingress_mac_seed)
    cr = frame.FrameCodec(sr.aes, sr.mac, sr.egress_mac_seed, sr.ingress_mac_seed)
    for code in range(3):
        for sender, receiver in ((ci, cr), (cr, ci)):
            wire = sender.write(code, b"payload" * code)
            need = receiver.read_header(wire[:32])
            assert receiver.read_body(wire[32 : 32 + need]) == (code, b"payload" * code)
