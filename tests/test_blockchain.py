"""BlockChain: validation per fork, total difficulty, fork choice before and after the merge,
and the events it posts when the head moves.

Post-merge rules run on the ethtest chain (PoS from genesis; Shanghai at 0, Cancun at
block 6, Prague at block 12), mutating one field at a time. Pre-merge rules run on small
synthetic ethash chains built here (the PoW seal is not verified, so none is mined).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from chain_support import EventLog, open_chain
from shared_support import shared_path

from ethnode.consensus import Beacon, Clique, EthashNoSeal, create_engine
from ethnode.consensus.ethash import calc_difficulty
from ethnode.core.blockchain import STATE_ROOT_WARNING, BlockChain, setup_genesis
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.chainfile import read_blocks
from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.errors import (
    ChainNotInitializedError,
    GenesisMismatchError,
    InvalidBlockError,
    UnknownBlockError,
)
from ethnode.core.events import ChainEvent, ChainHeadEvent
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB, schema
from ethnode.core.types import EMPTY_UNCLE_HASH, Block, Header, LegacyTx, calc_uncle_hash, derive_tx_root
from ethnode.crypto.keys import PrivateKey
from ethnode.trie import EMPTY_ROOT

HEAD_HASH = bytes.fromhex("44e3809c9a3cda717f00aea3a9da336d149612c8d5657fbc0028176ef8d94d2a")
KEY = PrivateKey(bytes.fromhex("46" * 32))


# --- the ethtest chain ----------------------------------------------------------------------


def _genesis_json() -> dict[str, Any]:
    import json

    return json.loads(shared_path("chains", "ethtest", "genesis.json").read_text())  # type: ignore[no-any-return]


_BLOCKS: list[Block] = []


def _ethtest_blocks() -> list[Block]:
    if not _BLOCKS:
        _BLOCKS.extend(read_blocks(shared_path("chains", "ethtest", "chain.rlp").read_bytes()))
    return _BLOCKS


def _ethtest_chain(upto: int = 0, **kwargs: Any) -> BlockChain:
    obj = _genesis_json()
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db, **kwargs)
    if upto:
        chain.insert_chain(_ethtest_blocks()[:upto])
    return chain


def test_import_ethtest_chain(caplog: pytest.LogCaptureFixture) -> None:
    chain = _ethtest_chain()
    assert chain.config.chain_id == 3503995874084926
    seen: list[int] = []
    with caplog.at_level(logging.WARNING, logger="ethnode"):
        stats = chain.insert_chain(_ethtest_blocks(), on_block=lambda b, known: seen.append(b.number))
        chain.insert_chain([])
    assert [r.message for r in caplog.records].count(STATE_ROOT_WARNING) == 1
    assert stats.written == 600 and stats.known == 0 and seen == list(range(1, 601))
    head = chain.current_block
    assert head.number == 600 and head.hash == HEAD_HASH == chain.current_header.hash
    assert chain.get_td(HEAD_HASH, 600) == 131072  # difficulty 0 after the merge: TD stays put
    assert chain.get_block_by_number(600).hash == HEAD_HASH
    tx = _ethtest_blocks()[6].transactions[0]
    assert chain.get_transaction(tx.hash) == (tx, _ethtest_blocks()[6].hash, 7, 0)
    again = chain.insert_chain(_ethtest_blocks()[:10])
    assert again.known == 10 and again.written == 0
    # Reopening reads the same heads back.
    reopened = open_chain(chain.db)
    assert reopened.current_block.hash == HEAD_HASH


def _mutated(block: Block, **changes: Any) -> Block:
    return Block(block.header.replace(**changes), block.tx_items, block.uncles, block.withdrawals)


def _header_cases() -> list[tuple[str, dict[str, Any], str]]:
    return [
        ("extra", {"extra": b"x" * 33}, "extra-data longer than 32 bytes (33)"),
        ("nonce", {"nonce": b"\x00" * 7 + b"\x01"}, "invalid nonce"),
        ("uncle hash", {"uncle_hash": b"\x01" * 32}, "invalid uncle hash"),
        ("timestamp", {"time": None}, "invalid timestamp"),
        ("difficulty", {"difficulty": 1}, "invalid difficulty: have 1, want 0"),
        ("gas used", {"gas_used": 2**62}, "invalid gasUsed"),
        ("gas limit", {"gas_limit": None}, "invalid gas limit"),
        ("base fee", {"base_fee": None}, "invalid baseFee"),
        ("excess blob gas", {"excess_blob_gas": 1}, "invalid excessBlobGas: have 1, want 0"),
        ("blob gas used", {"blob_gas_used": 1}, "not a multiple of blob gas per blob"),
        ("too many blobs", {"blob_gas_used": 10 * 2**17}, "exceeds maximum allowance"),
        ("requests hash", {"requests_hash": None}, "missing requestsHash"),
        ("beacon root", {"parent_beacon_root": None, "requests_hash": None}, "header is missing beaconRoot"),
        ("withdrawals root", {"withdrawals_root": b"\x02" * 32}, "withdrawals root hash mismatch"),
        ("tx root", {"tx_root": b"\x02" * 32}, "transaction root hash mismatch"),
        ("number", {"number": None}, "invalid block number"),
    ]


@pytest.fixture(scope="module")
def chain_at_19() -> BlockChain:
    return _ethtest_chain(19)


@pytest.mark.parametrize("name,changes,message", _header_cases(), ids=[c[0] for c in _header_cases()])
def test_post_merge_rules(chain_at_19: BlockChain, name: str, changes: dict[str, Any], message: str) -> None:
    good = _ethtest_blocks()[19]  # block 20, Prague
    h = good.header
    fill = {
        "time": h.time - 10,
        "gas_limit": h.gas_limit + h.gas_limit // 1024,
        "base_fee": h.base_fee + 1,
        "number": h.number + 1,
    }
    changes = {k: (fill[k] if v is None and k in fill else v) for k, v in changes.items()}
    bad = _mutated(good, **changes)
    head_before = chain_at_19.current_block.hash
    with pytest.raises(InvalidBlockError) as info:
        chain_at_19.insert_chain([bad])
    assert message in str(info.value)
    assert info.value.block_hash == bad.hash and info.value.number == bad.number
    assert str(info.value).startswith(f"invalid block #{bad.number} (0x{bad.hash.hex()}): ")
    assert chain_at_19.current_block.hash == head_before
    assert not chain_at_19.has_block(bad.hash, bad.number)


def test_post_merge_body_rules(chain_at_19: BlockChain) -> None:
    good = _ethtest_blocks()[19]
    uncle = _ethtest_blocks()[0].header
    # As in geth, the engine's no-uncles rule is checked before the uncle hash.
    with pytest.raises(InvalidBlockError, match="too many uncles"):
        chain_at_19.insert_chain([Block(good.header, good.tx_items, [uncle], good.withdrawals)])
    with_uncle = Block(
        good.header.replace(uncle_hash=calc_uncle_hash([uncle])), good.tx_items, [uncle], good.withdrawals
    )
    with pytest.raises(InvalidBlockError, match="invalid uncle hash"):
        chain_at_19.insert_chain([with_uncle])
    with pytest.raises(InvalidBlockError, match="missing withdrawals in block body"):
        chain_at_19.insert_chain([Block(good.header, good.tx_items, good.uncles, None)])


def _with_txs(block: Block, txs: Sequence[Any]) -> Block:
    header = block.header.replace(tx_root=derive_tx_root(tx.canonical for tx in txs))
    return Block.new(header, txs, [], block.withdrawals)


def test_post_merge_tx_rules(chain_at_19: BlockChain) -> None:
    good = _ethtest_blocks()[19]
    cfg = chain_at_19.config
    tx = LegacyTx(0, good.header.base_fee, 21000, b"\x01" * 20, 0, b"", 0, 0, 0).sign(
        KEY, chain_id=cfg.chain_id
    )
    cases = [
        (tx.replace(r=0), "invalid transaction 0 .*: invalid transaction v, r, s values"),
        (
            tx.replace(gas_price=good.header.base_fee - 1).sign(KEY, chain_id=cfg.chain_id),
            "less than block base fee",
        ),
        (LegacyTx(0, 10**10, 21000, None, 0, b"", 0, 0, 0).sign(KEY, chain_id=1), "invalid chain id"),
        (
            LegacyTx(0, 10**10, good.header.gas_limit + 1, None, 0, b"", 0, 0, 0).sign(
                KEY, chain_id=cfg.chain_id
            ),
            "gas limit reached",
        ),
    ]
    for bad_tx, message in cases:
        with pytest.raises(InvalidBlockError, match=message):
            chain_at_19.insert_chain([_with_txs(good, [bad_tx])])
    with pytest.raises(InvalidBlockError, match="transaction 0: cannot decode"):
        chain_at_19.insert_chain(
            [
                Block(
                    good.header.replace(tx_root=derive_tx_root([b"\x02\xc0"])),
                    [b"\x82\x02\xc0"],
                    [],
                    good.withdrawals,
                )
            ]
        )
    # A valid block still goes in after all those refusals.
    chain_at_19.insert_chain([good])
    assert chain_at_19.current_block.hash == good.hash


def test_forkchoice_after_the_merge() -> None:
    blocks = _ethtest_blocks()
    chain = _ethtest_chain(20)
    side = _mutated(blocks[19], coinbase=b"\x42" * 20)  # a sibling of block 20
    stats = chain.insert_chain([side], set_head=False)
    assert stats.written == 1 and chain.current_block.hash == blocks[19].hash
    assert chain.get_canonical_hash(20) == blocks[19].hash
    chain.set_canonical(side.hash)
    assert chain.current_block.hash == side.hash and chain.get_canonical_hash(20) == side.hash
    # Rewind to an ancestor (forkchoiceUpdated to an older head): canonical entries above go.
    tx_in_15 = blocks[14].transactions[0]
    chain.set_canonical(blocks[9].hash)
    assert chain.current_block.number == 10 and chain.current_header.number == 10
    assert chain.get_canonical_hash(11) is None and chain.get_transaction(tx_in_15.hash) is None
    # Re-inserting the stored blocks brings them back as head; then the rest extends it.
    stats = chain.insert_chain(blocks[10:60])
    assert stats.known == 10 and stats.written == 40
    assert chain.current_block.hash == blocks[59].hash and chain.get_canonical_hash(20) == blocks[19].hash
    assert chain.get_transaction(tx_in_15.hash)[1] == blocks[14].hash  # type: ignore[index]
    with pytest.raises(UnknownBlockError):
        chain.set_canonical(b"\x01" * 32)


def test_unknown_parent_and_genesis_checks() -> None:
    chain = _ethtest_chain(5)
    with pytest.raises(InvalidBlockError, match="unknown ancestor"):
        chain.insert_chain([_ethtest_blocks()[9]])
    obj = _genesis_json()
    obj["extraData"] = "0x"
    with pytest.raises(GenesisMismatchError, match="incompatible genesis"):
        setup_genesis(chain.db, Genesis.from_json(obj), obj)
    with pytest.raises(ChainNotInitializedError):
        open_chain(MemoryDB())
    fake_genesis = _ethtest_blocks()[0].header.replace(number=0)
    with pytest.raises(InvalidBlockError, match="genesis block mismatch"):
        chain.insert_chain([Block(fake_genesis, [], [], [])])


def test_headers_first_then_bodies() -> None:
    blocks = _ethtest_blocks()
    chain = _ethtest_chain()
    assert chain.insert_headers([b.header for b in blocks[:30]]).written == 30
    assert chain.current_header.number == 30 and chain.current_block.number == 0
    assert chain.get_canonical_hash(30) == blocks[29].hash
    chain.insert_chain(blocks[:30])
    assert chain.current_block.hash == blocks[29].hash == chain.current_header.hash
    tx = blocks[20].transactions[0]
    assert chain.get_transaction(tx.hash)[2] == 21  # type: ignore[index]
    with pytest.raises(InvalidBlockError, match="invalid timestamp"):
        chain.insert_headers([blocks[30].header.replace(time=blocks[29].header.time)])


def test_head_repair_when_head_body_is_missing() -> None:
    chain = _ethtest_chain(12)
    head = chain.current_block
    chain.db.delete(schema.block_body_key(head.number, head.hash))
    reopened = open_chain(chain.db)
    assert reopened.current_block.number == 11


def test_create_engine() -> None:
    engine = create_engine(ChainConfig(chain_id=1))
    assert isinstance(engine, Beacon) and not engine.verifies_seal and "not verified" in engine.name
    clique = create_engine(ChainConfig(chain_id=1, clique={"period": 5}))
    assert isinstance(clique, Clique) and clique.period == 5 and clique.verifies_seal


# --- synthetic pre-merge (ethash) chains ---------------------------------------------------

POW_GENESIS: dict[str, Any] = {
    "config": {
        "chainId": 1337,
        "homesteadBlock": 0,
        "eip150Block": 0,
        "eip155Block": 0,
        "eip158Block": 0,
        "byzantiumBlock": 0,
        "constantinopleBlock": 0,
        "petersburgBlock": 0,
        "istanbulBlock": 0,
        "berlinBlock": 0,
        "londonBlock": 0,
        "ethash": {},
    },
    "difficulty": "0x989680",  # 10,000,000: big enough that timing moves it visibly
    "gasLimit": "0x1c9c380",
    "alloc": {},
}


def _pow_chain(ttd: int | None = None, **kwargs: Any) -> BlockChain:
    obj = dict(POW_GENESIS, config=dict(POW_GENESIS["config"]))
    if ttd is not None:
        obj["config"]["terminalTotalDifficulty"] = ttd
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    return open_chain(db, **kwargs)


def _pow_block(
    config: ChainConfig,
    parent: Header,
    step: int,
    *,
    txs: Iterable[Any] = (),
    uncles: Sequence[Header] = (),
    extra: bytes = b"",
    difficulty: int | None = None,
) -> Block:
    txs = list(txs)
    time = parent.time + step
    header = Header(
        parent.hash,
        calc_uncle_hash(uncles),
        b"\x0c" * 20,
        EMPTY_ROOT,
        derive_tx_root(t.canonical for t in txs),
        EMPTY_ROOT,
        bytes(256),
        calc_difficulty(config, time, parent) if difficulty is None else difficulty,
        parent.number + 1,
        parent.gas_limit,
        0,
        time,
        extra,
        bytes(32),
        bytes(8),
        calc_base_fee(config, parent),
    )
    return Block.new(header, txs, uncles)


def _pow_run(
    config: ChainConfig,
    parent: Header,
    n: int,
    step: int,
    tag: bytes,
    txs_at: dict[int, list[Any]] | None = None,
) -> list[Block]:
    out = []
    for i in range(n):
        block = _pow_block(config, parent, step, txs=(txs_at or {}).get(i, ()), extra=tag)
        out.append(block)
        parent = block.header
    return out


def _tx(nonce: int) -> LegacyTx:
    return LegacyTx(nonce, 10**10, 21000, b"\x01" * 20, 0, b"", 0, 0, 0).sign(KEY, chain_id=1337)


def test_reorg_to_the_heavier_chain_before_the_merge() -> None:
    chain = _pow_chain()
    cfg, genesis = chain.config, chain.genesis
    shared, only_a, only_b = _tx(0), _tx(1), _tx(2)
    # A: slow blocks (difficulty falls); B: from block 1, fast blocks (difficulty rises).
    a = _pow_run(cfg, genesis, 5, 100, b"A", {2: [shared], 3: [only_a]})
    chain.insert_chain(a)
    assert chain.current_block.hash == a[-1].hash
    b = _pow_run(cfg, a[0].header, 4, 1, b"B", {1: [shared, only_b]})
    td_a = chain.get_td(a[-1].hash, 5)
    for i, block in enumerate(b):
        chain.insert_chain([block])
        td_b = chain.get_td(block.hash, block.number)
        assert (chain.current_block.hash == block.hash) == (td_b > td_a), i  # type: ignore[operator]
    assert chain.current_block.hash == b[-1].hash and chain.current_block.number == 5
    assert [chain.get_canonical_hash(n) for n in range(1, 6)] == [a[0].hash] + [x.hash for x in b]
    assert chain.get_transaction(only_a.hash) is None
    assert chain.get_transaction(shared.hash)[1] == b[1].hash  # type: ignore[index]
    assert chain.get_transaction(only_b.hash)[1] == b[1].hash  # type: ignore[index]
    # A lighter side chain is stored but does not move the head.
    c = _pow_run(cfg, genesis, 2, 100, b"C")
    chain.insert_chain(c)
    assert chain.has_block(c[-1].hash, 2) and chain.current_block.hash == b[-1].hash
    # Extending A until it is heavier again moves the head back.
    more_a = _pow_run(cfg, a[-1].header, 3, 1, b"A")
    chain.insert_chain(more_a)
    assert chain.current_block.hash == more_a[-1].hash
    assert chain.get_transaction(only_a.hash)[1] == a[3].hash  # type: ignore[index]
    assert chain.get_transaction(only_b.hash) is None


def test_ethash_header_rules() -> None:
    chain = _pow_chain()
    cfg, genesis = chain.config, chain.genesis
    good = _pow_block(cfg, genesis, 10)
    cases = [
        (_pow_block(cfg, genesis, 10, difficulty=good.header.difficulty + 1), "invalid difficulty"),
        (_pow_block(cfg, genesis, 0), "timestamp older than parent"),
        (_pow_block(cfg, genesis, 10, extra=b"e" * 33), "extra-data too long"),
        (_mutated(good, time=10**12), "block in the future"),
        (_mutated(good, withdrawals_root=EMPTY_ROOT), "invalid withdrawalsHash"),
    ]
    for bad, message in cases:
        with pytest.raises(InvalidBlockError, match=message):
            chain.insert_chain([bad])
    chain.insert_chain([good])


def test_ethash_uncle_rules() -> None:
    chain = _pow_chain()
    cfg, genesis = chain.config, chain.genesis
    main = _pow_run(cfg, genesis, 3, 13, b"M")
    chain.insert_chain(main)
    uncle = _pow_block(cfg, main[0].header, 14, extra=b"U").header  # sibling of block 2
    sibling = _pow_block(
        cfg, main[1].header, 14, extra=b"S"
    ).header  # sibling of the new block 4's parent? no: of 3
    parent = main[-1].header
    for uncles, message in [
        ([uncle, uncle], "duplicate uncle"),
        ([main[1].header], "uncle is ancestor"),
        ([uncle, sibling, uncle.replace(extra=b"V")], "too many uncles"),
    ]:
        with pytest.raises(InvalidBlockError, match=message):
            chain.insert_chain([_pow_block(cfg, parent, 13, uncles=uncles)])
    unhashed = _pow_block(cfg, parent, 13, uncles=[uncle])
    with pytest.raises(InvalidBlockError, match="uncle root hash mismatch"):
        chain.insert_chain([Block(unhashed.header.replace(uncle_hash=EMPTY_UNCLE_HASH), [], [uncle])])
    own_sibling = _pow_block(cfg, parent, 14, extra=b"X").header
    with pytest.raises(InvalidBlockError, match="parent is not ancestor"):
        chain.insert_chain([_pow_block(cfg, parent, 13, uncles=[own_sibling])])
    with_uncles = _pow_block(cfg, parent, 13, uncles=[uncle, sibling])
    chain.insert_chain([with_uncles])
    assert chain.current_block.hash == with_uncles.hash
    assert with_uncles.header.uncle_hash != EMPTY_UNCLE_HASH
    # An uncle already included by an ancestor may not be included again.
    with pytest.raises(InvalidBlockError, match="duplicate uncle"):
        chain.insert_chain([_pow_block(cfg, with_uncles.header, 13, uncles=[uncle])])


def test_the_merge_transition() -> None:
    """PoW until the terminal total difficulty, PoS rules right after it."""
    chain = _pow_chain(ttd=10_000_000 + 2 * 10_000_000)
    cfg = chain.config
    pow_blocks = _pow_run(cfg, chain.genesis, 2, 13, b"P")
    chain.insert_chain(pow_blocks)
    assert chain.get_td(pow_blocks[-1].hash, 2) >= cfg.terminal_total_difficulty  # type: ignore[operator]
    still_pow = _pow_block(cfg, pow_blocks[-1].header, 13)
    with pytest.raises(InvalidBlockError, match="invalid difficulty: have .*, want 0"):
        chain.insert_chain([still_pow])
    pos = _pow_block(cfg, pow_blocks[-1].header, 12, difficulty=0)
    chain.insert_chain([pos])
    assert chain.current_block.hash == pos.hash
    # Past the merge a sibling with the same TD becomes head when the caller says so.
    sibling = _pow_block(cfg, pow_blocks[-1].header, 13, difficulty=0)
    chain.insert_chain([sibling])
    assert chain.current_block.hash == sibling.hash
    assert isinstance(chain.engine, Beacon) and isinstance(chain.engine.ethone, EthashNoSeal)



# --- events --------------------------------------------------------------------------------


def _heads(log: EventLog) -> list[bytes]:
    return [e.header.hash for e in log.of(ChainHeadEvent)]


def _joined(log: EventLog) -> list[bytes]:
    return [e.header.hash for e in log.of(ChainEvent)]


def test_one_chain_head_event_per_import_batch_forkchoice_move_and_reorg() -> None:
    blocks = _ethtest_blocks()
    log = EventLog()
    chain = _ethtest_chain(events=log)
    # An import batch: every block joins the chain, the head is announced once, after them.
    chain.insert_chain(blocks[:10])
    assert _joined(log) == [b.hash for b in blocks[:10]] and _heads(log) == [blocks[9].hash]
    assert log.events[-1] == ChainHeadEvent(chain.current_block)
    log.clear()
    chain.insert_chain(blocks[:10])  # known blocks move nothing
    assert log.events == []
    # Forkchoice back (a rewind: nothing joins), to the same head (nothing), forward (the blocks rejoin).
    chain.set_canonical(blocks[4].hash)
    assert _heads(log) == [blocks[4].hash] and _joined(log) == []
    log.clear()
    chain.set_canonical(blocks[4].hash)
    assert log.events == []
    chain.set_canonical(blocks[9].hash)
    assert _heads(log) == [blocks[9].hash] and _joined(log) == [b.hash for b in blocks[5:10]]
    log.clear()
    # A post-merge reorg in one batch: a sibling branch from block 8 becomes the head.
    side8 = _mutated(blocks[7], extra=b"side")
    side9 = _mutated(blocks[8], parent_hash=side8.hash)
    chain.insert_chain([side8, side9])
    assert chain.current_block.hash == side9.hash and chain.get_canonical_hash(10) is None
    assert _joined(log) == [side8.hash, side9.hash] and _heads(log) == [side9.hash]
    log.clear()
    # A batch that fails midway keeps, and announces, the blocks before the bad one.
    chain.set_canonical(blocks[9].hash)
    log.clear()
    bad = _mutated(blocks[13], difficulty=1)
    with pytest.raises(InvalidBlockError):
        chain.insert_chain([*blocks[10:13], bad])
    assert _joined(log) == [b.hash for b in blocks[10:13]] and _heads(log) == [blocks[12].hash]


def test_headers_first_announces_blocks_as_their_bodies_arrive() -> None:
    blocks = _ethtest_blocks()
    log = EventLog()
    chain = _ethtest_chain(events=log)
    chain.insert_headers([b.header for b in blocks[:20]])
    assert log.events == []  # the head block did not move
    chain.insert_chain(blocks[:20])
    assert _joined(log) == [b.hash for b in blocks[:20]] and _heads(log) == [blocks[19].hash]


def test_a_heavier_branch_announces_its_blocks_and_one_head() -> None:
    log = EventLog()
    chain = _pow_chain(events=log)
    cfg, genesis = chain.config, chain.genesis
    a = _pow_run(cfg, genesis, 5, 100, b"A")  # slow blocks: low difficulty
    chain.insert_chain(a)
    log.clear()
    b = _pow_run(cfg, a[0].header, 4, 1, b"B")  # fast blocks from block 1: heavier by the end
    chain.insert_chain(b)
    assert chain.current_block.hash == b[-1].hash
    # The branch joins in order when it outweighs A (some of it at once), then block by block.
    assert _joined(log) == [x.hash for x in b] and _heads(log) == [b[-1].hash]
    log.clear()
    # A heavier header chain forking below the head block rewinds the head block to the fork point.
    c = _pow_run(cfg, genesis, 8, 1, b"C")
    chain.insert_headers([x.header for x in c])
    assert chain.current_header.hash == c[-1].hash and chain.current_block.hash == genesis.hash
    assert _heads(log) == [genesis.hash] and _joined(log) == []
