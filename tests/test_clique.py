"""Clique (EIP-225): the voting scenarios of ../shared/vectors/clique/eip225.json, then the
engine's own rules: seal/verify round trip, turns and difficulty, the recent-signer rule,
checkpoints, votes from proposals, snapshot storage, the out-of-turn delay, the RPC API.

Scenarios run as geth's TestClique runs them: named accounts get keys (derived here from
the name), the genesis lists the initial signers sorted by address, every block is signed
by its named signer and votes through coinbase + nonce, and the blocks are imported in
batches. Each scenario runs twice: through ``BlockChain.insert_chain`` (every block stored
before the next is judged) and through ``Clique.verify_headers`` on the unstored batch
(snapshots built from the headers in hand, as geth's VerifyHeaders does). Difficulties are
real (geth's harness fakes them): 2 in turn, 1 out of turn.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import pytest
from chain_support import open_chain
from shared_support import load_vector

from ethnode.consensus import Beacon, Clique, create_engine
from ethnode.consensus.clique import (
    BY_GETH_NAME,
    CHECKPOINT_INTERVAL,
    DIFF_IN_TURN,
    DIFF_NO_TURN,
    EPOCH_LENGTH,
    METHODS,
    NONCE_AUTH_VOTE,
    NONCE_DROP_VOTE,
    WIGGLE_TIME,
    CliqueAPI,
    NoSignerError,
    RecentlySignedError,
    SignedRecentlyWaitError,
    Snapshot,
    UnauthorizedSignerError,
    WaitTransactionsError,
    clique_rlp,
    seal_hash,
)
from ethnode.consensus.clique import errors as cerr
from ethnode.consensus.clique.seal import EXTRA_SEAL, EXTRA_VANITY, pubkey_to_address, with_seal
from ethnode.consensus.clique.snapshot import snapshot_key
from ethnode.consensus.engine import ConsensusError, FutureBlockError, UnknownAncestorError
from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.chainconfig import ChainConfig, ChainConfigError, CliqueConfig
from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.errors import InvalidBlockError
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.types import EMPTY_UNCLE_HASH, Block, Header, LegacyTx
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.rlp import encode as rlp_encode
from ethnode.trie import EMPTY_ROOT

ZERO_ADDRESS = bytes(20)
NOW = 1_000_000  # the injected clock: far after every test chain's timestamps
N_CASES = 24  # 23 EIP-225 cases + geth's extra "newbatch" case

# --- accounts -------------------------------------------------------------------------------

_KEYS: dict[str, PrivateKey] = {}


def key(name: str) -> PrivateKey:
    """A fixed key per account name (geth generates random ones; any distinct keys do)."""
    if name not in _KEYS:
        _KEYS[name] = PrivateKey(keccak256(b"ethnode clique test account " + name.encode()))
    return _KEYS[name]


def addr(name: str) -> bytes:
    return pubkey_to_address(key(name).node_id) if name else ZERO_ADDRESS


def sorted_addrs(names: Sequence[str]) -> list[bytes]:
    return sorted(addr(n) for n in names)


# --- chains ---------------------------------------------------------------------------------


def genesis_json(signers: Sequence[str], epoch: int = 0, period: int = 1, **extra_config: Any) -> dict[str, Any]:
    extra = bytes(EXTRA_VANITY) + b"".join(sorted_addrs(signers)) + bytes(EXTRA_SEAL)
    config = {
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
        "clique": {"period": period, "epoch": epoch},
        **extra_config,
    }
    return {"config": config, "difficulty": "0x1", "gasLimit": "0x47e7c4", "extraData": "0x" + extra.hex(), "alloc": {}}


class Clock:
    """The engine's clock in tests: stands still unless a test (or FakeSleep) moves it."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def new_chain(
    signers: Sequence[str], epoch: int = 0, period: int = 1, *, engine_kwargs: dict[str, Any] | None = None
) -> BlockChain:
    obj = genesis_json(signers, epoch, period)
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    config = ChainConfig.from_json(obj["config"])
    kwargs = {"clock": Clock(), **(engine_kwargs or {})}
    engine = Clique(config.clique_config, db, **kwargs)  # type: ignore[arg-type]
    return BlockChain(db, engine, config=config)


def unsigned_header(
    config: ChainConfig,
    parent: Header,
    *,
    coinbase: bytes = ZERO_ADDRESS,
    auth: bool = False,
    difficulty: int = DIFF_NO_TURN,
    checkpoint: Sequence[bytes] = (),
    time: int | None = None,
) -> Header:
    return Header(
        parent_hash=parent.hash,
        uncle_hash=EMPTY_UNCLE_HASH,
        coinbase=coinbase,
        state_root=parent.state_root,
        tx_root=EMPTY_ROOT,
        receipt_root=EMPTY_ROOT,
        bloom=bytes(256),
        difficulty=difficulty,
        number=parent.number + 1,
        gas_limit=parent.gas_limit,
        gas_used=0,
        time=parent.time + 10 if time is None else time,
        extra=bytes(EXTRA_VANITY) + b"".join(checkpoint) + bytes(EXTRA_SEAL),
        mix_digest=bytes(32),
        nonce=NONCE_AUTH_VOTE if auth else NONCE_DROP_VOTE,
        base_fee=calc_base_fee(config, parent) if config.is_london(parent.number + 1) else None,
    )


def sign(header: Header, name: str) -> Header:
    return with_seal(header, key(name).sign(seal_hash(header)))


def build_scenario_blocks(chain: BlockChain, case: dict[str, Any]) -> list[Block]:
    """The case's blocks, signed; difficulty from a reference snapshot replaying them."""
    engine = chain.engine
    assert isinstance(engine, Clique)
    genesis = chain.genesis
    ref = Snapshot(engine.epoch, 0, genesis.hash, sorted_addrs(case["signers"]))
    parent, blocks = genesis, []
    for vote in case["blocks"]:
        number, signer = parent.number + 1, addr(vote["signer"])
        header = unsigned_header(
            chain.config,
            parent,
            coinbase=addr(vote.get("voted", "")),
            auth=bool(vote.get("auth", False)),
            difficulty=DIFF_IN_TURN if ref.inturn(number, signer) else DIFF_NO_TURN,
            checkpoint=sorted_addrs(vote["checkpoint"]) if vote.get("checkpoint") is not None else (),
        )
        header = sign(header, vote["signer"])
        try:
            ref = ref.apply([header])
        except ConsensusError:
            pass  # the failing block of a failure case: nothing is built on it
        blocks.append(Block.new(header))
        parent = header
    return blocks


def batches_of(case: dict[str, Any], blocks: list[Block]) -> list[list[Block]]:
    batches: list[list[Block]] = [[]]
    for vote, block in zip(case["blocks"], blocks, strict=True):
        if vote.get("newbatch"):
            batches.append([])
        batches[-1].append(block)
    return batches


def scenario(case_id: int) -> dict[str, Any]:
    data = load_vector("clique", "eip225.json")
    cases = data["cases"] + data["extra_from_go_ethereum"]["cases"]
    assert len(cases) == N_CASES
    case = cases[case_id]
    assert case["id"] == case_id
    return case  # type: ignore[no-any-return]


class HeaderStore:
    """A header-only chain reader: what a header-first sync has before anything is stored."""

    def __init__(self, config: ChainConfig, headers: Sequence[Header]) -> None:
        self.config = config
        self.by_hash = {h.hash: h for h in headers}
        self.canonical = {h.number: h for h in headers}

    def add(self, headers: Sequence[Header]) -> None:
        for h in headers:
            self.by_hash[h.hash] = h
            self.canonical[h.number] = h

    def get_header(self, block_hash: bytes, number: int) -> Header | None:
        h = self.by_hash.get(block_hash)
        return h if h is not None and h.number == number else None

    def get_header_by_number(self, number: int) -> Header | None:
        return self.canonical.get(number)

    def get_td(self, block_hash: bytes, number: int) -> int | None:
        return None


# --- the EIP-225 scenarios ------------------------------------------------------------------


def test_vector_file_has_every_case() -> None:
    data = load_vector("clique", "eip225.json")
    cases = data["cases"] + data["extra_from_go_ethereum"]["cases"]
    assert [c["id"] for c in cases] == list(range(N_CASES))
    assert {c["failure"] for c in cases if c.get("failure")} <= set(BY_GETH_NAME)


@pytest.mark.parametrize("case_id", range(N_CASES))
def test_eip225_scenario_through_blockchain(case_id: int) -> None:
    case = scenario(case_id)
    chain = new_chain(case["signers"], case["epoch"])
    blocks = build_scenario_blocks(chain, case)
    *earlier, last = batches_of(case, blocks)
    for batch in earlier:
        chain.insert_chain(batch)
    if case.get("failure"):
        with pytest.raises(InvalidBlockError) as info:
            chain.insert_chain(last)
        assert type(info.value.cause) is BY_GETH_NAME[case["failure"]]
        assert info.value.number == blocks[-1].number  # only the last block is bad in every case
        return
    chain.insert_chain(last)
    head = chain.current_block
    assert head.hash == blocks[-1].hash
    snap = chain.engine.snapshot(chain, head.number, head.hash)  # type: ignore[attr-defined]
    assert snap.signer_list() == sorted_addrs(case["results"])


@pytest.mark.parametrize("case_id", range(N_CASES))
def test_eip225_scenario_through_verify_headers(case_id: int) -> None:
    case = scenario(case_id)
    obj = genesis_json(case["signers"], case["epoch"])
    genesis = Genesis.from_json(obj)
    config = genesis.config
    engine = Clique(config.clique_config, MemoryDB(), clock=lambda: NOW)  # type: ignore[arg-type]
    store = HeaderStore(config, [genesis.header])
    builder = new_chain(case["signers"], case["epoch"])  # same genesis: the same blocks
    assert builder.genesis.hash == genesis.hash
    batches = [[b.header for b in batch] for batch in batches_of(case, build_scenario_blocks(builder, case))]
    for batch in batches[:-1]:
        engine.verify_headers(store, batch)
        store.add(batch)
    if case.get("failure"):
        with pytest.raises(BY_GETH_NAME[case["failure"]]):
            engine.verify_headers(store, batches[-1])
        return
    engine.verify_headers(store, batches[-1])
    head = batches[-1][-1]
    store.add(batches[-1])
    assert engine.snapshot(store, head.number, head.hash).signer_list() == sorted_addrs(case["results"])


# --- seal hash ------------------------------------------------------------------------------


def _uint(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def test_seal_hash_is_the_header_without_the_seal_base_fee_included() -> None:
    chain = new_chain(["A"])
    h = sign(unsigned_header(chain.config, chain.genesis), "A")
    assert h.base_fee is not None
    fields = [
        h.parent_hash, h.uncle_hash, h.coinbase, h.state_root, h.tx_root, h.receipt_root, h.bloom,
        _uint(h.difficulty), _uint(h.number), _uint(h.gas_limit), _uint(h.gas_used), _uint(h.time),
        h.extra[:-EXTRA_SEAL], h.mix_digest, h.nonce, _uint(h.base_fee),
    ]
    assert clique_rlp(h) == rlp_encode(fields)
    assert seal_hash(h) == keccak256(rlp_encode(fields))
    assert seal_hash(h) == seal_hash(with_seal(h, bytes(65)))  # the seal does not sign itself
    assert chain.engine.author(h) == addr("A")
    with pytest.raises(cerr.MissingSignatureError):
        seal_hash(h.replace(extra=bytes(10)))
    with pytest.raises(ConsensusError, match="withdrawal"):
        seal_hash(h.replace(withdrawals_root=EMPTY_ROOT))


# --- sealing --------------------------------------------------------------------------------


class FakeSleep:
    """Records the delays ``seal`` waits and moves the clock on instead of sleeping."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.clock.now += delay


def _authorized_chain(
    signers: Sequence[str], me: str, *, epoch: int = 0, period: int = 1, rng: random.Random | None = None
) -> tuple[BlockChain, Clique, FakeSleep]:
    clock = Clock()
    sleep = FakeSleep(clock)
    chain = new_chain(
        signers, epoch, period, engine_kwargs={"clock": clock, "sleep": sleep, "rng": rng or random.Random(7)}
    )
    engine = chain.engine
    assert isinstance(engine, Clique)
    engine.authorize(addr(me), key(me).sign)
    return chain, engine, sleep


def _template(chain: BlockChain) -> Header:
    """A fresh header on the head, as the miner would start it (Clique fills the rest)."""
    head = chain.current_block
    return unsigned_header(chain.config, head, time=0).replace(extra=b"ethnode", difficulty=0)


def _mine(chain: BlockChain, engine: Clique, stop: asyncio.Event | None = None) -> Block | None:
    header = engine.prepare(chain, _template(chain))
    return asyncio.run(engine.seal(chain, Block.new(header), stop))


def test_prepare_seal_insert_round_trip() -> None:
    signers = ["A", "B", "C"]
    # Whoever is in turn for block 1 mines it: no wiggle, difficulty 2.
    first = next(n for n in signers if sorted_addrs(signers).index(addr(n)) == 1 % 3)
    chain, engine, sleep = _authorized_chain(signers, first)
    header = engine.prepare(chain, _template(chain))
    assert header.extra[:EXTRA_VANITY] == b"ethnode".ljust(EXTRA_VANITY, b"\x00")
    assert header.extra[EXTRA_VANITY:] == bytes(EXTRA_SEAL)
    assert header.difficulty == DIFF_IN_TURN and header.mix_digest == bytes(32)
    assert header.coinbase == ZERO_ADDRESS and header.nonce == NONCE_DROP_VOTE
    assert header.time == NOW  # parent time + period is long past
    sealed = asyncio.run(engine.seal(chain, Block.new(header), None))
    assert sealed is not None and sleep.delays == [0.0]
    assert engine.author(sealed.header) == addr(first)
    assert seal_hash(sealed.header) == seal_hash(header)
    chain.insert_chain([sealed])
    assert chain.current_block.hash == sealed.hash
    # The same signer is now "recent": it may not seal block 2 (limit 2 of 3 signers).
    with pytest.raises(SignedRecentlyWaitError):
        _mine(chain, engine)


def test_difficulty_in_and_out_of_turn() -> None:
    signers = ["A", "B"]
    low, high = sorted_addrs(signers)
    name = {addr(n): n for n in signers}
    chain, engine, _ = _authorized_chain(signers, name[high])
    genesis = chain.genesis
    assert engine.calc_difficulty(chain, NOW, genesis) == DIFF_IN_TURN  # block 1: index 1 % 2
    engine.authorize(low, key(name[low]).sign)
    assert engine.calc_difficulty(chain, NOW, genesis) == DIFF_NO_TURN
    assert engine.prepare(chain, _template(chain)).difficulty == DIFF_NO_TURN
    # A header claiming the wrong turn is refused either way round.
    for signer, diff in ((name[low], DIFF_IN_TURN), (name[high], DIFF_NO_TURN)):
        bad = sign(unsigned_header(chain.config, genesis, difficulty=diff), signer)
        with pytest.raises(InvalidBlockError) as info:
            chain.insert_chain([Block.new(bad)])
        assert isinstance(info.value.cause, cerr.WrongDifficultyError)
    with pytest.raises(InvalidBlockError) as info:
        chain.insert_chain([Block.new(sign(unsigned_header(chain.config, genesis, difficulty=3), "A"))])
    assert isinstance(info.value.cause, cerr.InvalidDifficultyError)


def test_recent_signer_rule() -> None:
    signers = ["A", "B", "C", "D", "E"]  # limit 3: a signer waits two blocks between seals
    chain = new_chain(signers)
    engine = chain.engine
    assert isinstance(engine, Clique)
    order = ["A", "B", "A"]
    parent = chain.genesis
    ref = Snapshot(engine.epoch, 0, parent.hash, sorted_addrs(signers))
    headers = []
    for name in order:
        n = parent.number + 1
        h = sign(unsigned_header(chain.config, parent, difficulty=2 if ref.inturn(n, addr(name)) else 1), name)
        headers.append(h)
        parent = h
    chain.insert_chain([Block.new(h) for h in headers[:2]])
    with pytest.raises(InvalidBlockError) as info:  # A sealed block 1; block 3 is within 3 of it
        chain.insert_chain([Block.new(headers[2])])
    assert isinstance(info.value.cause, RecentlySignedError)
    snap = engine.snapshot(chain, 2, headers[1].hash)
    assert snap.recently_signed(3, addr("A")) and not snap.recently_signed(4, addr("A"))
    assert not snap.recently_signed(3, addr("C"))


def test_checkpoint_extra_data_and_rules() -> None:
    signers = ["A", "B"]
    chain, engine, _ = _authorized_chain(signers, "A", epoch=2)
    engine.propose(addr("C"), True)
    h1 = engine.prepare(chain, _template(chain))
    assert h1.coinbase == addr("C") and h1.nonce == NONCE_AUTH_VOTE  # a vote on a normal block
    sealed1 = _mine(chain, engine)
    assert sealed1 is not None
    chain.insert_chain([sealed1])
    engine.authorize(addr("B"), key("B").sign)
    h2 = engine.prepare(chain, _template(chain))  # block 2 = checkpoint (epoch 2)
    assert h2.coinbase == ZERO_ADDRESS and h2.nonce == NONCE_DROP_VOTE  # no vote on checkpoints
    vanity = b"ethnode".ljust(EXTRA_VANITY, b"\x00")
    assert h2.extra == vanity + b"".join(sorted_addrs(signers)) + bytes(EXTRA_SEAL)
    parent = chain.current_block
    diff = h2.difficulty
    engine._clock.now += 60  # type: ignore[attr-defined]  # the hand-made headers are 10 s apart

    def bad(**changes: Any) -> type[Exception]:
        header = sign(unsigned_header(chain.config, parent, difficulty=diff, **changes), "B")
        with pytest.raises(InvalidBlockError) as info:
            chain.insert_chain([Block.new(header)])
        return type(info.value.cause)

    assert bad(checkpoint=sorted_addrs(["A"])) is cerr.MismatchingCheckpointSignersError
    assert bad(checkpoint=sorted_addrs(["A", "B", "C"])) is cerr.MismatchingCheckpointSignersError
    assert bad(checkpoint=sorted_addrs(signers), coinbase=addr("C")) is cerr.InvalidCheckpointBeneficiaryError
    assert bad(checkpoint=sorted_addrs(signers), auth=True) is cerr.InvalidCheckpointVoteError
    odd = unsigned_header(chain.config, parent, difficulty=diff)
    odd = sign(odd.replace(extra=bytes(EXTRA_VANITY + 7 + EXTRA_SEAL)), "B")
    with pytest.raises(InvalidBlockError) as info:
        chain.insert_chain([Block.new(odd)])
    assert isinstance(info.value.cause, cerr.InvalidCheckpointSignersError)
    sealed2 = asyncio.run(engine.seal(chain, Block.new(h2), None))
    assert sealed2 is not None
    chain.insert_chain([sealed2])
    # Block 3 is not a checkpoint: a signer list there is refused.
    with pytest.raises(InvalidBlockError) as info:
        header = unsigned_header(chain.config, sealed2.header, checkpoint=sorted_addrs(signers))
        chain.insert_chain([Block.new(sign(header, "A"))])
    assert isinstance(info.value.cause, cerr.ExtraSignersError)


def test_header_shape_rules() -> None:
    chain = new_chain(["A"], period=5)
    g = chain.genesis
    ok = unsigned_header(chain.config, g, difficulty=DIFF_IN_TURN)

    def cause(header: Header) -> type[Exception]:
        with pytest.raises(InvalidBlockError) as info:
            chain.insert_chain([Block.new(header)])
        return type(info.value.cause)

    assert cause(sign(ok.replace(nonce=b"\x01" * 8), "A")) is cerr.InvalidVoteError
    assert cause(ok.replace(extra=bytes(31))) is cerr.MissingVanityError
    assert cause(ok.replace(extra=bytes(EXTRA_VANITY + 64))) is cerr.MissingSignatureError
    assert cause(sign(ok.replace(mix_digest=b"\x01" * 32), "A")) is cerr.InvalidMixDigestError
    assert cause(sign(ok.replace(uncle_hash=bytes(32)), "A")) is cerr.InvalidUncleHashError
    assert cause(sign(ok.replace(time=g.time + 4), "A")) is cerr.InvalidTimestampError  # period 5
    assert cause(sign(ok.replace(time=NOW + 1), "A")) is FutureBlockError
    assert cause(sign(ok, "B")) is cerr.UnauthorizedSignerError
    assert cause(sign(ok.replace(parent_hash=bytes(32)), "A")) is UnknownAncestorError
    chain.insert_chain([Block.new(sign(ok, "A"))])
    uncle_block = Block.new(sign(unsigned_header(chain.config, chain.current_block, difficulty=2), "A"), uncles=[g])
    with pytest.raises(InvalidBlockError, match="uncles not allowed"):
        chain.insert_chain([uncle_block])


def test_votes_from_proposals() -> None:
    chain, engine, _ = _authorized_chain(["A", "B"], "A", rng=random.Random(1))
    engine.propose(addr("A"), True)  # already a signer: adding it changes nothing, no vote
    assert engine.prepare(chain, _template(chain)).coinbase == ZERO_ADDRESS
    engine.propose(addr("B"), False)
    engine.propose(addr("C"), True)
    seen = {(h.coinbase, h.nonce) for h in (engine.prepare(chain, _template(chain)) for _ in range(20))}
    assert seen == {(addr("B"), NONCE_DROP_VOTE), (addr("C"), NONCE_AUTH_VOTE)}
    engine.discard(addr("B"))
    engine.discard(addr("C"))
    assert engine.prepare(chain, _template(chain)).coinbase == ZERO_ADDRESS


def test_seal_refusals() -> None:
    chain, engine, _ = _authorized_chain(["A"], "B")
    with pytest.raises(UnauthorizedSignerError):
        _mine(chain, engine)
    fresh = new_chain(["A"])
    assert isinstance(fresh.engine, Clique)
    with pytest.raises(NoSignerError):
        _mine(fresh, fresh.engine)
    idle, idle_engine, _ = _authorized_chain(["A"], "A", period=0)
    with pytest.raises(WaitTransactionsError):  # period 0: no empty blocks
        _mine(idle, idle_engine)
    header = idle_engine.prepare(idle, _template(idle))
    tx = LegacyTx(0, 10**9, 21000, bytes(20), 1, b"", 0, 0, 0).sign(key("A"), 1337)
    with_tx = Block.new(header, [tx])
    sealed = asyncio.run(idle_engine.seal(idle, with_tx, None))
    assert sealed is not None and sealed.transactions == (tx,)


def test_out_of_turn_delay_is_bounded_and_stop_abandons() -> None:
    signers = ["A", "B", "C"]  # wiggle = (3 // 2 + 1) * 500 ms = 1 s
    low, mid, high = sorted_addrs(signers)
    name = {addr(n): n for n in signers}
    wiggle = (len(signers) // 2 + 1) * WIGGLE_TIME
    chain, engine, sleep = _authorized_chain(signers, name[low], rng=random.Random(3))
    header = engine.prepare(chain, _template(chain))  # block 1: index 1 is in turn, index 0 is not
    assert header.difficulty == DIFF_NO_TURN
    snap = engine.snapshot(chain, 0, chain.genesis.hash)
    ahead = header.replace(time=NOW + 3)  # the slot is 3 s away
    delays = [engine.seal_delay(snap, ahead) for _ in range(500)]
    assert all(3 <= d < 3 + wiggle for d in delays) and max(delays) - min(delays) > wiggle / 2

    class Edge(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def random(self) -> float:
            return self.value

    for value, want in ((0.0, 3.0), (0.999999, 3 + wiggle * 0.999999)):
        sleep.clock.now = NOW  # FakeSleep moved it on
        engine._rng = Edge(value)
        assert engine.seal_delay(snap, ahead) == pytest.approx(want)
        asyncio.run(engine.seal(chain, Block.new(ahead), None))
        assert sleep.delays[-1] == pytest.approx(want)
    sleep.clock.now = NOW
    in_turn = ahead.replace(difficulty=DIFF_IN_TURN)
    assert engine.seal_delay(snap, in_turn) == 3.0  # in turn: no wiggle
    assert engine.seal_delay(snap, header.replace(time=NOW - 5, difficulty=DIFF_IN_TURN)) == 0.0  # late: go now

    async def stopped() -> Block | None:
        stop = asyncio.Event()
        stop.set()
        return await engine.seal(chain, Block.new(ahead), stop)

    assert asyncio.run(stopped()) is None

    async def stopped_while_waiting() -> Block | None:
        real = Clique(engine.config, clock=lambda: NOW)  # real asyncio.sleep, stopped at once
        real.authorize(low, key(name[low]).sign)
        stop = asyncio.Event()
        task = asyncio.ensure_future(real.seal(chain, Block.new(ahead), stop))
        await asyncio.sleep(0)
        stop.set()
        return await asyncio.wait_for(task, 1)

    assert asyncio.run(stopped_while_waiting()) is None


# --- snapshots: cache, storage, reload --------------------------------------------------------


def test_snapshot_json_round_trip_with_votes() -> None:
    chain = new_chain(["A", "B", "C"])
    parent, headers = chain.genesis, []
    ref = Snapshot(EPOCH_LENGTH, 0, parent.hash, sorted_addrs(["A", "B", "C"]))
    for signer, voted, auth in (("A", "D", True), ("B", "C", False)):
        n = parent.number + 1
        diff = 2 if ref.inturn(n, addr(signer)) else 1
        h = sign(unsigned_header(chain.config, parent, coinbase=addr(voted), auth=auth, difficulty=diff), signer)
        ref = ref.apply([h])
        headers.append(h)
        parent = h
    assert len(ref.votes) == 2 and len(ref.tally) == 2 and len(ref.recents) == 2
    db = MemoryDB()
    ref.store(db)
    loaded = Snapshot.load(EPOCH_LENGTH, db, ref.hash)
    assert loaded is not None and loaded.to_json() == ref.to_json()
    assert set(ref.to_json()) == {"number", "hash", "signers", "recents", "votes", "tally"}
    db.put(snapshot_key(b"\x01" * 32), b"{not json")
    assert Snapshot.load(EPOCH_LENGTH, db, b"\x01" * 32) is None


def test_snapshots_stored_at_genesis_and_every_1024_blocks_and_reloaded() -> None:
    obj = genesis_json(["A"])
    genesis = Genesis.from_json(obj)
    config = genesis.config
    db = MemoryDB()
    engine = Clique(config.clique_config, db, clock=lambda: NOW)  # type: ignore[arg-type]
    headers = [genesis.header]
    for _ in range(CHECKPOINT_INTERVAL + 1):
        headers.append(sign(unsigned_header(config, headers[-1], difficulty=DIFF_IN_TURN), "A"))
    store = HeaderStore(config, headers[:1])
    engine.verify_headers(store, headers[1:])  # one unstored batch: snapshots from the headers in hand
    store.add(headers[1:])
    head = headers[-1]
    assert engine.snapshot(store, head.number, head.hash).signer_list() == [addr("A")]
    assert db.get(snapshot_key(genesis.hash)) is not None  # the trusted genesis snapshot
    checkpoint = headers[CHECKPOINT_INTERVAL]
    assert db.get(snapshot_key(checkpoint.hash)) is not None  # block 1024
    assert db.get(snapshot_key(headers[CHECKPOINT_INTERVAL - 1].hash)) is None
    # A restarted engine over a chain that no longer has the old headers: the stored
    # snapshot at 1024 is all it needs to judge block 1026.
    reborn = Clique(config.clique_config, db, clock=lambda: NOW)  # type: ignore[arg-type]
    pruned = HeaderStore(config, headers[CHECKPOINT_INTERVAL:])
    nxt = sign(unsigned_header(config, head, difficulty=DIFF_IN_TURN), "A")
    reborn.verify_header(pruned, nxt, head)
    assert reborn.snapshot(pruned, nxt.number - 1, head.hash).number == CHECKPOINT_INTERVAL + 1
    # Without the stored snapshot the same walk has nowhere to start.
    empty = Clique(config.clique_config, MemoryDB(), clock=lambda: NOW)  # type: ignore[arg-type]
    with pytest.raises(UnknownAncestorError):
        empty.verify_header(pruned, nxt, head)


def test_snapshot_cache_is_bounded_and_reused() -> None:
    chain = new_chain(["A"])
    engine = chain.engine
    assert isinstance(engine, Clique)
    blocks, parent = [], chain.genesis
    for _ in range(5):
        parent = sign(unsigned_header(chain.config, parent, difficulty=DIFF_IN_TURN), "A")
        blocks.append(Block.new(parent))
    chain.insert_chain(blocks)
    assert blocks[-2].hash in engine.recents  # the parent snapshot of each verified block
    snap = engine.snapshot(chain, 4, blocks[3].hash)
    assert engine.snapshot(chain, 4, blocks[3].hash) is snap  # served from the cache
    assert engine.recents.size == 128 and engine.signatures.size == 4096


def test_chain_reopened_on_the_same_db_keeps_verifying() -> None:
    chain = new_chain(["A", "B"])
    parent, ref = chain.genesis, None
    ref = Snapshot(EPOCH_LENGTH, 0, parent.hash, sorted_addrs(["A", "B"]))
    blocks = []
    for name in ("A", "B", "A"):
        n = parent.number + 1
        parent = sign(unsigned_header(chain.config, parent, difficulty=2 if ref.inturn(n, addr(name)) else 1), name)
        ref = ref.apply([parent])
        blocks.append(Block.new(parent))
    chain.insert_chain(blocks[:2])
    reopened = open_chain(chain.db)  # engine from the stored config, snapshots in the same db
    assert isinstance(reopened.engine, Clique)
    reopened.engine._clock = lambda: NOW  # type: ignore[attr-defined]
    reopened.insert_chain(blocks[2:])
    assert reopened.current_block.hash == blocks[2].hash


# --- config, engine choice, API -------------------------------------------------------------


def test_config_and_create_engine() -> None:
    cfg = ChainConfig.from_json({"chainId": 5, "clique": {"period": 15, "epoch": 30000}})
    assert cfg.clique_config == CliqueConfig(period=15, epoch=30000)
    assert cfg.clique == {"period": 15, "epoch": 30000}
    with pytest.raises(ChainConfigError, match="clique.period"):
        ChainConfig.from_json({"chainId": 5, "clique": {"period": -1}})
    with pytest.raises(ChainConfigError, match="clique"):
        ChainConfig.from_json({"chainId": 5, "clique": 3})
    engine = create_engine(ChainConfig(chain_id=5, clique={}))
    assert isinstance(engine, Clique) and engine.epoch == EPOCH_LENGTH and engine.period == 0
    merged = create_engine(ChainConfig(chain_id=5, clique={"period": 1}, terminal_total_difficulty=10))
    assert isinstance(merged, Beacon) and isinstance(merged.ethone, Clique)
    assert ChainConfig(chain_id=1).clique_config is None


def test_api() -> None:
    signers = ["A", "B"]
    chain, engine, _ = _authorized_chain(signers, "A")
    api = engine.api(chain)
    assert isinstance(api, CliqueAPI)
    want = ["0x" + a.hex() for a in sorted_addrs(signers)]
    assert api.get_signers() == want == api.get_signers(0) == api.get_signers_at_hash(chain.genesis.hash)
    api.propose(addr("C"), True)
    assert api.proposals() == {"0x" + addr("C").hex(): True}
    sealed = _mine(chain, engine)
    assert sealed is not None
    chain.insert_chain([sealed])
    engine.authorize(addr("B"), key("B").sign)
    sealed = _mine(chain, engine)
    assert sealed is not None
    chain.insert_chain([sealed])
    assert api.get_signers() == ["0x" + a.hex() for a in sorted_addrs(["A", "B", "C"])]  # C voted in
    api.discard(addr("C"))
    assert api.proposals() == {}
    snap = api.get_snapshot()
    assert snap["number"] == 2 and len(snap["signers"]) == 3 and snap == api.get_snapshot_at_hash(sealed.hash)
    assert api.get_signer() == "0x" + addr("B").hex() == api.get_signer(2) == api.get_signer(sealed.hash)
    assert api.get_signer(rlp=sealed.encode()) == api.get_signer(rlp=sealed.header.encode())
    status = api.status()
    assert status["numBlocks"] == 1 and set(status["sealerActivity"]) == set(snap["signers"])
    assert status["sealerActivity"]["0x" + addr("A").hex()] == 1
    with pytest.raises(cerr.UnknownBlockError):
        api.get_signers(99)
    assert set(METHODS) >= {"clique_getSigners", "clique_propose", "clique_discard", "clique_status"}
    assert all(hasattr(api, m) for m in METHODS.values())
