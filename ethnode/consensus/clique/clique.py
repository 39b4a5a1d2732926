"""The Clique proof-of-authority engine (EIP-225, geth ``consensus/clique/clique.go``).

Verification: a header's seal is a signature in its extra-data; the signer must be in the
snapshot of its parent, must not have sealed one of the last len(signers)/2+1 blocks, and
must claim difficulty 2 exactly when it is its turn (number % len(signers) == its index in
the sorted signer list), 1 otherwise. Every ``epoch`` blocks a checkpoint lists the signers
in extra-data and resets the votes.

Sealing: ``prepare`` fills the consensus fields of a new header (difficulty for our turn,
the extra-data layout, a vote from our proposals); ``seal`` signs it and waits until its
timestamp, plus a random wiggle when out of turn so that concurrent out-of-turn signers
rarely collide.

Snapshots are cached in memory (128) and stored every 1024 blocks and at the genesis or a
trusted checkpoint, so a restart replays at most 1023 headers.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time as _time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ethnode.consensus.clique.errors import (
    ExtraSignersError,
    InvalidCheckpointBeneficiaryError,
    InvalidCheckpointSignersError,
    InvalidCheckpointVoteError,
    InvalidDifficultyError,
    InvalidMixDigestError,
    InvalidTimestampError,
    InvalidUncleHashError,
    InvalidVoteError,
    MismatchingCheckpointSignersError,
    MissingSignatureError,
    MissingVanityError,
    NoSignerError,
    RecentlySignedError,
    SignedRecentlyWaitError,
    UnauthorizedSignerError,
    UnknownBlockError,
    WaitTransactionsError,
    WrongDifficultyError,
)
from ethnode.consensus.clique.seal import (
    ADDRESS_LENGTH,
    EXTRA_SEAL,
    EXTRA_VANITY,
    INMEMORY_SIGNATURES,
    LRU,
    SignFn,
    ecrecover,
    seal_hash,
    with_seal,
)
from ethnode.consensus.clique.snapshot import NONCE_AUTH_VOTE, NONCE_DROP_VOTE, Snapshot
from ethnode.consensus.engine import (
    ChainHeaderReader,
    ChainReader,
    ConsensusError,
    Engine,
    FutureBlockError,
    UnknownAncestorError,
)
from ethnode.core.chainconfig import CliqueConfig
from ethnode.core.eip1559 import MAX_GAS_LIMIT, verify_eip1559_header, verify_gas_limit
from ethnode.core.rawdb.memorydb import MemoryDB
from ethnode.core.rawdb.store import KeyValueStore
from ethnode.core.types.block import Block
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header

if TYPE_CHECKING:  # the API module imports this one
    from ethnode.consensus.clique.api import CliqueAPI

EPOCH_LENGTH = 30000  # geth epochLength: default blocks between checkpoints
CHECKPOINT_INTERVAL = 1024  # geth checkpointInterval: store the snapshot every 1024 blocks
INMEMORY_SNAPSHOTS = 128  # geth inmemorySnapshots: recent snapshots kept (reorgs, sealing)
WIGGLE_TIME = 0.5  # seconds; geth wiggleTime 500 ms: out-of-turn delay per half of the signers
DIFF_IN_TURN = 2  # geth diffInTurn
DIFF_NO_TURN = 1  # geth diffNoTurn
FULL_IMMUTABILITY_THRESHOLD = 90000  # geth params.FullImmutabilityThreshold: deepest reorg considered
ZERO_ADDRESS = bytes(20)
ZERO_HASH = bytes(32)


class CliqueChainReader(ChainHeaderReader, Protocol):
    """The chain as Clique reads it: also canonical headers by number (checkpoint trust)."""

    def get_header_by_number(self, number: int) -> Header | None: ...


def calc_difficulty(snap: Snapshot, signer: bytes) -> int:
    """2 if ``signer`` is in turn for the block after ``snap``, else 1."""
    return DIFF_IN_TURN if snap.inturn(snap.number + 1, signer) else DIFF_NO_TURN


def checkpoint_signers(header: Header) -> list[bytes]:
    """The signer addresses a checkpoint header lists between vanity and seal."""
    body = bytes(header.extra[EXTRA_VANITY : len(header.extra) - EXTRA_SEAL])
    return [body[i : i + ADDRESS_LENGTH] for i in range(0, len(body) - len(body) % ADDRESS_LENGTH, ADDRESS_LENGTH)]


async def _sleep_or_stop(sleep: Callable[[float], Awaitable[object]], delay: float, stop: asyncio.Event | None) -> bool:
    """Wait ``delay`` seconds; False if ``stop`` was set first (the sealing was abandoned)."""
    if stop is None:
        await sleep(delay)
        return True
    if stop.is_set():
        return False
    sleeper = asyncio.ensure_future(sleep(delay))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stopper):
            task.cancel()
    return not stop.is_set()


class Clique(Engine):
    """The proof-of-authority engine. ``db`` holds stored snapshots (an in-memory store if None).

    ``clock`` (unix seconds), ``rng`` and ``sleep`` are injectable so tests judge future blocks,
    vote picks and sealing delays without real time passing.
    """

    name = "clique"
    verifies_seal = True

    def __init__(
        self,
        config: CliqueConfig,
        db: KeyValueStore | None = None,
        *,
        clock: Callable[[], float] = _time.time,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.period = config.period
        self.epoch = config.epoch or EPOCH_LENGTH
        self.config = CliqueConfig(period=self.period, epoch=self.epoch)
        self.db: KeyValueStore = db if db is not None else MemoryDB()
        self.recents: LRU[bytes, Snapshot] = LRU(INMEMORY_SNAPSHOTS)
        self.signatures: LRU[bytes, bytes] = LRU(INMEMORY_SIGNATURES)
        self.proposals: dict[bytes, bool] = {}  # accounts we vote on: True = add, False = drop
        self.signer = ZERO_ADDRESS
        self.sign_fn: SignFn | None = None
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._lock = threading.Lock()  # signer, sign_fn, proposals (RPC may run in another thread)
        self._snap_lock = threading.RLock()  # snapshot caches

    # --- signer and votes (the miner and the clique_ RPC API) -------------------------

    def authorize(self, signer: bytes, sign_fn: SignFn) -> None:
        """Seal with ``signer``'s key: ``sign_fn(seal_hash) -> 65-byte signature``."""
        with self._lock:
            self.signer = bytes(signer)
            self.sign_fn = sign_fn

    def propose(self, address: bytes, auth: bool) -> None:
        """Vote to add (``auth``) or drop ``address`` in the blocks we seal, until discarded."""
        with self._lock:
            self.proposals[bytes(address)] = bool(auth)

    def discard(self, address: bytes) -> None:
        """Stop voting on ``address``."""
        with self._lock:
            self.proposals.pop(bytes(address), None)

    def current_proposals(self) -> dict[bytes, bool]:
        """A copy of the accounts we vote on (True = add, False = drop)."""
        with self._lock:
            return dict(self.proposals)

    # --- Engine ----------------------------------------------------------------------

    def author(self, header: Header) -> bytes:
        """The signer recovered from the seal: who sealed the block (and receives its fees)."""
        return ecrecover(header, self.signatures)

    def seal_hash(self, header: Header) -> bytes:
        return seal_hash(header)

    def verify_header(self, chain: ChainHeaderReader, header: Header, parent: Header) -> None:
        self._verify_header(chain, header, [parent])  # type: ignore[arg-type]

    def verify_headers(self, chain: CliqueChainReader, headers: Sequence[Header]) -> None:
        """Verify a run of consecutive headers none of which need be stored yet."""
        for i, header in enumerate(headers):
            self._verify_header(chain, header, headers[:i])

    def verify_uncles(self, chain: ChainReader, block: Block) -> None:
        if block.uncles:
            raise ConsensusError("uncles not allowed")

    def calc_difficulty(self, chain: ChainHeaderReader, time: int, parent: Header) -> int:
        snap = self.snapshot(chain, parent.number, parent.hash, [parent])  # type: ignore[arg-type]
        with self._lock:
            signer = self.signer
        return calc_difficulty(snap, signer)

    # --- verification ----------------------------------------------------------------

    def _verify_header(self, chain: CliqueChainReader, header: Header, parents: Sequence[Header]) -> None:
        number = header.number
        if header.time > self._clock():
            raise FutureBlockError()
        checkpoint = number % self.epoch == 0
        if checkpoint and header.coinbase != ZERO_ADDRESS:
            raise InvalidCheckpointBeneficiaryError()
        if header.nonce not in (NONCE_AUTH_VOTE, NONCE_DROP_VOTE):
            raise InvalidVoteError()
        if checkpoint and header.nonce != NONCE_DROP_VOTE:
            raise InvalidCheckpointVoteError()
        extra_len = len(header.extra)
        if extra_len < EXTRA_VANITY:
            raise MissingVanityError()
        if extra_len < EXTRA_VANITY + EXTRA_SEAL:
            raise MissingSignatureError()
        signers_bytes = extra_len - EXTRA_VANITY - EXTRA_SEAL
        if not checkpoint and signers_bytes != 0:
            raise ExtraSignersError()
        if checkpoint and signers_bytes % ADDRESS_LENGTH != 0:
            raise InvalidCheckpointSignersError()
        if header.mix_digest != ZERO_HASH:
            raise InvalidMixDigestError()
        if header.uncle_hash != EMPTY_UNCLE_HASH:
            raise InvalidUncleHashError()
        if number > 0 and header.difficulty not in (DIFF_IN_TURN, DIFF_NO_TURN):
            raise InvalidDifficultyError()
        if header.gas_limit > MAX_GAS_LIMIT:
            raise ConsensusError(f"invalid gasLimit: have {header.gas_limit}, max {MAX_GAS_LIMIT}")
        config = chain.config
        if config.is_shanghai(number, header.time):
            raise ConsensusError("clique does not support shanghai fork")
        if header.withdrawals_root is not None:
            raise ConsensusError(f"invalid withdrawalsHash: have {header.withdrawals_root.hex()}, expected nil")
        if config.is_cancun(number, header.time):
            raise ConsensusError("clique does not support cancun fork")
        if header.excess_blob_gas is not None:
            raise ConsensusError(f"invalid excessBlobGas: have {header.excess_blob_gas}, expected nil")
        if header.blob_gas_used is not None:
            raise ConsensusError(f"invalid blobGasUsed: have {header.blob_gas_used}, expected nil")
        if header.parent_beacon_root is not None:
            raise ConsensusError(f"invalid parentBeaconRoot, have 0x{header.parent_beacon_root.hex()}, expected nil")
        self._verify_cascading_fields(chain, header, parents)

    def _verify_cascading_fields(self, chain: CliqueChainReader, header: Header, parents: Sequence[Header]) -> None:
        number = header.number
        if number == 0:
            return  # the genesis block is valid by definition
        parent = parents[-1] if parents else chain.get_header(header.parent_hash, number - 1)
        if parent is None or parent.number != number - 1 or parent.hash != header.parent_hash:
            raise UnknownAncestorError()
        if parent.time + self.period > header.time:
            raise InvalidTimestampError()
        if header.gas_used > header.gas_limit:
            raise ConsensusError(f"invalid gasUsed: have {header.gas_used}, gasLimit {header.gas_limit}")
        config = chain.config
        if not config.is_london(number):
            if header.base_fee is not None:
                raise ConsensusError(f"invalid baseFee before fork: have {header.base_fee}, want <nil>")
            verify_gas_limit(parent.gas_limit, header.gas_limit)
        else:
            verify_eip1559_header(config, parent, header)
        snap = self.snapshot(chain, number - 1, header.parent_hash, parents)
        if number % self.epoch == 0:
            listed = bytes(header.extra[EXTRA_VANITY : len(header.extra) - EXTRA_SEAL])
            if listed != b"".join(snap.signer_list()):
                raise MismatchingCheckpointSignersError()
        self._verify_seal(snap, header)

    def _verify_seal(self, snap: Snapshot, header: Header) -> None:
        number = header.number
        if number == 0:
            raise UnknownBlockError()
        signer = ecrecover(header, self.signatures)
        if signer not in snap.signers:
            raise UnauthorizedSignerError()
        if snap.recently_signed(number, signer):
            raise RecentlySignedError()
        want = DIFF_IN_TURN if snap.inturn(number, signer) else DIFF_NO_TURN
        if header.difficulty != want:
            raise WrongDifficultyError()

    # --- snapshots -------------------------------------------------------------------

    def snapshot(
        self, chain: CliqueChainReader, number: int, block_hash: bytes, parents: Sequence[Header] = ()
    ) -> Snapshot:
        """The authorization state after block ``number`` / ``block_hash``.

        ``parents`` (ascending) are headers not necessarily stored yet, ending with that block.
        Walks back to a cached, stored or trusted snapshot, then replays the headers forward.
        """
        with self._snap_lock:
            return self._snapshot(chain, number, block_hash, parents)

    def _snapshot(
        self, chain: CliqueChainReader, number: int, block_hash: bytes, parents: Sequence[Header]
    ) -> Snapshot:
        headers: list[Header] = []
        snap: Snapshot | None = None
        remaining = len(parents)  # parents[:remaining] not yet walked, newest last
        while snap is None:
            snap = self.recents.get(block_hash)
            if snap is not None:
                break
            if number % CHECKPOINT_INTERVAL == 0:
                snap = Snapshot.load(self.epoch, self.db, block_hash, self.signatures)
                if snap is not None:
                    break
            # The genesis, or a checkpoint we must trust: its parent is missing (a chain
            # started from a checkpoint), or more headers piled up than any reorg could undo.
            if number == 0 or (
                number % self.epoch == 0
                and (len(headers) > FULL_IMMUTABILITY_THRESHOLD or chain.get_header_by_number(number - 1) is None)
            ):
                checkpoint = chain.get_header(block_hash, number)
                if checkpoint is not None:
                    snap = Snapshot(
                        self.epoch, number, checkpoint.hash, checkpoint_signers(checkpoint), sigcache=self.signatures
                    )
                    snap.store(self.db)
                    break
            if remaining:
                remaining -= 1
                header = parents[remaining]
                if header.hash != block_hash or header.number != number:
                    raise UnknownAncestorError()
            else:
                found = chain.get_header(block_hash, number)
                if found is None:
                    raise UnknownAncestorError()
                header = found
            headers.append(header)
            number, block_hash = number - 1, header.parent_hash
        headers.reverse()
        snap = snap.apply(headers)
        self.recents.add(snap.hash, snap)
        if headers and snap.number % CHECKPOINT_INTERVAL == 0:
            snap.store(self.db)
        return snap

    # --- sealing ---------------------------------------------------------------------

    def prepare(self, chain: CliqueChainReader, header: Header) -> Header:
        """``header`` with Clique's fields filled in: vote, difficulty, extra-data, time.

        The vote is a random one of our proposals that would change something; checkpoint
        blocks carry no vote but the signer list. The time is the parent's plus the period,
        or now if that has passed.
        """
        number = header.number
        snap = self.snapshot(chain, number - 1, header.parent_hash)
        coinbase, nonce = ZERO_ADDRESS, NONCE_DROP_VOTE
        with self._lock:
            if number % self.epoch != 0:
                candidates = [a for a, auth in self.proposals.items() if snap.valid_vote(a, auth)]
                if candidates:
                    coinbase = self._rng.choice(candidates)
                    nonce = NONCE_AUTH_VOTE if self.proposals[coinbase] else NONCE_DROP_VOTE
            signer = self.signer
        extra = bytes(header.extra[:EXTRA_VANITY]).ljust(EXTRA_VANITY, b"\x00")
        if number % self.epoch == 0:
            extra += b"".join(snap.signer_list())
        extra += bytes(EXTRA_SEAL)
        parent = chain.get_header(header.parent_hash, number - 1)
        if parent is None:
            raise UnknownAncestorError()
        time = max(parent.time + self.period, int(self._clock()))
        return header.replace(  # type: ignore[no-any-return]
            coinbase=coinbase,
            nonce=nonce,
            difficulty=calc_difficulty(snap, signer),
            extra=extra,
            mix_digest=ZERO_HASH,
            time=time,
        )

    def seal_delay(self, snap: Snapshot, header: Header) -> float:
        """Seconds to wait before releasing ``header``: until its time, plus a wiggle if out of turn.

        The wiggle is uniform in [0, (len(signers)/2+1) * 500 ms): out-of-turn signers race
        only if the in-turn one is silent, and then rarely with each other.
        """
        delay = header.time - self._clock()
        if header.difficulty == DIFF_NO_TURN:
            wiggle = (len(snap.signers) // 2 + 1) * WIGGLE_TIME
            delay += self._rng.random() * wiggle
        return max(delay, 0.0)

    async def seal(
        self, chain: CliqueChainReader, block: Block, stop_event: asyncio.Event | None = None
    ) -> Block | None:
        """Sign a prepared block and return it once its time has come; None if ``stop_event`` fired.

        Raises ``UnauthorizedSignerError`` if we are not a signer, ``SignedRecentlyWaitError``
        if we sealed too recently (the miner waits for others' blocks), and
        ``WaitTransactionsError`` for an empty block on a period-0 chain.
        """
        header = block.header
        number = header.number
        if number == 0:
            raise UnknownBlockError()
        if self.period == 0 and not block.tx_items:
            raise WaitTransactionsError()
        with self._lock:
            signer, sign_fn = self.signer, self.sign_fn
        if sign_fn is None:
            raise NoSignerError()
        snap = self.snapshot(chain, number - 1, header.parent_hash)
        if signer not in snap.signers:
            raise UnauthorizedSignerError()
        if snap.recently_signed(number, signer):
            raise SignedRecentlyWaitError()
        delay = self.seal_delay(snap, header)
        sealed_header = with_seal(header, sign_fn(seal_hash(header)))
        if not await _sleep_or_stop(self._sleep, delay, stop_event):
            return None
        sealed = block.replace(header=sealed_header)
        if "transactions" in block.__dict__:  # keep the decoded txs the miner already has
            sealed.__dict__["transactions"] = block.__dict__["transactions"]
        return sealed  # type: ignore[no-any-return]

    def api(self, chain: CliqueChainReader) -> CliqueAPI:
        """The ``clique_`` RPC namespace over ``chain`` (geth's Clique.APIs)."""
        from ethnode.consensus.clique.api import CliqueAPI

        return CliqueAPI(chain, self)  # type: ignore[arg-type]

    def close(self) -> None:
        """Nothing to stop: Clique runs no background tasks."""


__all__ = [
    "Clique",
    "CliqueChainReader",
    "calc_difficulty",
    "checkpoint_signers",
    "EPOCH_LENGTH",
    "CHECKPOINT_INTERVAL",
    "INMEMORY_SNAPSHOTS",
    "WIGGLE_TIME",
    "DIFF_IN_TURN",
    "DIFF_NO_TURN",
]
