"""Transactions of types 0-4: codecs, hashes, signing hashes, senders, fork rules.

Vectors: ../shared/vectors/tx (EIP-155 example, ethereum/tests ttSignature / ttEIP2930 /
ttEIP1559) and the ethtest chain, whose txinfo.json lists hash and sender of 378 txs of
types 0-3 and the one EIP-7702 authorization (account and delegate).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_support import both_rlp_impls, load_vector, shared_path

from ethnode import rlp
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.chainfile import read_blocks
from ethnode.core.types import (
    AccessListTx,
    AccessTuple,
    BlobTx,
    BlobTxSidecar,
    BlobTxWithSidecar,
    DynamicFeeTx,
    LegacyTx,
    SetCodeAuthorization,
    SetCodeTx,
    TransactionError,
    decode_tx,
    decode_tx_item,
    make_signer,
)
from ethnode.core.types.transaction import (
    SECP256K1_N,
    InvalidChainIdError,
    InvalidTxSignatureError,
    TxTypeNotSupportedError,
    address_of,
    canonical_from_item,
    kzg_to_versioned_hash,
)
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError

KEY = PrivateKey(bytes.fromhex("46" * 32))
KEY_ADDR = address_of(KEY.node_id)


def _hex(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def _vectors() -> dict[str, Any]:
    return load_vector("tx", "transactions.json")  # type: ignore[no-any-return]


def _valid(name: str) -> dict[str, Any]:
    return next(v for v in _vectors()["valid"] if v["name"] == name)


# --- published vectors ----------------------------------------------------------------


def test_eip155_example_signing_data_hash_and_signature() -> None:
    v = _valid("EIP-155 example")
    f = v["fields"]
    tx = LegacyTx(
        f["nonce"], f["gasprice_wei"], f["startgas"], _hex(f["to"]), int(f["value_wei"]), b"", 0, 0, 0
    )
    assert tx._unsigned_sedes.encode(tuple(tx[:6]))  # the unsigned prefix encodes
    assert tx.signing_hash(v["chain_id"]) == _hex(v["signing_hash"])
    signed = tx.sign(PrivateKey(_hex(v["private_key"])), chain_id=v["chain_id"])
    assert (signed.v, signed.r, signed.s) == (v["v"], int(v["r"]), int(v["s"]))
    assert signed.canonical == _hex(v["signed_tx"])
    assert signed.hash == _hex(v["derived"]["tx_hash"])
    assert signed.sender == _hex(v["derived"]["sender"])
    assert signed.chain_id == 1 and signed.protected


@pytest.mark.parametrize(
    "name",
    [
        "Vitalik_1",
        "Vitalik_2",
        "RightVRSTest",
        "accessListStorage32Bytes",
        "GasLimitPriceProductOverflowtMinusOne",
    ],
)
def test_valid_vectors_decode_hash_sender_roundtrip(name: str) -> None:
    v = _valid(name)
    raw = _hex(v["txbytes"])
    tx = decode_tx(raw)
    assert tx.hash == _hex(v["hash"])
    assert tx.sender == _hex(v["sender"])
    assert type(tx).decode(raw if tx.type == 0 else raw[1:]).canonical == raw  # re-encode, no cached bytes
    assert decode_tx_item(tx.item()) == tx
    assert canonical_from_item(tx.item()) == raw
    if "signing_hash" in v.get("derived", {}):
        assert tx.signing_hash(v["derived"]["chain_id"]) == _hex(v["derived"]["signing_hash"])
    assert tx.chain_id == v["derived"]["chain_id"]


def test_invalid_vectors() -> None:
    bad = {v["name"]: _hex(v["txbytes"]) for v in _vectors()["invalid"]}
    with pytest.raises(TransactionError, match="cannot decode"):
        decode_tx(bad["accessListStorage0x0001"])  # a 2-byte storage key
    tx = decode_tx(bad["maxFeePerGas32BytesValue"])  # decodes; fails the stateless checks
    with pytest.raises(TransactionError, match="overflows 256 bits"):
        tx.validate()


# --- fork rules (Signer) ------------------------------------------------------------------


def _config(**forks: Any) -> ChainConfig:
    return ChainConfig(chain_id=forks.pop("chain_id", 1), **forks)


def test_signer_rules_by_fork() -> None:
    vitalik = decode_tx(_hex(_valid("Vitalik_1")["txbytes"]))  # EIP-155, chain 1
    unprotected = decode_tx(_hex(_valid("RightVRSTest")["txbytes"]))
    dynamic = decode_tx(_hex(_valid("GasLimitPriceProductOverflowtMinusOne")["txbytes"]))
    frontier = make_signer(_config(), 5, 0)
    with pytest.raises(InvalidTxSignatureError, match="before EIP-155"):
        frontier.sender(vitalik)
    assert frontier.sender(unprotected) == unprotected.sender
    london = make_signer(_config(homestead_block=0, eip155_block=0, berlin_block=0, london_block=0), 5, 0)
    assert london.sender(vitalik) == vitalik.sender
    assert london.sender(dynamic) == dynamic.sender
    berlin = make_signer(_config(homestead_block=0, eip155_block=0, berlin_block=0), 5, 0)
    with pytest.raises(TxTypeNotSupportedError):
        berlin.sender(dynamic)
    other_chain = make_signer(
        _config(chain_id=5, homestead_block=0, eip155_block=0, berlin_block=0, london_block=0), 5, 0
    )
    with pytest.raises(InvalidChainIdError, match="have 1 want 5"):
        other_chain.sender(vitalik)
    with pytest.raises(InvalidChainIdError):
        other_chain.sender(dynamic)
    assert other_chain.sender(unprotected) == unprotected.sender  # no chain id to mismatch


def test_high_s_only_before_homestead() -> None:
    tx = LegacyTx(1, 2, 21000, bytes(20), 3, b"", 0, 0, 0).sign(KEY)
    flipped = tx.replace(s=SECP256K1_N - tx.s, v=55 - tx.v)  # the same signature, malleated
    with pytest.raises(InvalidTxSignatureError, match="EIP-2"):
        flipped.sender  # noqa: B018
    assert flipped.recover_sender(homestead=False) == KEY_ADDR
    assert make_signer(_config(), 0, 0).sender(flipped) == KEY_ADDR  # Frontier
    with pytest.raises(InvalidTxSignatureError):
        make_signer(_config(homestead_block=0), 0, 0).sender(flipped)


@pytest.mark.parametrize("r,s,v", [(0, 1, 27), (1, 0, 27), (SECP256K1_N, 1, 27), (1, 1, 29), (1, 1, 30)])
def test_bad_signature_values(r: int, s: int, v: int) -> None:
    tx = LegacyTx(0, 1, 21000, None, 0, b"", v, r, s)
    with pytest.raises(InvalidTxSignatureError, match=r"invalid transaction v, r, s values"):
        tx.sender  # noqa: B018


# --- all types: construct, sign, recover -------------------------------------------------

ACCESS = [AccessTuple(b"\x11" * 20, [bytes(32), b"\x01" * 32])]


def _all_types(chain_id: int = 7) -> list[Any]:
    auth = SetCodeAuthorization(chain_id, b"\x22" * 20, 3, 0, 0, 0).sign(KEY)
    return [
        LegacyTx(1, 10, 21000, None, 5, b"\x60\x00", 0, 0, 0).sign(KEY, chain_id=chain_id),
        LegacyTx(1, 10, 21000, b"\x33" * 20, 5, b"", 0, 0, 0).sign(KEY),
        AccessListTx(chain_id, 2, 10, 30000, None, 0, b"code", ACCESS, 0, 0, 0).sign(KEY),
        DynamicFeeTx(chain_id, 3, 1, 100, 30000, b"\x33" * 20, 1, b"", ACCESS, 0, 0, 0).sign(KEY),
        BlobTx(chain_id, 4, 1, 100, 30000, b"\x33" * 20, 0, b"", [], 7, [b"\x01" + bytes(31)], 0, 0, 0).sign(
            KEY
        ),
        SetCodeTx(chain_id, 5, 1, 100, 60000, b"\x33" * 20, 0, b"", [], [auth], 0, 0, 0).sign(KEY),
    ]


def test_every_type_roundtrips_and_recovers() -> None:
    for tx in _all_types():
        again = decode_tx(tx.canonical)
        assert again == tx and again.hash == tx.hash
        assert decode_tx_item(tx.item()) == tx
        assert again.sender == KEY_ADDR
        if tx.type:
            assert tx.canonical[0] == tx.type and tx.item()[0] in range(0x80, 0xC0)
        tx.validate()
    auth = _all_types()[-1].auth_list[0]
    assert auth.authority == KEY_ADDR
    assert (
        make_signer(
            _config(
                chain_id=7,
                homestead_block=0,
                eip155_block=0,
                berlin_block=0,
                london_block=0,
                cancun_time=0,
                prague_time=0,
            ),
            1,
            1,
        ).sender(_all_types()[-1])
        == KEY_ADDR
    )


def test_replace_drops_cached_hash() -> None:
    tx = _all_types()[3]
    assert tx.replace(nonce=99).hash != tx.hash


def test_decode_errors_are_ethnode_errors() -> None:
    for data in [b"", b"\x05\xc0", b"\x02\xc0", b"\x81\xff", b"\x00\xc0", b"\x02" + bytes(5), b"\xc0"]:
        with pytest.raises(EthnodeError):
            decode_tx(data)
    with pytest.raises(TransactionError, match="not supported"):
        decode_tx(b"\x05\xc0")
    legacy = _all_types()[0]
    with pytest.raises(TransactionError, match="not supported"):  # a legacy list wrapped in a string
        decode_tx_item(rlp.encode(legacy.canonical))
    for item in (b"\x80", b"\x02", b"\x81\x02"):
        with pytest.raises(TransactionError):
            decode_tx_item(item)


def test_validate_rules() -> None:
    base = _all_types()
    with pytest.raises(TransactionError, match="priority fee"):
        base[3].replace(gas_tip_cap=101).validate()
    with pytest.raises(TransactionError, match="blobless"):
        base[4].replace(blob_hashes=[]).validate()
    with pytest.raises(TransactionError, match="hash version"):
        base[4].replace(blob_hashes=[b"\x02" + bytes(31)]).validate()
    with pytest.raises(TransactionError, match="empty auth list"):
        base[5].replace(auth_list=[]).validate()


# --- blob network form --------------------------------------------------------------


def _sidecar(version: int) -> BlobTxSidecar:
    commitment = b"\xc0" + bytes(47)
    proofs = (b"\xc0" + bytes(47),) * (1 if version == 0 else 128)
    return BlobTxSidecar((bytes(131072),), (commitment,), proofs, version)


@pytest.mark.parametrize("version", [0, 1])
def test_blob_network_form(version: int) -> None:
    sidecar = _sidecar(version)
    vhash = kzg_to_versioned_hash(sidecar.commitments[0])
    tx = BlobTx(7, 0, 1, 100, 30000, b"\x33" * 20, 0, b"", [], 7, [vhash], 0, 0, 0).sign(KEY)
    pooled = BlobTxWithSidecar(tx, sidecar)
    wire = pooled.network_encoding()
    got = decode_tx(wire, allow_sidecar=True)
    assert isinstance(got, BlobTxWithSidecar)
    assert got == pooled and got.hash == tx.hash and got.tx.sender == KEY_ADDR
    assert got.network_encoding() == wire
    got.sidecar.validate(tx.blob_hashes)
    with pytest.raises(TransactionError, match="sidecar"):
        decode_tx(wire)
    with pytest.raises(TransactionError, match="does not match"):
        sidecar.validate([b"\x01" + bytes(31)])
    with pytest.raises(TransactionError, match="proofs"):
        replace(sidecar, proofs=()).validate(tx.blob_hashes)


# --- the ethtest chain ----------------------------------------------------------------------


def _ethtest() -> tuple[list[Any], dict[str, Any]]:
    blocks = read_blocks(shared_path("chains", "ethtest", "chain.rlp").read_bytes())
    info = json.loads(shared_path("chains", "ethtest", "txinfo.json").read_text())
    return blocks, info


def test_ethtest_tx_hashes_and_senders() -> None:
    blocks, info = _ethtest()
    checked = 0
    types = set()
    for key, entries in info.items():
        if not isinstance(entries, list):
            continue
        for e in entries:
            block = blocks[int(e["block"], 16) - 1]
            tx = block.transactions[e["indexInBlock"]]
            assert tx.hash == _hex(e["txhash"]), key
            assert tx.sender == _hex(e["sender"]), key
            types.add(tx.type)
            checked += 1
    assert checked == 378 and types == {0, 1, 2, 3}


def test_ethtest_set_code_authorization() -> None:
    blocks, info = _ethtest()
    want = info["tx-eip7702"]
    tx = next(t for b in blocks for t in b.transactions if t.hash == _hex(want["authorizeTx"]))
    assert isinstance(tx, SetCodeTx)
    (auth,) = tx.auth_list
    assert auth.authority == _hex(want["account"])
    assert auth.address == _hex(want["proxyAddr"])


# --- differential: compiled and pure codecs agree on random txs -----------------------

_u64 = st.integers(0, 2**64 - 1)
_u256 = st.integers(0, 2**256 - 1)
_addr = st.binary(min_size=20, max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    nonce=_u64,
    price=_u256,
    gas=_u64,
    to=st.one_of(st.none(), _addr),
    value=_u256,
    data=st.binary(max_size=80),
    chain=st.integers(1, 2**40),
    keys=st.lists(st.binary(min_size=32, max_size=32), max_size=3),
)
def test_compiled_and_pure_agree(
    nonce: int, price: int, gas: int, to: bytes | None, value: int, data: bytes, chain: int, keys: list[bytes]
) -> None:
    compiled, pure = both_rlp_impls()
    txs = [
        LegacyTx(nonce, price, gas, to, value, data, 37, 1, 2),
        DynamicFeeTx(
            chain, nonce, price, price, gas, to, value, data, [AccessTuple(b"\x01" * 20, keys)], 1, 3, 4
        ),
    ]
    for tx in txs:
        sedes = type(tx)._sedes
        wire_c = sedes.node(compiled).encode(tx)
        assert wire_c == sedes.node(pure).encode(tx)
        assert sedes.node(compiled).decode(wire_c) == sedes.node(pure).decode(wire_c) == tx
