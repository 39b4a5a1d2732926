"""Test plumbing for the downloader and block fetcher: peers served from a list of blocks.

``FakePeer`` has the EthPeer request API the sync code uses (``request_headers``,
``request_bodies``) and the Status fields it reads, served from blocks in memory, with
hooks to make it stall, vanish or lie. No sockets, no waiting: a stall raises the
timeout error at once (one test uses ``hang`` for a real timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from eth_support import ethtest_blocks, ethtest_chain

from ethnode.core.types.block import Block, Body
from ethnode.core.types.header import Header
from ethnode.crypto.keccak import keccak256
from ethnode.eth.protocols.eth.peer import PeerDroppedError, RequestTimeoutError
from ethnode.eth.protocols.eth.protocol import ETH68, ETH69, BlockRange

ETHTEST_TD = 0x20000  # the genesis difficulty; every later block is PoS (difficulty 0)

_GENESIS: list[Block] = []


def ethtest_with_genesis() -> list[Block]:
    """Blocks 0..600 of the ethtest chain (index = number)."""
    if not _GENESIS:
        genesis = ethtest_chain(0).genesis
        _GENESIS.append(Block.from_body(genesis, Body([], [], [])))
    return _GENESIS + ethtest_blocks()


def relinked(blocks: Sequence[Block], start: int, **changes: Any) -> list[Block]:
    """``blocks`` with header fields changed from number ``start`` on, parent hashes re-linked:
    a chain that is consistent in itself but another one from ``start``."""
    out = list(blocks[:start])
    parent = out[-1].hash
    for block in blocks[start:]:
        header = block.header.replace(parent_hash=parent, **changes)
        out.append(Block.from_body(header, block.body()))
        parent = header.hash
    return out


class FakePeer:
    """An eth peer serving ``blocks`` (index = number), optionally misbehaving.

    ``stall``: request kinds ("headers", "bodies") that time out; ``hang``: requests that
    wait out their timeout for real; ``on_headers(query, headers)`` / ``on_bodies(hashes,
    bodies)`` may rewrite answers (lies); ``gone_after``: answers given before the peer
    "disconnects" (PeerDroppedError from then on).
    """

    def __init__(
        self,
        name: str,
        blocks: Sequence[Block],
        *,
        version: int = ETH69,
        stall: Sequence[str] = (),
        hang: Sequence[str] = (),
        on_headers: Callable[[tuple[Any, ...], list[Header]], list[Header]] | None = None,
        on_bodies: Callable[[list[bytes], list[Body]], list[Body]] | None = None,
        gone_after: int | None = None,
    ) -> None:
        self.name = name
        self.closed = False  # as EthPeer's: the fetchers skip peers whose connection ended
        self.id = keccak256(name.encode())
        self.version = version
        self.blocks = list(blocks)
        self.by_hash = {b.hash: b for b in self.blocks}
        head = self.blocks[-1] if self.blocks else None
        self.head_hash = head.hash if head else None
        self.block_range = BlockRange(0, head.number, head.hash) if head and version >= ETH69 else None
        self.td = ETHTEST_TD if version == ETH68 else None
        self.stall = set(stall)
        self.hang = set(hang)
        self.on_headers = on_headers
        self.on_bodies = on_bodies
        self.gone_after = gone_after
        self.answers = 0
        self.closed = False
        self.dropped = False
        self.requests: list[tuple[Any, ...]] = []

    def __repr__(self) -> str:
        return f"FakePeer({self.name})"

    def disconnect(self, reason: Any = None) -> None:
        self.dropped = self.closed = True

    async def _gate(self, kind: str, timeout: float) -> None:
        await asyncio.sleep(0)  # a response never arrives synchronously
        if self.closed:
            raise PeerDroppedError(f"{self!r} is gone")
        if self.gone_after is not None and self.answers >= self.gone_after:
            self.closed = True
            raise PeerDroppedError(f"{self!r} disconnected")
        if kind in self.stall:
            raise RequestTimeoutError(f"{self!r}: no answer within {timeout:g} s")
        if kind in self.hang:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.Event().wait()
            except TimeoutError:
                raise RequestTimeoutError(f"{self!r}: no answer within {timeout:g} s") from None
        self.answers += 1

    async def request_headers(
        self, origin: bytes | int, amount: int, skip: int = 0, reverse: bool = False, *, timeout: float = 10.0
    ) -> list[Header]:
        query = (origin, amount, skip, reverse)
        self.requests.append(("headers", *query))
        await self._gate("headers", timeout)
        if isinstance(origin, bytes):
            block = self.by_hash.get(origin)
            if block is None:
                return []
            number = block.number
        else:
            number = origin
        out: list[Header] = []
        step = -(skip + 1) if reverse else skip + 1
        while len(out) < amount and 0 <= number < len(self.blocks):
            out.append(self.blocks[number].header)
            number += step
        return self.on_headers(query, out) if self.on_headers else out

    async def request_bodies(self, hashes: Sequence[bytes], *, timeout: float = 10.0) -> list[Body]:
        self.requests.append(("bodies", len(hashes)))
        await self._gate("bodies", timeout)
        out = []
        for h in hashes:
            block = self.by_hash.get(h)
            if block is None:
                break
            out.append(block.body())
        return self.on_bodies(list(hashes), out) if self.on_bodies else out

    def count(self, kind: str, amount: int | None = None) -> int:
        return sum(1 for r in self.requests if r[0] == kind and (amount is None or r[2] == amount))
