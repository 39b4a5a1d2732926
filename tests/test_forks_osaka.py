"""Osaka, BPO and Amsterdam as geth v1.17.8 has them: config, genesis header, header and body rules,
and the chain geth's v1.17.8 eth-test suite ships (Amsterdam from block 36, 23-field headers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chain_support import open_chain
from geth_support import ethtest_testdata, suite_head_hash
from gethtools import GETH_VERSION

from ethnode.core.block_validator import validate_body
from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.chainfile import read_blocks
from ethnode.core.eip4844 import latest_blob_config
from ethnode.core.errors import BlockValidationError, InvalidBlockError
from ethnode.core.genesis import EMPTY_BLOCK_ACCESS_LIST_HASH, Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.types import EMPTY_UNCLE_HASH, Block

AMSTERDAM_GENESIS: dict[str, Any] = {
    "config": {
        "chainId": 4242, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0,
        "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0, "istanbulBlock": 0, "berlinBlock": 0,
        "londonBlock": 0, "mergeNetsplitBlock": 0, "terminalTotalDifficulty": 0, "shanghaiTime": 0,
        "cancunTime": 0, "pragueTime": 0, "osakaTime": 0, "amsterdamTime": 0,
        "blobSchedule": {"cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477},
                         "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716}},
    },
    "difficulty": "0x0", "gasLimit": "0x1c9c380", "slotNumber": "0x7", "alloc": {},
}
# `geth init` of v1.17.8 on AMSTERDAM_GENESIS prints hash=28bca4..93be05; without slotNumber, aa4689..844c1a.
AMSTERDAM_GENESIS_HASH = "28bca40815010dc5534fc3d22fa2b15b6e5725e4ad6ac4a4cade532b3e93be05"
AMSTERDAM_GENESIS_HASH_SLOT0 = "aa4689c2db6eaf69ea272ce411b3e31cb492de18003629129d31caa7a2844c1a"
SUITE_GENESIS_HASH = "1518c33dab6ed4dbb2d0c48239ac2f00acc0e28dc43660bb745a0f127552024c"  # v1.17.8 testdata
AMSTERDAM_BLOCK = 36  # the testdata's first block at amsterdamTime 360 (one block per 10 s)


def test_amsterdam_genesis_header_matches_geth() -> None:
    genesis = Genesis.from_json(AMSTERDAM_GENESIS)
    header = genesis.header
    assert header.block_access_list_hash == EMPTY_BLOCK_ACCESS_LIST_HASH == EMPTY_UNCLE_HASH
    assert header.slot_number == 7
    assert genesis.hash.hex() == AMSTERDAM_GENESIS_HASH
    without_slot = {k: v for k, v in AMSTERDAM_GENESIS.items() if k != "slotNumber"}
    slot0 = Genesis.from_json(without_slot)
    assert slot0.header.slot_number == 0 and slot0.hash.hex() == AMSTERDAM_GENESIS_HASH_SLOT0


def test_prague_genesis_keeps_its_shape() -> None:
    """Amsterdam fields appear only when Amsterdam is active at genesis time."""
    obj = json.loads(json.dumps(AMSTERDAM_GENESIS))
    obj["config"]["amsterdamTime"] = 1
    header = Genesis.from_json(obj).header
    assert header.requests_hash is not None
    assert header.block_access_list_hash is None and header.slot_number is None


def test_fork_predicates_need_london() -> None:
    cfg = ChainConfig(chain_id=1, london_block=0, osaka_time=10, amsterdam_time=20)
    assert not cfg.is_amsterdam(0, 19) and cfg.is_amsterdam(0, 20) and cfg.is_osaka(0, 19)
    assert not ChainConfig(chain_id=1, amsterdam_time=0).is_amsterdam(0, 5)  # geth: London is required too


def test_bpo_blob_schedule_follows_time() -> None:
    cfg = Genesis.from_json({**AMSTERDAM_GENESIS, "config": {
        **AMSTERDAM_GENESIS["config"], "osakaTime": 10, "bpo1Time": 20, "bpo2Time": 30, "amsterdamTime": 40,
        "blobSchedule": {**AMSTERDAM_GENESIS["config"]["blobSchedule"],
                         "bpo1": {"target": 10, "max": 15, "baseFeeUpdateFraction": 8346193},
                         "bpo2": {"target": 14, "max": 21, "baseFeeUpdateFraction": 11684671}}}}).config
    assert [latest_blob_config(cfg, t).max for t in (0, 10, 20, 30, 40)] == [9, 9, 15, 21, 21]  # type: ignore[union-attr]


# --- the eth-test chain of geth v1.17.8 (v1.17.10 ships the same bytes) ---


@pytest.fixture(scope="module")
def testdata() -> Path:
    return ethtest_testdata(GETH_VERSION)  # the Osaka/Amsterdam chain of the newest pinned suite


@pytest.fixture(scope="module")
def suite_blocks(testdata: Path) -> list[Block]:
    return read_blocks((testdata / "chain.rlp").read_bytes())


def _suite_chain(testdata: Path, blocks: list[Block], upto: int) -> BlockChain:
    obj = json.loads((testdata / "genesis.json").read_text())
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db)
    chain.insert_chain(blocks[:upto])
    return chain


@pytest.mark.interop  # geth's testdata comes with the Go module
def test_suite_chain_imports_to_the_head_the_suite_expects(testdata: Path, suite_blocks: list[Block]) -> None:
    chain = _suite_chain(testdata, suite_blocks, 0)
    assert chain.genesis_hash.hex() == SUITE_GENESIS_HASH
    stats = chain.insert_chain(suite_blocks)
    assert stats.written == len(suite_blocks) == 600
    assert chain.current_block.hash == suite_head_hash(testdata)
    for block in suite_blocks:
        amsterdam = chain.config.is_amsterdam(block.number, block.header.time)
        assert amsterdam == (block.number >= AMSTERDAM_BLOCK)
        assert (block.header.slot_number is not None) == amsterdam
        assert Block.decode(block.encode()).encode() == block.encode()


@pytest.mark.interop  # geth's testdata comes with the Go module
@pytest.mark.parametrize("number,changes,message", [
    (AMSTERDAM_BLOCK, {"slot_number": None}, "header is missing slotNumber"),
    (AMSTERDAM_BLOCK, {"slot_number": None, "block_access_list_hash": None},
     "header is missing block access list hash"),
    (AMSTERDAM_BLOCK - 1, {"block_access_list_hash": b"\x01" * 32}, "invalid block access list hash"),
    (AMSTERDAM_BLOCK - 1, {"block_access_list_hash": b"\x01" * 32, "slot_number": 3},
     "invalid block access list hash"),
])
def test_amsterdam_header_rules(testdata: Path, suite_blocks: list[Block], number: int, changes: dict[str, Any],
                                message: str) -> None:
    chain = _suite_chain(testdata, suite_blocks, number - 1)
    good = suite_blocks[number - 1]
    bad = Block(good.header.replace(**changes), good.tx_items, good.uncles, good.withdrawals)
    with pytest.raises(InvalidBlockError, match=message):
        chain.insert_chain([bad])
    chain.insert_chain([good])
    assert chain.current_block.hash == good.hash


@pytest.mark.interop  # geth's testdata comes with the Go module
def test_body_validation_checks_the_access_list_commitment(testdata: Path, suite_blocks: list[Block]) -> None:
    """geth ValidateBody: the hash exists exactly from Amsterdam (the list itself never travels in a body)."""
    config = Genesis.load(testdata / "genesis.json").config
    pre, post = suite_blocks[AMSTERDAM_BLOCK - 2], suite_blocks[AMSTERDAM_BLOCK - 1]
    validate_body(config, pre)
    validate_body(config, post)
    with pytest.raises(BlockValidationError, match="block had access list before Amsterdam"):
        validate_body(config, Block(pre.header.replace(block_access_list_hash=b"\x01" * 32), pre.tx_items,
                                    pre.uncles, pre.withdrawals))
    stripped = post.header.replace(block_access_list_hash=None, slot_number=None)
    with pytest.raises(BlockValidationError, match="block access list hash not set in header"):
        validate_body(config, Block(stripped, post.tx_items, post.uncles, post.withdrawals))
