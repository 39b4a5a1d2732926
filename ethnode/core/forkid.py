"""EIP-2124 fork identifiers: a compact summary of a chain's past and next fork.

``FORK_HASH`` is the IEEE CRC32 of the genesis hash followed by every passed fork's block
number or timestamp (8-byte big-endian); ``FORK_NEXT`` is the next scheduled fork or 0.
Peers exchange it in the eth Status message and in the discv4 ENR "eth" entry, and a node
drops a peer whose ID shows it is on another chain or stuck before a fork. The rules here
follow geth's core/forkid/forkid.go, which is what remote peers actually apply.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from ethnode.core.chainconfig import ChainConfig
from ethnode.errors import EthnodeError
from ethnode.rlp.sedes import FixedBytes, Record, uint64

# A FORK_NEXT above this is a timestamp, not a block number (geth timestampThreshold:
# the mainnet genesis-era time 2015-07-30; no block number will reach it).
TIMESTAMP_THRESHOLD = 1438269973

_NEVER = 2**64 - 1  # sentinel fork that is never passed (geth math.MaxUint64)


class ForkIDError(EthnodeError):
    """A remote fork ID that is incompatible with the local chain."""


class RemoteStaleError(ForkIDError):
    """The remote is on a subset of our forks but not aware of the next one (geth ErrRemoteStale)."""

    def __init__(self, message: str = "remote needs update") -> None:
        super().__init__(message)


class LocalIncompatibleOrStaleError(ForkIDError):
    """The remote is on another chain, or on a fork we do not know yet (geth ErrLocalIncompatibleOrStale)."""

    def __init__(self, message: str = "local incompatible or needs update") -> None:
        super().__init__(message)


# geth's names, for code that follows geth closely.
ErrRemoteStale = RemoteStaleError
ErrLocalIncompatibleOrStale = LocalIncompatibleOrStaleError


class ForkID(Record):
    """The wire form ``[FORK_HASH (4 bytes), FORK_NEXT (uint64)]``."""

    fields = (("hash", FixedBytes(4)), ("next", uint64))


def gather_forks(config: ChainConfig, genesis_time: int) -> tuple[list[int], list[int]]:
    """(block forks, time forks) that count for the fork ID, each sorted and de-duplicated.

    Forks at block 0 or at/before the genesis time are the genesis ruleset, not forks.
    Forks scheduled for the same block (or time) count once.
    """
    blocks = sorted(set(config.block_forks()))
    times = sorted(set(config.time_forks()))
    if blocks and blocks[0] == 0:
        blocks = blocks[1:]
    times = [t for t in times if t > genesis_time]
    return blocks, times


def _checksum_update(crc: int, fork: int) -> int:
    return zlib.crc32(fork.to_bytes(8, "big"), crc)


def new_id(config: ChainConfig, genesis_hash: bytes, genesis_time: int, head: int, time: int) -> ForkID:
    """The fork ID of a node whose head is block ``head`` with timestamp ``time``."""
    crc = zlib.crc32(genesis_hash)
    blocks, times = gather_forks(config, genesis_time)
    for fork in blocks:
        if fork > head:
            return ForkID(crc.to_bytes(4, "big"), fork)
        crc = _checksum_update(crc, fork)
    for fork in times:
        if fork > time:
            return ForkID(crc.to_bytes(4, "big"), fork)
        crc = _checksum_update(crc, fork)
    return ForkID(crc.to_bytes(4, "big"), 0)


class Filter:
    """Checks remote fork IDs against the local chain at its current head (geth newFilter).

    ``head`` is called on every check and returns the local (block number, timestamp), so
    one filter serves a node for its whole life while its head moves.
    """

    def __init__(
        self,
        config: ChainConfig,
        genesis_hash: bytes,
        genesis_time: int,
        head: Callable[[], tuple[int, int]],
    ) -> None:
        blocks, times = gather_forks(config, genesis_time)
        self._forks = blocks + times + [_NEVER]
        # Index of the first time-based entry: entries before it compare to the head block,
        # entries from it on to the head time. With no time forks the sentinel counts as a
        # block fork so that a purely block-based chain never looks at timestamps.
        self._first_time = len(blocks) if times else len(blocks) + 1
        crc = zlib.crc32(genesis_hash)
        self._sums = [crc.to_bytes(4, "big")]
        for fork in blocks + times:
            crc = _checksum_update(crc, fork)
            self._sums.append(crc.to_bytes(4, "big"))
        self._head = head

    def __call__(self, remote: ForkID) -> None:
        self.validate(remote)

    def validate(self, remote: ForkID) -> None:
        """Return if ``remote`` may be on our chain; raise a ``ForkIDError`` subclass if not."""
        block, time = self._head()
        forks, sums = self._forks, self._sums
        for i, fork in enumerate(forks):
            head = block if i < self._first_time else time
            if head >= fork:
                continue
            # forks[i] is our first unpassed fork, so sums[i] is our current fork hash.
            if sums[i] == remote.hash:
                # Same fork state. If the remote announces a next fork that we have already
                # passed without knowing it, the chains have split.
                if remote.next and (
                    head >= remote.next or (remote.next > TIMESTAMP_THRESHOLD and time >= remote.next)
                ):
                    raise LocalIncompatibleOrStaleError()
                return
            # Remote is behind us on our own chain: fine if it knows the fork that comes next.
            for j in range(i):
                if sums[j] == remote.hash:
                    if forks[j] != remote.next:
                        raise RemoteStaleError()
                    return
            # Remote is ahead of us on our own chain (we are syncing): fine.
            if remote.hash in sums[i + 1 :]:
                return
            raise LocalIncompatibleOrStaleError()
        # Unreachable: the last fork is never passed. geth logs and accepts; so do we.
        return


def new_filter(
    config: ChainConfig, genesis_hash: bytes, genesis_time: int, head: Callable[[], tuple[int, int]]
) -> Filter:
    """A fork-ID filter for the local chain whose current head ``head()`` returns."""
    return Filter(config, genesis_hash, genesis_time, head)


def new_static_filter(config: ChainConfig, genesis_hash: bytes, genesis_time: int) -> Filter:
    """A filter for a node at genesis (geth NewStaticFilter), e.g. for discovery before sync."""
    return Filter(config, genesis_hash, genesis_time, lambda: (0, genesis_time))


__all__ = [
    "ForkID", "ForkIDError", "RemoteStaleError", "LocalIncompatibleOrStaleError", "ErrRemoteStale",
    "ErrLocalIncompatibleOrStale", "Filter", "gather_forks", "new_id", "new_filter", "new_static_filter",
    "TIMESTAMP_THRESHOLD",
]
