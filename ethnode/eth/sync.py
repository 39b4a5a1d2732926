"""When to sync and with whom (geth ``eth/sync.go`` chainSyncer, before the skeleton sync).

The syncer wakes when a peer registers or announces a new head, and every 10 s
regardless. On a wake-up by peer event it wants at least 5 peers (fewer if maxpeers is
lower) before picking one; on the forced cycle one peer is enough. It then syncs with the
best peer (``PeerSet.best_peer``) if that peer is ahead of us: more total difficulty on
eth/68, a higher announced head on eth/69.

The downloader arrives with the fetcher/downloader work; until then ``downloader`` is
None and a sync is only logged. A downloader is anything with
``async synchronise(peer)``; it may also have ``register_peer(peer)`` and
``unregister_peer(peer)``, which the handler calls as peers come and go.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from ethnode.errors import EthnodeError
from ethnode.eth.protocol import ETH68

if TYPE_CHECKING:
    from ethnode.eth.peer import EthPeer

log = logging.getLogger("ethnode.eth.sync")

FORCE_SYNC_CYCLE = 10.0  # seconds; geth forceSyncCycle
MIN_DESIRED_PEER_COUNT = 5  # peers wanted before a peer event triggers a sync; geth minDesiredPeerCount


class Downloader(Protocol):
    """What the syncer needs of a downloader (the fetcher/downloader issue provides one)."""

    async def synchronise(self, peer: EthPeer) -> None: ...


class Syncer:
    """Decides sync operations for ``handler``; ``run()`` is one of the handler's loops."""

    def __init__(
        self,
        handler: Any,
        downloader: Downloader | None = None,
        *,
        force_cycle: float = FORCE_SYNC_CYCLE,
        min_peers: int = MIN_DESIRED_PEER_COUNT,
    ) -> None:
        self.handler = handler
        self.downloader = downloader
        self.force_cycle = force_cycle
        self.min_peers = min_peers
        self._wake = asyncio.Event()
        self.attempts = 0  # sync operations started (or logged, without a downloader)
        self.last_target: EthPeer | None = None
        self._told_no_downloader = False

    def peer_event(self) -> None:
        """A peer registered or its head moved: reconsider soon."""
        self._wake.set()

    def ahead_of_us(self, peer: EthPeer) -> bool:
        is_ahead = getattr(self.downloader, "is_ahead", None)
        if is_ahead is not None:  # the downloader knows better (eth/68 after the merge: equal TDs)
            return bool(is_ahead(peer))
        chain = self.handler.chain
        head = chain.current_block
        if peer.version == ETH68:
            ours = chain.get_td(head.hash, head.number) or 0
            return peer.td is not None and peer.td > ours
        return peer.block_range is not None and peer.block_range.latest > head.number

    def next_sync_target(self, forced: bool) -> EthPeer | None:
        """geth nextSyncOp: the best peer if there are enough peers and it is ahead of us."""
        peers = self.handler.peers
        min_peers = 1 if forced else self.min_peers
        max_peers = self.handler.max_peers
        if not forced and max_peers is not None:
            min_peers = min(min_peers, max_peers)
        if len(peers) < min_peers:
            return None
        best = peers.best_peer()
        if best is None or not self.ahead_of_us(best):
            return None
        return best  # type: ignore[no-any-return]

    async def run(self) -> None:
        # The forced cycle runs on its own clock (geth's force ticker): peer events arriving
        # more often than every 10 s (a NewBlock per block) must not postpone it for ever.
        loop = asyncio.get_running_loop()
        next_force = loop.time() + self.force_cycle
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), max(next_force - loop.time(), 0.0))
                forced = False
            except TimeoutError:
                forced = True
                next_force = loop.time() + self.force_cycle
            self._wake.clear()
            peer = self.next_sync_target(forced)
            if peer is not None:
                await self.sync(peer)

    async def sync(self, peer: EthPeer) -> None:
        self.attempts += 1
        self.last_target = peer
        if self.downloader is None:
            if not self._told_no_downloader:
                self._told_no_downloader = True
                log.info("Chain sync wanted but no downloader is installed yet; not syncing")
            log.debug("Would sync with %r (head %s)", peer, peer.info())
            return
        try:
            await self.downloader.synchronise(peer)
        except EthnodeError as exc:
            log.warning("Synchronisation with %r failed: %s", peer, exc)


__all__ = ["Syncer", "Downloader", "FORCE_SYNC_CYCLE", "MIN_DESIRED_PEER_COUNT"]
