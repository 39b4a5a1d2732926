"""ethnode.crypto: keys, node ids, recoverable signatures, raw ECDH, nodekey files, ECIES."""

from __future__ import annotations

import hashlib
import os
import stat

import coincurve
import pytest
from shared_support import load_vector

from ethnode.crypto import (
    CryptoError,
    ECIESDecryptError,
    InvalidKeyError,
    InvalidSignatureError,
    PrivateKey,
    PublicKey,
    ecies,
    keccak256,
    load_private_key,
    recover,
    recover_public_key,
    save_private_key,
)
from ethnode.errors import EthnodeError

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MSG_HASH = keccak256(b"ethnode")


@pytest.fixture(scope="module")
def vec():
    return load_vector("rlpx", "eip8_handshake.json")


def test_error_hierarchy():
    for cls in (InvalidKeyError, InvalidSignatureError, ECIESDecryptError):
        assert issubclass(cls, CryptoError)
    assert issubclass(CryptoError, EthnodeError)


# --- keys ------------------------------------------------------------------------------


def test_node_ids_match_vector_public_keys(vec):
    keys, pubs = vec["keys"], vec["derived_public_keys"]
    for name in ("static_key_A", "static_key_B", "ephemeral_key_A", "ephemeral_key_B"):
        key = PrivateKey.from_hex(keys[name])
        expected = pubs[name.replace("_key_", "_pubkey_")]
        assert key.node_id.hex() == expected
        assert len(key.node_id) == 64
        assert PublicKey(bytes.fromhex(expected)) == key.public_key


def test_generate_gives_distinct_valid_keys():
    a, b = PrivateKey.generate(), PrivateKey.generate()
    assert a != b
    assert len(a.secret) == 32
    assert PrivateKey(a.secret) == a
    assert PrivateKey.from_hex(a.to_hex()) == a
    assert PrivateKey.from_hex("0x" + a.to_hex() + "\n") == a


def test_repr_does_not_leak_secret():
    key = PrivateKey.generate()
    assert key.to_hex() not in repr(key)


@pytest.mark.parametrize(
    "secret",
    [b"", b"\x01" * 31, b"\x01" * 33, b"\x00" * 32, SECP256K1_ORDER.to_bytes(32, "big"), b"\xff" * 32],
)
def test_invalid_private_keys_raise_ethnode_error(secret):
    with pytest.raises(InvalidKeyError):
        PrivateKey(secret)


@pytest.mark.parametrize("text", ["", "zz" * 32, "ab" * 31, "ab" * 33, "00" * 32])
def test_invalid_private_key_hex(text):
    with pytest.raises(InvalidKeyError):
        PrivateKey.from_hex(text)


def test_public_key_encodings_round_trip():
    key = PrivateKey.generate().public_key
    assert PublicKey.from_bytes(key.node_id) == key
    assert PublicKey.from_bytes(b"\x04" + key.node_id) == key
    compressed = key.to_compressed()
    assert len(compressed) == 33 and compressed[0] in (2, 3)
    assert PublicKey.from_bytes(compressed) == key


@pytest.mark.parametrize(
    "data", [b"\x01" * 64, b"\x00" * 64, b"\x01" * 63, b"\x05" + b"\x01" * 64, b"\x02" + b"\x00" * 32]
)
def test_invalid_public_keys_raise_ethnode_error(data):
    with pytest.raises(InvalidKeyError):
        PublicKey.from_bytes(data)


# --- signatures ------------------------------------------------------------------------


def test_sign_recover_round_trip():
    key = PrivateKey.generate()
    sig = key.sign(MSG_HASH)
    assert len(sig) == 65 and sig[64] in (0, 1)
    assert recover(MSG_HASH, sig) == key.node_id
    assert recover_public_key(MSG_HASH, sig) == key.public_key
    assert key.sign(MSG_HASH) == sig  # RFC 6979 deterministic, as geth
    # low-s, as geth's crypto.Sign guarantees
    assert int.from_bytes(sig[32:64], "big") <= SECP256K1_ORDER // 2


def test_recover_other_message_gives_other_key():
    key = PrivateKey.generate()
    sig = key.sign(MSG_HASH)
    try:
        other = recover(keccak256(b"other"), sig)
    except InvalidSignatureError:
        return
    assert other != key.node_id


def test_vector_auth1_signature_recovers_ephemeral_key(vec):
    """Auth1's signature is over ecdh(A, B) ^ nonce_A and recovers A's ephemeral key."""
    keys = vec["keys"]
    a, b = PrivateKey.from_hex(keys["static_key_A"]), PrivateKey.from_hex(keys["static_key_B"])
    signed = bytes(x ^ y for x, y in zip(a.ecdh(b.public_key), bytes.fromhex(keys["nonce_A"]), strict=True))
    sig = bytes.fromhex(vec["auth"][0]["decoded_derived"]["signature"])
    assert recover(signed, sig).hex() == vec["derived_public_keys"]["ephemeral_pubkey_A"]
    ours = PrivateKey.from_hex(keys["ephemeral_key_A"]).sign(signed)
    assert recover(signed, ours).hex() == vec["derived_public_keys"]["ephemeral_pubkey_A"]


@pytest.mark.parametrize(
    "sig",
    [b"", b"\x01" * 64, b"\x01" * 66, b"\x00" * 65, b"\x01" * 64 + b"\x02", b"\x01" * 64 + b"\x1b"],
)
def test_bad_signatures_raise_ethnode_error(sig):
    with pytest.raises(InvalidSignatureError):
        recover(MSG_HASH, sig)


def test_sign_and_recover_reject_non_hash_input():
    key = PrivateKey.generate()
    with pytest.raises(InvalidSignatureError):
        key.sign(b"short")
    with pytest.raises(InvalidSignatureError):
        recover(b"\x00" * 31, key.sign(MSG_HASH))


def test_verify():
    key = PrivateKey.generate()
    sig = key.sign(MSG_HASH)
    assert key.public_key.verify(MSG_HASH, sig)
    assert key.public_key.verify(MSG_HASH, sig[:64])
    assert not key.public_key.verify(keccak256(b"x"), sig)
    assert not PrivateKey.generate().public_key.verify(MSG_HASH, sig)
    assert not key.public_key.verify(MSG_HASH, b"\x00" * 64)
    assert not key.public_key.verify(MSG_HASH, b"\x01" * 10)
    # the malleable high-s twin is rejected, as by geth's VerifySignature
    s = int.from_bytes(sig[32:64], "big")
    assert not key.public_key.verify(MSG_HASH, sig[:32] + (SECP256K1_ORDER - s).to_bytes(32, "big"))


# --- ECDH ------------------------------------------------------------------------------


def test_ecdh_is_symmetric_raw_x_coordinate():
    a, b = PrivateKey.generate(), PrivateKey.generate()
    shared = a.ecdh(b.public_key)
    assert len(shared) == 32
    assert shared == b.ecdh(a.public_key)
    assert shared != a.ecdh(PrivateKey.generate().public_key)
    point = coincurve.PublicKey(b"\x04" + b.node_id).multiply(a.secret)
    assert shared == point.format(compressed=False)[1:33]
    # coincurve's own ecdh() hashes the point, which devp2p does not do
    assert shared != coincurve.PrivateKey(a.secret).ecdh(b.public_key.to_compressed())


# --- nodekey files ---------------------------------------------------------------------


def test_save_load_round_trip_mode_0600(tmp_path):
    key = PrivateKey.generate()
    path = tmp_path / "nodekey"
    save_private_key(key, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == key.to_hex() and len(path.read_text()) == 64
    assert load_private_key(path) == key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodekey"]  # no temp file left


def test_save_replaces_a_world_readable_file(tmp_path):
    path = tmp_path / "nodekey"
    path.write_text("junk")
    os.chmod(path, 0o644)
    key = PrivateKey.generate()
    save_private_key(key, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_private_key(path) == key


def test_load_tolerates_trailing_newline(tmp_path):
    key = PrivateKey.generate()
    path = tmp_path / "nodekey"
    path.write_text(key.to_hex() + "\r\n")
    assert load_private_key(path) == key


@pytest.mark.parametrize("content", [b"", b"abcd", b"g" * 64, b"\xff" * 64, b"00" * 32, b"ab" * 33])
def test_load_bad_file_names_the_file(tmp_path, content):
    path = tmp_path / "nodekey"
    path.write_bytes(content)
    with pytest.raises(InvalidKeyError, match="nodekey"):
        load_private_key(path)


def test_load_missing_file_is_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_private_key(tmp_path / "absent")


# --- ECIES -----------------------------------------------------------------------------


def test_concat_kdf_is_sp800_56_sha256():
    z = bytes(range(32))
    assert ecies.concat_kdf(z, 32) == hashlib.sha256(b"\x00\x00\x00\x01" + z).digest()
    two = hashlib.sha256(b"\x00\x00\x00\x01" + z).digest() + hashlib.sha256(b"\x00\x00\x00\x02" + z).digest()
    assert ecies.concat_kdf(z, 40) == two[:40]


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000])
def test_ecies_round_trip(size):
    key = PrivateKey.generate()
    plaintext = os.urandom(size)
    sealed = ecies.encrypt(key.public_key, plaintext, b"\x01\x02")
    assert len(sealed) == size + ecies.OVERHEAD == size + 113
    assert sealed[0] == 4
    assert ecies.decrypt(key, sealed, b"\x01\x02") == plaintext


def test_ecies_layout_with_injected_randomness():
    """Rebuild the message by hand from the documented layout to pin every byte."""
    import hmac

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key, eph = PrivateKey.generate(), PrivateKey.generate()
    iv = bytes(range(16))
    sealed = ecies.encrypt(key.public_key, b"hello devp2p", b"\x00\x2a", ephemeral_key=eph, iv=iv)
    material = hashlib.sha256(b"\x00\x00\x00\x01" + eph.ecdh(key.public_key)).digest()
    enc = Cipher(algorithms.AES(material[:16]), modes.CTR(iv)).encryptor()
    ct = enc.update(b"hello devp2p") + enc.finalize()
    mac_key = hashlib.sha256(material[16:]).digest()
    tag = hmac.new(mac_key, iv + ct + b"\x00\x2a", hashlib.sha256).digest()
    assert sealed == b"\x04" + eph.node_id + iv + ct + tag


@pytest.mark.parametrize("position", [0, 1, 40, 65, 80, 100, -1, -32])
def test_ecies_tampering_detected(position):
    key = PrivateKey.generate()
    sealed = bytearray(ecies.encrypt(key.public_key, b"x" * 40, b"ab"))
    sealed[position] ^= 0x01
    with pytest.raises(ECIESDecryptError):
        ecies.decrypt(key, bytes(sealed), b"ab")


def test_ecies_wrong_key_shared_data_or_length():
    key = PrivateKey.generate()
    sealed = ecies.encrypt(key.public_key, b"payload", b"ab")
    with pytest.raises(ECIESDecryptError):
        ecies.decrypt(PrivateKey.generate(), sealed, b"ab")
    with pytest.raises(ECIESDecryptError):
        ecies.decrypt(key, sealed, b"ac")
    with pytest.raises(ECIESDecryptError):
        ecies.decrypt(key, sealed)
    with pytest.raises(ECIESDecryptError):
        ecies.decrypt(key, sealed[: ecies.OVERHEAD - 1], b"ab")


def test_ecies_opens_vector_packets(vec):
    """Auth1 (no shared data) and Auth2 (size prefix as shared data) decrypt with key B."""
    b = PrivateKey.from_hex(vec["keys"]["static_key_B"])
    auth1, auth2 = (bytes.fromhex(v["hex"]) for v in vec["auth"][:2])
    plain = ecies.decrypt(b, auth1)
    d = vec["auth"][0]["decoded_derived"]
    assert len(plain) == d["plaintext_length"]
    assert plain[:65].hex() == d["signature"]
    assert plain[65:97].hex() == d["ephemeral_pubkey_hash"]
    assert plain[97:161].hex() == d["initiator_pubkey"]
    assert plain[161:193].hex() == d["initiator_nonce"]
    assert plain[193] == d["token_flag"]
    plain2 = ecies.decrypt(b, auth2[2:], auth2[:2])
    assert len(plain2) == vec["auth"][1]["decoded_derived"]["auth_size"] - ecies.OVERHEAD
    with pytest.raises(ECIESDecryptError):
        ecies.decrypt(b, auth2[2:])  # the size prefix is authenticated
