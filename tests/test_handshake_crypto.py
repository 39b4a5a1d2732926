"""The curve-heavy handshake steps and ECIES, compiled (``rust/src/{ecies,handshake}.rs``)
against their pure twins: same bytes with injected randomness, same errors.

Signatures are RFC 6979 (deterministic), and ECIES takes its ephemeral secret and IV as
arguments, so every output can be compared byte for byte.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_support import load_vector

from ethnode.crypto import ecies
from ethnode.crypto.errors import ECIESDecryptError, InvalidKeyError, InvalidSignatureError
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.p2p.rlpx.handshake import handshake_crypto_implementation

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _both(loader: Any) -> tuple[Any, Any]:
    try:
        return loader("compiled"), loader("pure")
    except ImportError as exc:
        pytest.skip(f"compiled backend unavailable: {exc}")


@pytest.fixture(scope="module")
def hs() -> tuple[Any, Any]:
    return _both(handshake_crypto_implementation)


@pytest.fixture(scope="module")
def ec() -> tuple[Any, Any]:
    return _both(ecies.ecies_implementation)


secrets_st = st.integers(1, SECP256K1_ORDER - 1).map(lambda n: n.to_bytes(32, "big"))
nonces_st = st.binary(min_size=32, max_size=32)


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    """("ok", result) or (exception class name, message), to compare two backends' behaviour."""
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - the comparison is the point
        return type(exc).__name__, str(exc)


@SETTINGS
@given(static=secrets_st, remote=secrets_st, eph=secrets_st, nonce=nonces_st)
def test_auth_signature_and_recovery_match(hs, static, remote, eph, nonce):
    compiled, pure = hs
    a, b, e = PrivateKey(static), PrivateKey(remote), PrivateKey(eph)
    sig = compiled.rlpx_auth_signature(static, b.node_id, eph, nonce)
    assert sig == pure.rlpx_auth_signature(static, b.node_id, eph, nonce)
    assert len(sig) == 65 and sig[64] in (0, 1)
    for impl in hs:
        assert impl.rlpx_auth_recover(remote, a.node_id, nonce, sig) == e.node_id


@SETTINGS
@given(eph=secrets_st, remote_eph=secrets_st, n1=nonces_st, n2=nonces_st)
def test_derive_matches_and_is_symmetric(hs, eph, remote_eph, n1, n2):
    compiled, pure = hs
    remote_id = PrivateKey(remote_eph).node_id
    aes, mac = compiled.rlpx_derive(eph, remote_id, n1, n2)
    assert (aes, mac) == pure.rlpx_derive(eph, remote_id, n1, n2)
    assert (aes, mac) == compiled.rlpx_derive(remote_eph, PrivateKey(eph).node_id, n1, n2)


def test_derive_matches_the_eip8_vector(hs):
    vec = load_vector("rlpx", "eip8_handshake.json")
    keys = vec["keys"]
    for impl in hs:
        aes, mac = impl.rlpx_derive(
            PrivateKey.from_hex(keys["ephemeral_key_B"]).secret,
            PrivateKey.from_hex(keys["ephemeral_key_A"]).node_id,
            bytes.fromhex(keys["nonce_A"]),
            bytes.fromhex(keys["nonce_B"]),
        )
        secrets = vec["secrets"]  # B's view of (Auth2, Ack2); the nonces are the same in every vector
        assert aes.hex() == secrets["aes-secret"] and mac.hex() == secrets["mac-secret"]


@SETTINGS
@given(remote=secrets_st, eph=secrets_st, iv=st.binary(min_size=16, max_size=16),
       plaintext=st.binary(max_size=600), shared=st.binary(max_size=4))
def test_ecies_same_bytes_and_cross_decrypt(ec, remote, eph, iv, plaintext, shared):
    compiled, pure = ec
    remote_id = PrivateKey(remote).node_id
    sealed = compiled.ecies_encrypt(remote_id, plaintext, shared, eph, iv)
    assert sealed == pure.ecies_encrypt(remote_id, plaintext, shared, eph, iv)
    assert sealed[:65] == b"\x04" + PrivateKey(eph).node_id and sealed[65:81] == iv
    assert compiled.ecies_decrypt(remote, sealed, shared) == pure.ecies_decrypt(remote, sealed, shared) == plaintext


def test_ecies_errors_match(ec):
    compiled, pure = ec
    key = PrivateKey.generate()
    sealed = compiled.ecies_encrypt(key.node_id, b"payload", b"ab", PrivateKey.generate().secret, bytes(16))
    bad_point = b"\x04" + b"\x01" * 64 + sealed[65:]
    cases = [
        (key.secret, sealed, b"ac"),  # wrong shared MAC data
        (PrivateKey.generate().secret, sealed, b"ab"),  # wrong key
        (key.secret, sealed[:112], b"ab"),  # shorter than the overhead
        (key.secret, b"\x02" + sealed[1:], b"ab"),  # not an uncompressed point prefix
        (key.secret, bad_point, b"ab"),  # not on the curve
        (key.secret, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"ab"),  # tag
        (bytes(32), sealed, b"ab"),  # zero private key
        (key.secret[:31], sealed, b"ab"),  # short private key
    ]
    for args in cases:
        got = _outcome(compiled.ecies_decrypt, *args)
        assert got == _outcome(pure.ecies_decrypt, *args)
        assert got[0] in ("ECIESDecryptError", "InvalidKeyError"), got
    eph = PrivateKey.generate().secret
    for args in [
        (key.node_id, b"x", b"", eph, bytes(15)),  # short iv
        (key.node_id[:63], b"x", b"", eph, bytes(16)),  # short node id
        (b"\x01" * 64, b"x", b"", eph, bytes(16)),  # not on the curve
        (key.node_id, b"x", b"", SECP256K1_ORDER.to_bytes(32, "big"), bytes(16)),  # secret out of range
    ]:
        got = _outcome(compiled.ecies_encrypt, *args)
        assert got == _outcome(pure.ecies_encrypt, *args)
        assert got[0] in ("ValueError", "InvalidKeyError"), got


def test_handshake_step_errors_match(hs):
    compiled, pure = hs
    a, b, e = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    nonce = os.urandom(32)
    sig = compiled.rlpx_auth_signature(a.secret, b.node_id, e.secret, nonce)
    zero_r = bytes(32) + sig[32:]
    calls = [
        ("rlpx_auth_recover", (b.secret, a.node_id, nonce, sig[:64])),
        ("rlpx_auth_recover", (b.secret, a.node_id, nonce, sig[:64] + b"\x02")),
        ("rlpx_auth_recover", (b.secret, a.node_id, nonce, zero_r)),
        ("rlpx_auth_recover", (b.secret, b"\x01" * 64, nonce, sig)),
        ("rlpx_auth_recover", (b.secret, a.node_id[:10], nonce, sig)),
        ("rlpx_auth_recover", (b.secret, a.node_id, nonce[:31], sig)),
        ("rlpx_auth_signature", (a.secret, b"\x00" * 64, e.secret, nonce)),
        ("rlpx_auth_signature", (a.secret, b.node_id, bytes(32), nonce)),
        ("rlpx_derive", (e.secret, b"\x02" * 64, nonce, nonce)),
        ("rlpx_derive", (e.secret, b.node_id, nonce, b"")),
        ("rlpx_derive", (b"\xff" * 32, b.node_id, nonce, nonce)),
    ]
    for name, args in calls:
        got = _outcome(getattr(compiled, name), *args)
        assert got == _outcome(getattr(pure, name), *args), (name, got)
        assert got[0] in ("ValueError", "InvalidKeyError", "InvalidSignatureError"), (name, got)
    # The error classes are ethnode's, not library ones.
    with pytest.raises(InvalidSignatureError):
        compiled.rlpx_auth_recover(b.secret, a.node_id, nonce, zero_r)
    with pytest.raises(InvalidKeyError):
        compiled.rlpx_derive(e.secret, b"\x02" * 64, nonce, nonce)
    with pytest.raises(ECIESDecryptError):
        ecies.ecies_implementation("compiled").ecies_decrypt(a.secret, bytes(200), b"")


def test_signed_value_is_static_ecdh_xor_nonce(hs):
    """The recipient recovers from ecdh(static) ^ nonce: cross-check with keys.py directly."""
    a, b, e = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    nonce = os.urandom(32)
    value = bytes(x ^ y for x, y in zip(a.ecdh(b.public_key), nonce, strict=True))
    for impl in hs:
        assert impl.rlpx_auth_signature(a.secret, b.node_id, e.secret, nonce) == e.sign(value)
    assert keccak256(e.node_id)  # the legacy auth's ephemeral hash input is the node id
