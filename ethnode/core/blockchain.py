"""The canonical chain: validated insertion of headers and blocks, fork choice, reorgs.

Shaped like geth's ``core.BlockChain``. Every block (or header) is written in one atomic
batch together with whatever it changes: total difficulty, hash -> number, and, when it
becomes the head, the canonical number -> hash entries, tx lookups and head pointers.
A crash therefore leaves the database at a block boundary: the head block exists and
every canonical ancestor is present.

Fork choice: before the merge the heavier chain (total difficulty) wins; after the
terminal total difficulty the consensus layer decides, so an inserted PoS block becomes
head when the caller says so (``set_head``, as ``import`` does) and ``set_canonical``
moves the head to any stored block (forkchoiceUpdated).

Execution: with an ``Executor`` (``execute=True``, what ``import`` and ``run`` use unless
``--noexec``) every block is executed on its parent's state before it is written; gas
used, bloom, receipts root, requests hash and state root must match the header, and the
block's state entries and receipts go into the block's own batch, so a rejected block
leaves nothing behind. Without one (the library default, and ``--noexec``) only the
header and body rules are checked; ``insert_chain`` logs that once per chain object.

Consensus: the engine is handed in (``ethnode.consensus.create_engine`` picks it for the
stored config, ``read_chain_config``), so the chain knows only the interface it calls,
``ethnode.core.consensus.ConsensusEngine``.

Events (geth's chain feeds): the chain posts its own head moves on ``events``, the node's
bus, so no caller has to notice them: a ``ChainEvent`` for every block that joins the
canonical chain and one ``ChainHeadEvent`` per call that leaves another head block
(an import batch, a reorg, a forkchoiceUpdated, a sealed block).
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Concatenate, NamedTuple, ParamSpec, TypeVar

from ethnode.core.block_validator import validate_body, validate_transactions
from ethnode.core.chainconfig import ChainConfig, ChainConfigError
from ethnode.core.configcompat import update_stored_config
from ethnode.core.consensus import ConsensusEngine, ConsensusError, UnknownAncestorError
from ethnode.core.eip1559 import HeaderRuleError
from ethnode.core.errors import (
    BlockValidationError,
    ChainError,
    ChainNotInitializedError,
    GenesisMismatchError,
    InvalidBlockError,
    UnknownBlockError,
)
from ethnode.core.events import ChainEvent, ChainHeadEvent
from ethnode.core.execution import BlockResult, Executor, create_executor, validate_state
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.rawdb.store import Batch, KeyValueStore
from ethnode.core.state import HeadState, StateDatabase, StateView, write_genesis_state
from ethnode.core.types.block import Block, Body
from ethnode.core.types.header import Header, HeaderError
from ethnode.core.types.receipt import Receipt
from ethnode.core.types.signer import make_signer
from ethnode.core.types.transaction import Transaction, TransactionError
from ethnode.event import EventSink

log = logging.getLogger("ethnode.core.blockchain")

STATE_ROOT_WARNING = "state root not verified: blocks are not executed (--noexec)"
NO_GENESIS = "database has no genesis block (run `ethnode-fast init GENESIS.json`)"
HEADER_CACHE_SIZE = 2048  # recent headers kept decoded (geth headerCacheLimit is 512; ours are cheap)

_REJECTIONS = (ConsensusError, HeaderRuleError, BlockValidationError, TransactionError, HeaderError)


_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass
class InsertStats:
    """What one ``insert_chain``/``insert_headers`` call did."""

    written: int = 0  # new blocks (or headers) stored
    known: int = 0  # already stored, skipped


def setup_genesis(db: KeyValueStore, genesis: Genesis, genesis_json: Mapping[str, Any]) -> bytes:
    """Write the genesis block and spec into an empty database; check it matches otherwise.

    Returns the genesis hash. ``genesis_json`` is the decoded genesis file, kept so the
    chain config can be rebuilt without it (geth stores the config the same way).
    """
    block_hash = genesis.hash
    stored = rawdb.read_canonical_hash(db, 0)
    if stored is not None:
        if stored != block_hash:
            raise GenesisMismatchError(stored, block_hash)
        update_stored_config(db, block_hash, genesis_json)
        return block_hash
    header = genesis.header
    body = Body([], [], [] if header.withdrawals_root is not None else None)
    batch = db.new_batch()
    write_genesis_state(batch, genesis)  # the allocation's trie nodes and code: block 1 executes on them
    rawdb.write_header(batch, header)
    rawdb.write_body(batch, block_hash, 0, body.encode())
    rawdb.write_td(batch, block_hash, 0, header.difficulty)
    rawdb.write_canonical_hash(batch, block_hash, 0)
    rawdb.write_head_header_hash(batch, block_hash)
    rawdb.write_head_block_hash(batch, block_hash)
    rawdb.write_genesis_json(batch, block_hash, dict(genesis_json))
    batch.write()
    return block_hash


def read_chain_config(db: KeyValueStore) -> ChainConfig:
    """The chain config stored with the genesis (geth ``core.LoadChainConfig``).

    Read before the chain is opened because the consensus engine is chosen by it.
    ``ChainNotInitializedError`` if the database holds no chain.
    """
    genesis_hash = rawdb.read_canonical_hash(db, 0)
    if genesis_hash is None:
        raise ChainNotInitializedError(NO_GENESIS)
    config_json = rawdb.read_chain_config_json(db, genesis_hash)
    if config_json is None:
        raise ChainNotInitializedError("database has no chain config for its genesis block")
    try:
        return ChainConfig.from_json(config_json)
    except ChainConfigError as exc:
        raise ChainError(f"stored chain config is invalid: {exc}") from None


class _Heads(NamedTuple):
    """The heads a write leaves, and the blocks it made canonical (ascending), for ``_apply_heads``."""

    header: Header
    header_td: int
    block: Header
    block_td: int
    joined: list[Header]


def _announces_head(
    method: Callable[Concatenate[BlockChain, _P], _R],
) -> Callable[Concatenate[BlockChain, _P], _R]:
    """Post one ``ChainHeadEvent`` when the call leaves another head block, even if it raised.

    geth fires one per insert batch, not per block: a sync batch is one head move to the
    pool, the peers and the filters. A batch that fails midway keeps (and announces) the
    blocks before the bad one.
    """

    @functools.wraps(method)
    def announcing(chain: BlockChain, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        before = chain._head_block
        try:
            return method(chain, *args, **kwargs)
        finally:
            head = chain._head_block
            if head.hash != before.hash and chain.events is not None:
                chain.events.post(ChainHeadEvent(head))

    return announcing


class BlockChain:
    """The chain over a database. Not thread-safe: one writer (the import, or the sync loop)."""

    def __init__(
        self,
        db: KeyValueStore,
        engine: ConsensusEngine,
        *,
        config: ChainConfig | None = None,
        events: EventSink | None = None,
        verify_senders: bool = True,
        execute: bool = False,
        executor: Executor | None = None,
        evm: str | None = None,
    ) -> None:
        """``engine``: the consensus rules (``ethnode.consensus.create_engine`` picks them for
        ``config``, which defaults to the stored one). ``events``: where head moves are posted,
        the node's bus; None for a chain nobody listens to (the import command). It stays a
        plain attribute so that a chain opened before its node (tests) can be pointed at the bus.
        ``execute`` runs every inserted block through the default executor (revm when the
        Rust extension has it, else py-evm), or the one ``evm`` names ("revm", "py-evm");
        ``executor`` supplies another one (and implies execution)."""
        self.db = db
        genesis_hash = rawdb.read_canonical_hash(db, 0)
        if genesis_hash is None:
            raise ChainNotInitializedError(NO_GENESIS)
        if config is None:
            config = read_chain_config(db)
        self.config = config
        self.engine = engine
        self.events = events
        self.verify_senders = verify_senders
        self._state_root_warned = False
        self._headers: OrderedDict[bytes, Header] = OrderedDict()
        genesis = self._read_header(genesis_hash, 0)
        if genesis is None:
            raise ChainError("genesis header missing from database")
        self.genesis = genesis
        self.state_db = StateDatabase(db)
        if executor is None and execute:
            self._ensure_genesis_state()
            executor = create_executor(config, self.state_db, self._read_header, evm)
        self.executor = executor
        self._load_heads()

    def _ensure_genesis_state(self) -> None:
        """Write the genesis allocation into a database initialised before state was stored."""
        if self.state_db.has_state(self.genesis.state_root):
            return
        spec = rawdb.read_genesis_json(self.db, self.genesis.hash)
        if spec is None:
            return
        genesis = Genesis.from_json(spec)
        if genesis.state_root != self.genesis.state_root:
            return
        batch = self.db.new_batch()
        write_genesis_state(batch, genesis)
        batch.write()
        log.info("Wrote genesis state root=0x%s", genesis.state_root.hex())

    # --- state on open ----------------------------------------------------------------

    def _load_heads(self) -> None:
        """Read the head pointers; fall back to the best consistent block if one is missing."""
        head = self._header_by_hash(rawdb.read_head_block_hash(self.db))
        if (
            head is None
            or not rawdb.has_body(self.db, head.hash, head.number)
            or not self._is_canonical(head)
        ):
            log.warning(
                "head block missing or not canonical, searching the canonical chain for the last full block"
            )
            head = self._last_full_canonical_block()
            batch = self.db.new_batch()
            rawdb.write_head_block_hash(batch, head.hash)
            batch.write()
        header_head = self._header_by_hash(rawdb.read_head_header_hash(self.db))
        if header_head is None or header_head.number < head.number or not self._is_canonical(header_head):
            header_head = head
        self._head_block = head
        self._head_block_td = self._td_or_fail(head)
        self._head_header = header_head
        self._head_header_td = self._td_or_fail(header_head)

    def _last_full_canonical_block(self) -> Header:
        header_head = self._header_by_hash(rawdb.read_head_header_hash(self.db))
        number = header_head.number if header_head is not None else 0
        while number > 0:
            h = rawdb.read_canonical_hash(self.db, number)
            if h is not None and rawdb.has_body(self.db, h, number):
                header = self._read_header(h, number)
                if header is not None:
                    return header
            number -= 1
        return self.genesis

    def _td_or_fail(self, header: Header) -> int:
        td = rawdb.read_td(self.db, header.hash, header.number)
        if td is None:
            raise ChainError(f"total difficulty of block #{header.number} missing from database")
        return td

    # --- reads (also the engine's ChainReader) ----------------------------------------

    @property
    def current_block(self) -> Header:
        """The head block's header (its body is stored)."""
        return self._head_block

    @property
    def current_header(self) -> Header:
        """The head of the header chain (at or ahead of the head block)."""
        return self._head_header

    @property
    def genesis_hash(self) -> bytes:
        return self.genesis.hash  # type: ignore[no-any-return]

    def _read_header(self, block_hash: bytes, number: int) -> Header | None:
        if number < 0:
            return None
        header = self._headers.get(block_hash)
        if header is not None:
            return header
        header = rawdb.read_header(self.db, block_hash, number)
        if header is not None:
            self._remember(header)
        return header

    def _remember(self, header: Header) -> None:
        self._headers[header.hash] = header
        if len(self._headers) > HEADER_CACHE_SIZE:
            self._headers.popitem(last=False)

    def _header_by_hash(self, block_hash: bytes | None) -> Header | None:
        if block_hash is None:
            return None
        number = rawdb.read_header_number(self.db, block_hash)
        return None if number is None else self._read_header(block_hash, number)

    def get_header(self, block_hash: bytes, number: int) -> Header | None:
        return self._read_header(block_hash, number)

    def get_header_by_hash(self, block_hash: bytes) -> Header | None:
        return self._header_by_hash(block_hash)

    def get_header_by_number(self, number: int) -> Header | None:
        h = rawdb.read_canonical_hash(self.db, number)
        return None if h is None else self._read_header(h, number)

    def get_canonical_hash(self, number: int) -> bytes | None:
        return rawdb.read_canonical_hash(self.db, number)

    def get_td(self, block_hash: bytes, number: int) -> int | None:
        return rawdb.read_td(self.db, block_hash, number)

    def get_block(self, block_hash: bytes, number: int) -> Block | None:
        header = self._read_header(block_hash, number)
        if header is None:
            return None
        body = rawdb.read_body(self.db, block_hash, number)
        return None if body is None else Block.from_body(header, body)

    def get_block_by_hash(self, block_hash: bytes) -> Block | None:
        number = rawdb.read_header_number(self.db, block_hash)
        return None if number is None else self.get_block(block_hash, number)

    def get_block_by_number(self, number: int) -> Block | None:
        h = rawdb.read_canonical_hash(self.db, number)
        return None if h is None else self.get_block(h, number)

    def has_block(self, block_hash: bytes, number: int) -> bool:
        return rawdb.has_body(self.db, block_hash, number) and rawdb.has_header(self.db, block_hash, number)

    def get_receipts(self, block_hash: bytes, number: int) -> list[Receipt] | None:
        return rawdb.read_receipts(self.db, block_hash, number)

    def write_receipts(self, block_hash: bytes, number: int, receipts: Iterable[Receipt]) -> None:
        """Store a block's receipts (the execution layer will call this; tests use it now)."""
        rawdb.write_receipts(self.db, block_hash, number, receipts)

    def get_transaction(self, tx_hash: bytes) -> tuple[Transaction, bytes, int, int] | None:
        """(tx, block hash, number, index) for a tx in the canonical chain, else None."""
        return rawdb.read_transaction(self.db, tx_hash)

    def _is_canonical(self, header: Header) -> bool:
        return rawdb.read_canonical_hash(self.db, header.number) == header.hash

    # --- state -------------------------------------------------------------------------

    def state_at(self, header: Header) -> StateView:
        """Accounts as they were after ``header``'s block; ``MissingStateError`` if never executed."""
        return StateView(self.state_db, header.state_root)

    def state(self) -> StateView:
        """Accounts at the head block."""
        return self.state_at(self._head_block)

    def head_state_reader(self) -> HeadState:
        """A reader of the head's (or canonical block N's) accounts: the tx pool's and RPC's ``StateReader``."""
        return HeadState(self.state_db, lambda: self._head_block, self.get_header_by_number)

    # --- inserting blocks --------------------------------------------------------------

    @_announces_head
    def insert_chain(
        self,
        blocks: Iterable[Block],
        *,
        set_head: bool = True,
        on_block: Callable[[Block, bool], None] | None = None,
    ) -> InsertStats:
        """Validate and store ``blocks`` in order, one atomic batch each.

        ``blocks`` may be a lazy iterator (the import streams a file through it). The first
        invalid block raises ``InvalidBlockError``; the blocks before it stay committed.
        ``on_block(block, known)`` is called after each block is committed or skipped.
        ``set_head`` makes inserted post-merge blocks the head (pre-merge blocks follow
        the total difficulty rule regardless).
        """
        if not self._state_root_warned:  # once per chain object, i.e. once per import command
            self._state_root_warned = True
            if self.executor is None:
                log.warning(STATE_ROOT_WARNING)
            else:
                log.info("Executing blocks with %s", self.executor.version)
        stats = InsertStats()
        for block in blocks:
            written = self._insert_block(block, set_head)
            if written:
                stats.written += 1
            else:
                stats.known += 1
            if on_block is not None:
                on_block(block, not written)
        return stats

    @_announces_head
    def insert_built_block(self, block: Block, result: BlockResult) -> bool:
        """Insert a block this node built and sealed, with what building it executed.

        geth's ``WriteBlockAndSetHead``: the miner already ran every tx to fill the header,
        so the block is not executed a second time. The header and body checks still run
        (they are cheap and catch a bad seal) and ``result`` must match the sealed header's
        roots. Returns False if the block was already known.
        """
        return self._insert_block(block, True, executed=result)

    def _insert_block(self, block: Block, set_head: bool, executed: BlockResult | None = None) -> bool:
        header = block.header
        block_hash, number = header.hash, header.number
        if number == 0:
            if block_hash != self.genesis.hash:
                raise InvalidBlockError(
                    0,
                    block_hash,
                    ChainError(
                        f"genesis block mismatch: have 0x{block_hash.hex()}, want 0x{self.genesis.hash.hex()}"
                    ),
                )
            return False
        if self.has_block(block_hash, number):
            if set_head and not self._in_block_chain(header):
                self._set_head_for_known(header)
            return False
        try:
            header.sanity_check()
            parent = self._parent_with_body(header)
            self.engine.verify_header(self, header, parent)
            self.engine.verify_uncles(self, block)
            validate_body(self.config, block)
            txs = block.transactions
            if self.verify_senders:
                validate_transactions(self.config, header, txs)  # type: ignore[arg-type]
            result = executed
            if executed is not None:
                validate_state(header, executed)
            elif self.executor is not None:
                signer = make_signer(self.config, number, header.time)
                senders = [signer.sender(tx) for tx in txs]  # type: ignore[arg-type]
                result = self.executor.execute_block(parent, block, senders, self.engine.author(header))
                validate_state(header, result)
        except _REJECTIONS as exc:
            raise InvalidBlockError(number, block_hash, exc) from None
        parent_td = self._head_block_td if parent is self._head_block else self._td_or_fail(parent)
        td = parent_td + header.difficulty
        batch = self.db.new_batch()
        if result is not None:
            result.state.write_to(batch)
            rawdb.write_receipts(batch, block_hash, number, result.receipts)
            if result.block_access_list is not None:
                rawdb.write_block_access_list(batch, block_hash, number, result.block_access_list)
        rawdb.write_header(batch, header)
        rawdb.write_body(batch, block_hash, number, block.body().encode())
        rawdb.write_td(batch, block_hash, number, td)
        new_heads = None
        # A block whose header the header chain already made canonical just extends the
        # head block; any other follows the fork-choice rule.
        already_canonical = (
            header.parent_hash == self._head_block.hash
            and self._head_header.number > self._head_block.number
            and self._is_canonical(header)
        )
        if already_canonical or self._becomes_head(header, td, parent_td, set_head):
            new_heads = self._canonicalize(
                batch, header, td, full=True, new_tx_hashes=[tx.hash for tx in txs]
            )
        batch.write()
        if result is not None:
            self.state_db.committed(result.state)
        self._remember(header)
        if new_heads is not None:
            self._apply_heads(new_heads)
        return True

    def _parent_with_body(self, header: Header) -> Header:
        if header.parent_hash == self._head_block.hash:
            return self._head_block
        parent = self._read_header(header.parent_hash, header.number - 1)
        if parent is None or not rawdb.has_body(self.db, parent.hash, parent.number):
            raise UnknownAncestorError()
        return parent

    def _in_block_chain(self, header: Header) -> bool:
        return header.number <= self._head_block.number and self._is_canonical(header)

    def _post_merge(self, parent_td: int) -> bool:
        ttd = self.config.terminal_total_difficulty
        return ttd is not None and parent_td >= ttd

    def _becomes_head(self, header: Header, td: int, parent_td: int, set_head: bool) -> bool:
        if self._post_merge(parent_td):
            return set_head
        # Pre-merge: the heavier chain wins; on a tie the shorter one (geth picked at random
        # between equal numbers; keeping the current head is deterministic).
        head_td = self._head_header_td
        return td > head_td or (td == head_td and header.number < self._head_header.number)

    def _set_head_for_known(self, header: Header) -> None:
        """A known block re-inserted while not in the block chain: apply the head rules to it."""
        td = self._td_or_fail(header)
        parent_td = td - header.difficulty
        if self._becomes_head(header, td, parent_td, True):
            self._set_canonical_header(header, td)

    # --- inserting headers -------------------------------------------------------------

    @_announces_head
    def insert_headers(self, headers: Iterable[Header], *, set_head: bool = True) -> InsertStats:
        """Validate and store headers (header-first sync), one atomic batch each.

        The header chain's head follows the same rules as blocks; if a heavier header
        chain forks below the head block, the head block is rewound to the fork point.
        """
        stats = InsertStats()
        for header in headers:
            block_hash, number = header.hash, header.number
            if rawdb.has_header(self.db, block_hash, number):
                stats.known += 1
                continue
            try:
                header.sanity_check()
                parent = self._read_header(header.parent_hash, number - 1)
                if parent is None:
                    raise UnknownAncestorError()
                self.engine.verify_header(self, header, parent)
            except _REJECTIONS as exc:
                raise InvalidBlockError(number, block_hash, exc) from None
            parent_td = self._td_or_fail(parent)
            td = parent_td + header.difficulty
            batch = self.db.new_batch()
            rawdb.write_header(batch, header)
            rawdb.write_td(batch, block_hash, number, td)
            new_heads = None
            if self._becomes_head(header, td, parent_td, set_head):
                new_heads = self._canonicalize(batch, header, td, full=False, new_tx_hashes=None)
            batch.write()
            self._remember(header)
            if new_heads is not None:
                self._apply_heads(new_heads)
            stats.written += 1
        return stats

    # --- head moves ----------------------------------------------------------------------

    @_announces_head
    def set_canonical(self, block_hash: bytes) -> Header:
        """Make a stored block the head (forkchoiceUpdated): reorg to it, or rewind to it.

        Returns its header; ``UnknownBlockError`` if the block or its body is not stored.
        """
        header = self._header_by_hash(block_hash)
        if header is None or not rawdb.has_body(self.db, block_hash, header.number):
            raise UnknownBlockError(f"cannot set head to unknown block 0x{block_hash.hex()}")
        if header.hash == self._head_block.hash:
            return header
        self._set_canonical_header(header, self._td_or_fail(header))
        return header

    def set_finalized(self, block_hash: bytes) -> None:
        rawdb.write_finalized_block_hash(self.db, block_hash)

    def set_safe(self, block_hash: bytes) -> None:
        rawdb.write_safe_block_hash(self.db, block_hash)

    def _set_canonical_header(self, header: Header, td: int) -> None:
        body = rawdb.read_body(self.db, header.hash, header.number)
        tx_hashes = None if body is None else [tx.hash for tx in body.transactions]
        batch = self.db.new_batch()
        heads = self._canonicalize(batch, header, td, full=body is not None, new_tx_hashes=tx_hashes)
        batch.write()
        self._apply_heads(heads)

    def _canonicalize(
        self, batch: Batch, new_head: Header, new_td: int, *, full: bool, new_tx_hashes: list[bytes] | None
    ) -> _Heads:
        """Queue in ``batch`` every write that makes ``new_head`` the head; return the new heads.

        ``full``: the new head has its body, so it becomes the head block too. The new head
        itself may exist only in ``batch``; its ancestors are read from the database.
        """
        old_header_head, old_block_head = self._head_header, self._head_block
        # Fast path: extending the block chain's tip, the common case of sync and import.
        if (
            full
            and new_head.parent_hash == old_block_head.hash
            and old_header_head.hash == old_block_head.hash
        ):
            rawdb.write_canonical_hash(batch, new_head.hash, new_head.number)
            rawdb.write_tx_lookups(batch, new_head.number, new_tx_hashes or ())
            rawdb.write_head_header_hash(batch, new_head.hash)
            rawdb.write_head_block_hash(batch, new_head.hash)
            return _Heads(new_head, new_td, new_head, new_td, [new_head])

        # A block the header chain already made canonical: only the head block advances.
        if (
            full
            and new_head.parent_hash == old_block_head.hash
            and new_head.number <= old_header_head.number
            and rawdb.read_canonical_hash(self.db, new_head.number) == new_head.hash
        ):
            rawdb.write_tx_lookups(batch, new_head.number, new_tx_hashes or ())
            rawdb.write_head_block_hash(batch, new_head.hash)
            return _Heads(old_header_head, self._head_header_td, new_head, new_td, [new_head])

        # General case: find the fork point on the canonical chain, walking the new branch down.
        new_chain: list[Header] = []
        cur = new_head
        while True:
            if cur.hash == old_header_head.hash or (
                cur.number <= old_header_head.number
                and rawdb.read_canonical_hash(self.db, cur.number) == cur.hash
            ):
                ancestor = cur
                break
            new_chain.append(cur)
            parent = self._read_header(cur.parent_hash, cur.number - 1)
            if parent is None:
                raise ChainError(f"reorg: ancestor #{cur.number - 1} of 0x{new_head.hash.hex()} missing")
            cur = parent
        if ancestor.hash != old_header_head.hash:
            log.info(
                "chain reorg: fork at #%d, new head #%d 0x%s (%d new canonical, old head #%d)",
                ancestor.number,
                new_head.number,
                new_head.hash.hex()[:12],
                len(new_chain),
                old_header_head.number,
            )

        # Tx lookups of blocks leaving the block chain go first, so that a tx present in both
        # branches ends up pointing into the new one.
        if old_block_head.number > ancestor.number:
            for n in range(ancestor.number + 1, old_block_head.number + 1):
                self._queue_tx_lookups(batch, n, delete=True)
        for n in range(new_head.number + 1, old_header_head.number + 1):
            rawdb.delete_canonical_hash(batch, n)
        for h in new_chain:
            rawdb.write_canonical_hash(batch, h.hash, h.number)

        joined: list[Header] = []
        if full:
            new_block_head, new_block_td = new_head, new_td
            for n in range(old_block_head.number + 1, ancestor.number + 1):  # canonical headers gaining their block
                header = self._queue_tx_lookups(batch, n, delete=False)
                if header is not None:
                    joined.append(header)
            for h in reversed(new_chain):
                if h is new_head:
                    rawdb.write_tx_lookups(batch, h.number, new_tx_hashes or ())
                else:
                    self._queue_tx_lookups(batch, h.number, delete=False, block_hash=h.hash)
                joined.append(h)
        elif old_block_head.number > ancestor.number:
            new_block_head, new_block_td = ancestor, self._td_or_fail(ancestor)
        else:
            new_block_head, new_block_td = old_block_head, self._head_block_td
        rawdb.write_head_header_hash(batch, new_head.hash)
        rawdb.write_head_block_hash(batch, new_block_head.hash)
        return _Heads(new_head, new_td, new_block_head, new_block_td, joined)

    def _queue_tx_lookups(
        self, batch: Batch, number: int, *, delete: bool, block_hash: bytes | None = None
    ) -> Header | None:
        """Queue the lookups of block ``number``'s txs; return its header (None: no such block)."""
        block_hash = block_hash or rawdb.read_canonical_hash(self.db, number)
        if block_hash is None:
            return None
        body = rawdb.read_body(self.db, block_hash, number)
        if body is None:
            return None
        hashes = [tx.hash for tx in body.transactions]
        if delete:
            rawdb.delete_tx_lookups(batch, hashes)
        else:
            rawdb.write_tx_lookups(batch, number, hashes)
        return self._read_header(block_hash, number)

    def _apply_heads(self, heads: _Heads) -> None:
        """The one place the heads move (after their batch is written); ``_announces_head`` tells the bus."""
        self._head_header, self._head_header_td = heads.header, heads.header_td
        self._head_block, self._head_block_td = heads.block, heads.block_td
        if self.events is not None:
            for header in heads.joined:
                self.events.post(ChainEvent(header))

    # --- export ----------------------------------------------------------------------

    def export(self, out: BinaryIO, first: int = 0, last: int | None = None) -> int:
        """Write canonical blocks ``first..last`` (default: to the head) as concatenated RLP.

        The bytes come straight from the stored header and body RLP, so an imported file
        exports byte for byte. Returns the number of blocks written.
        """
        if last is None:
            last = self._head_block.number
        if first > last:
            raise ChainError(f"export failed: first block #{first} is after last block #{last}")
        if last > self._head_block.number:
            raise ChainError(
                f"export failed: last block #{last} is beyond the head block #{self._head_block.number}"
            )
        for n in range(first, last + 1):
            h = rawdb.read_canonical_hash(self.db, n)
            data = None if h is None else rawdb.read_block_rlp(self.db, h, n)
            if data is None:
                raise ChainError(f"export failed on #{n}: block not found")
            out.write(data)
        return last - first + 1


__all__ = ["BlockChain", "InsertStats", "read_chain_config", "setup_genesis", "STATE_ROOT_WARNING", "NO_GENESIS"]
