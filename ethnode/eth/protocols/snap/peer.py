"""One snap peer: the sub-protocol handler the p2p Peer routes snap messages to.

snap is a satellite of eth (geth ``eth/handler.go`` runSnapExtension): a peer that
negotiated snap without eth is dropped. Queries are decoded once, served by the shared
``SnapServer`` in time slices (one asyncio loop serves every peer) and answered on the
same connection. ethnode never asks a peer for snap data yet, so a response message is
always unsolicited, which geth's request tracker also treats as a violation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ethnode.eth.protocols.eth.protocol import MAX_MESSAGE_SIZE
from ethnode.eth.protocols.eth.protocol import PROTOCOL_NAME as ETH_PROTOCOL_NAME
from ethnode.eth.protocols.snap.protocol import (
    ACCESS_LISTS,
    ACCOUNT_RANGE,
    BYTE_CODES,
    GET_ACCESS_LISTS,
    GET_ACCOUNT_RANGE,
    GET_BYTE_CODES,
    GET_STORAGE_RANGES,
    GET_TRIE_NODES,
    STORAGE_RANGES,
    TRIE_NODES,
    SnapViolation,
    message,
)
from ethnode.eth.protocols.snap.serve import SnapServer, drive
from ethnode.p2p.protocol import ProtocolChannel
from ethnode.rlp import encode as rlp_encode
from ethnode.rlp.framing import wrap_bytes, wrap_list


def _strings(items: Iterable[bytes]) -> bytes:
    """An RLP list of byte strings."""
    return wrap_list(b"".join(wrap_bytes(item) for item in items))


def _items(encoded: Iterable[bytes]) -> bytes:
    """An RLP list of already-encoded items."""
    return wrap_list(b"".join(encoded))


class SnapPeer:
    """The snap side of one connection."""

    def __init__(self, channel: ProtocolChannel, server: SnapServer) -> None:
        self.channel = channel
        self.server = server
        self.version = channel.version

    def __repr__(self) -> str:
        return f"SnapPeer({self.channel.peer.remote_id.hex()[:8]} snap/{self.version})"

    def info(self) -> dict[str, int]:
        """What admin_peers shows under protocols.snap (geth snapPeerInfo)."""
        return {"version": self.version}

    async def run(self) -> None:
        """Refuse a peer without eth, then stay for the connection's life (the reader serves)."""
        if not any(m.protocol.name == ETH_PROTOCOL_NAME for m in self.channel.peer.matched):
            raise SnapViolation("peer connected on snap without compatible eth support")
        await asyncio.Event().wait()

    async def handle(self, code: int, payload: bytes) -> None:
        if len(payload) > MAX_MESSAGE_SIZE:
            raise SnapViolation(f"message too long: {len(payload)} > {MAX_MESSAGE_SIZE}")
        msg = message(self.version, code)
        if not msg.request:
            raise SnapViolation(f"unsolicited {msg.name}: no request pending")
        value = msg.decode(payload)
        server = self.server
        request_id = value[0]
        if code == GET_ACCOUNT_RANGE:
            _, root, origin, limit, nbytes = value
            ranged = await drive(server.account_range(root, origin, limit, nbytes))
            body = _items(ranged.accounts) + _strings(ranged.proof)
            await self._reply(ACCOUNT_RANGE, request_id, body)
        elif code == GET_STORAGE_RANGES:
            _, root, accounts, origin, limit, nbytes = value
            slots = await drive(server.storage_ranges(root, accounts, origin, limit, nbytes))
            body = _items(_items(per_account) for per_account in slots.slots) + _strings(slots.proof)
            await self._reply(STORAGE_RANGES, request_id, body)
        elif code == GET_BYTE_CODES:
            _, hashes, nbytes = value
            codes = await drive(server.byte_codes(hashes, nbytes))
            await self._reply(BYTE_CODES, request_id, _strings(codes))
        elif code == GET_TRIE_NODES:
            _, root, paths, nbytes = value
            nodes = await drive(server.trie_nodes(root, paths, nbytes))
            await self._reply(TRIE_NODES, request_id, _strings(nodes))
        elif code == GET_ACCESS_LISTS:
            _, hashes, nbytes = value
            lists = await drive(server.access_lists(hashes, nbytes))
            await self._reply(ACCESS_LISTS, request_id, _items(lists))

    async def _reply(self, code: int, request_id: int, body: bytes) -> None:
        await self.channel.send(code, wrap_list(rlp_encode(request_id) + body))


__all__ = ["SnapPeer"]
