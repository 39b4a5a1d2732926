"""Block building and the miner: geth's tx ordering (best tip first, each sender in nonce order),
what a builder leaves out and why, the roots of a built block (it must insert as any import
does), and the miner's loop on a Clique chain (a block per tx with period 0, the
recently-signed wait, a clean stop).

Ordering is pure; the rest executes with py-evm on in-memory Clique chains.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from chain_support import open_chain

from ethnode.core.types.transaction import DynamicFeeTx, LegacyTx, Transaction, address_of
from ethnode.crypto.keys import PrivateKey
from ethnode.miner.builder import DEFAULT_GAS_CEIL, MinerConfig, calc_gas_limit
from ethnode.miner.ordering import TransactionsByPriceAndNonce, effective_tip

GWEI = 10**9
CHAIN_ID = 1337
KEYS = [PrivateKey(bytes([i + 1]) * 32) for i in range(4)]
ADDRS = [address_of(k.node_id) for k in KEYS]
SINK = bytes.fromhex("00000000000000000000000000000000000000aa")


def dyn(key: PrivateKey, nonce: int, tip: int, fee_cap: int = 100 * GWEI, gas: int = 21_000,
        value: int = 1) -> Transaction:
    return DynamicFeeTx(CHAIN_ID, nonce, tip, fee_cap, gas, SINK, value, b"", [], 0, 0, 0).sign(key)


def legacy(key: PrivateKey, nonce: int, gas_price: int) -> Transaction:
    return LegacyTx(nonce, gas_price, 21_000, SINK, 1, b"", 0, 0, 0).sign(key, CHAIN_ID)


def drain(order: TransactionsByPriceAndNonce) -> list[tuple[int, int]]:
    """(sender index, nonce) in the order handed out, taking every tx."""
    out = []
    while (best := order.peek()) is not None:
        tx, sender, _ = best
        out.append((ADDRS.index(sender), tx.nonce))
        order.shift()
    return out


# --- ordering ---------------------------------------------------------------------------------


def test_best_tip_first_but_each_sender_in_nonce_order() -> None:
    pending = {
        ADDRS[0]: [dyn(KEYS[0], 0, 1 * GWEI), dyn(KEYS[0], 1, 9 * GWEI)],  # the 9-gwei tx waits for nonce 0
        ADDRS[1]: [dyn(KEYS[1], 5, 3 * GWEI), dyn(KEYS[1], 6, 2 * GWEI)],
        ADDRS[2]: [legacy(KEYS[2], 0, 12 * GWEI)],  # legacy: tip = gas price - base fee
    }
    order = TransactionsByPriceAndNonce(pending, base_fee=10 * GWEI)
    assert len(order) == 3
    assert drain(order) == [(1, 5), (2, 0), (1, 6), (0, 0), (0, 1)]


def test_effective_tip_is_capped_by_fee_cap_minus_base_fee() -> None:
    assert effective_tip(dyn(KEYS[0], 0, 5 * GWEI, fee_cap=12 * GWEI), 10 * GWEI) == 2 * GWEI
    assert effective_tip(dyn(KEYS[0], 0, 1 * GWEI, fee_cap=12 * GWEI), 10 * GWEI) == 1 * GWEI
    assert effective_tip(dyn(KEYS[0], 0, 1 * GWEI, fee_cap=9 * GWEI), 10 * GWEI) is None
    assert effective_tip(legacy(KEYS[0], 0, 7), None) == 7  # before London the whole price is the tip


def test_fee_cap_below_base_fee_ends_the_sender() -> None:
    pending = {
        ADDRS[0]: [dyn(KEYS[0], 0, GWEI, fee_cap=5 * GWEI)],  # cannot pay the base fee: never offered
        ADDRS[1]: [dyn(KEYS[1], 0, GWEI), dyn(KEYS[1], 1, GWEI, fee_cap=5 * GWEI), dyn(KEYS[1], 2, GWEI)],
    }
    order = TransactionsByPriceAndNonce(pending, base_fee=10 * GWEI)
    assert drain(order) == [(1, 0)]  # nonce 1 cannot be included, so neither can nonce 2


def test_pop_drops_the_rest_of_the_sender() -> None:
    pending = {
        ADDRS[0]: [dyn(KEYS[0], 0, 5 * GWEI), dyn(KEYS[0], 1, 5 * GWEI)],
        ADDRS[1]: [dyn(KEYS[1], 0, 1 * GWEI)],
    }
    order = TransactionsByPriceAndNonce(pending, base_fee=GWEI)
    assert order.peek()[1] == ADDRS[0]  # type: ignore[index]
    order.pop()
    assert drain(order) == [(1, 0)]


def test_equal_tips_go_to_the_tx_seen_first() -> None:
    txs = {ADDRS[i]: [dyn(KEYS[i], 0, 2 * GWEI)] for i in range(3)}
    assert drain(TransactionsByPriceAndNonce(txs, GWEI)) == [(0, 0), (1, 0), (2, 0)]  # listing order
    seen = {txs[ADDRS[0]][0].hash: 3.0, txs[ADDRS[1]][0].hash: 1.0, txs[ADDRS[2]][0].hash: 2.0}
    order = TransactionsByPriceAndNonce(txs, GWEI, arrival=seen.__getitem__)
    assert drain(order) == [(1, 0), (2, 0), (0, 0)]


def test_calc_gas_limit_steps_like_geth() -> None:
    assert calc_gas_limit(11_500_000, DEFAULT_GAS_CEIL) == 11_500_000 + 11_500_000 // 1024 - 1
    assert calc_gas_limit(11_500_000, 11_500_010) == 11_500_010
    assert calc_gas_limit(11_500_000, 11_500_000) == 11_500_000
    assert calc_gas_limit(11_500_000, 8_000_000) == 11_500_000 - 11_500_000 // 1024 + 1
    assert calc_gas_limit(5_000, 0) == 5_000  # never below geth's MinGasLimit


def test_miner_config_refuses_long_extra_data() -> None:
    with pytest.raises(ValueError, match="32"):
        MinerConfig(extra=b"x" * 33)


# --- building on a Clique chain ---------------------------------------------------------------

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")

from ethnode.consensus.clique import Clique, SignedRecentlyWaitError  # noqa: E402
from ethnode.core.blockchain import BlockChain, setup_genesis  # noqa: E402
from ethnode.core.errors import InvalidBlockError  # noqa: E402
from ethnode.core.events import ChainHeadEvent, NewMinedBlockEvent  # noqa: E402
from ethnode.core.genesis import Genesis  # noqa: E402
from ethnode.core.rawdb import MemoryDB  # noqa: E402
from ethnode.core.txpool import TxPool  # noqa: E402
from ethnode.event import EventBus  # noqa: E402
from ethnode.miner.builder import build_block  # noqa: E402
from ethnode.miner.dev import DEV_FAUCET_BALANCE, dev_genesis, prepare_dev_chain  # noqa: E402
from ethnode.miner.miner import Miner  # noqa: E402

FUNDS = 10**21


def clique_chain(signers: Sequence[int], funded: Sequence[int] = (0, 1, 2), gas_limit: int = 11_500_000,
                 period: int = 0, events: EventBus | None = None) -> BlockChain:
    """A Clique chain whose signers are KEYS[i] for i in ``signers``; ``funded`` accounts hold FUNDS;
    head moves go to ``events``."""
    obj = dev_genesis(ADDRS[signers[0]], period, gas_limit)
    extra = bytes(32) + b"".join(sorted(ADDRS[i] for i in signers)) + bytes(65)
    obj["extraData"] = "0x" + extra.hex()
    for i in funded:
        obj["alloc"]["0x" + ADDRS[i].hex()] = {"balance": hex(FUNDS)}
    obj = json.loads(json.dumps(obj))
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db, execute=True, events=events)
    chain._state_root_warned = True
    return chain


def authorized(chain: BlockChain, who: int) -> Clique:
    engine = chain.engine
    assert isinstance(engine, Clique)
    engine.authorize(ADDRS[who], KEYS[who].sign)
    return engine


def pool_for(chain: BlockChain, bus: EventBus | None = None) -> TxPool:
    return TxPool(chain, bus=bus, state=chain.head_state_reader(), kzg=None)


class FakePool:
    """``pending`` as given: txs the real pool would refuse (unfunded, gapped, stale)."""

    def __init__(self, pending: dict[bytes, list[Any]]) -> None:
        self._pending = pending
        self.asked: tuple[int | None, int | None] | None = None

    def pending(self, min_tip: int | None = None, base_fee: int | None = None) -> dict[bytes, list[Any]]:
        self.asked = (min_tip, base_fee)
        return {s: list(txs) for s, txs in self._pending.items()}


def seal_and_insert(chain: BlockChain, engine: Clique, block: Any) -> Any:
    sealed = asyncio.run(engine.seal(chain, block))
    assert sealed is not None
    chain.insert_chain([sealed])  # executes it again and checks every root against the header
    assert chain.current_block.hash == sealed.hash
    return sealed


def test_built_block_has_every_root_and_inserts() -> None:
    chain = clique_chain([0])
    engine = authorized(chain, 0)
    pool = pool_for(chain)
    txs = [dyn(KEYS[1], 0, 2 * GWEI), dyn(KEYS[1], 1, 2 * GWEI), dyn(KEYS[2], 0, 3 * GWEI)]
    assert pool.add_locals(txs) == [None, None, None]
    built = build_block(chain, pool, MinerConfig(etherbase=ADDRS[0]))
    header = built.header
    assert [tx.hash for tx in built.block.transactions] == [txs[2].hash, txs[0].hash, txs[1].hash]
    assert header.number == 1 and header.gas_used == 3 * 21_000 and header.difficulty == 2  # in turn
    assert header.base_fee == 7 * GWEI // 8 and header.gas_limit == calc_gas_limit(11_500_000, DEFAULT_GAS_CEIL)
    assert built.fees == 21_000 * (3 + 2 + 2) * GWEI and built.skipped == []
    sealed = seal_and_insert(chain, engine, built.block)
    state = chain.state()
    assert state.nonce(ADDRS[1]) == 2 and state.nonce(ADDRS[2]) == 1
    assert state.balance(ADDRS[0]) == FUNDS + built.fees  # the signer collects the tips
    receipts = chain.get_receipts(sealed.hash, 1)
    assert receipts is not None and [r.cumulative_gas_used for r in receipts] == [21_000, 42_000, 63_000]


class ExecutionCounter:
    """Counts the chain's block executions (the real executor still does the work)."""

    def __init__(self, chain: BlockChain) -> None:
        executor = chain.executor
        assert executor is not None
        self.calls = 0
        real = executor.execute_block

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        executor.execute_block = counted  # type: ignore[method-assign]


def test_a_built_block_is_written_with_its_build_result_not_executed_again() -> None:
    chain = clique_chain([0])
    engine = authorized(chain, 0)
    pool = pool_for(chain)
    assert pool.add_locals([dyn(KEYS[1], 0, 2 * GWEI), dyn(KEYS[2], 0, 3 * GWEI)]) == [None, None]
    built = build_block(chain, pool, MinerConfig(etherbase=ADDRS[0]))
    other = build_block(chain, pool_for(chain), MinerConfig(etherbase=ADDRS[0]))  # empty: other roots
    sealed = asyncio.run(engine.seal(chain, built.block))
    counter = ExecutionCounter(chain)
    # A result that is not this block's is refused, naming the field, and nothing is written.
    with pytest.raises(InvalidBlockError, match=r"invalid gas used \(remote: 42000 local: 0\)"):
        chain.insert_built_block(sealed, other.result)
    assert not chain.has_block(sealed.hash, 1) and chain.current_block.number == 0
    assert chain.insert_built_block(sealed, built.result) is True
    assert counter.calls == 0 and chain.current_block.hash == sealed.hash
    state = chain.state()
    assert state.nonce(ADDRS[1]) == 1 and state.balance(ADDRS[0]) == FUNDS + built.fees
    receipts = chain.get_receipts(sealed.hash, 1)
    assert receipts is not None and [r.cumulative_gas_used for r in receipts] == [21_000, 42_000]
    assert chain.insert_built_block(sealed, built.result) is False  # known
    # A peer's copy of the same chain executes it and reaches the same state.
    peer = clique_chain([0])
    peer.insert_chain([sealed])
    assert peer.state().root == state.root


def test_builder_skips_what_does_not_fit_and_goes_on() -> None:
    chain = clique_chain([0], gas_limit=60_000)
    engine = authorized(chain, 0)
    stale, fresh = dyn(KEYS[0], 0, 9 * GWEI), dyn(KEYS[0], 1, 9 * GWEI)  # nonce 0 already used below
    pending = {
        ADDRS[0]: [stale, fresh],
        ADDRS[1]: [dyn(KEYS[1], 0, 5 * GWEI, gas=50_000), dyn(KEYS[1], 1, 5 * GWEI, gas=50_000)],
        ADDRS[2]: [dyn(KEYS[2], 3, 8 * GWEI)],  # nonce gap: the account is at 0
        ADDRS[3]: [dyn(KEYS[3], 0, 7 * GWEI)],  # unfunded
    }
    first = FakePool({ADDRS[0]: [stale]})
    seal_and_insert(chain, engine, build_block(chain, first, MinerConfig(etherbase=ADDRS[0])).block)
    built = build_block(chain, FakePool(pending), MinerConfig(etherbase=ADDRS[0]))
    included = [(tx.sender, tx.nonce) for tx in built.block.transactions]
    # fresh (9 gwei) after skipping the stale nonce; then sender 1's 50k-gas tx no longer fits
    # after 21k were used (60k limit), so sender 1 is dropped; sender 2 is gapped, sender 3 broke.
    assert included == [(ADDRS[0], 1)]
    reasons = dict(built.skipped)
    assert reasons[stale.hash].startswith("nonce too low")
    assert reasons[pending[ADDRS[2]][0].hash].startswith("nonce too high")
    assert "cannot afford" in reasons[pending[ADDRS[3]][0].hash]  # py-evm's words for insufficient funds
    assert reasons[pending[ADDRS[1]][0].hash].startswith("gas limit reached")
    assert pending[ADDRS[1]][1].hash not in reasons  # popped with its sender, never looked at
    seal_and_insert(chain, engine, built.block)


def test_pool_filter_uses_the_min_tip_and_the_block_base_fee() -> None:
    chain = clique_chain([0])
    authorized(chain, 0)
    pool = pool_for(chain)
    cheap, good = dyn(KEYS[1], 0, 10**5), dyn(KEYS[2], 0, 2 * 10**6)
    assert pool.add_locals([cheap, good]) == [None, None]
    built = build_block(chain, pool, MinerConfig(etherbase=ADDRS[0], min_tip=10**6))
    assert [tx.hash for tx in built.block.transactions] == [good.hash]
    spy = FakePool({})
    build_block(chain, spy, MinerConfig(etherbase=ADDRS[0], min_tip=123))
    assert spy.asked == (123, 7 * GWEI // 8)  # block 1's base fee: genesis (1 gwei) was empty


def test_clique_dev_chain_in_memory_funds_the_signer() -> None:
    dev = prepare_dev_chain(None, period=0, key_hex=KEYS[0].to_hex(), clique=True)
    assert dev.datadir is None and dev.chain is not None and dev.address == ADDRS[0] and dev.clique
    assert dev.chain.state().balance(ADDRS[0]) == DEV_FAUCET_BALANCE
    assert dev.chain.config.clique is not None and not dev.chain.config.is_shanghai(1, 2**40)
    assert isinstance(dev.chain.engine, Clique) and dev.chain.engine.period == 0


def test_pos_dev_chain_is_geths_developer_genesis() -> None:
    """geth v1.17 DeveloperGenesisBlock: merged at genesis, newest fork the engine runs, system
    contracts deployed, no extra-data, the faucet at 2^256 - 9."""
    from ethnode.core.execution import compiled_engine_error
    from ethnode.core.systemcontracts import SYSTEM_CONTRACTS

    dev = prepare_dev_chain(None, period=3, key_hex=KEYS[0].to_hex())
    assert dev.chain is not None and not dev.clique and dev.period == 3
    config = dev.chain.config
    assert config.terminal_total_difficulty == 0 and config.clique is None and config.chain_id == 1337
    assert config.is_prague(1, 1) and config.is_osaka(1, 1) == (compiled_engine_error() is None)
    state = dev.chain.state()
    assert state.balance(ADDRS[0]) == 2**256 - 9
    assert all(state.code(a) == c for a, c in SYSTEM_CONTRACTS.items())
    genesis = dev.chain.genesis
    assert genesis.extra == b"" and genesis.difficulty == 0 and genesis.gas_limit == 11_500_000


# --- the miner loop -----------------------------------------------------------------------


async def next_event(sub: Any, timeout: float = 5.0) -> Any:
    async with asyncio.timeout(timeout):
        return await sub.get()


def test_period_zero_seals_a_block_per_new_tx_and_posts_the_events() -> None:
    async def scenario() -> None:
        bus = EventBus()
        chain = clique_chain([0], events=bus)
        authorized(chain, 0)
        pool = pool_for(chain, bus)
        mined, heads = bus.subscribe(NewMinedBlockEvent), bus.subscribe(ChainHeadEvent)
        miner = Miner(chain, pool, bus, MinerConfig(etherbase=ADDRS[0]))
        counter = ExecutionCounter(chain)
        await miner.start()
        try:
            await asyncio.sleep(0.2)  # an idle period-0 chain seals nothing
            assert chain.current_block.number == 0 and mined.queue.empty()
            tx = dyn(KEYS[1], 0, GWEI)
            assert pool.add_locals([tx]) == [None]
            event = await next_event(mined)
            assert event.block.number == 1 and [t.hash for t in event.block.transactions] == [tx.hash]
            assert (await next_event(heads)).header.hash == event.block.hash == chain.current_block.hash
            pool.set_head(event.block)  # what the Ethereum service's head loop does
            assert pool.add_locals([dyn(KEYS[1], 1, GWEI)]) == [None]
            assert (await next_event(mined)).block.number == 2
            assert miner.sealed == 2 and counter.calls == 0  # built once, never re-executed
        finally:
            await miner.stop()
        assert not miner.running

    asyncio.run(scenario())


def test_recently_signed_waits_for_the_other_signer() -> None:
    async def scenario() -> None:
        bus = EventBus()
        # Two signers: each may seal at most every other block. Ours is in turn for odd blocks.
        signers = sorted([0, 1], key=lambda i: ADDRS[i])
        me, other = signers[1], signers[0]
        chain = clique_chain([me, other], events=bus)
        authorized(chain, me)
        pool = pool_for(chain, bus)
        mined = bus.subscribe(NewMinedBlockEvent)
        miner = Miner(chain, pool, bus, MinerConfig(etherbase=ADDRS[me]))
        await miner.start()
        try:
            pool.add_locals([dyn(KEYS[2], 0, GWEI)])
            block1 = (await next_event(mined)).block
            assert Clique.author(chain.engine, block1.header) == ADDRS[me]  # type: ignore[arg-type]
            pool.set_head(block1)
            pool.add_locals([dyn(KEYS[2], 1, GWEI)])
            await asyncio.sleep(0.2)
            assert chain.current_block.number == 1  # block 2 is not ours to seal
            with pytest.raises(SignedRecentlyWaitError):
                await chain.engine.seal(chain, build_block(chain, pool, MinerConfig(etherbase=ADDRS[me])).block)
            # The other signer (its own engine) seals block 2; the miner then seals block 3.
            theirs = Clique(chain.engine.config, MemoryDB())  # type: ignore[attr-defined]
            theirs.authorize(ADDRS[other], KEYS[other].sign)
            built = build_block(chain, pool, MinerConfig(etherbase=ADDRS[other]), engine=theirs)
            block2 = await theirs.seal(chain, built.block)
            chain.insert_chain([block2])  # the chain posts the head move: the miner wakes
            pool.set_head(block2)
            pool.add_locals([dyn(KEYS[2], 2, GWEI)])
            block3 = (await next_event(mined)).block
            assert block3.number == 3 and len(block3.tx_items) == 1
        finally:
            await miner.stop()

    asyncio.run(scenario())


# --- a post-merge Cancun chain: blob limits and time-fork fields ---------------------------------


class UnchangedByEngine:
    """A stand-in engine for a chain whose consensus client would fill nothing (difficulty 0)."""

    name = "stand-in"

    def prepare(self, chain: Any, header: Any) -> Any:
        return header


def test_blob_gas_limit_and_cancun_fields() -> None:
    from ethnode.core.eip4844 import GAS_PER_BLOB
    from ethnode.core.types.transaction import BlobTx
    from ethnode.trie import EMPTY_ROOT

    keys = [PrivateKey(bytes([0x40 + i]) * 32) for i in range(7)]
    obj = {
        "config": {"chainId": CHAIN_ID, "terminalTotalDifficulty": 0, "shanghaiTime": 0, "cancunTime": 0,
                   "blobSchedule": {"cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477}},
                   **dict.fromkeys(("homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
                                    "constantinopleBlock", "petersburgBlock", "istanbulBlock", "berlinBlock",
                                    "londonBlock"), 0)},
        "gasLimit": hex(30_000_000), "difficulty": "0x0", "baseFeePerGas": hex(GWEI),
        "alloc": {"0x" + address_of(k.node_id).hex(): {"balance": hex(FUNDS)} for k in keys},
    }
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db, execute=True)
    chain._state_root_warned = True

    def blob_tx(key: PrivateKey, tip: int) -> Transaction:
        tx = BlobTx(CHAIN_ID, 0, tip, 100 * GWEI, 21_000, SINK, 0, b"", [], 10, [b"\x01" + bytes([tip % 256]) * 31],
                    0, 0, 0)
        return tx.sign(key)

    txs = [blob_tx(k, (i + 1) * GWEI) for i, k in enumerate(keys)]  # the cheapest one is left out
    pool = FakePool({address_of(k.node_id): [tx] for k, tx in zip(keys, txs, strict=True)})
    built = build_block(chain, pool, MinerConfig(etherbase=SINK), engine=UnchangedByEngine())
    header = built.header
    assert [tx.hash for tx in built.block.transactions] == [tx.hash for tx in reversed(txs[1:])]
    assert dict(built.skipped) == {txs[0].hash: "blob gas limit reached"}
    assert header.blob_gas_used == 6 * GAS_PER_BLOB and header.excess_blob_gas == 0
    assert header.withdrawals_root == EMPTY_ROOT and built.block.withdrawals == []
    assert header.parent_beacon_root == bytes(32) and header.requests_hash is None
    chain.insert_chain([built.block])  # the chain's own engine and execution agree with every field
    assert chain.current_block.hash == built.block.hash
