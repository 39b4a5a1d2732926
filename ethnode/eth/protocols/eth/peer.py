"""One eth peer: its Status, what it is known to have, its broadcast queues and its requests.

geth splits this across ``eth/protocols/eth`` (peer.go, broadcast.go, dispatcher.go and
p2p/tracker); here it is one object per connection, which is also the sub-protocol
handler the p2p Peer routes eth messages to. Its messages go one way: ``handle`` decodes
each once (``handlers``) and hands typed packets to the ``EthBackend``:

- **Known caches**: hashes of txs (32768) and blocks (1024) the peer has or was sent, in
  the compiled ``KnownCache``, marked and filtered one batch per message.
- **Broadcast task**: started when the peer is registered (geth ``go p.broadcast()``);
  it drains four bounded queues (full txs, tx announcements, block propagations, block
  announcements) plus the latest BlockRangeUpdate. Producers never wait: a full queue
  forgets its *oldest* entries (geth does so for txs; for blocks geth drops the newest,
  we keep one rule everywhere and the newest block is the useful one).
- **Requests**: ``request_headers`` / ``request_bodies`` / ``request_receipts`` /
  ``request_pooled_txs`` send a request and await its response, matched and checked by
  the peer's own ``RequestTracker``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ethnode.core.types.block import Block, Body
from ethnode.core.types.custody import CUSTODY_ALL, custody_to_bytes
from ethnode.core.types.header import Header
from ethnode.core.types.transaction import BLOB_TX_TYPE
from ethnode.crypto.keccak import keccak256
from ethnode.errors import EthnodeError
from ethnode.eth.protocols.eth.events import OBSERVER_KINDS, EthMessageReceived
from ethnode.eth.protocols.eth.handlers import decode, handle_message
from ethnode.eth.protocols.eth.handshake import AnyStatus, NoStatusError
from ethnode.eth.protocols.eth.knowncache import MAX_KNOWN_BLOCKS, MAX_KNOWN_TXS, KnownCache
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_ACCESS_LISTS,
    BLOCK_BODIES,
    BLOCK_HEADERS,
    BLOCK_RANGE_UPDATE,
    CELLS,
    ETH68,
    ETH69,
    ETH70,
    ETH71,
    ETH72,
    GET_BLOCK_ACCESS_LISTS,
    GET_BLOCK_BODIES,
    GET_BLOCK_HEADERS,
    GET_CELLS,
    GET_POOLED_TRANSACTIONS,
    GET_RECEIPTS,
    MAX_MESSAGE_SIZE,
    NEW_BLOCK,
    NEW_BLOCK_HASHES,
    NEW_POOLED_TRANSACTION_HASHES,
    POOLED_TRANSACTIONS,
    RECEIPTS,
    STATUS,
    TRANSACTIONS,
    UNAVAILABLE_BAL,
    BlockAnnouncement,
    BlockRange,
    HeaderQuery,
    NewBlock,
    PooledHashes,
    PooledHashes72,
    ProtocolViolation,
    Status68,
    encode_origin,
    message,
    message_name,
)
from ethnode.eth.protocols.eth.tracker import (
    MAX_TRACKED_REQUESTS,
    TRACKER_TIMEOUT,
    PeerDroppedError,
    RequestError,
    RequestTimeoutError,
    RequestTracker,
)
from ethnode.logctx import kv
from ethnode.p2p.disconnect import DiscReason
from ethnode.rlp import encode as rlp_encode
from ethnode.rlp.framing import wrap_list
from ethnode.rlp.sedes import List

if TYPE_CHECKING:
    from ethnode.eth.protocols.eth.backend import EthBackend
    from ethnode.event import EventBus
    from ethnode.p2p.protocol import ProtocolChannel

log = logging.getLogger("ethnode.eth.protocols.eth.peer")

MAX_QUEUED_TXS = 4096  # full-tx broadcasts waiting per peer; geth maxQueuedTxs
MAX_QUEUED_TX_ANNS = 4096  # tx announcements waiting per peer; geth maxQueuedTxAnns
MAX_QUEUED_BLOCKS = 4  # block propagations waiting per peer; geth maxQueuedBlocks
MAX_QUEUED_BLOCK_ANNS = 4  # block announcements waiting per peer; geth maxQueuedBlockAnns
MAX_TX_PACKET_SIZE = 100 * 1024  # target size of one Transactions/announcement pack; geth maxTxPacketSize
DEFAULT_REQUEST_TIMEOUT = 10.0  # seconds a request_* call waits unless told otherwise (ours)

_ANNOUNCEMENTS = List(BlockAnnouncement)


class EthPeer:
    """The eth side of one connected peer; built by the p2p Peer after Hello (``new_handler``).

    ``backend`` judges the Status, runs the peer's life (``run_peer``) and receives the
    typed packets ``handlers`` decode from its messages. ``bus``, when given, receives the
    observer events of ``events`` (built only for kinds someone subscribed to).
    """

    def __init__(self, channel: ProtocolChannel, backend: EthBackend, bus: EventBus | None = None) -> None:
        self.channel = channel
        self.bus = bus
        self.received_ns = 0  # time.time_ns() of the message being handled, while observers watch
        self._watched_gen = -1  # the bus generation ``_watched`` was derived at
        self._watched = False
        self.version = channel.version
        self._backend = backend
        self.txpool = backend.txpool
        self.pubkey: bytes = channel.peer.remote_id
        self.id: bytes = keccak256(self.pubkey)  # the enode ID, as geth's peer ids
        self.known_txs = KnownCache(MAX_KNOWN_TXS)
        self.known_blocks = KnownCache(MAX_KNOWN_BLOCKS)
        self.status: AnyStatus | None = None
        self.head_hash: bytes | None = None  # eth/68: from Status and NewBlock
        self.td: int | None = None  # eth/68 total difficulty of its head
        self.block_range: BlockRange | None = None  # eth/69: from Status and BlockRangeUpdate
        self._status_received = asyncio.Event()
        self._txs: deque[bytes] = deque(maxlen=MAX_QUEUED_TXS)
        self._tx_anns: deque[bytes] = deque(maxlen=MAX_QUEUED_TX_ANNS)
        self._blocks: deque[tuple[Block, int]] = deque(maxlen=MAX_QUEUED_BLOCKS)
        self._block_anns: deque[Block] = deque(maxlen=MAX_QUEUED_BLOCK_ANNS)
        self._range: BlockRange | None = None
        self.dropped = {"txs": 0, "tx_anns": 0, "blocks": 0, "block_anns": 0}  # drop-oldest counts
        self._wake = asyncio.Event()
        self._broadcast_task: asyncio.Task[None] | None = None
        self._send_failed = False
        self.requests = RequestTracker()
        self.closed = False

    # --- identity -----------------------------------------------------------------------

    @property
    def id_hex(self) -> str:
        return self.id.hex()

    @property
    def trusted(self) -> bool:
        """The p2p peer's trusted flag, read live (admin_addTrustedPeer may set it after connecting)."""
        return self.channel.peer.trusted

    def __repr__(self) -> str:
        return f"EthPeer({self.id.hex()[:8]} eth/{self.version})"

    def terminal_string(self) -> str:
        """In a log line (geth's peer id TerminalString): the first 8 bytes of the id."""
        return self.id.hex()[:16]

    def info(self) -> dict[str, Any]:
        """What admin_peers shows under protocols.eth (geth ethPeerInfo)."""
        out: dict[str, Any] = {"version": self.version}
        if self.version == ETH68:
            out["difficulty"] = self.td
            out["head"] = "0x" + self.head_hash.hex() if self.head_hash else None
        elif self.block_range is not None:
            rng = self.block_range
            out.update(earliestBlock=rng.earliest, latestBlock=rng.latest, latestBlockHash="0x" + rng.latest_hash.hex())
        return out

    def disconnect(self, reason: DiscReason = DiscReason.USELESS_PEER) -> None:
        self.channel.disconnect(reason)

    # --- ProtocolHandler ----------------------------------------------------------------

    async def handle(self, code: int, payload: bytes) -> None:
        """Every eth message from the peer, on its reader task, in arrival order."""
        if len(payload) > MAX_MESSAGE_SIZE:
            raise ProtocolViolation(f"message too long: {len(payload)} > {MAX_MESSAGE_SIZE}")
        if self.status is None:
            if code != STATUS:
                raise NoStatusError(f"no status message: first msg has code {code:#x} (!= {STATUS:#x})")
            status = decode(self.version, code, payload)
            self._backend.accept_status(self, status)  # raises HandshakeError
            self._set_status(status)
            return
        bus = self.bus
        if bus is not None:
            if bus.generation != self._watched_gen:  # someone (un)subscribed: recheck, else one compare
                self._watched_gen = bus.generation
                self._watched = any(bus.subscribed(kind) for kind in OBSERVER_KINDS)
            if self._watched:
                self.received_ns = time.time_ns()
                msg = message(self.version, code)
                if msg is not None and bus.subscribed(EthMessageReceived):  # an unknown code: handle_message's
                    value = decode(self.version, code, payload)
                    bus.post(EthMessageReceived(self, code, msg.name, value, len(payload), self.received_ns))
        await handle_message(self._backend, self, code, payload)

    def wants(self, kind: type) -> bool:
        """Whether an observer subscribed to ``kind`` (``handlers`` ask before building an event)."""
        bus = self.bus
        return bus is not None and bus.subscribed(kind)

    def emit(self, event: object) -> None:
        if self.bus is not None:
            self.bus.post(event)

    async def run(self) -> None:
        try:
            await self._backend.run_peer(self)
        finally:
            self.close()

    async def reply(self, code: int, request_id: int, items: Sequence[bytes], head: bytes = b"") -> None:
        """Answer a request with already-encoded items (``[request-id, [items...]]``); ``head`` is
        what an eth/70 reply carries between the two (the encoded ``lastBlockIncomplete``)."""
        await self.channel.send(code, wrap_list(rlp_encode(request_id) + head + wrap_list(b"".join(items))))

    def _set_status(self, status: AnyStatus) -> None:
        self.status = status
        if isinstance(status, Status68):
            self.head_hash, self.td = status.head, status.td
        else:
            self.block_range = BlockRange(status.earliest, status.latest, status.latest_hash)
            self.head_hash = status.latest_hash
        self._status_received.set()

    async def wait_status(self) -> AnyStatus:
        await self._status_received.wait()
        assert self.status is not None
        return self.status

    async def send_status(self, status: AnyStatus) -> None:
        await self.channel.send(STATUS, status.encode())

    def set_head(self, head_hash: bytes, td: int) -> None:
        """eth/68: the peer's head moved (geth Peer.SetHead)."""
        self.head_hash, self.td = head_hash, td

    def set_block_range(self, rng: BlockRange) -> None:
        self.block_range = rng
        self.head_hash = rng.latest_hash

    # --- known caches -------------------------------------------------------------------

    def mark_transactions(self, packed: bytes) -> None:
        """Mark packed 32-byte tx hashes as known to the peer (one native call)."""
        if packed:
            self.known_txs.add_many(packed)

    def mark_block(self, block_hash: bytes) -> None:
        self.known_blocks.add(block_hash)

    def knows_transaction(self, tx_hash: bytes) -> bool:
        return tx_hash in self.known_txs

    def knows_block(self, block_hash: bytes) -> bool:
        return block_hash in self.known_blocks

    # --- broadcast queues (never block the caller; drop oldest) --------------------------

    def _queue(self, q: deque[Any], items: Sequence[Any], kind: str) -> None:
        over = len(q) + len(items) - (q.maxlen or 0)
        if over > 0:
            self.dropped[kind] += over
        q.extend(items)
        self._wake.set()

    def async_send_transactions(self, hashes: Sequence[bytes]) -> None:
        """Queue full txs (by hash; read from the pool when sent) and mark them known."""
        if hashes and not self._send_failed:
            self._queue(self._txs, hashes, "txs")
            self.mark_transactions(b"".join(hashes))

    def async_send_pooled_transaction_hashes(self, hashes: Sequence[bytes]) -> None:
        """Queue tx announcements and mark them known."""
        if hashes and not self._send_failed:
            self._queue(self._tx_anns, hashes, "tx_anns")
            self.mark_transactions(b"".join(hashes))

    def async_send_new_block(self, block: Block, td: int) -> None:
        """eth/68: queue a NewBlock propagation."""
        if self.version != ETH68:
            raise ValueError(f"NewBlock does not exist on eth/{self.version}")
        if not self._send_failed:
            self._queue(self._blocks, [(block, td)], "blocks")
            self.mark_block(block.hash)

    def async_send_new_block_hash(self, block: Block) -> None:
        """eth/68: queue a NewBlockHashes announcement."""
        if self.version != ETH68:
            raise ValueError(f"NewBlockHashes does not exist on eth/{self.version}")
        if not self._send_failed:
            self._queue(self._block_anns, [block], "block_anns")
            self.mark_block(block.hash)

    def send_block_range_update(self, rng: BlockRange) -> None:
        """eth/69: announce our served range; only the newest unsent one goes out."""
        if self.version >= ETH69 and not self._send_failed:
            self._range = rng
            self._wake.set()

    def queued(self) -> dict[str, int]:
        return {"txs": len(self._txs), "tx_anns": len(self._tx_anns), "blocks": len(self._blocks),
                "block_anns": len(self._block_anns)}

    def start_broadcast(self) -> asyncio.Task[None]:
        """Start the broadcast task (the peer set does this on registration)."""
        if self._broadcast_task is None:
            name = f"eth-broadcast-{self.id.hex()[:8]}"
            self._broadcast_task = asyncio.get_running_loop().create_task(self._broadcast(), name=name)
        return self._broadcast_task

    def stop_broadcast(self) -> None:
        if self._broadcast_task is not None:
            self._broadcast_task.cancel()

    def _has_work(self) -> bool:
        return bool(self._range is not None or self._blocks or self._block_anns or self._txs or self._tx_anns)

    async def _broadcast(self) -> None:
        """geth's broadcastBlocks/broadcastTransactions/announceTransactions in one task.

        Each round sends at most one message of each kind, so a flood of txs cannot hold
        back a block. A failed write stops sending for good (the reader will see the
        connection end and report why); the task then idles until cancelled.
        """
        try:
            while True:
                self._wake.clear()
                while self._has_work():
                    await self._send_round()
                await self._wake.wait()
        except EthnodeError as exc:  # connection closed or write timeout
            self._send_failed = True
            for q in (self._txs, self._tx_anns, self._blocks, self._block_anns):
                q.clear()
            log.debug("Broadcast stopped", extra=kv(peer=self, err=exc))
            await asyncio.Event().wait()

    async def _send_round(self) -> None:
        send = self.channel.send
        if self._range is not None:
            rng, self._range = self._range, None
            await send(BLOCK_RANGE_UPDATE, rng.encode())
        if self._blocks:
            block, td = self._blocks.popleft()
            await send(NEW_BLOCK, NewBlock(block, td).encode())
        if self._block_anns:
            block = self._block_anns.popleft()
            await send(NEW_BLOCK_HASHES, _ANNOUNCEMENTS.encode([BlockAnnouncement(block.hash, block.number)]))
        if self._txs:
            items = self._pack_transactions()
            if items:
                await send(TRANSACTIONS, wrap_list(b"".join(items)))
        if self._tx_anns:
            ann = self._pack_announcements()
            if ann is not None:
                await send(NEW_POOLED_TRANSACTION_HASHES, ann.encode())

    def _pack_transactions(self) -> list[bytes]:
        items: list[bytes] = []
        size = 0
        get = self.txpool.get
        q = self._txs
        while q and size < MAX_TX_PACKET_SIZE:
            tx = get(q.popleft())
            if tx is not None:  # gone from the pool meanwhile: nothing to send
                item = tx.item()
                items.append(item)
                size += len(item)
        return items

    def _pack_announcements(self) -> PooledHashes | PooledHashes72 | None:
        """One announcement from the queue (geth announceTransactions).

        eth/72 carries one custody mask per message, so its blob txs go together only when
        they share a custody; the others wait in the queue for a later message. A blob tx
        held as custody cells is announced on eth/72 only: no earlier peer could fetch it.
        """
        types = bytearray()
        sizes: list[int] = []
        hashes: list[bytes] = []
        pool = self.txpool
        meta_of = pool.get_metadata
        sparse = self.version >= ETH72
        mask: int | None = None
        later: list[bytes] = []
        q = self._tx_anns
        while q and len(hashes) * 32 < MAX_TX_PACKET_SIZE:
            tx_hash = q.popleft()
            meta = meta_of(tx_hash)
            if meta is None:
                continue
            size = meta[1]
            if meta[0] == BLOB_TX_TYPE:
                custody = pool.custody(tx_hash)
                if custody is not None and custody != CUSTODY_ALL and not sparse:
                    continue  # custody cells only: not retrievable before eth/72 (geth announceable)
                if sparse and custody is not None:
                    if mask is not None and custody != mask:
                        later.append(tx_hash)
                        continue
                    mask = custody
                    size = pool.announce_size(tx_hash, self.version) or size
            types.append(meta[0])
            sizes.append(size)
            hashes.append(tx_hash)
        q.extendleft(reversed(later))
        if not hashes:
            return None
        if sparse:
            return PooledHashes72(bytes(types), sizes, hashes, custody_to_bytes(mask or 0))
        return PooledHashes(bytes(types), sizes, hashes)

    # --- requests -----------------------------------------------------------------------

    async def request_headers(
        self, origin: bytes | int, amount: int, skip: int = 0, reverse: bool = False,
        *, timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> list[Header]:
        """Headers from ``origin`` (hash or number): ``amount`` of them, ``skip`` apart."""
        query = HeaderQuery(encode_origin(origin), amount, skip, reverse)
        return await self._request(GET_BLOCK_HEADERS, BLOCK_HEADERS, query, amount, timeout)  # type: ignore[no-any-return]

    async def request_bodies(self, hashes: Sequence[bytes], *, timeout: float = DEFAULT_REQUEST_TIMEOUT) -> list[Body]:
        """Bodies of the blocks ``hashes``, in order; the answer may stop early."""
        return await self._request(GET_BLOCK_BODIES, BLOCK_BODIES, list(hashes), len(hashes), timeout)  # type: ignore[no-any-return]

    async def request_receipts(
        self, hashes: Sequence[bytes], *, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> list[list[Any]]:
        """Receipts (``Receipt`` objects) of the blocks ``hashes``, one list per block.

        On eth/70 a reply may end inside a block (``lastBlockIncomplete``): the rest of that
        block is asked for from the receipt where the reply stopped, so the caller always
        gets whole lists, as on earlier versions.
        """
        if self.version < ETH70:
            return await self._request(GET_RECEIPTS, RECEIPTS, list(hashes), len(hashes), timeout)  # type: ignore[no-any-return]
        todo = list(hashes)
        incomplete, lists = await self._request(GET_RECEIPTS, RECEIPTS, (0, todo), len(todo), timeout)
        out: list[list[Any]] = [list(x) for x in lists]
        while incomplete and out:
            rest = todo[len(out) - 1:]
            incomplete, more = await self._request(
                GET_RECEIPTS, RECEIPTS, (len(out[-1]), rest), len(rest), timeout
            )
            if not more:
                break
            out[-1].extend(more[0])
            out.extend(list(x) for x in more[1:])
        return out

    async def request_block_access_lists(
        self, hashes: Sequence[bytes], *, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> list[bytes | None]:
        """eth/71: the access lists (RLP) of the blocks ``hashes``; None where the peer has none."""
        if self.version < ETH71:
            raise ValueError(f"GetBlockAccessLists does not exist on eth/{self.version}")
        items = await self._request(GET_BLOCK_ACCESS_LISTS, BLOCK_ACCESS_LISTS, list(hashes), len(hashes), timeout)
        return [None if item == UNAVAILABLE_BAL else bytes(item) for item in items]

    async def request_pooled_txs(
        self, hashes: Sequence[bytes], *, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> list[Any]:
        """The txs ``hashes`` from the peer's pool (blob txs with sidecars); unknown ones are left out.

        The caller gets the decoded txs and decides what to do with them (the tx fetcher
        adds them to the pool); they have passed the handler's checks and are marked known.
        """
        return await self._request(  # type: ignore[no-any-return]
            GET_POOLED_TRANSACTIONS, POOLED_TRANSACTIONS, list(hashes), len(hashes), timeout
        )

    async def request_cells(
        self, hashes: Sequence[bytes], mask: int, *, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> tuple[list[bytes], list[list[bytes]], int]:
        """eth/72: the cells ``mask`` of the blob txs ``hashes`` (geth RequestPayload).

        Returns (hashes served, each one's cells blob-major, the mask the reply states),
        checked for shape but not against the KZG proofs: the blob buffer does that once
        the tx is known.
        """
        if self.version < ETH72:
            raise ValueError(f"GetCells does not exist on eth/{self.version}")
        return await self._request(  # type: ignore[no-any-return]
            GET_CELLS, CELLS, (list(hashes), custody_to_bytes(mask)), len(hashes), timeout
        )

    async def reply_cells(self, request_id: int, hashes: Sequence[bytes], cells: Sequence[Sequence[bytes]],
                          mask: bytes) -> None:
        """Answer GetCells: ``[request-id, hashes, [cells per tx, index-major], mask]``."""
        msg = message(self.version, CELLS)
        assert msg is not None
        await self.channel.send(CELLS, msg.encode((list(hashes), [list(c) for c in cells], mask), request_id))

    async def _request(self, code: int, want: int, value: Any, size: int, timeout: float) -> Any:
        if self.closed:
            raise PeerDroppedError(f"{self!r} is gone")
        rid, future = self.requests.open(want, size)
        msg = message(self.version, code)
        assert msg is not None
        try:
            await self.channel.send(code, msg.encode(value, rid))
        except EthnodeError as exc:
            self.requests.forget(rid)
            raise PeerDroppedError(f"{self!r}: cannot send {msg.name}: {exc}") from None
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise RequestTimeoutError(
                f"{self!r}: no {message_name(self.version, want)} within {timeout:g} s"
            ) from None

    def fulfil(self, code: int, request_id: int, count: int) -> asyncio.Future[Any] | None:
        """Settle the request a response answers (its future, None if nobody waits); ProtocolViolation if none."""
        return self.requests.fulfil(code, message_name(self.version, code), request_id, count)

    @property
    def pending_requests(self) -> int:
        return len(self.requests)

    def close(self) -> None:
        """The peer ended: fail waiting requests, stop the broadcast task."""
        if self.closed:
            return
        self.closed = True
        self.stop_broadcast()
        self.requests.fail_all(PeerDroppedError(f"{self!r} disconnected"))


__all__ = [
    "EthPeer", "RequestError", "RequestTimeoutError", "PeerDroppedError", "MAX_QUEUED_TXS", "MAX_QUEUED_TX_ANNS",
    "MAX_QUEUED_BLOCKS", "MAX_QUEUED_BLOCK_ANNS", "MAX_TX_PACKET_SIZE", "DEFAULT_REQUEST_TIMEOUT",
    "TRACKER_TIMEOUT", "MAX_TRACKED_REQUESTS",
]
