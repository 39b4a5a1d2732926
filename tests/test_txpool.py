"""TxPool: pending/queued by nonce, replacement bumps, limits and eviction, new heads, events.

The helpers at the top (an in-memory chain with every fork through Prague active at
genesis, signed txs of each type) are shared with test_txpool_validation.py.
"""

from __future__ import annotations

import pytest
from txpool_support import (
    ADDRS,
    FEE_CAP,
    GWEI,
    Clock,
    FakeChain,
    FakeState,
    blob_tx,
    block_after,
    bus_and_sub,
    child_header,
    dyn,
    events,
    make_pool,
)

from ethnode.core.txpool import TxPool, TxPoolConfig, errors


def test_pending_queued_and_promotion_when_the_gap_fills() -> None:
    bus, sub = bus_and_sub()
    pool = make_pool(bus=bus)
    t0, t2, t3 = dyn(0, 0), dyn(0, 2), dyn(0, 3)
    assert pool.add_remotes([t0, t2, t3]) == [None, None, None]
    assert pool.stats() == (1, 2) and len(pool) == 3
    assert pool.status(t0.hash) == "pending" and pool.status(t2.hash) == "queued"
    assert events(sub) == [(t0,)]  # queued txs are not announced
    t1 = dyn(0, 1)
    assert pool.add_remotes([t1]) == [None]
    assert pool.stats() == (4, 0)
    assert events(sub) == [(t1, t2, t3)]  # the gap filled: all three became pending, in nonce order
    assert pool.pending() == {ADDRS[0]: [t0, t1, t2, t3]}
    assert pool.content() == ({ADDRS[0]: [t0, t1, t2, t3]}, {})
    assert pool.content_from(ADDRS[0]) == ([t0, t1, t2, t3], [])
    assert pool.nonce(ADDRS[0]) == 4 and pool.nonce(ADDRS[1]) is None
    assert pool.get(t2.hash) is t2 and pool.has(t2.hash) and pool.get(b"\x00" * 32) is None
    err = pool.add_remotes([t1])[0]
    assert isinstance(err, errors.AlreadyKnownError) and str(err) == "already known"


def test_a_lower_nonce_rebases_the_account_while_state_is_unknown() -> None:
    bus, sub = bus_and_sub()
    pool = make_pool(bus=bus)
    t3, t4, t5 = dyn(0, 3), dyn(0, 4), dyn(0, 5)
    pool.add_remotes([t5])
    assert pool.status(t5.hash) == "pending"  # the first tx seen counts as executable
    pool.add_remotes([t3])
    assert pool.status(t3.hash) == "pending" and pool.status(t5.hash) == "queued"
    pool.add_remotes([t4])
    assert pool.pending() == {ADDRS[0]: [t3, t4, t5]}
    assert events(sub) == [(t5,), (t3,), (t4, t5)]


@pytest.mark.parametrize("nonce", [0, 5], ids=["pending", "queued"])
def test_replacement_needs_ten_percent_more_fee_cap_and_tip(nonce: int) -> None:
    pool = make_pool()
    if nonce:
        pool.add_remotes([dyn(0, 0)])  # nonce 5 then waits behind a gap
    old = dyn(0, nonce, tip=1000, fee_cap=10**10)
    assert pool.add_remotes([old]) == [None]
    for tip, fee_cap in ((1099, 11 * 10**9), (1100, 11 * 10**9 - 1), (1000, 2 * 10**10), (2000, 10**10)):
        err = pool.add_remotes([dyn(0, nonce, tip=tip, fee_cap=fee_cap)])[0]
        assert isinstance(err, errors.ReplaceUnderpricedError), (tip, fee_cap)
        assert str(err) == "replacement transaction underpriced"
    new = dyn(0, nonce, tip=1100, fee_cap=11 * 10**9)  # exactly +10% on both
    assert pool.add_remotes([new]) == [None]
    assert not pool.has(old.hash) and pool.has(new.hash)
    assert pool.status(new.hash) == ("queued" if nonce else "pending")


def test_replacement_of_one_wei_needs_a_strictly_higher_price() -> None:
    pool = make_pool()
    pool.add_remotes([dyn(0, 0, tip=1, fee_cap=1)])
    assert isinstance(pool.add_remotes([dyn(0, 0, tip=1, fee_cap=2)])[0], errors.ReplaceUnderpricedError)
    assert pool.add_remotes([dyn(0, 0, tip=2, fee_cap=2)]) == [None]


def test_replacing_a_pending_tx_is_announced() -> None:
    bus, sub = bus_and_sub()
    pool = make_pool(bus=bus)
    pool.add_remotes([dyn(0, 0, tip=GWEI)])
    events(sub)
    better = dyn(0, 0, tip=2 * GWEI, fee_cap=2 * FEE_CAP)
    pool.add_remotes([better])
    assert events(sub) == [(better,)] and pool.stats() == (1, 0)


# --- limits and eviction -----------------------------------------------------------------------------


def test_account_queue_limit_keeps_the_lowest_nonces() -> None:
    pool = make_pool(account_queue=4)
    pool.add_remotes([dyn(0, 0), *(dyn(0, n) for n in range(2, 10))])
    _, queued = pool.content()
    assert [t.nonce for t in queued[ADDRS[0]]] == [2, 3, 4, 5]
    assert pool.stats() == (1, 4)


def test_full_pool_evicts_the_cheapest_remote_and_never_a_local() -> None:
    pool = make_pool(global_slots=3, global_queue=1)  # room for 4 one-slot txs
    first = [dyn(i, 0, tip=(i + 2) * GWEI) for i in range(4)]  # tips 2..5 gwei
    assert pool.add_remotes(first) == [None] * 4
    for tip in (GWEI, 2 * GWEI):  # as cheap as the cheapest is underpriced too
        err = pool.add_remotes([dyn(4, 0, tip=tip)])[0]
        assert isinstance(err, errors.UnderpricedError) and str(err).startswith("transaction underpriced")
    assert pool.add_remotes([dyn(4, 0, tip=6 * GWEI)]) == [None]
    assert not pool.has(first[0].hash) and len(pool) == 4
    cheap_local = dyn(5, 0, tip=1)
    assert pool.add_locals([cheap_local]) == [None]  # a local tx makes room even when cheaper
    assert not pool.has(first[1].hash)
    assert pool.add_remotes([dyn(6, 0, tip=7 * GWEI)]) == [None]
    assert pool.has(cheap_local.hash) and not pool.has(first[2].hash)  # the local one stays


def test_fee_cap_below_base_fee_is_evicted_first() -> None:
    pool = make_pool(global_slots=1, global_queue=1)
    base = pool.pending_base_fee
    assert base is not None
    under = dyn(0, 0, tip=5 * GWEI, fee_cap=base - 1)  # a big tip, but pays nothing at this base fee
    pool.add_remotes([under, dyn(1, 0, tip=GWEI)])
    assert pool.add_remotes([dyn(2, 0, tip=2 * GWEI)]) == [None]
    assert not pool.has(under.hash)


def test_a_gapped_tx_cannot_evict_pending_ones() -> None:
    pool = make_pool(global_slots=3, global_queue=1)
    pool.add_remotes([dyn(i, 0, tip=(i + 2) * GWEI) for i in range(4)])
    err = pool.add_remotes([dyn(3, 5, tip=9 * GWEI)])[0]
    assert isinstance(err, errors.FutureReplacePendingError)
    assert pool.stats() == (4, 0)


def test_pending_over_global_slots_trims_the_biggest_accounts_fairly() -> None:
    pool = make_pool(global_slots=8, global_queue=100, account_slots=2)
    pool.add_remotes([dyn(0, n) for n in range(10)] + [dyn(1, n) for n in range(3)])
    pending = pool.pending()
    assert [t.nonce for t in pending[ADDRS[0]]] == [0, 1, 2, 3, 4]  # the highest nonces go
    assert len(pending[ADDRS[1]]) == 3
    assert pool.stats() == (8, 0) and not pool.has(dyn(0, 9).hash)


def test_local_accounts_are_not_trimmed() -> None:
    pool = make_pool(global_slots=4, global_queue=100, account_slots=1, locals=(ADDRS[0],))
    pool.add_remotes([dyn(0, n) for n in range(6)])
    assert pool.stats() == (6, 0)


def test_queue_over_global_queue_drops_the_longest_idle_account_first() -> None:
    clock = Clock()
    pool = make_pool(global_queue=3, clock=clock)
    pool.add_remotes([dyn(0, 0), dyn(0, 2), dyn(0, 3)])
    clock.now += 10
    pool.add_remotes([dyn(1, 0), dyn(1, 2)])
    clock.now += 10
    pool.add_remotes([dyn(2, 0), dyn(2, 2), dyn(2, 3)])
    _, queued = pool.content()
    assert set(queued) == {ADDRS[1], ADDRS[2]}
    assert pool.stats() == (3, 3)


def test_idle_queues_expire_after_the_lifetime() -> None:
    clock = Clock()
    pool = make_pool(clock=clock, lifetime=60)
    pool.add_remotes([dyn(0, 0), dyn(0, 2), dyn(1, 0), dyn(1, 2)])
    pool.add_locals([dyn(2, 0), dyn(2, 2)])
    assert pool.evict_stale() == 0
    clock.now += 61
    assert pool.evict_stale() == 2
    assert pool.stats() == (3, 1)  # pending txs and the local queue stay


def test_remove_moves_later_pending_nonces_to_the_queue() -> None:
    pool = make_pool()
    t0, t1, t2 = dyn(0, 0), dyn(0, 1), dyn(0, 2)
    pool.add_remotes([t0, t1, t2])
    assert pool.remove(t1.hash) is True and pool.remove(t1.hash) is False
    assert pool.status(t0.hash) == "pending" and pool.status(t2.hash) == "queued"


# --- new heads ---------------------------------------------------------------------------------------


def test_new_head_removes_included_txs_and_promotes_the_rest() -> None:
    bus, sub = bus_and_sub()
    pool = make_pool(bus=bus)
    t0, t1, t3, other = dyn(0, 0), dyn(0, 1), dyn(0, 3), dyn(1, 0)
    pool.add_remotes([t0, t1, t3, other])
    events(sub)
    block = block_after(pool.head, [t0, t1, dyn(0, 2)])  # nonce 2 came from elsewhere
    pool.set_head(block)
    assert pool.head.hash == block.hash
    assert not pool.has(t0.hash) and not pool.has(t1.hash)
    assert pool.status(t3.hash) == "pending" and pool.status(other.hash) == "pending"
    assert events(sub) == [(t3,)]
    err = pool.add_remotes([dyn(0, 1, tip=5 * GWEI)])[0]
    assert isinstance(err, errors.NonceTooLowError) and str(err) == "nonce too low: next nonce 3, tx nonce 1"


def test_new_head_reevaluates_base_fee_and_gas_limit() -> None:
    pool = make_pool()
    big, after = dyn(0, 0, gas=200_000), dyn(0, 1)
    pool.add_remotes([big, after, dyn(1, 0)])
    genesis_fee = pool.pending_base_fee
    full = child_header(pool.head, gas_used=pool.head.gas_limit, gas_limit=100_000)
    pool.on_new_head(full)
    assert pool.pending_base_fee is not None and genesis_fee is not None and pool.pending_base_fee > genesis_fee
    assert not pool.has(big.hash)  # above the new block gas limit
    assert pool.status(after.hash) == "queued"  # behind the dropped one: no longer executable
    assert pool.stats() == (1, 1)


def test_pending_filters_by_min_tip_and_base_fee() -> None:
    pool = make_pool()
    a0, a1, a2 = dyn(0, 0, tip=3 * GWEI), dyn(0, 1, tip=GWEI), dyn(0, 2, tip=3 * GWEI)
    b0 = dyn(1, 0, tip=2 * GWEI, fee_cap=2 * GWEI)
    pool.add_remotes([a0, a1, a2, b0])
    assert pool.pending(min_tip=2 * GWEI) == {ADDRS[0]: [a0], ADDRS[1]: [b0]}
    assert pool.pending(min_tip=2 * GWEI, base_fee=GWEI) == {ADDRS[0]: [a0]}  # b0 earns 1 gwei then
    assert pool.pending(base_fee=3 * GWEI) == {ADDRS[0]: [a0, a1, a2]}


def test_reorg_reinjects_txs_that_left_the_chain() -> None:
    chain = FakeChain()
    pool = TxPool(chain, TxPoolConfig(), kzg=None)
    genesis = chain.current_block
    tx = dyn(0, 0)
    pool.add_remotes([tx])
    a1 = chain.add_block(block_after(genesis, [tx]))
    pool.set_head(a1)
    assert not pool.has(tx.hash)
    b1 = chain.add_block(block_after(genesis, [], extra=b"side"))
    b2 = chain.add_block(block_after(b1.header, []))
    pool.set_head(b2)
    assert pool.status(tx.hash) == "pending"  # back from the abandoned branch
    assert pool.head.hash == b2.hash


def test_a_tx_already_in_the_chain_is_nonce_too_low() -> None:
    chain = FakeChain()
    pool = TxPool(chain, TxPoolConfig(), kzg=None)
    tx = dyn(0, 0)
    chain.included[tx.hash] = (tx, b"\x01" * 32, 5, 0)
    err = pool.add_remotes([tx])[0]
    assert isinstance(err, errors.NonceTooLowError) and "already included in block #5" in str(err)


# --- the state hook ----------------------------------------------------------------------------------


def test_state_reader_enables_nonce_and_balance_checks() -> None:
    cost = 21000 * FEE_CAP
    state = FakeState({ADDRS[0]: 3}, {ADDRS[0]: 2 * cost, ADDRS[1]: cost - 1})
    pool = make_pool(state=state)
    low = pool.add_remotes([dyn(0, 2)])[0]
    assert isinstance(low, errors.NonceTooLowError) and str(low) == "nonce too low: next nonce 3, tx nonce 2"
    t5 = dyn(0, 5)
    assert pool.add_remotes([t5]) == [None]
    assert pool.status(t5.hash) == "queued"  # the state says 3 comes next: a gap, unlike without state
    assert pool.add_remotes([dyn(0, 3), dyn(0, 4)]) == [None, None]
    poor = pool.add_remotes([dyn(1, 0)])[0]
    assert isinstance(poor, errors.InsufficientFundsError)
    assert str(poor).startswith("insufficient funds for gas * price + value: balance")
    state.nonces[ADDRS[0]] = 4  # nonce 3 was included; then the balance went
    state.balances[ADDRS[0]] = cost - 1
    pool.on_new_head(child_header(pool.head))
    assert pool.stats() == (0, 0)


def test_cumulative_pending_cost_must_be_covered() -> None:
    cost = 21000 * FEE_CAP
    pool = make_pool(state=FakeState({}, {ADDRS[0]: 2 * cost + 1}))
    assert pool.add_remotes([dyn(0, 0), dyn(0, 1)]) == [None, None]
    err = pool.add_remotes([dyn(0, 2)])[0]
    assert isinstance(err, errors.InsufficientFundsError) and "queued cost" in str(err)


# --- blob txs ------------------------------------------------------------------------------------------


def test_blob_lane_reserves_accounts_and_forbids_gaps() -> None:
    bus, sub = bus_and_sub()
    pool = make_pool(bus=bus)
    b0 = blob_tx(0, 0)
    assert pool.add_remotes([b0]) == [None]
    assert events(sub) == [(b0,)] and pool.stats() == (1, 0)
    assert isinstance(pool.add_remotes([dyn(0, 1)])[0], errors.AlreadyReservedError)
    pool.add_remotes([dyn(1, 0)])
    err = pool.add_remotes([blob_tx(1, 1)])[0]
    assert isinstance(err, errors.AlreadyReservedError) and str(err).startswith("address already reserved")
    gap = pool.add_remotes([blob_tx(0, 2)])[0]
    assert isinstance(gap, errors.NonceTooHighError) and str(gap) == "nonce too high: tx nonce 2, gapped nonce 1"
    assert pool.add_remotes([blob_tx(0, 1)]) == [None]
    assert pool.pending()[ADDRS[0]] == [b0, pool.get(blob_tx(0, 1).hash)]


def test_blob_replacement_needs_a_hundred_percent_bump() -> None:
    pool = make_pool()
    pool.add_remotes([blob_tx(0, 0, tip=GWEI, fee_cap=FEE_CAP, blob_fee_cap=GWEI)])
    short = blob_tx(0, 0, tip=2 * GWEI - 1, fee_cap=2 * FEE_CAP, blob_fee_cap=2 * GWEI)
    err = pool.add_remotes([short])[0]
    assert isinstance(err, errors.ReplaceUnderpricedError) and "100% replacement penalty" in str(err)
    same_blob_fee = blob_tx(0, 0, tip=2 * GWEI, fee_cap=2 * FEE_CAP, blob_fee_cap=GWEI)
    assert "blob gas fee cap" in str(pool.add_remotes([same_blob_fee])[0])
    doubled = blob_tx(0, 0, tip=2 * GWEI, fee_cap=2 * FEE_CAP, blob_fee_cap=2 * GWEI)
    assert pool.add_remotes([doubled]) == [None] and len(pool) == 1


def test_blob_txs_per_account_limit() -> None:
    pool = make_pool()
    assert pool.add_remotes([blob_tx(0, n) for n in range(16)]) == [None] * 16
    err = pool.add_remotes([blob_tx(0, 16)])[0]
    assert isinstance(err, errors.AccountLimitExceededError) and str(err) == "account limit exceeded: pooled 16 txs"


def test_blob_txs_leave_on_inclusion() -> None:
    pool = make_pool()
    b0, b1 = blob_tx(0, 0), blob_tx(0, 1)
    pool.add_remotes([b0, b1])
    pool.set_head(block_after(pool.head, [b0.tx]))
    assert not pool.has(b0.hash) and pool.status(b1.hash) == "pending"


def test_blob_datacap_evicts_the_worst_paying_account() -> None:
    size = len(blob_tx(0, 0).network_encoding())
    pool = make_pool(blob_datacap=2 * size + size // 2)
    cheap, rich = blob_tx(0, 0, tip=GWEI), blob_tx(1, 0, tip=3 * GWEI)
    assert pool.add_remotes([cheap, rich]) == [None, None]
    assert pool.add_remotes([blob_tx(2, 0, tip=2 * GWEI)]) == [None]
    assert not pool.has(cheap.hash) and pool.has(rich.hash)
    err = pool.add_remotes([blob_tx(3, 0, tip=1)])[0]
    assert isinstance(err, errors.UnderpricedError)
    assert len(pool) == 2


def test_content_and_stats_include_blob_txs() -> None:
    pool = make_pool()
    b0, t0, t2 = blob_tx(0, 0), dyn(1, 0), dyn(1, 2)
    pool.add_remotes([b0, t0, t2])
    assert pool.content() == ({ADDRS[1]: [t0], ADDRS[0]: [b0]}, {ADDRS[1]: [t2]})
    assert pool.stats() == (2, 1) and pool.nonce(ADDRS[0]) == 1
    assert pool.remove(b0.hash) and pool.stats() == (1, 1)
