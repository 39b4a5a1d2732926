"""Sub-protocols (capabilities) and how two peers agree on them after Hello.

A ``Protocol`` describes what we run: name, version, how many message codes it uses and
a factory that builds its handler for one peer. Hello lists each side's capabilities;
for every name both sides speak, the highest common version wins, and the winners get
consecutive message-code ranges starting at 0x10, in name order (geth p2p/peer.go
matchProtocols). Both sides compute the same layout without further messages.

A handler receives messages with codes relative to its offset, inline on the peer's
reader task, so a slow handler slows that peer's reading (geth does the same: its
protocol channel is unbuffered). It may also have an ``async run()`` started after Hello;
when ``run`` returns, the peer is dropped with QUITTING, as in geth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from typing import Protocol as _Interface

from ethnode.p2p.disconnect import DiscReason

if TYPE_CHECKING:
    from ethnode.p2p.peer import Peer

BASE_PROTOCOL_LENGTH = 0x10  # message codes reserved for the base protocol, geth baseProtocolLength


@dataclass(frozen=True, order=True, slots=True)
class Capability:
    """A (name, version) pair as Hello carries it; orders as geth's Cap.Cmp."""

    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


class ProtocolHandler(_Interface):
    """One peer's side of a sub-protocol (``run`` is optional)."""

    async def handle(self, code: int, payload: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class Protocol:
    """A sub-protocol we offer: ``new_handler(channel)`` is called once per matched peer."""

    name: str
    version: int
    length: int  # number of message codes it uses, geth Protocol.Length
    new_handler: Callable[[ProtocolChannel], ProtocolHandler] = field(compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name or not self.name.isascii():
            raise ValueError(f"protocol name must be non-empty ASCII, got {self.name!r}")
        if self.version < 0 or self.length <= 0:
            raise ValueError("protocol version must be >= 0 and length > 0")

    @property
    def capability(self) -> Capability:
        return Capability(self.name, self.version)


@dataclass(frozen=True, slots=True)
class MatchedProtocol:
    """A protocol both sides run, and where its message codes start on this connection."""

    protocol: Protocol
    offset: int

    def owns(self, code: int) -> bool:
        return self.offset <= code < self.offset + self.protocol.length


def match_protocols(ours: Iterable[Protocol], theirs: Iterable[Capability]) -> list[MatchedProtocol]:
    """The highest common version of every shared name, with offsets from 0x10 in name order."""
    offered = {(p.name, p.version): p for p in ours}
    best: dict[str, Protocol] = {}
    for cap in theirs:
        proto = offered.get((cap.name, cap.version))
        if proto is not None and (cap.name not in best or best[cap.name].version < cap.version):
            best[cap.name] = proto
    matched = []
    offset = BASE_PROTOCOL_LENGTH
    for name in sorted(best):
        matched.append(MatchedProtocol(best[name], offset))
        offset += best[name].length
    return matched


def find_protocol(matched: Sequence[MatchedProtocol], code: int) -> MatchedProtocol | None:
    """The matched protocol that owns an absolute message code, if any."""
    for m in matched:
        if m.owns(code):
            return m
    return None


class ProtocolChannel:
    """A handler's view of its peer: send with relative codes, ask for a disconnect."""

    __slots__ = ("peer", "matched")

    def __init__(self, peer: Peer, matched: MatchedProtocol) -> None:
        self.peer = peer
        self.matched = matched

    @property
    def protocol(self) -> Protocol:
        return self.matched.protocol

    @property
    def version(self) -> int:
        return self.matched.protocol.version

    @property
    def offset(self) -> int:
        return self.matched.offset

    async def send(self, code: int, payload: bytes) -> None:
        """Send message ``code`` (relative to this protocol) with an RLP-encoded payload."""
        if not 0 <= code < self.matched.protocol.length:
            raise ValueError(f"message code {code} is out of range for {self.matched.protocol.capability}")
        await self.peer.send(self.matched.offset + code, payload)

    def disconnect(self, reason: DiscReason) -> None:
        self.peer.disconnect(reason)


__all__ = [
    "Capability", "Protocol", "ProtocolHandler", "ProtocolChannel", "MatchedProtocol",
    "match_protocols", "find_protocol", "BASE_PROTOCOL_LENGTH",
]
