"""The eth Status handshake, sans-IO: build our Status, judge theirs.

Both sides send Status at once and each checks the other's: the network id, the
protocol version, the genesis hash and the fork ID (EIP-2124 filter) must agree, and an
eth/69 block range must be sane. Every failure is a plain error in geth, which its p2p
layer turns into DiscSubprotocolError; a handshake that does not finish within 5 s ends
with DiscReadTimeout (geth ``eth/protocols/eth/handshake.go``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ethnode.core.forkid import ForkID, ForkIDError
from ethnode.eth.protocols.eth.protocol import ETH68, ETH69, BlockRange, ProtocolViolation, Status68, Status69

HANDSHAKE_TIMEOUT = 5.0  # seconds; geth handshakeTimeout
# Total difficulty bound, for eth/68 Status and NewBlock: mainnet's final TD is 72 bits;
# geth (v1.13 Handshake, NewBlockPacket.sanityCheck) refuses more than 100.
MAX_TD_BITS = 100

AnyStatus = Status68 | Status69


class HandshakeError(ProtocolViolation):
    """The remote Status is unacceptable (the peer is dropped with SUBPROTOCOL_ERROR)."""


# geth's error names, each carrying geth's message so logs read alike.
class NoStatusError(HandshakeError):
    """geth errNoStatusMsg: the first eth message was not Status."""


class NetworkIDMismatchError(HandshakeError):
    """geth errNetworkIDMismatch."""


class ProtocolVersionMismatchError(HandshakeError):
    """geth errProtocolVersionMismatch."""


class GenesisMismatchError(HandshakeError):
    """geth errGenesisMismatch."""


class ForkIDRejectedError(HandshakeError):
    """geth errForkIDRejected."""


class TDTooLargeError(HandshakeError):
    """An eth/68 Status whose total difficulty no chain can have (geth: more than 100 bits)."""


class InvalidBlockRangeError(HandshakeError):
    """geth errInvalidBlockRange (eth/69)."""


@dataclass(frozen=True)
class ChainStatus:
    """What our Status says, whichever the version (both forms are built from it)."""

    network_id: int
    genesis_hash: bytes
    fork_id: ForkID
    head_hash: bytes
    td: int  # total difficulty of the head (eth/68)
    earliest: int  # first block whose body we serve (eth/69); 0 without history pruning
    latest: int
    latest_hash: bytes

    @property
    def block_range(self) -> BlockRange:
        return BlockRange(min(self.earliest, self.latest), self.latest, self.latest_hash)


def make_status(version: int, local: ChainStatus) -> AnyStatus:
    """Our Status record for a peer on ``version``."""
    if version == ETH68:
        return Status68(ETH68, local.network_id, local.td, local.head_hash, local.genesis_hash, local.fork_id)
    if version >= ETH69:
        rng = local.block_range
        return Status69(
            version, local.network_id, local.genesis_hash, local.fork_id, rng.earliest, rng.latest, rng.latest_hash
        )
    raise ValueError(f"unsupported eth version {version}")


def check_status(
    version: int,
    remote: AnyStatus,
    network_id: int,
    genesis_hash: bytes,
    fork_filter: Callable[[ForkID], None],
) -> None:
    """Raise a ``HandshakeError`` if ``remote`` may not peer with us; checks in geth's order."""
    if remote.network_id != network_id:
        raise NetworkIDMismatchError(f"network ID mismatch: {remote.network_id} (!= {network_id})")
    if remote.version != version:
        raise ProtocolVersionMismatchError(f"protocol version mismatch: {remote.version} (!= {version})")
    if remote.genesis != genesis_hash:
        raise GenesisMismatchError(f"genesis mismatch: {remote.genesis.hex()} (!= {genesis_hash.hex()})")
    try:
        fork_filter(remote.fork_id)
    except ForkIDError as exc:
        raise ForkIDRejectedError(f"fork ID rejected: {exc}") from None
    if isinstance(remote, Status68) and remote.td.bit_length() > MAX_TD_BITS:
        raise TDTooLargeError(f"too large total difficulty: bitlen {remote.td.bit_length()}")
    if isinstance(remote, Status69):
        problem = BlockRange(remote.earliest, remote.latest, remote.latest_hash).problem()
        if problem is not None:
            raise InvalidBlockRangeError(f"invalid block range in status: {problem}")


__all__ = [
    "HANDSHAKE_TIMEOUT", "ChainStatus", "make_status", "check_status", "HandshakeError", "NoStatusError",
    "NetworkIDMismatchError", "ProtocolVersionMismatchError", "GenesisMismatchError", "ForkIDRejectedError",
    "InvalidBlockRangeError", "TDTooLargeError", "MAX_TD_BITS", "AnyStatus",
]
