"""The eth/72 blob fetch policy (geth v1.17.10 ``eth/fetcher/blob_fetcher.go``), sans-IO.

Every decision comes from the scheduler's RNG and every time from ``now``: the tests replay
them exactly. ``Draws`` scripts the RNG (0 = below any probability: full fetch; 99 = partial).
"""

from __future__ import annotations

import random

import pytest

from ethnode.core.types.custody import CUSTODY_ALL, CUSTODY_DATA, custody_indices, custody_of
from ethnode.eth.fetcher.blob_scheduler import (
    AVAILABILITY_TIMEOUT,
    DEFAULT_FETCH_PROBABILITY,
    FETCH_TIMEOUT,
    MAX_CELL_REQUESTS,
    REFILL_INTERVAL,
    BlobFetchScheduler,
    CellsComplete,
    DropPeer,
    FetchCells,
    PeerCells,
)

CUSTODY = custody_of([5, 21, 40, 58])  # devp2p eth-test's GetCells custody
H = [bytes([i]) * 32 for i in range(1, 20)]


class Draws:
    """An RNG returning scripted ``randrange(100)`` values."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)

    def randrange(self, n: int) -> int:
        assert n == 100
        return self.values.pop(0)


def sched(*draws: int, custody: int = CUSTODY) -> BlobFetchScheduler:
    return BlobFetchScheduler(custody, rng=Draws(*draws))  # type: ignore[arg-type]


def cells_for(mask: int, blobs: int = 1, tag: bytes = b"") -> list[bytes]:
    """Blob-major placeholder cells (the scheduler never looks inside them)."""
    return [tag + bytes([b, i]) for b in range(blobs) for i in custody_indices(mask)]


def test_probability_has_geths_floor() -> None:
    assert BlobFetchScheduler(rng=random.Random(1), fetch_probability=3).fetch_probability == DEFAULT_FETCH_PROBABILITY
    assert BlobFetchScheduler(rng=random.Random(1), fetch_probability=40).fetch_probability == 40


def test_full_fetch_asks_one_full_announcer_for_the_data_cells() -> None:
    s = sched(0)
    assert s.notify("a", [H[0]], CUSTODY_ALL, 0.0) == [FetchCells("a", (H[0],), CUSTODY_DATA)]
    # A second full announcer becomes an alternate, not a second request for the same cells.
    assert s.notify("b", [H[0]], CUSTODY_ALL, 0.1) == []
    done = s.deliver("a", [H[0]], [cells_for(CUSTODY_DATA, 2)], CUSTODY_DATA, 0.2)
    assert done == [CellsComplete(H[0], {"a": PeerCells(cells_for(CUSTODY_DATA, 2), list(range(64)))}, CUSTODY_DATA)]
    assert not s.fetches and not s.full and not s.announces and not s.requests


def test_full_fetch_ignores_partial_announcers() -> None:
    s = sched(0, 0)
    assert s.notify("a", [H[0]], CUSTODY, 0.0) == []  # not all cells: useless for a full fetch
    assert not s.tracks(H[0]) and not s.announces  # nobody to fetch from: no decision kept (ours)
    assert s.notify("b", [H[0]], CUSTODY_ALL, 0.1) == [FetchCells("b", (H[0],), CUSTODY_DATA)]


def test_sourceless_hashes_do_not_pile_up() -> None:
    """Announcements no one can serve leave nothing behind (geth keeps their decisions for ever)."""
    s = sched(*([99] * 50))
    s.notify("a", H[:10], CUSTODY, 0.0)  # partial decisions, waiting for full announcers that never come
    assert len(s.waitlist) == 10 and not s.announces
    assert s.tick(AVAILABILITY_TIMEOUT) == []
    assert not s.full and not s.partial and not s.waitlist and not s.waittime and s.next_deadline() is None


def test_partial_fetch_waits_for_two_full_announcers_then_asks_custody() -> None:
    s = sched(99)
    assert s.notify("a", [H[0]], CUSTODY_ALL, 0.0) == []
    assert s.waitlist == {H[0]: {"a": None}}
    actions = s.notify("b", [H[0]], CUSTODY_ALL, 0.5)
    assert actions == [FetchCells("a", (H[0],), CUSTODY)]  # b has nothing left to give
    assert not s.waitlist and not s.waittime
    done = s.deliver("a", [H[0]], [cells_for(CUSTODY, 2)], CUSTODY, 1.0)
    assert done == [CellsComplete(H[0], {"a": PeerCells(cells_for(CUSTODY, 2), [5, 21, 40, 58])}, CUSTODY)]


def test_single_announcer_turns_full_after_the_availability_timeout() -> None:
    """devp2p BlobTxAvailabilityFailure: one peer never makes a partial fetch, only a full one."""
    s = sched(*([99] * 10))
    assert s.notify("a", H[:10], CUSTODY_ALL, 0.0) == []
    deadline = s.next_deadline()
    assert deadline == AVAILABILITY_TIMEOUT
    assert s.tick(1.0) == []
    actions = s.tick(deadline)
    assert len(actions) == 1 and isinstance(actions[0], FetchCells)
    assert actions[0].mask == CUSTODY_DATA and actions[0].peer == "a"
    # 256 tokens cover four 64-cell fetches; the rest waits for tokens and for this request.
    assert actions[0].hashes == tuple(H[:4])
    assert MAX_CELL_REQUESTS // 64 == 4


def test_partial_announcers_overlapping_custody_are_sources() -> None:
    s = sched(99, custody=custody_of([1, 2, 3, 4]))
    # Already waiting on full availability: a partial announcement does not count towards it.
    assert s.notify("a", [H[0]], custody_of([1, 2]), 0.0) == []
    assert s.waitlist == {H[0]: {}}
    s2 = sched(99, custody=custody_of([1, 2, 3, 4]))
    s2.notify("x", [H[1]], CUSTODY_ALL, 0.0)
    s2.notify("y", [H[1]], CUSTODY_ALL, 0.0)  # threshold: x is asked for all four
    assert s2.requests["x"][0].mask == custody_of([1, 2, 3, 4])


def test_eager_custody_always_fetches_in_full() -> None:
    s = sched(99, 99, 99, custody=CUSTODY_ALL)  # geth's start-up custody: 128 cells >= 64
    assert s.notify("a", [H[0], H[1]], CUSTODY_ALL, 0.0) == [FetchCells("a", (H[0], H[1]), CUSTODY_DATA)]
    s.update_custody(CUSTODY)  # the consensus client's fcuV4: now the 99 draw means partial
    assert s.notify("b", [H[2]], CUSTODY_ALL, 0.0) == []
    assert H[2] in s.partial and s.waitlist == {H[2]: {"b": None}}


def test_seeded_rng_replays_the_same_decisions() -> None:
    seed = 72
    expect = random.Random(seed)
    s = BlobFetchScheduler(CUSTODY, rng=random.Random(seed))
    s.notify("a", H, CUSTODY_ALL, 0.0)
    full = {h for h in H if expect.randrange(100) < DEFAULT_FETCH_PROBABILITY}
    assert s.full == full and s.partial == set(H) - full
    # Over many txs the share fetched in full is about 15 %.
    s = BlobFetchScheduler(CUSTODY, rng=random.Random(seed))
    many = [i.to_bytes(32, "big") for i in range(4000)]
    for i in range(0, 4000, 1000):
        s.notify(f"p{i}", many[i:i + 1000], CUSTODY_ALL, 0.0)
    assert 0.12 < len(s.full) / 4000 < 0.18


def test_unanswered_request_goes_to_an_alternate() -> None:
    s = sched(0)
    s.notify("a", [H[0]], CUSTODY_ALL, 0.0)
    s.notify("b", [H[0]], CUSTODY_ALL, 0.0)
    assert s.next_deadline() == FETCH_TIMEOUT
    actions = s.tick(FETCH_TIMEOUT)
    assert actions == [FetchCells("b", (H[0],), CUSTODY_DATA)]
    assert s.deliver("a", [H[0]], [cells_for(CUSTODY_DATA)], CUSTODY_DATA, 5.5) == []  # too late: ignored
    assert isinstance(s.deliver("b", [H[0]], [cells_for(CUSTODY_DATA)], CUSTODY_DATA, 6.0)[0], CellsComplete)


def test_dropped_peer_hands_over_or_gives_up() -> None:
    s = sched(0, 0)
    s.notify("a", [H[0], H[1]], CUSTODY_ALL, 0.0)
    s.notify("b", [H[0]], CUSTODY_ALL, 0.0)
    assert s.drop("a", 1.0) == [FetchCells("b", (H[0],), CUSTODY_DATA)]
    assert not s.tracks(H[1])  # nobody else can give H[1]'s cells: forgotten


def test_partial_reply_reschedules_what_was_left_out() -> None:
    s = sched(0, 0)
    s.notify("a", [H[0], H[1]], CUSTODY_ALL, 0.0)
    s.notify("b", [H[0], H[1]], CUSTODY_ALL, 0.0)
    # a answers for H[1] only: H[0] (before the last delivered hash) is not asked of a again.
    actions = s.deliver("a", [H[1]], [cells_for(CUSTODY_DATA)], CUSTODY_DATA, 1.0)
    assert isinstance(actions[0], CellsComplete) and actions[0].tx_hash == H[1]
    assert actions[1:] == [FetchCells("b", (H[0],), CUSTODY_DATA)]


def test_full_and_partial_fetches_interleave() -> None:
    s = sched(0, 99)
    assert s.notify("x", [H[0], H[1]], CUSTODY_ALL, 0.0) == [FetchCells("x", (H[0],), CUSTODY_DATA)]
    # y makes H[1] available twice over: x is busy with its request, y is asked for our custody.
    assert s.notify("y", [H[1]], CUSTODY_ALL, 0.1) == [FetchCells("y", (H[1],), CUSTODY)]
    done = s.deliver("x", [H[0]], [cells_for(CUSTODY_DATA)], CUSTODY_DATA, 0.2)
    assert [a.tx_hash for a in done if isinstance(a, CellsComplete)] == [H[0]]
    assert not [a for a in done if isinstance(a, FetchCells)]  # H[1]'s cells are already asked of y


def test_token_bucket_refills_nine_per_second() -> None:
    s = sched(*([0] * 6))
    first = s.notify("a", H[:6], CUSTODY_ALL, 0.0)
    assert [len(a.hashes) for a in first] == [4]
    # The reply frees the peer; 1 s later 9 tokens came back: not enough for another 64 cells.
    later = s.deliver("a", list(H[:4]), [cells_for(CUSTODY_DATA)] * 4, CUSTODY_DATA, 1.0)
    assert not [a for a in later if isinstance(a, FetchCells)]
    assert s.tokens["a"][0] == pytest.approx(int(1.0 / REFILL_INTERVAL))


def test_merging_two_deliveries_keeps_blob_major_order() -> None:
    d = PeerCells([b"0/3", b"0/9", b"1/3", b"1/9"], [3, 9])
    d.merge([b"0/5", b"1/5"], [5])
    assert d.indices == [3, 5, 9] and d.cells == [b"0/3", b"0/5", b"0/9", b"1/3", b"1/5", b"1/9"]
    with pytest.raises(ValueError, match="duplicate cell index"):
        d.merge([b"0/5", b"1/5"], [5])
    with pytest.raises(ValueError, match="inconsistent cell count"):
        d.merge([b"0/7"], [7])


def test_a_bad_second_delivery_drops_the_peer() -> None:
    s = sched(99, custody=custody_of([1, 2, 3]))
    s.notify("x", [H[0]], CUSTODY_ALL, 0.0)
    s.notify("y", [H[0]], CUSTODY_ALL, 0.0)
    status = s.fetches[H[0]]
    status.deliveries["x"] = PeerCells([b"a", b"b"], [1])  # one blob... then a 2-blob delivery
    actions = s.deliver("x", [H[0]], [cells_for(custody_of([1, 2, 3]), 2)], custody_of([1, 2, 3]), 0.1)
    assert any(isinstance(a, DropPeer) and a.peer == "x" for a in actions)


def test_blob_tx_sizes_judged_by_each_announcers_version() -> None:
    """eth/72 peers announce a blob tx's size without blobs, earlier ones with them (geth
    sizeForVersion): a blobless delivery must not make an honest announcer of either look a liar."""
    from ethnode.eth.fetcher.tx_fetcher import blob_payload_size
    from ethnode.eth.fetcher.tx_scheduler import DropPeer as TxDrop
    from ethnode.eth.fetcher.tx_scheduler import TxFetchScheduler, TxMeta

    blobless, blobs = 1500, 2
    full = blobless + blob_payload_size(blobs)
    s = TxFetchScheduler()
    s.notify("old", [3], [full], [H[0]], 0.0)
    s.notify("new", [3], [blobless], [H[0]], 0.0, sparse=True)
    s.notify("liar", [3], [full], [H[0]], 0.0, sparse=True)  # an eth/72 peer stating the size with blobs
    actions = s.deliver("new", [H[0]], [TxMeta(3, full, blobless)], 1.0, reply=True)
    assert [a.peer for a in actions if isinstance(a, TxDrop)] == ["liar"]
