"""When to sync and with whom (geth ``eth/sync.go`` chainSyncer, before the skeleton sync).

The syncer wakes when a peer registers or announces a new head, and every 10 s
regardless. On a wake-up by peer event it wants at least 5 peers (fewer if maxpeers is
lower) before picking one; on the forced cycle one peer is enough. It then syncs with the
best peer (``PeerSet.best_peer``) if that peer is ahead of us: more total difficulty on
eth/68, a higher announced head on eth/69.

The downloader is the handler's (``SyncDownloader``: the real one, or a test's stub); the
syncer only decides when and with whom it runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from ethnode.errors import EthnodeError
from ethnode.logctx import kv

if TYPE_CHECKING:
    from ethnode.eth.peerset import PeerSet
    from ethnode.eth.protocols.eth.peer import EthPeer

log = logging.getLogger("ethnode.eth.sync")

FORCE_SYNC_CYCLE = 10.0  # seconds; geth forceSyncCycle
MIN_DESIRED_PEER_COUNT = 5  # peers wanted before a peer event triggers a sync; geth minDesiredPeerCount


class SyncDownloader(Protocol):
    """What the handler and the syncer need of a downloader (``ethnode.eth.downloader.Downloader``)."""

    @property
    def syncing(self) -> bool: ...

    def is_ahead(self, peer: EthPeer) -> bool:
        """The peer has something for us (eth/68 after the merge: TDs are equal, heads are not)."""
        ...

    def register_peer(self, peer: EthPeer) -> None: ...

    def unregister_peer(self, peer: EthPeer) -> None: ...

    async def synchronise(self, peer: EthPeer) -> bool: ...

    def sync_to(self, head_hash: bytes) -> None:
        """Sync toward a head only its hash is known of (the Engine API's forkchoice)."""
        ...

    async def stop(self) -> None: ...


class SyncHost(Protocol):
    """The handler as the syncer sees it: its peers and its peer limit."""

    @property
    def peers(self) -> PeerSet: ...

    @property
    def max_peers(self) -> int | None: ...


class Syncer:
    """Decides sync operations for ``handler``; ``run()`` is one of the handler's loops."""

    def __init__(
        self,
        handler: SyncHost,
        downloader: SyncDownloader,
        *,
        force_cycle: float = FORCE_SYNC_CYCLE,
        min_peers: int = MIN_DESIRED_PEER_COUNT,
    ) -> None:
        self.handler = handler
        self.downloader = downloader
        self.force_cycle = force_cycle
        self.min_peers = min_peers
        self.enabled = True  # False: never sync (an observer node, ethnode.api NodeConfig(sync=False))
        self._wake = asyncio.Event()
        self.attempts = 0  # sync operations started (or logged, without a downloader)
        self.last_target: EthPeer | None = None

    def peer_event(self) -> None:
        """A peer registered or its head moved: reconsider soon."""
        self._wake.set()

    def ahead_of_us(self, peer: EthPeer) -> bool:
        return self.downloader.is_ahead(peer)

    def next_sync_target(self, forced: bool) -> EthPeer | None:
        """geth nextSyncOp: the best peer if there are enough peers and it is ahead of us."""
        if not self.enabled:
            return None
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
                # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancel that races the
                # wake-up (a peer registering as the handler stops), and the loop then never ends
                async with asyncio.timeout(max(next_force - loop.time(), 0.0)):
                    await self._wake.wait()
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
        try:
            await self.downloader.synchronise(peer)
        except EthnodeError as exc:
            log.warning("Synchronisation failed", extra=kv(peer=peer.id.hex()[:16], err=exc))


__all__ = ["Syncer", "SyncDownloader", "SyncHost", "FORCE_SYNC_CYCLE", "MIN_DESIRED_PEER_COUNT"]
