"""Blocks, bodies, withdrawals, receipts and the per-fork header formulas.

Facts used: the ethtest chain (../shared/chains/ethtest); geth's TestFakeExponential,
TestCalcBlobFee, TestCalcExcessBlobGas and TestCalcBaseFee tables (values only); mainnet
blocks 1 and 2 difficulties (17171480576, 17163096064) from the public chain.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import replace
from typing import Any

import pytest
from shared_support import shared_path

from ethnode import rlp
from ethnode.consensus.ethash import calc_difficulty
from ethnode.core.chainconfig import MAINNET_CONFIG, BlobConfig, ChainConfig
from ethnode.core.chainfile import BlockReader, ChainFileError, read_blocks
from ethnode.core.eip1559 import HeaderRuleError, calc_base_fee, verify_eip1559_header, verify_gas_limit
from ethnode.core.eip4844 import (
    GAS_PER_BLOB,
    calc_blob_fee,
    calc_excess_blob_gas,
    fake_exponential,
    verify_eip4844_header,
)
from ethnode.core.genesis import load_genesis
from ethnode.core.types import (
    EMPTY_UNCLE_HASH,
    Block,
    Body,
    Header,
    LegacyTx,
    Log,
    Receipt,
    ReceiptError,
    Withdrawal,
    block_rlp_from_parts,
    create_bloom,
    logs_bloom,
    receipts_root,
    withdrawals_root,
)
from ethnode.core.types.receipt import (
    bloom_contains,
    decode_receipts_eth68,
    decode_receipts_eth69,
    encode_receipts_eth68,
    encode_receipts_eth69,
)
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.rlp.framing import wrap_list as rlp_list
from ethnode.trie import EMPTY_ROOT

HEAD_HASH = bytes.fromhex("44e3809c9a3cda717f00aea3a9da336d149612c8d5657fbc0028176ef8d94d2a")


def _chain_bytes() -> bytes:
    return shared_path("chains", "ethtest", "chain.rlp").read_bytes()


def _blocks() -> list[Block]:
    return read_blocks(_chain_bytes())


def _header(**kw: Any) -> Header:
    base = dict(
        parent_hash=bytes(32),
        uncle_hash=EMPTY_UNCLE_HASH,
        coinbase=bytes(20),
        state_root=EMPTY_ROOT,
        tx_root=EMPTY_ROOT,
        receipt_root=EMPTY_ROOT,
        bloom=bytes(256),
        difficulty=0,
        number=1,
        gas_limit=30_000_000,
        gas_used=0,
        time=1,
        extra=b"",
        mix_digest=bytes(32),
        nonce=bytes(8),
    )
    base.update(kw)
    return Header(**base)


# --- blocks and bodies -------------------------------------------------------------------


def test_ethtest_blocks_roundtrip_and_commit_to_their_bodies() -> None:
    data = _chain_bytes()
    blocks = read_blocks(data)
    assert len(blocks) == 600
    assert b"".join(b.encode() for b in blocks) == data
    genesis = load_genesis(shared_path("chains", "ethtest", "genesis.json"))
    parent = genesis.header
    for block in blocks:
        h = block.header
        assert h.parent_hash == parent.hash and h.number == parent.number + 1
        assert block.tx_root() == h.tx_root
        assert block.uncle_hash() == h.uncle_hash == EMPTY_UNCLE_HASH
        assert block.withdrawals_root() == h.withdrawals_root
        assert block_rlp_from_parts(h.encode(), block.body().encode()) == block.encode()
        parent = h
    assert blocks[-1].hash == HEAD_HASH
    assert sum(len(b.withdrawals) for b in blocks) == 54


def test_block_new_and_body() -> None:
    key = PrivateKey(bytes.fromhex("46" * 32))
    txs = [LegacyTx(i, 1, 21000, bytes(20), 0, b"", 0, 0, 0).sign(key, chain_id=1) for i in range(3)]
    ws = [Withdrawal(i, 5, b"\x01" * 20, 100) for i in range(2)]
    block = Block.new(_header(), txs, [], ws)
    assert block.transactions == tuple(txs)
    again = Block.decode(block.encode())
    assert again == block and again.transactions == tuple(txs)
    assert again.tx_root() == block.tx_root() != EMPTY_ROOT
    assert withdrawals_root(ws) == block.withdrawals_root()
    body = Body.decode(block.body().encode())
    assert Block.from_body(block.header, body) == block
    # No withdrawals (pre-Shanghai) is distinct from an empty list.
    assert Body([], [], None).encode() == bytes.fromhex("c2c0c0")
    assert Body([], [], []).encode() == bytes.fromhex("c3c0c0c0")
    assert Block.new(_header()).withdrawals_root() is None


def test_uncle_hash_of_uncles() -> None:
    uncle = _header(number=5)
    block = Block.new(_header(), uncles=[uncle])
    assert block.uncle_hash() == keccak256(rlp_list(uncle.encode()))
    assert Block.decode(block.encode()).uncles == [uncle]


# --- receipts -------------------------------------------------------------------------


def test_receipt_roots_and_blooms_of_ethtest_blocks() -> None:
    """One-tx blocks of txinfo's "tx-emit-*" runs: each tx emits LOG2(topic0, topic1) whose
    data is the emitter's running counter (0 for its first call, found by matching the root)."""
    blocks = _blocks()
    info = json.loads(shared_path("chains", "ethtest", "txinfo.json").read_text())
    firsts = [
        (info[k][0], counter)
        for k, counter in (
            ("tx-emit-eip1559", 0),
            ("tx-emit-eip2930", 1),
            ("tx-emit-eip4844", 2),
            ("tx-emit-legacy", 3),
        )
    ]
    for entry, counter in firsts:
        block = blocks[int(entry["block"], 16) - 1]
        h = block.header
        tx = block.transactions[0]
        topics = [bytes.fromhex(entry[t][2:]) for t in ("logtopic0", "logtopic1")]
        receipt = Receipt(tx.type, 1, h.gas_used, [Log(tx.to, topics, counter.to_bytes(32, "big"))])
        assert receipt.bloom == h.bloom == create_bloom([receipt])
        assert receipts_root([receipt]) == h.receipt_root
        assert bloom_contains(h.bloom, tx.to) and not bloom_contains(h.bloom, b"\x42" * 20)


def _receipts() -> list[Receipt]:
    log = Log(b"\x01" * 20, [b"\x02" * 32], b"data")
    return [
        Receipt(0, 1, 21000, [log]),
        Receipt(2, 0, 50000, []),
        Receipt(3, 1, 90000, [log, log]),
        Receipt(0, 0, 95000, post_state=b"\x07" * 32),
    ]


def test_receipt_encodings_roundtrip() -> None:
    receipts = _receipts()
    for r in receipts:
        assert Receipt.decode_consensus(r.consensus_encoding()) == r
        assert Receipt.decode_eth68_item(r.eth68_item()) == r
        assert Receipt.decode_eth69_item(r.eth69_item()) == r
        assert Receipt.decode_consensus(r.consensus_encoding()).bloom == r.bloom == logs_bloom(r.logs)
    assert receipts[1].consensus_encoding()[0] == 2 and receipts[0].consensus_encoding()[0] >= 0xC0
    assert decode_receipts_eth69(encode_receipts_eth69(receipts)) == receipts
    assert decode_receipts_eth68(encode_receipts_eth68(receipts)) == receipts
    # eth/69 drops the bloom: 256 bytes less per receipt.
    assert len(receipts[0].eth68_item()) - len(receipts[0].eth69_item()) > 250
    with pytest.raises(ReceiptError, match="status"):
        Receipt.decode_eth69_item(rlp.encode([0, b"\x02", 1, []]))
    with pytest.raises(ReceiptError):
        Receipt.decode_consensus(b"\x81\x00")
    with pytest.raises(ReceiptError):
        decode_receipts_eth69(b"\xc1")


# --- EIP-1559 ---------------------------------------------------------------------------

LONDON = ChainConfig(chain_id=1, london_block=0)


@pytest.mark.parametrize(
    "used,want", [(10_000_000, 1_000_000_000), (9_000_000, 987_500_000), (11_000_000, 1_012_500_000)]
)
def test_calc_base_fee(used: int, want: int) -> None:
    parent = _header(number=5, gas_limit=20_000_000, gas_used=used, base_fee=1_000_000_000)
    assert calc_base_fee(LONDON, parent) == want
    child = _header(number=6, gas_limit=20_000_000, base_fee=want)
    verify_eip1559_header(LONDON, parent, child)
    with pytest.raises(HeaderRuleError, match="invalid baseFee"):
        verify_eip1559_header(LONDON, parent, child.replace(base_fee=want + 1))


def test_gas_limit_bounds_and_fork_block() -> None:
    verify_gas_limit(1024 * 1000, 1024 * 1000 + 999)
    with pytest.raises(HeaderRuleError, match="invalid gas limit"):
        verify_gas_limit(1024 * 1000, 1024 * 1000 + 1000)
    with pytest.raises(HeaderRuleError, match="below 5000"):
        verify_gas_limit(5000, 4999)
    # At the London block the parent's limit counts double (elasticity) and the fee starts at 1 gwei.
    cfg = ChainConfig(chain_id=1, london_block=10)
    parent = _header(number=9, gas_limit=15_000_000)
    verify_eip1559_header(cfg, parent, _header(number=10, gas_limit=30_000_000, base_fee=1_000_000_000))


# --- EIP-4844 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factor,num,den,want",
    [
        (1, 0, 1, 1),
        (38493, 0, 1000, 38493),
        (0, 1234, 2345, 0),
        (1, 2, 1, 6),
        (1, 4, 2, 6),
        (1, 3, 1, 16),
        (1, 6, 2, 18),
        (1, 4, 1, 49),
        (1, 8, 2, 50),
        (10, 8, 2, 542),
        (11, 8, 2, 596),
        (1, 5, 1, 136),
        (1, 5, 2, 11),
        (2, 5, 2, 23),
        (1, 50000000, 2225652, 5709098764),
    ],
)
def test_fake_exponential(factor: int, num: int, den: int, want: int) -> None:
    assert fake_exponential(factor, num, den) == want


@pytest.mark.parametrize("excess,fee", [(0, 1), (2314057, 1), (2314058, 2), (10 * 1024 * 1024, 23)])
def test_blob_fee(excess: int, fee: int) -> None:
    cfg = ChainConfig(
        chain_id=1, london_block=0, cancun_time=0, blob_schedule={"cancun": BlobConfig(3, 6, 3338477)}
    )
    assert (
        calc_blob_fee(
            cfg, _header(excess_blob_gas=excess, blob_gas_used=0, base_fee=1, withdrawals_root=EMPTY_ROOT)
        )
        == fee
    )


def test_excess_blob_gas() -> None:
    cfg = replace(MAINNET_CONFIG)
    t = cfg.cancun_time
    target = 3 * GAS_PER_BLOB

    def excess(parent_excess: int, blobs: int) -> int:
        parent = _header(
            number=20_000_000,
            time=t,
            base_fee=7,
            withdrawals_root=EMPTY_ROOT,
            excess_blob_gas=parent_excess,
            blob_gas_used=blobs * GAS_PER_BLOB,
        )
        return calc_excess_blob_gas(cfg, parent, t)

    assert excess(0, 0) == excess(0, 3) == 0
    assert excess(0, 4) == GAS_PER_BLOB and excess(1, 5) == 2 * GAS_PER_BLOB + 1
    assert excess(target, 2) == target - GAS_PER_BLOB
    assert excess(GAS_PER_BLOB - 1, 2) == 0
    # The first Cancun block's parent has no blob fields: its excess counts as zero.
    assert calc_excess_blob_gas(cfg, _header(number=1, base_fee=7), t) == 0


def test_osaka_reserve_price_keeps_excess_growing() -> None:
    """EIP-7918: with blobs priced below BLOB_BASE_COST * base fee, excess grows by a scaled amount."""
    sched = {"osaka": BlobConfig(6, 9, 5007716)}
    cfg = ChainConfig(chain_id=1, london_block=0, cancun_time=0, osaka_time=0, blob_schedule=sched)
    parent = _header(
        base_fee=10**12, withdrawals_root=EMPTY_ROOT, excess_blob_gas=0, blob_gas_used=9 * GAS_PER_BLOB
    )
    assert calc_excess_blob_gas(cfg, parent, 2) == 9 * GAS_PER_BLOB * 3 // 9
    cheap = parent.replace(base_fee=1)
    assert calc_excess_blob_gas(cfg, cheap, 2) == 3 * GAS_PER_BLOB


def test_verify_eip4844_header_messages() -> None:
    cfg = ChainConfig(
        chain_id=1, london_block=0, cancun_time=0, blob_schedule={"cancun": BlobConfig(3, 6, 3338477)}
    )
    parent = _header(number=1, base_fee=7, withdrawals_root=EMPTY_ROOT, excess_blob_gas=0, blob_gas_used=0)
    ok = parent.replace(number=2, time=2)
    verify_eip4844_header(cfg, parent, ok)
    for bad, msg in [
        (ok.replace(blob_gas_used=7 * GAS_PER_BLOB), "exceeds maximum"),
        (ok.replace(blob_gas_used=1), "not a multiple"),
        (ok.replace(excess_blob_gas=1), "invalid excessBlobGas"),
    ]:
        with pytest.raises(HeaderRuleError, match=msg):
            verify_eip4844_header(cfg, parent, bad)


# --- ethash difficulty --------------------------------------------------------------------


def test_frontier_difficulty_of_mainnet_blocks_1_and_2() -> None:
    genesis = _header(number=0, difficulty=17179869184, time=0)
    assert calc_difficulty(MAINNET_CONFIG, 1438269988, genesis) == 17171480576
    block1 = _header(number=1, difficulty=17171480576, time=1438269988)
    assert calc_difficulty(MAINNET_CONFIG, 1438270017, block1) == 17163096064


def test_byzantium_difficulty_counts_uncles() -> None:
    cfg = ChainConfig(chain_id=1, homestead_block=0, byzantium_block=0)
    parent = _header(number=10, difficulty=2048 * 1000, time=100)
    assert calc_difficulty(cfg, 105, parent) == 2048 * 1000 + 1000
    assert calc_difficulty(cfg, 105, parent.replace(uncle_hash=b"\x01" * 32)) == 2048 * 1000 + 2000
    assert calc_difficulty(cfg, 100 + 9 * 200, parent) == 2048 * 1000 - 99 * 1000


# --- chain files ------------------------------------------------------------------------


def test_block_reader_streams_and_reports_offsets() -> None:
    data = _chain_bytes()
    reader = BlockReader(io.BytesIO(data))  # type: ignore[arg-type]
    it = iter(reader)
    first = next(it)
    assert reader.index == 1 and reader.offset == len(first.encode())
    assert sum(1 for _ in it) == 599 and reader.offset == len(data)


@pytest.mark.parametrize(
    "mutate,index,reason",
    [
        (lambda d, cut: d[:cut] + b"\x05" + d[cut:], 3, "not an RLP list"),
        (lambda d, cut: d[: cut + 10], 3, "truncated"),
        (lambda d, cut: d[:cut] + b"\xc3\x01\x02\x03", 3, "cannot decode block"),
    ],
)
def test_block_reader_errors_name_the_block(mutate: Any, index: int, reason: str) -> None:
    data = _chain_bytes()
    blocks = read_blocks(data)
    cut = sum(len(b.encode()) for b in blocks[:2])
    reader = BlockReader(io.BytesIO(mutate(data, cut)))  # type: ignore[arg-type]
    got = []
    with pytest.raises(ChainFileError, match=reason) as info:
        for b in reader:
            got.append(b)
    assert len(got) == 2 and info.value.index == index and info.value.offset == cut
    assert f"block {index} of the file (byte offset {cut})" in str(info.value)


def test_gzip_chain_file(tmp_path: Any) -> None:
    from ethnode.core.chainfile import open_chain_file

    data = _chain_bytes()
    path = tmp_path / "chain.rlp.gz"
    path.write_bytes(gzip.compress(data))
    with open_chain_file(path) as f:
        assert sum(1 for _ in BlockReader(f)) == 600
