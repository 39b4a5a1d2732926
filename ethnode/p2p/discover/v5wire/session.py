"""discv5 sessions: keys per (node id, address), and the WHOAREYOU challenges in flight.

A session is bound to the address the handshake came from (geth's sessionID is the id and
the "ip:port" string): the same node talking from another address must handshake again,
which is how a node proves each endpoint it uses. Sessions live in an LRU of geth's size
(1024); sent challenges expire after a second (geth handshakeTimeout).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ethnode.crypto.keys import PrivateKey
from ethnode.p2p.enode import Node

if TYPE_CHECKING:
    from ethnode.p2p.discover.v5wire.codec import Whoareyou

SESSION_CACHE_SIZE = 1024  # geth NewCodec: NewSessionCache(1024, ...)
HANDSHAKE_TIMEOUT = 1.0  # seconds; geth handshakeTimeout
NONCE_SIZE = 12

SessionKey = tuple[bytes, Hashable]  # (node id, address)


@dataclass
class Session:
    write_key: bytes
    read_key: bytes
    node: Node | None = None
    nonce_counter: int = 0

    def flipped(self) -> Session:
        return Session(self.read_key, self.write_key, self.node, self.nonce_counter)


def _random_nonce(counter: int) -> bytes:
    """geth generateNonce: a 32-bit message counter, then 8 random bytes."""
    return (counter & 0xFFFFFFFF).to_bytes(4, "big") + os.urandom(NONCE_SIZE - 4)


@dataclass
class SessionCache:
    """Established sessions (LRU) and sent challenges, with hooks to fix the randomness (tests)."""

    max_items: int = SESSION_CACHE_SIZE
    clock: Callable[[], float] = time.monotonic
    nonce_gen: Callable[[int], bytes] = _random_nonce
    masking_iv_gen: Callable[[], bytes] = lambda: os.urandom(16)
    ephemeral_key_gen: Callable[[], PrivateKey] = PrivateKey.generate
    sessions: OrderedDict[SessionKey, Session] = field(default_factory=OrderedDict)
    handshakes: dict[SessionKey, Whoareyou] = field(default_factory=dict)

    def next_nonce(self, s: Session) -> bytes:
        s.nonce_counter += 1
        return self.nonce_gen(s.nonce_counter)

    def session(self, node_id: bytes, addr: Hashable) -> Session | None:
        key = (node_id, addr)
        s = self.sessions.get(key)
        if s is not None:
            self.sessions.move_to_end(key)
        return s

    def store_session(self, node_id: bytes, addr: Hashable, s: Session, node: Node) -> None:
        s.node = node
        key = (node_id, addr)
        self.sessions[key] = s
        self.sessions.move_to_end(key)
        while len(self.sessions) > self.max_items:
            self.sessions.popitem(last=False)

    def get_handshake(self, node_id: bytes, addr: Hashable) -> Whoareyou | None:
        return self.handshakes.get((node_id, addr))

    def store_sent_handshake(self, node_id: bytes, addr: Hashable, challenge: Whoareyou) -> None:
        challenge.sent = self.clock()
        self.handshakes[(node_id, addr)] = challenge

    def delete_handshake(self, node_id: bytes, addr: Hashable) -> None:
        self.handshakes.pop((node_id, addr), None)

    def handshake_gc(self) -> None:
        if not self.handshakes:
            return
        deadline = self.clock() - HANDSHAKE_TIMEOUT
        for key in [k for k, c in self.handshakes.items() if c.sent < deadline]:
            del self.handshakes[key]


__all__ = ["Session", "SessionCache", "SESSION_CACHE_SIZE", "HANDSHAKE_TIMEOUT"]
