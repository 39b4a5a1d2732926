"""Extra devp2p sub-protocols for ``ethnode.api``: a message table and a handler, no classes to write.

A ``SubProtocol`` is offered in Hello as the capability ``name/version`` next to eth; a
peer that offers it too gets a ``SubPeer`` and every message it sends, decoded by the
table. What the table does not know, or cannot decode, ends the connection with
SUBPROTOCOL_ERROR, as a bad eth message does: the handler only ever sees valid messages.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ethnode.errors import EthnodeError
from ethnode.p2p.protocol import Protocol, ProtocolChannel
from ethnode.rlp.errors import RLPError
from ethnode.rlp.sedes import Sedes, as_sedes


class SubProtocolViolation(EthnodeError):
    """A peer sent a code outside the table or bytes its schema does not decode."""


@dataclass(frozen=True, slots=True)
class SubPeer:
    """One peer's side of a sub-protocol: who it is, and sending to it by code."""

    channel: ProtocolChannel = field(repr=False)
    spec: SubProtocol = field(repr=False)

    @property
    def id(self) -> bytes:
        from ethnode.crypto.keccak import keccak256

        return keccak256(self.channel.peer.remote_id)

    @property
    def client_id(self) -> str | None:
        return self.channel.peer.client_id

    async def send(self, code: int, value: Any) -> None:
        """Encode ``value`` with the table's schema for ``code`` and send it."""
        sedes = self.spec.sedes(code)
        await self.channel.send(code, sedes.encode(value))

    def disconnect(self) -> None:
        from ethnode.p2p.disconnect import DiscReason

        self.channel.disconnect(DiscReason.REQUESTED)


Handler = Callable[[SubPeer, int, Any, int], Awaitable[None] | None]


@dataclass(frozen=True)
class SubProtocol:
    """A sub-protocol: ``messages`` maps each code (0-based) to its RLP schema (``ethnode.rlp.sedes``).

    ``handler(peer, code, value, time_ns)`` is called for every message, on the peer's
    reader (a slow handler slows that peer only). ``on_connect(peer)``, if given, runs once
    the protocol is up; when it returns the peer stays connected.
    """

    name: str
    version: int
    messages: Mapping[int, Any]
    handler: Handler
    on_connect: Callable[[SubPeer], Awaitable[None] | None] | None = None

    def __post_init__(self) -> None:
        if not self.messages or min(self.messages) < 0:
            raise ValueError("a sub-protocol needs at least one message code, each >= 0")
        if self.name == "eth":
            raise ValueError("'eth' is the node's own protocol")

    @property
    def length(self) -> int:
        return max(self.messages) + 1

    def sedes(self, code: int) -> Sedes:
        if code not in self.messages:
            raise ValueError(f"{self.name}/{self.version} has no message {code:#x}")
        return as_sedes(self.messages[code])

    def p2p_protocol(self) -> Protocol:
        """The devp2p ``Protocol`` the server offers for it."""
        return Protocol(self.name, self.version, self.length, lambda channel: _Handler(channel, self))


class _Handler:
    def __init__(self, channel: ProtocolChannel, spec: SubProtocol) -> None:
        self.peer = SubPeer(channel, spec)
        self.spec = spec

    async def handle(self, code: int, payload: bytes) -> None:
        now = time.time_ns()
        if code not in self.spec.messages:
            raise SubProtocolViolation(f"unknown message code {code:#x}")
        try:
            value = self.spec.sedes(code).decode(payload)
        except RLPError as exc:
            raise SubProtocolViolation(f"message {code:#x}: {exc}") from None
        result = self.spec.handler(self.peer, code, value, now)
        if inspect.isawaitable(result):
            await result

    async def run(self) -> None:
        if self.spec.on_connect is not None:
            result = self.spec.on_connect(self.peer)
            if inspect.isawaitable(result):
                await result
        await asyncio.Event().wait()  # returning would drop the peer (QUITTING); it lives as long as the connection


__all__ = ["SubProtocol", "SubPeer", "SubProtocolViolation"]
