"""Protocol violations end the connection with SUBPROTOCOL_ERROR (geth's handlers return an error),
and the messages geth tolerates do not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from eth_support import STEP, EthNode, Scripted, ethtest_chain, scripted_peer, start_node
from p2p_support import run_checked

from ethnode import rlp
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.types import BlobTx, DynamicFeeTx
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.protocols.eth.protocol import (
    BLOCK_HEADERS,
    BLOCK_RANGE_UPDATE,
    ETH68,
    ETH69,
    GET_BLOCK_HEADERS,
    GET_POOLED_TRANSACTIONS,
    MAX_MESSAGE_SIZE,
    NEW_BLOCK,
    NEW_BLOCK_HASHES,
    NEW_POOLED_TRANSACTION_HASHES,
    POOLED_TRANSACTIONS,
    TRANSACTIONS,
    BlockAnnouncement,
    BlockRange,
    NewBlock,
    PooledHashes,
    message,
)
from ethnode.p2p.disconnect import DiscReason
from ethnode.rlp.framing import wrap_list

_CHAIN: list[Any] = []
KEY = PrivateKey(bytes.fromhex("49" * 32))


def chain() -> Any:
    if not _CHAIN:
        _CHAIN.append(ethtest_chain(600))
    return _CHAIN[0]


def tx(nonce: int) -> Any:
    return DynamicFeeTx(chain().config.chain_id, nonce, 10**9, 10**11, 21000, b"\x01" * 20, 1, b"", [], 0, 0,
                        0).sign(KEY)


def blob_tx() -> Any:
    return BlobTx(chain().config.chain_id, 0, 10**9, 10**11, 21000, b"\x02" * 20, 0, b"", [], 10**9,
                  [b"\x01" + b"\x00" * 31], 0, 0, 0).sign(KEY)


def txs_payload(items: list[bytes]) -> bytes:
    return wrap_list(b"".join(items))


async def _solicit(node: EthNode, s: Scripted, count: int = 1) -> int:
    """Make the node request ``count`` pooled txs from the scripted peer; returns the request id."""
    (peer,) = node.handler.peers.all()
    task = asyncio.ensure_future(peer.request_pooled_txs([bytes([i + 1]) * 32 for i in range(count)], timeout=STEP))
    node.extra_tasks = [task]  # type: ignore[attr-defined]
    request = message(ETH69, GET_POOLED_TRANSACTIONS)
    assert request is not None
    rid, _ = request.decode(await s.eth.expect(GET_POOLED_TRANSACTIONS))
    return int(rid)


def _pooled(rid: int, items: list[bytes]) -> bytes:
    return message(ETH69, POOLED_TRANSACTIONS).encode(items, rid)  # type: ignore[union-attr]


Action = Callable[[EthNode, Scripted], Awaitable[None]]


async def _send(s: Scripted, code: int, payload: bytes) -> None:
    await s.eth.send(code, payload)


async def too_many_txs(node: EthNode, s: Scripted) -> None:
    await _send(s, TRANSACTIONS, rlp.encode([b"\x01"] * 5001))  # counted before any is decoded


async def blob_in_transactions(node: EthNode, s: Scripted) -> None:
    await _send(s, TRANSACTIONS, txs_payload([tx(0).item(), blob_tx().item()]))


async def duplicate_in_transactions(node: EthNode, s: Scripted) -> None:
    await _send(s, TRANSACTIONS, txs_payload([tx(0).item(), tx(1).item(), tx(0).item()]))


async def undecodable_tx(node: EthNode, s: Scripted) -> None:
    await _send(s, TRANSACTIONS, txs_payload([b"\x82\x05\x01"]))


async def unsolicited_pooled_txs(node: EthNode, s: Scripted) -> None:
    await _send(s, POOLED_TRANSACTIONS, _pooled(12345, [tx(0).item()]))


async def duplicate_in_pooled_txs(node: EthNode, s: Scripted) -> None:
    rid = await _solicit(node, s, 2)
    await _send(s, POOLED_TRANSACTIONS, _pooled(rid, [tx(0).item(), tx(0).item()]))


async def sidecarless_blob_in_pooled_txs(node: EthNode, s: Scripted) -> None:
    rid = await _solicit(node, s)
    await _send(s, POOLED_TRANSACTIONS, _pooled(rid, [blob_tx().item()]))


async def more_pooled_txs_than_asked(node: EthNode, s: Scripted) -> None:
    rid = await _solicit(node, s, 1)
    await _send(s, POOLED_TRANSACTIONS, _pooled(rid, [tx(0).item(), tx(1).item()]))


async def unsolicited_headers(node: EthNode, s: Scripted) -> None:
    await _send(s, BLOCK_HEADERS, message(ETH69, BLOCK_HEADERS).encode([], 99))  # type: ignore[union-attr]


async def new_block_on_69(node: EthNode, s: Scripted) -> None:
    block = chain().get_block_by_number(5)
    await _send(s, NEW_BLOCK, NewBlock(block, 1).encode())


async def new_block_hashes_on_69(node: EthNode, s: Scripted) -> None:
    await _send(s, NEW_BLOCK_HASHES, rlp.encode([[b"\x01" * 32, 5]]))


async def oversized_message(node: EthNode, s: Scripted) -> None:
    await _send(s, TRANSACTIONS, rlp.encode([b"\x00" * (MAX_MESSAGE_SIZE + 1)]))


async def invalid_block_range(node: EthNode, s: Scripted) -> None:
    await _send(s, BLOCK_RANGE_UPDATE, BlockRange(10, 8, chain().get_canonical_hash(8)).encode())


async def zero_hash_block_range(node: EthNode, s: Scripted) -> None:
    await _send(s, BLOCK_RANGE_UPDATE, BlockRange(0, 8, bytes(32)).encode())


async def announcement_lengths_differ(node: EthNode, s: Scripted) -> None:
    await _send(s, NEW_POOLED_TRANSACTION_HASHES, PooledHashes(b"\x02", [100, 200], [b"\x01" * 32] * 2).encode())


async def bad_origin_size(node: EthNode, s: Scripted) -> None:
    await _send(s, GET_BLOCK_HEADERS, rlp.encode([1, [b"\x01" * 20, 1, 0, 0]]))


async def unknown_code(node: EthNode, s: Scripted) -> None:
    await _send(s, 0x0B, b"\xc0")


async def garbage_payload(node: EthNode, s: Scripted) -> None:
    await _send(s, GET_BLOCK_HEADERS, b"\xff\xff")


async def new_block_after_pos_finalized(node: EthNode, s: Scripted) -> None:
    rawdb.write_finalized_block_hash(node.chain.db, node.chain.get_canonical_hash(600))
    block = chain().get_block_by_number(5)
    await _send(s, NEW_BLOCK, NewBlock(block, 1).encode())


VIOLATIONS: dict[str, tuple[int, Action]] = {
    "more than 5000 txs in Transactions": (ETH69, too_many_txs),
    "blob tx in Transactions": (ETH69, blob_in_transactions),
    "duplicate hash in Transactions": (ETH68, duplicate_in_transactions),
    "undecodable tx": (ETH69, undecodable_tx),
    "unsolicited PooledTransactions": (ETH69, unsolicited_pooled_txs),
    "duplicate hash in PooledTransactions": (ETH69, duplicate_in_pooled_txs),
    "sidecar-less blob in PooledTransactions": (ETH69, sidecarless_blob_in_pooled_txs),
    "more PooledTransactions than asked": (ETH69, more_pooled_txs_than_asked),
    "unsolicited BlockHeaders": (ETH68, unsolicited_headers),
    "NewBlock on eth/69": (ETH69, new_block_on_69),
    "NewBlockHashes on eth/69": (ETH69, new_block_hashes_on_69),
    "message over 10 MiB": (ETH69, oversized_message),
    "BlockRangeUpdate earliest > latest": (ETH69, invalid_block_range),
    "BlockRangeUpdate zero hash": (ETH69, zero_hash_block_range),
    "announcement field lengths differ": (ETH68, announcement_lengths_differ),
    "origin of 20 bytes": (ETH69, bad_origin_size),
    "unassigned message code": (ETH68, unknown_code),
    "undecodable request": (ETH69, garbage_payload),
}


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_violation_disconnects_with_subprotocol_error(case: str) -> None:
    version, action = VIOLATIONS[case]

    async def scenario() -> None:
        node = await start_node(chain())
        s = await scripted_peer(node, version)
        try:
            await action(node, s)
            assert await asyncio.wait_for(s.peer.wait_ended(), STEP) is DiscReason.SUBPROTOCOL_ERROR
            assert s.peer.remote_requested
            await asyncio.wait_for(node.handler.wait_for_peers(0), STEP)
        finally:
            for task in getattr(node, "extra_tasks", []):
                await asyncio.gather(task, return_exceptions=True)
            await s.stop()
            await node.stop()

    run_checked(scenario)


def test_new_block_after_pos_finalized_is_refused_on_eth68() -> None:
    async def scenario() -> None:
        node = await start_node(ethtest_chain(600))
        s = await scripted_peer(node, ETH68)
        try:
            await new_block_after_pos_finalized(node, s)
            assert await asyncio.wait_for(s.peer.wait_ended(), STEP) is DiscReason.SUBPROTOCOL_ERROR
            assert node.handler.broadcast_block(chain().get_block_by_number(600), True) == 0  # CL's job now
        finally:
            await s.stop()
            await node.stop()

    run_checked(scenario)


def test_tolerated_messages_keep_the_peer() -> None:
    """What geth accepts: future and expired block ranges, block gossip on eth/68 before the merge
    is final, duplicate announcements, an unknown-body NewBlock, and txs while not accepting txs."""

    async def scenario() -> None:
        node = await start_node(chain())
        s69 = await scripted_peer(node, ETH69)
        s68 = await scripted_peer(node, ETH68)
        try:
            head = chain().current_block
            future = BlockRange(head.number + 10, head.number + 50, b"\x07" * 32)
            await s69.eth.send(BLOCK_RANGE_UPDATE, future.encode())
            await s69.eth.send(BLOCK_RANGE_UPDATE, BlockRange(head.number - 10, head.number, head.hash).encode())
            await s69.eth.send(NEW_POOLED_TRANSACTION_HASHES,
                               PooledHashes(b"\x02\x02", [100, 100], [b"\x01" * 32] * 2).encode())
            block = chain().get_block_by_number(5)
            await s68.eth.send(NEW_BLOCK, NewBlock(block, 2**64).encode())
            await s68.eth.send(NEW_BLOCK_HASHES, rlp.encode([BlockAnnouncement(b"\x03" * 32, 700)]))
            bad_body = NewBlock(block.replace(tx_items=[]), 2**64) if block.tx_items else None
            if bad_body is not None:
                await s68.eth.send(NEW_BLOCK, bad_body.encode())  # body does not match header: ignored
            node.handler.accept_txs = False
            await s69.eth.send(TRANSACTIONS, txs_payload([blob_tx().item()]))  # not even looked at
            # Round trips prove both connections are alive and everything before was handled.
            for s in (s69, s68):
                await s.eth.send(GET_BLOCK_HEADERS, rlp.encode([5, [b"", 1, 0, 0]]))
                await s.eth.expect(BLOCK_HEADERS)
            assert s69.peer.reason is None and s68.peer.reason is None
            p69 = node.handler.peers.peer(_id(s69))
            p68 = node.handler.peers.peer(_id(s68))
            assert p69.block_range.latest == head.number  # type: ignore[union-attr]
            assert p68.td == 2**64 - block.header.difficulty and p68.head_hash == block.parent_hash  # type: ignore[union-attr]
            assert p68.knows_block(b"\x03" * 32)  # type: ignore[union-attr]
        finally:
            await s69.stop()
            await s68.stop()
            await node.stop()

    run_checked(scenario)


def _id(s: Scripted) -> bytes:
    from ethnode.crypto.keccak import keccak256

    return keccak256(s.server.node_id)
