"""Chain sync: the downloader (full sync toward the best peer's head) and its schedulers.

``install(handler)`` gives an ``EthHandler`` its downloader (driven by the syncer) and its
block fetcher (eth/68 announcements, eth/69 range updates), as the Ethereum service does.
"""

from __future__ import annotations

from typing import Any

from ethnode.eth.downloader.ancestor import MAX_FORK_ANCESTRY, MAX_HEADER_FETCH, AncestorSearch, request_span
from ethnode.eth.downloader.bodies import MAX_BLOCK_FETCH, BodyScheduler
from ethnode.eth.downloader.downloader import Downloader, SyncProgress, SyncStats
from ethnode.eth.downloader.errors import BadResponseError, MasterPeerError, SyncError
from ethnode.eth.downloader.headers import MAX_SKELETON_SIZE, HeaderScheduler


def install(handler: Any, **downloader_options: Any) -> tuple[Downloader, Any]:
    """Attach a Downloader and a BlockFetcher to ``handler`` (before its peers arrive)."""
    from ethnode.eth.blockfetcher import BlockFetcher

    downloader = Downloader(handler.chain, handler=handler, **downloader_options)
    for peer in handler.peers.all():
        downloader.register_peer(peer)
    handler.syncer.downloader = downloader
    fetcher = BlockFetcher(handler.chain, handler)
    handler.block_fetcher = fetcher
    return downloader, fetcher


__all__ = [
    "Downloader", "SyncProgress", "SyncStats", "AncestorSearch", "HeaderScheduler", "BodyScheduler", "request_span",
    "SyncError", "BadResponseError", "MasterPeerError", "install", "MAX_HEADER_FETCH", "MAX_BLOCK_FETCH",
    "MAX_SKELETON_SIZE", "MAX_FORK_ANCESTRY",
]
