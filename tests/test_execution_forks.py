"""Executing today's forks: geth v1.17.10's eth-test chain (Osaka at block 18, Amsterdam from 36)
on the revm engine, with every state root, receipts root and EIP-7928 access list verified;
and the pure engine (py-evm, up to Prague) stopping at the first Osaka block with one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chain_support import open_chain
from geth_support import ethtest_testdata, suite_head_hash
from gethtools import GETH_VERSION
from shared_support import subprocess_env

from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.chainfile import read_blocks
from ethnode.core.errors import InvalidBlockError
from ethnode.core.execution import UnsupportedForkError, compiled_engine_error
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.types import Block
from ethnode.crypto.keccak import keccak256

OSAKA_BLOCK = 18  # the testdata's first block at osakaTime 180
AMSTERDAM_BLOCK = 36

needs_revm = pytest.mark.skipif(compiled_engine_error() is not None,
                                reason=f"revm engine unavailable: {compiled_engine_error()}")


@pytest.fixture(scope="module")
def testdata() -> Path:
    return ethtest_testdata(GETH_VERSION)


@pytest.fixture(scope="module")
def suite_blocks(testdata: Path) -> list[Block]:
    return read_blocks((testdata / "chain.rlp").read_bytes())


def _chain(testdata: Path, evm: str) -> BlockChain:
    obj = json.loads((testdata / "genesis.json").read_text())
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db, execute=True, evm=evm)
    chain._state_root_warned = True
    return chain


@needs_revm
@pytest.mark.interop  # geth's testdata comes with the Go module
def test_revm_executes_the_whole_osaka_amsterdam_chain(testdata: Path, suite_blocks: list[Block]) -> None:
    chain = _chain(testdata, "revm")
    assert chain.executor is not None and chain.executor.name == "revm"
    stats = chain.insert_chain(suite_blocks)
    assert stats.written == len(suite_blocks) == 600
    assert chain.current_block.hash == suite_head_hash(testdata)
    assert chain.state_db.has_state(chain.current_block.state_root)
    stored = 0
    for block in suite_blocks:
        bal = rawdb.read_block_access_list(chain.db, block.hash, block.number)
        if block.number < AMSTERDAM_BLOCK:
            assert bal is None
        else:
            assert bal is not None and keccak256(bal) == block.header.block_access_list_hash
            stored += 1
        receipts = chain.get_receipts(block.hash, block.number)
        assert receipts is not None and len(receipts) == len(block.transactions)
    assert stored == 600 - AMSTERDAM_BLOCK + 1


@needs_revm
@pytest.mark.interop
def test_a_wrong_access_list_hash_rejects_the_block(testdata: Path, suite_blocks: list[Block]) -> None:
    """The header's hash is checked against the list execution built, not only for presence."""
    chain = _chain(testdata, "revm")
    chain.insert_chain(suite_blocks[: AMSTERDAM_BLOCK + 1])
    good = suite_blocks[AMSTERDAM_BLOCK + 1]
    bad = Block(good.header.replace(block_access_list_hash=b"\x02" * 32), good.tx_items, good.uncles,
                good.withdrawals)
    with pytest.raises(InvalidBlockError, match="access list hash mismatch, local: [0-9a-f]{64}, remote: 0202"):
        chain.insert_chain([bad])
    chain.insert_chain([good])
    assert chain.current_block.hash == good.hash


@pytest.mark.interop
def test_pure_engine_stops_at_the_first_osaka_block(testdata: Path, suite_blocks: list[Block]) -> None:
    pytest.importorskip("eth", reason="py-evm (the pure engine) is not installed")
    chain = _chain(testdata, "py-evm")
    with pytest.raises(UnsupportedForkError) as err:  # not the block's fault: it is not called invalid
        chain.insert_chain(suite_blocks[:OSAKA_BLOCK])
    assert chain.current_block.number == OSAKA_BLOCK - 1
    text = str(err.value)
    assert "\n" not in text and f"#{OSAKA_BLOCK}" in text and "osaka" in text and "Rust extension" in text


@pytest.mark.interop
@pytest.mark.subprocess
def test_pure_install_import_ends_with_one_fatal_line(testdata: Path, tmp_path: Path) -> None:
    """As a user without the extension sees it: `init` + `import` stop at block 18, one line, exit 1."""
    pytest.importorskip("eth", reason="py-evm (the pure engine) is not installed")
    env = subprocess_env(ETHNODE_NO_EXTENSIONS="1")
    datadir = str(tmp_path / "d")
    init = subprocess.run([sys.executable, "-m", "ethnode", "init", str(testdata / "genesis.json"),
                           "--datadir", datadir], env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    done = subprocess.run([sys.executable, "-m", "ethnode", "import", str(testdata / "chain.rlp"),
                           "--datadir", datadir], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    fatal = [line for line in done.stderr.splitlines() if line.startswith("Fatal:")]
    assert len(fatal) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"#{OSAKA_BLOCK}" in fatal[0] and "osaka" in fatal[0] and "Rust extension" in fatal[0], fatal[0]
