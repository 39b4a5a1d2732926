"""Chain sync: the downloader (full sync toward the best peer's head) and its schedulers.

The handler builds its Downloader (driven by its syncer) when it is constructed.
"""

from __future__ import annotations

from ethnode.eth.downloader.ancestor import MAX_FORK_ANCESTRY, MAX_HEADER_FETCH, AncestorSearch, request_span
from ethnode.eth.downloader.bodies import MAX_BLOCK_FETCH, BodyScheduler
from ethnode.eth.downloader.downloader import Downloader, SyncProgress, SyncStats
from ethnode.eth.downloader.errors import BadResponseError, MasterPeerError, SyncError
from ethnode.eth.downloader.headers import MAX_SKELETON_SIZE, HeaderScheduler

__all__ = [
    "Downloader", "SyncProgress", "SyncStats", "AncestorSearch", "HeaderScheduler", "BodyScheduler", "request_span",
    "SyncError", "BadResponseError", "MasterPeerError", "MAX_HEADER_FETCH", "MAX_BLOCK_FETCH",
    "MAX_SKELETON_SIZE", "MAX_FORK_ANCESTRY",
]
