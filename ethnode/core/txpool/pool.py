"""The transaction pool (geth ``core/txpool``: ``legacypool`` for types 0, 1, 2 and 4, ``blobpool`` for 3).

What it does, as geth: validates txs (``validation.py``), keeps per account a *pending*
list (contiguous nonces from the account's next nonce: executable now) and a *queue*
(nonce gaps: executable later), replaces a tx of the same nonce only for a 10% higher fee
cap and tip, enforces per-account and global limits (evicting the cheapest remote txs
when full, local txs exempt), removes txs that a new head included, and posts a
``NewTxsEvent`` for every tx that became pending (the handler's txBroadcastLoop relays them).

Blob txs are only accepted with their sidecar, from the pooled path (PooledTransactions
or local submission); one pushed in a Transactions message gets ``BlobTxViaBroadcastError``
so the handler can disconnect the peer. They live in their own lane (``blobpool.py``).

The pool is synchronous and single-threaded (call it from the event loop); it does no I/O
beyond the chain reads in ``set_head``. Geth runs its reorg loop in the background after
each batch; here ``add`` promotes and truncates before it returns, so a caller sees the
final state at once.

Not checked until execution provides state (see ``state.py`` and ``TxPool.unchecked``):
the sender's nonce and balance. Base fee: like geth, a tx whose fee cap is below the
current base fee is kept and may be pending (and relayed); ``pending(base_fee=...)``
leaves it out, as geth's ``Pending(filter)`` does for the miner, and it is the first
evicted when the pool is full.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.txpool import errors
from ethnode.core.txpool.blobpool import BlobLane
from ethnode.core.txpool.config import BLOB_TX_MAX_SIZE, MAX_BLOBS_PER_TX, TX_MAX_SIZE, TX_SLOT_SIZE, TxPoolConfig
from ethnode.core.txpool.kzg import KzgVerifier, default_verifier, find_trusted_setup
from ethnode.core.txpool.list import PoolTx, PricedList, TxList
from ethnode.core.txpool.sparse import SparseBlobServing
from ethnode.core.txpool.state import BALANCE_UNCHECKED, NONCE_UNCHECKED, StateReader, UnknownState
from ethnode.core.txpool.validation import ValidationOptions, validate_transaction
from ethnode.core.types.block import Block
from ethnode.core.types.cells import CELL_SIZE, BlobTxWithCells
from ethnode.core.types.header import Header
from ethnode.core.types.signer import latest_signer
from ethnode.core.types.transaction import BLOB_TX_TYPE, BlobTxWithSidecar, Transaction, TransactionError
from ethnode.event import EventBus

log = logging.getLogger("ethnode.core.txpool")

MAX_REORG_DEPTH = 64  # geth legacypool reset: txs of deeper reorgs are not re-injected
CHAIN_NONCE_CACHE = 1 << 16  # ours: senders whose next nonce we learned from blocks (LRU)

KZG_UNCHECKED = "KZG proofs of blob sidecars (install ckzg and provide a trusted setup)"
ALWAYS_UNCHECKED = (
    "EIP-7702 in-flight limits for delegated senders and pooled authorities "
    "(geth ErrInflightTxLimitReached / ErrAuthorityReserved)",
)

Source = Literal["pooled", "broadcast"]
AnyTx = Transaction | BlobTxWithSidecar  # BlobTxWithCells is one too (eth/72 custody cells)


@dataclass(frozen=True)
class NewTxsEvent:
    """Txs that became pending (geth ``core.NewTxsEvent``), grouped by sender in nonce order."""

    txs: tuple[AnyTx, ...]


def num_slots(size: int) -> int:
    """geth numSlots: how many 32 KiB slots a tx of ``size`` bytes occupies."""
    return (size + TX_SLOT_SIZE - 1) // TX_SLOT_SIZE


class TxPool(SparseBlobServing):
    """geth's TxPool over a ``BlockChain`` (anything with ``config`` and ``current_block``).

    ``chain`` may also offer ``get_block(hash, number)`` (reorg handling in ``set_head``) and
    ``get_transaction(hash)`` (refuse txs already in the chain while nonces are unknown).
    ``kzg``: a ``KzgVerifier``, None (do not verify proofs), or "auto" (the shared verifier,
    loaded on the first blob tx if ckzg and a trusted setup are available).
    """

    def __init__(
        self,
        chain: Any,
        config: TxPoolConfig | None = None,
        bus: EventBus | None = None,
        state: StateReader | None = None,
        *,
        kzg: KzgVerifier | None | Literal["auto"] = "auto",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chain = chain
        self.chain_config = chain.config
        self.config = (config or TxPoolConfig()).sanitized()
        self.bus = bus
        self.state: StateReader = state if state is not None else UnknownState()
        self.signer = latest_signer(self.chain_config)
        self._kzg = kzg
        self._clock = clock
        self._head: Header = chain.current_block
        self._pending_base_fee = self._next_base_fee(self._head)

        self._all: dict[bytes, PoolTx] = {}  # non-blob txs, pending and queued
        self._slots = 0
        self._pending: dict[bytes, TxList] = {}
        self._queue: dict[bytes, TxList] = {}
        self._beats: dict[bytes, float] = {}  # last activity of accounts with queued txs
        self._locals: set[bytes] = set(self.config.locals)
        self._priced = PricedList(self._is_priced_live, self._all.values)
        self._priced.base_fee = self._pending_base_fee
        self._blob = BlobLane(self.config)
        self._cells: dict[bytes, list[list[bytes]]] = {}  # tx hash -> each blob's 128 cells (insertion order)
        self._chain_nonces: OrderedDict[bytes, int] = OrderedDict()
        # Unknown state only: the lowest nonce seen for an account while it has txs pooled.
        # A dropped low tx (gas limit, eviction) keeps its successors queued, not pending.
        self._anchors: dict[bytes, int] = {}
        self._changes = 0  # txs dropped to make room during the current add call

    # --- what is and is not checked -------------------------------------------------

    @property
    def unchecked(self) -> tuple[str, ...]:
        """The admission rules geth applies that this pool cannot, with what it has now."""
        items: list[str] = []
        if isinstance(self.state, UnknownState):
            items += [NONCE_UNCHECKED, BALANCE_UNCHECKED]
        if not self._kzg_available():
            items.append(KZG_UNCHECKED)
        return (*items, *ALWAYS_UNCHECKED)

    def _kzg_available(self) -> bool:
        if self._kzg == "auto":
            return importlib.util.find_spec("ckzg") is not None and find_trusted_setup() is not None
        return self._kzg is not None

    def _kzg_verifier(self) -> KzgVerifier | None:
        if self._kzg == "auto":
            self._kzg = default_verifier()
        return self._kzg

    # --- reads ------------------------------------------------------------------------

    @property
    def head(self) -> Header:
        return self._head

    @property
    def pending_base_fee(self) -> int | None:
        """The base fee of the block after the head (None before London)."""
        return self._pending_base_fee

    def __len__(self) -> int:
        return len(self._all) + len(self._blob)

    def _lookup(self, tx_hash: bytes) -> PoolTx | None:
        return self._all.get(tx_hash) or self._blob.all.get(tx_hash)

    def has(self, tx_hash: bytes) -> bool:
        return tx_hash in self._all or tx_hash in self._blob.all

    def get(self, tx_hash: bytes) -> AnyTx | None:
        """The tx as received: a blob tx comes with its sidecar (what PooledTransactions serves)."""
        ptx = self._lookup(tx_hash)
        return None if ptx is None else ptx.tx

    def blobs(self, versioned_hashes: Sequence[bytes]) -> list[tuple[bytes, tuple[bytes, ...], int] | None]:
        """``(blob, proofs, sidecar version)`` per versioned hash the pool holds, else None (engine_getBlobs).

        Version 0 sidecars carry one proof per blob, version 1 (EIP-7594) the blob's cell proofs.
        """
        wanted = {h: i for i, h in enumerate(versioned_hashes)}
        out: list[tuple[bytes, tuple[bytes, ...], int] | None] = [None] * len(versioned_hashes)
        for ptx in self._blob.all.values():
            sidecar = getattr(ptx.tx, "sidecar", None)
            if sidecar is None or isinstance(ptx.tx, BlobTxWithCells):  # custody cells only: no blob to give
                continue
            hashes = ptx.tx.tx.blob_hashes  # type: ignore[union-attr]
            per_blob = len(sidecar.proofs) // max(1, len(sidecar.blobs))
            for j, h in enumerate(hashes):
                i = wanted.get(h)
                if i is not None and out[i] is None:
                    out[i] = (sidecar.blobs[j], tuple(sidecar.proofs[j * per_blob:(j + 1) * per_blob]), sidecar.version)
        return out

    def get_metadata(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(type, size on the wire) for announcements (geth GetMetadata)."""
        ptx = self._lookup(tx_hash)
        return None if ptx is None else (ptx.type, ptx.size)

    def status(self, tx_hash: bytes) -> Literal["pending", "queued"] | None:
        ptx = self._lookup(tx_hash)
        if ptx is None:
            return None
        if ptx.hash in self._blob.all:
            return "pending"
        lst = self._pending.get(ptx.sender)
        return "pending" if lst is not None and lst.get(ptx.nonce) is ptx else "queued"

    def stats(self) -> tuple[int, int]:
        """(pending, queued) tx counts; blob txs are all pending."""
        pending = sum(len(lst) for lst in self._pending.values()) + len(self._blob)
        return pending, sum(len(lst) for lst in self._queue.values())

    def pending(self, min_tip: int | None = None, base_fee: int | None = None) -> dict[bytes, list[AnyTx]]:
        """Executable txs by sender in nonce order (geth Pending).

        With ``min_tip`` or ``base_fee``, each account's list stops at its first tx whose
        effective tip at ``base_fee`` is below ``min_tip`` (0 if not given): later nonces
        could not be included before it anyway.
        """
        out: dict[bytes, list[AnyTx]] = {}
        filtering = min_tip is not None or base_fee is not None
        floor = min_tip or 0
        for sender, lst in (*self._pending.items(), *self._blob.index.items()):
            txs = lst.flatten()
            if filtering:
                for i, p in enumerate(txs):
                    if p.effective_tip(base_fee) < floor:  # negative when the fee cap is below base_fee
                        txs = txs[:i]
                        break
            if txs:
                out[sender] = [p.tx for p in txs]
        return out

    def content(self) -> tuple[dict[bytes, list[AnyTx]], dict[bytes, list[AnyTx]]]:
        """(pending, queued) by sender in nonce order (geth Content, the txpool_content RPC)."""
        pending = {s: [p.tx for p in lst.flatten()] for s, lst in (*self._pending.items(), *self._blob.index.items())}
        queued = {s: [p.tx for p in lst.flatten()] for s, lst in self._queue.items()}
        return pending, queued

    def content_from(self, sender: bytes) -> tuple[list[AnyTx], list[AnyTx]]:
        lst = self._pending.get(sender) or self._blob.index.get(sender)
        queue = self._queue.get(sender)
        return ([p.tx for p in lst.flatten()] if lst else []), ([p.tx for p in queue.flatten()] if queue else [])

    def nonce(self, sender: bytes) -> int | None:
        """The sender's next nonce with every pending tx applied (geth Nonce); None if unknown."""
        lst = self._pending.get(sender) or self._blob.index.get(sender)
        if lst:
            return lst.last.nonce + 1
        return self._known_nonce(sender)

    # --- adding -----------------------------------------------------------------------

    def add_remotes(self, txs: Sequence[AnyTx], *, source: Source = "pooled") -> list[Exception | None]:
        return self.add(txs, local=False, source=source)

    def add_locals(self, txs: Sequence[AnyTx]) -> list[Exception | None]:
        """Txs submitted by this node's user: exempt from the price limit and from eviction."""
        return self.add(txs, local=True, source="pooled")

    def add(self, txs: Sequence[AnyTx], *, local: bool = False, source: Source = "pooled") -> list[Exception | None]:
        """Validate and pool ``txs``; one error (or None) per tx, in order.

        ``source`` says how a peer's txs came: "broadcast" (a Transactions message, where a
        blob tx is a protocol violation) or "pooled" (a PooledTransactions reply).
        """
        local = local and not self.config.no_locals
        errs: list[Exception | None] = [None] * len(txs)
        valid: list[tuple[int, PoolTx]] = []
        for i, tx in enumerate(txs):
            try:
                valid.append((i, self._validate(tx, local, source)))
            except errors.TxPoolError as exc:
                errs[i] = exc
        events: list[PoolTx] = []
        dirty: set[bytes] = set()
        self._changes = 0
        for i, ptx in valid:
            try:
                replaced = self._add_validated(ptx, events)
            except errors.TxPoolError as exc:
                errs[i] = exc
                continue
            if not replaced:
                dirty.add(ptx.sender)
        events += self._promote(dirty)
        self._truncate_pending()
        self._truncate_queue()
        self._forget_idle_anchors()
        self._post(events)
        return errs

    def _validate(self, tx: AnyTx, local: bool, source: Source) -> PoolTx:
        inner = tx.tx if isinstance(tx, BlobTxWithSidecar) else tx
        if inner.type == BLOB_TX_TYPE and source == "broadcast":
            raise errors.BlobTxViaBroadcastError()  # before "already known": it is the peer's fault either way
        tx_hash = inner.hash
        if self.has(tx_hash):
            raise errors.AlreadyKnownError()
        if isinstance(tx, BlobTxWithCells):  # eth/72 custody cells: accounted with the cells held
            sidecar, size = tx.sidecar, len(tx.network_encoding()) + CELL_SIZE * len(tx.sidecar.cells)
        elif isinstance(tx, BlobTxWithSidecar):
            sidecar, size = tx.sidecar, len(tx.network_encoding())
        else:
            sidecar, size = None, len(tx.canonical)
        try:
            maybe_sender = inner.sender
        except TransactionError:
            maybe_sender = None  # validation reports it properly below
        is_local = local or maybe_sender in self._locals
        blob = inner.type == BLOB_TX_TYPE
        opts = ValidationOptions(
            accept=frozenset(range(5)),
            max_size=BLOB_TX_MAX_SIZE if blob else TX_MAX_SIZE,
            max_blob_count=MAX_BLOBS_PER_TX,
            min_tip=0 if is_local else self.config.price_limit,
            kzg=self._kzg_verifier() if blob and sidecar is not None else None,
        )
        sender = validate_transaction(inner, size, self._head, self.chain_config, self.signer, opts, sidecar=sidecar)
        fee_cap, tip_cap = inner.gas_fee_cap, inner.gas_tip_cap
        blob_fee_cap = getattr(inner, "blob_fee_cap", 0)
        gas: int = inner.gas  # type: ignore[attr-defined]
        cost = gas * fee_cap + inner.value + inner.blob_gas * blob_fee_cap  # type: ignore[attr-defined]
        if local:
            self._mark_local(sender)
        return PoolTx(
            tx=tx, inner=inner, hash=tx_hash, sender=sender, nonce=inner.nonce,  # type: ignore[attr-defined]
            gas=gas, fee_cap=fee_cap, tip_cap=tip_cap, blob_fee_cap=blob_fee_cap, cost=cost,
            size=size, slots=num_slots(size), local=is_local, added=self._clock(), type=inner.type,
        )

    def _mark_local(self, sender: bytes) -> None:
        """geth: a local tx makes its sender local; its pooled txs leave the eviction heap."""
        if sender in self._locals:
            return
        self._locals.add(sender)
        migrated = 0
        for lst in (self._pending.get(sender), self._queue.get(sender)):
            for p in lst.flatten() if lst else ():
                p.local = True
                migrated += 1
        if migrated:
            self._priced.removed(migrated)

    def _check_state(self, ptx: PoolTx) -> None:
        """geth ValidateTransactionWithState with the legacy pool's options, as far as state is known."""
        known = self._known_nonce(ptx.sender)
        if known is not None and known > ptx.nonce:
            raise errors.NonceTooLowError(f"next nonce {known}, tx nonce {ptx.nonce}")
        if known is None:
            self._reject_included(ptx)
        balance = self.state.balance(ptx.sender)
        if balance is None:
            return
        if balance < ptx.cost:
            raise errors.InsufficientFundsError(
                f"balance {balance}, tx cost {ptx.cost}, overshot {ptx.cost - balance}"
            )
        pending = self._pending.get(ptx.sender)
        spent = pending.total_cost if pending else 0
        prev = pending.get(ptx.nonce) if pending else None
        need = spent + ptx.cost - (prev.cost if prev else 0)
        if balance < need:
            raise errors.InsufficientFundsError(f"balance {balance}, queued cost {spent}, tx cost {ptx.cost}, "
                                                f"overshot {need - balance}")

    def _reject_included(self, ptx: PoolTx) -> None:
        """Nonces unknown: a tx the canonical chain already holds (a replay) is still stale."""
        lookup = getattr(self.chain, "get_transaction", None)
        found = lookup(ptx.hash) if lookup is not None else None
        if found is not None:
            raise errors.NonceTooLowError(f"transaction already included in block #{found[2]}")

    def _add_validated(self, ptx: PoolTx, events: list[PoolTx]) -> bool:
        """geth LegacyPool.add (or the blob lane's); returns whether it replaced a tx."""
        if self.has(ptx.hash):
            raise errors.AlreadyKnownError()
        sender = ptx.sender
        if ptx.type == BLOB_TX_TYPE:
            return self._add_blob(ptx, events)
        if sender in self._blob:
            raise errors.AlreadyReservedError("sender has blob transactions pooled")
        self._check_state(ptx)
        cfg = self.config
        capacity = cfg.global_slots + cfg.global_queue
        if self._slots + ptx.slots > capacity:
            self._make_room(ptx, capacity)
        pending = self._pending.get(sender)
        if pending is not None and ptx.nonce in pending:
            inserted, old = pending.add(ptx, cfg.price_bump)
            if not inserted:
                raise errors.ReplaceUnderpricedError()
            if old is not None:
                self._drop_lookup(old)
            self._insert_lookup(ptx)
            events.append(ptx)
            self._beats[sender] = self._clock()
            return old is not None
        return self._enqueue_new(ptx)

    def _make_room(self, ptx: PoolTx, capacity: int) -> None:
        """The pool is full: evict cheaper remote txs for ``ptx`` or refuse it (geth add)."""
        if not ptx.local and self._priced.underpriced(ptx):
            raise errors.UnderpricedError(f"gas tip cap {ptx.tip_cap}, gas fee cap {ptx.fee_cap}")
        if self._changes > self.config.global_slots // 4:
            raise errors.TxPoolOverflowError()
        drop, ok = self._priced.discard(self._slots - capacity + ptx.slots, force=ptx.local)
        if not ok:
            raise errors.TxPoolOverflowError()
        if self._is_gapped(ptx):
            for victim in drop:
                lst = self._pending.get(victim.sender)
                if lst is not None and lst.get(victim.nonce) is victim:
                    for p in drop:
                        self._priced.put(p)
                    raise errors.FutureReplacePendingError()
        for victim in drop:
            log.debug("evicting underpriced tx 0x%s for 0x%s", victim.hash.hex(), ptx.hash.hex())
            self._changes += self._remove_tx(victim.hash, outofbound=False)

    def _enqueue_new(self, ptx: PoolTx) -> bool:
        queue = self._queue.setdefault(ptx.sender, TxList(strict=False))
        inserted, old = queue.add(ptx, self.config.price_bump)
        if not inserted:
            if not queue:
                del self._queue[ptx.sender]
            raise errors.ReplaceUnderpricedError()
        if old is not None:
            self._drop_lookup(old)
        self._insert_lookup(ptx)
        self._beats.setdefault(ptx.sender, self._clock())
        return old is not None

    def _add_blob(self, ptx: PoolTx, events: list[PoolTx]) -> bool:
        if ptx.sender in self._pending or ptx.sender in self._queue:
            raise errors.AlreadyReservedError("sender has non-blob transactions pooled")
        known = self._known_nonce(ptx.sender)
        if known is None:
            self._reject_included(ptx)
        self._blob.check(ptx, known, self.state.balance(ptx.sender))
        old = self._blob.insert(ptx)
        dropped = self._blob.evict_over_cap(self._pending_base_fee)
        if any(p is ptx for p in dropped):
            raise errors.UnderpricedError("blob pool is full")
        events.append(ptx)
        return old is not None

    # --- bookkeeping (geth's all / priced / removeTx) ---------------------------------

    def _is_priced_live(self, ptx: PoolTx) -> bool:
        return not ptx.local and self._all.get(ptx.hash) is ptx

    def _insert_lookup(self, ptx: PoolTx) -> None:
        self._all[ptx.hash] = ptx
        self._slots += ptx.slots
        self._priced.put(ptx)
        anchor = self._anchors.get(ptx.sender)
        if anchor is None or ptx.nonce < anchor:
            self._anchors[ptx.sender] = ptx.nonce

    def _forget_idle_anchors(self) -> None:
        for sender in [s for s in self._anchors if s not in self._pending and s not in self._queue]:
            del self._anchors[sender]

    def _drop_lookup(self, ptx: PoolTx) -> None:
        if self._all.get(ptx.hash) is ptx:
            del self._all[ptx.hash]
            self._slots -= ptx.slots
            self._priced.removed(1)

    def _enqueue_internal(self, ptx: PoolTx) -> None:
        """Move a tx that stays in the pool back to the queue (demotion)."""
        queue = self._queue.setdefault(ptx.sender, TxList(strict=False))
        inserted, old = queue.add(ptx, self.config.price_bump)
        if not inserted:
            self._drop_lookup(ptx)
        elif old is not None:
            self._drop_lookup(old)
        self._beats.setdefault(ptx.sender, self._clock())

    def _remove_tx(self, tx_hash: bytes, outofbound: bool) -> int:
        """geth removeTx: drop one tx; later pending nonces go back to the queue.

        Returns how many txs left the pending list.
        """
        ptx = self._all.get(tx_hash)
        if ptx is None:
            return 0
        del self._all[tx_hash]
        self._slots -= ptx.slots
        if outofbound:
            self._priced.removed(1)
        sender = ptx.sender
        pending = self._pending.get(sender)
        if pending is not None:
            found, invalids = pending.remove(ptx)
            if found:
                if not pending:
                    del self._pending[sender]
                for p in invalids:
                    self._enqueue_internal(p)
                return 1 + len(invalids)
        queue = self._queue.get(sender)
        if queue is not None:
            queue.remove(ptx)
            if not queue:
                del self._queue[sender]
                self._beats.pop(sender, None)
        return 0

    def remove(self, tx_hash: bytes) -> bool:
        """Drop a tx (and, for a pending one, move its successors to the queue); False if unknown."""
        blob = self._blob.all.get(tx_hash)
        if blob is not None:
            self._blob.remove(blob)
            return True
        if tx_hash not in self._all:
            return False
        self._remove_tx(tx_hash, outofbound=True)
        return True

    # --- nonces -----------------------------------------------------------------------

    def _known_nonce(self, sender: bytes) -> int | None:
        """The account's next nonce from state, else from the blocks the pool saw, else None."""
        nonce = self.state.nonce(sender)
        if nonce is not None:
            return nonce
        return self._chain_nonces.get(sender)

    def _base_nonce(self, sender: bytes) -> int | None:
        """The known next nonce, or (unknown) the lowest nonce seen for the account while pooled."""
        known = self._known_nonce(sender)
        if known is not None:
            return known
        lows = [lst.first.nonce for lst in (self._pending.get(sender), self._queue.get(sender)) if lst]
        anchor = self._anchors.get(sender)
        if anchor is not None:
            lows.append(anchor)
        return min(lows) if lows else None

    def _pending_nonce(self, sender: bytes) -> int | None:
        pending = self._pending.get(sender)
        if pending:
            return pending.last.nonce + 1
        return self._base_nonce(sender)

    def _is_gapped(self, ptx: PoolTx) -> bool:
        """geth isGapped: whether ``ptx`` cannot become executable with the txs pooled now."""
        nxt = self._pending_nonce(ptx.sender)
        if nxt is None or ptx.nonce <= nxt:
            return False
        queue = self._queue.get(ptx.sender)
        if queue is None:
            return True
        return any(n not in queue for n in range(nxt, ptx.nonce))

    def _note_chain_nonce(self, sender: bytes, nonce: int, *, lower: bool = False) -> None:
        have = self._chain_nonces.get(sender)
        if have is None:
            self._chain_nonces[sender] = nonce
        else:
            self._chain_nonces[sender] = min(have, nonce) if lower else max(have, nonce)
            self._chain_nonces.move_to_end(sender)
        while len(self._chain_nonces) > CHAIN_NONCE_CACHE:
            self._chain_nonces.popitem(last=False)
        self._anchors.pop(sender, None)

    # --- promotion, demotion, limits (geth runReorg) -----------------------------------

    def _rebase(self, sender: bytes) -> None:
        """Unknown state only: a nonce below the pending run re-bases the account (pending -> queue)."""
        if self._known_nonce(sender) is not None:
            return
        pending = self._pending.get(sender)
        base = self._base_nonce(sender)
        if pending and base is not None and base < pending.first.nonce:
            del self._pending[sender]
            for p in pending.cap(0):
                self._enqueue_internal(p)

    def _promote(self, accounts: Iterable[bytes]) -> list[PoolTx]:
        """geth promoteExecutables: move now-executable queued txs to pending; drop stale ones."""
        promoted: list[PoolTx] = []
        gas_limit = self._head.gas_limit
        for sender in list(accounts):
            queue = self._queue.get(sender)
            if not queue:
                continue
            self._rebase(sender)
            known = self._known_nonce(sender)
            gone = queue.forward(known) if known is not None else []
            removed, _ = queue.filter(self.state.balance(sender), gas_limit)
            gone += removed
            nxt = self._pending_nonce(sender)
            for p in queue.ready(nxt if nxt is not None else queue.first.nonce):
                if self._promote_tx(p):
                    promoted.append(p)
            if sender not in self._locals:
                gone += queue.cap(self.config.account_queue)
            for p in gone:
                self._drop_lookup(p)
            if not queue:
                del self._queue[sender]
                self._beats.pop(sender, None)
        return promoted

    def _promote_tx(self, ptx: PoolTx) -> bool:
        pending = self._pending.setdefault(ptx.sender, TxList(strict=True))
        inserted, old = pending.add(ptx, self.config.price_bump)
        if not inserted:
            self._drop_lookup(ptx)
            return False
        if old is not None:
            self._drop_lookup(old)
        self._beats[ptx.sender] = self._clock()
        return True

    def _demote(self) -> None:
        """geth demoteUnexecutables: drop included and unaffordable pending txs, re-queue the rest."""
        gas_limit = self._head.gas_limit
        for sender, pending in list(self._pending.items()):
            known = self._known_nonce(sender)
            for p in pending.forward(known) if known is not None else []:
                self._drop_lookup(p)
            removed, invalids = pending.filter(self.state.balance(sender), gas_limit)
            for p in removed:
                self._drop_lookup(p)
            for p in invalids:
                self._enqueue_internal(p)
            if pending and known is not None and pending.first.nonce != known:
                for p in pending.cap(0):
                    self._enqueue_internal(p)
            if not pending:
                del self._pending[sender]

    def _truncate_pending(self) -> None:
        """geth truncatePending: over GlobalSlots, trim the biggest remote accounts towards AccountSlots."""
        cfg = self.config
        pending = sum(len(lst) for lst in self._pending.values())
        if pending <= cfg.global_slots:
            return
        spammers = sorted(
            ((len(lst), s) for s, lst in self._pending.items()
             if s not in self._locals and len(lst) > cfg.account_slots),
            reverse=True,
        )
        offenders: list[bytes] = []

        def trim(sender: bytes) -> None:
            lst = self._pending[sender]
            for p in lst.cap(len(lst) - 1):
                self._drop_lookup(p)

        for _, offender in spammers:
            if pending <= cfg.global_slots:
                break
            offenders.append(offender)
            if len(offenders) > 1:
                threshold = len(self._pending[offender])
                while pending > cfg.global_slots and len(self._pending[offenders[-2]]) > threshold:
                    for s in offenders[:-1]:
                        trim(s)
                        pending -= 1
        if pending > cfg.global_slots and offenders:
            while pending > cfg.global_slots and len(self._pending[offenders[-1]]) > cfg.account_slots:
                for s in offenders:
                    trim(s)
                    pending -= 1

    def _truncate_queue(self) -> None:
        """geth truncateQueue: over GlobalQueue, drop the queues of the longest-idle remote accounts first."""
        queued = sum(len(lst) for lst in self._queue.values())
        drop = queued - self.config.global_queue
        if drop <= 0:
            return
        by_age = sorted((self._beats.get(s, 0.0), s) for s in self._queue if s not in self._locals)
        for _, sender in by_age:
            if drop <= 0:
                break
            txs = self._queue[sender].flatten()
            if len(txs) <= drop:
                for p in txs:
                    self._remove_tx(p.hash, outofbound=True)
                drop -= len(txs)
                continue
            for p in reversed(txs):
                if drop <= 0:
                    break
                self._remove_tx(p.hash, outofbound=True)
                drop -= 1

    def evict_stale(self, now: float | None = None) -> int:
        """Drop the queues of remote accounts idle for ``lifetime`` (geth's once-a-minute loop).

        The service calls this periodically; returns how many txs were dropped.
        """
        now = self._clock() if now is None else now
        dropped = 0
        for sender in list(self._queue):
            if sender in self._locals or now - self._beats.get(sender, now) <= self.config.lifetime:
                continue
            for p in self._queue[sender].flatten():
                self._remove_tx(p.hash, outofbound=True)
                dropped += 1
        return dropped

    def _post(self, ptxs: list[PoolTx]) -> None:
        live = [p for p in ptxs if self._lookup(p.hash) is p]
        if self.bus is None or not live:
            return
        live.sort(key=lambda p: (p.sender, p.nonce))
        self.bus.post(NewTxsEvent(tuple(p.tx for p in live)))

    # --- new heads --------------------------------------------------------------------

    def _next_base_fee(self, head: Header) -> int | None:
        if not self.chain_config.is_london(head.number + 1):
            return None
        return calc_base_fee(self.chain_config, head)

    def on_new_head(
        self, header: Header, included: Iterable[AnyTx] = (), discarded: Iterable[AnyTx] = ()
    ) -> None:
        """The chain moved to ``header``: ``included`` txs entered the canonical chain since the
        old head, ``discarded`` ones left it (reorg). Removes what became stale, re-evaluates
        the base fee, promotes what became executable and posts those.
        """
        for tx in discarded:
            self._learn_nonce(tx, lower=True)
        for tx in included:
            self._learn_nonce(tx, lower=False)
        self._head = header
        self._pending_base_fee = self._next_base_fee(header)
        self._demote()
        promoted = self._promote(list(self._queue))
        self._blob.reset(self._known_nonce, self.state.balance, header.gas_limit)
        self._priced.set_base_fee(self._pending_base_fee)
        self._truncate_pending()
        self._truncate_queue()
        self._forget_idle_anchors()
        self._post(promoted)

    def _learn_nonce(self, tx: AnyTx, *, lower: bool) -> None:
        inner = tx.tx if isinstance(tx, BlobTxWithSidecar) else tx
        try:
            sender = inner.sender
        except TransactionError:
            return
        nonce: int = inner.nonce  # type: ignore[attr-defined]
        self._note_chain_nonce(sender, nonce if lower else nonce + 1, lower=lower)

    def set_head(self, block: Block) -> None:
        """Reset to a new head block (geth reset): handles a reorg of up to 64 blocks by
        re-injecting the txs that left the chain (blob txs excepted: blocks lack sidecars).
        """
        old = self._head
        header = block.header
        if header.hash == old.hash:
            return
        included: list[AnyTx] = list(block.transactions)
        discarded: list[AnyTx] = []
        get_block = getattr(self.chain, "get_block", None)
        if header.parent_hash != old.hash and get_block is not None:
            if abs(old.number - header.number) > MAX_REORG_DEPTH:
                log.debug("skipping deep transaction reorg: %d -> %d", old.number, header.number)
            else:
                walked = self._walk_reorg(old, block, get_block)
                if walked is not None:
                    discarded, included = walked
        self.on_new_head(header, included, discarded)
        known = {t.hash for t in included}
        lost = [t for t in discarded if t.hash not in known and t.type != BLOB_TX_TYPE]
        if lost:
            self.add(lost, local=False, source="pooled")

    @staticmethod
    def _walk_reorg(
        old: Header, new: Block, get_block: Callable[[bytes, int], Block | None]
    ) -> tuple[list[AnyTx], list[AnyTx]] | None:
        rem = get_block(old.hash, old.number)
        add: Block | None = new
        if rem is None:
            return None
        discarded: list[AnyTx] = []
        included: list[AnyTx] = []
        while rem is not None and add is not None and rem.header.number > add.header.number:
            discarded += rem.transactions
            rem = get_block(rem.header.parent_hash, rem.header.number - 1)
        while rem is not None and add is not None and add.header.number > rem.header.number:
            included += add.transactions
            add = get_block(add.header.parent_hash, add.header.number - 1)
        while rem is not None and add is not None and rem.header.hash != add.header.hash:
            discarded += rem.transactions
            included += add.transactions
            rem = get_block(rem.header.parent_hash, rem.header.number - 1)
            add = get_block(add.header.parent_hash, add.header.number - 1)
        if rem is None or add is None:
            log.error("unrooted chain seen by the tx pool at #%d", new.header.number)
            return None
        return discarded, included


__all__ = ["TxPool", "NewTxsEvent", "num_slots", "MAX_REORG_DEPTH", "CHAIN_NONCE_CACHE"]
