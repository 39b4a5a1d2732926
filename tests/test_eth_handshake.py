"""The eth Status handshake between real peers on loopback: eth/68 and eth/69 agree, and every
mismatch ends the connection with geth's reason (SUBPROTOCOL_ERROR; READ_TIMEOUT when no Status
arrives within the handshake timeout)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest
from eth_support import (
    ETHTEST_CHAIN_ID,
    ETHTEST_HEAD,
    STEP,
    EthNode,
    connect,
    ethtest_chain,
    scripted_peer,
    shared_ethtest_chain,
    start_node,
)
from p2p_support import run_checked

import ethnode.eth.handler as handler_module
from ethnode.core.forkid import ForkID
from ethnode.eth.protocols.eth.handshake import (
    MAX_TD_BITS,
    ChainStatus,
    ForkIDRejectedError,
    GenesisMismatchError,
    InvalidBlockRangeError,
    NetworkIDMismatchError,
    ProtocolVersionMismatchError,
    TDTooLargeError,
    check_status,
    make_status,
)
from ethnode.eth.protocols.eth.protocol import ETH68, ETH69, STATUS, TRANSACTIONS, Status68, Status69
from ethnode.p2p.disconnect import DiscReason


def chain() -> Any:
    return shared_ethtest_chain()


def test_check_status_rules_in_geth_order() -> None:
    fid = ForkID(b"\x01\x02\x03\x04", 0)
    genesis = b"\x11" * 32
    ok69 = Status69(69, 5, genesis, fid, 0, 10, b"\x22" * 32)

    def accept(_: ForkID) -> None:
        return None

    check_status(ETH69, ok69, 5, genesis, accept)
    cases: list[tuple[Any, type[Exception]]] = [
        (ok69.replace(network_id=6, version=68), NetworkIDMismatchError),  # network id is checked first
        (ok69.replace(version=68), ProtocolVersionMismatchError),
        (ok69.replace(genesis=b"\x12" * 32), GenesisMismatchError),
        (ok69.replace(earliest=11), InvalidBlockRangeError),
        (ok69.replace(latest_hash=bytes(32)), InvalidBlockRangeError),
    ]
    for status, error in cases:
        with pytest.raises(error):
            check_status(ETH69, status, 5, genesis, accept)

    def reject(_: ForkID) -> None:
        from ethnode.core.forkid import RemoteStaleError

        raise RemoteStaleError()

    ok68 = Status68(68, 5, 2**MAX_TD_BITS - 1, b"\x22" * 32, genesis, fid)
    check_status(ETH68, ok68, 5, genesis, accept)  # 100 bits: the most geth takes
    with pytest.raises(TDTooLargeError, match="bitlen 2049"):
        check_status(ETH68, ok68.replace(td=2**2048), 5, genesis, accept)

    with pytest.raises(ForkIDRejectedError, match="fork ID rejected: remote needs update"):
        check_status(ETH69, ok69, 5, genesis, reject)
    local = ChainStatus(5, genesis, fid, b"\x33" * 32, 1234, 3, 10, b"\x22" * 32)
    assert make_status(ETH68, local) == Status68(68, 5, 1234, b"\x33" * 32, genesis, fid)
    assert make_status(ETH69, local) == Status69(69, 5, genesis, fid, 3, 10, b"\x22" * 32)


@pytest.mark.parametrize(
    ("versions_a", "versions_b", "expected"),
    [((68,), (68,), 68), ((69,), (69,), 69), ((68, 69), (68,), 68), ((68, 69), (69, 68), 69)],
)
def test_two_ethnodes_complete_status(versions_a: tuple[int, ...], versions_b: tuple[int, ...], expected: int) -> None:
    async def scenario() -> None:
        full, short = chain(), ethtest_chain(20)
        a = await start_node(full, versions=versions_a)
        b = await start_node(short, versions=versions_b)
        try:
            a_side, b_side = await connect(a, b)
            assert a_side.version == b_side.version == expected
            assert a.handler.network_id == ETHTEST_CHAIN_ID  # default: the genesis chain id
            if expected == ETH68:
                assert b_side.head_hash == ETHTEST_HEAD
                assert b_side.td == full.get_td(ETHTEST_HEAD, 600)
                assert a_side.head_hash == short.current_block.hash and a_side.block_range is None
            else:
                assert b_side.block_range is not None
                assert (b_side.block_range.earliest, b_side.block_range.latest) == (0, 600)
                assert b_side.block_range.latest_hash == ETHTEST_HEAD
                assert a_side.block_range.latest == 20  # type: ignore[union-attr]
                assert a_side.td is None
            assert a.handler.peers.best_peer() is a_side
        finally:
            await a.stop()
            await b.stop()

    run_checked(scenario)


async def _expect_dropped(node: EthNode, scripted: Any, reason: DiscReason = DiscReason.SUBPROTOCOL_ERROR) -> None:
    got = await asyncio.wait_for(scripted.peer.wait_ended(), STEP)
    assert got is reason
    assert scripted.peer.remote_requested  # the node said why
    assert len(node.handler.peers) == 0


def test_network_id_mismatch_between_ethnodes() -> None:
    async def scenario() -> None:
        a = await start_node(chain(), network_id=1)
        b = await start_node(chain(), network_id=2)
        try:
            out = await b.server.dial(a.server.enode)
            assert await asyncio.wait_for(out.wait_ended(), STEP) is DiscReason.SUBPROTOCOL_ERROR
            assert len(a.handler.peers) == len(b.handler.peers) == 0
        finally:
            await a.stop()
            await b.stop()

    run_checked(scenario)


def _good(version: int, node: EthNode) -> Any:
    return make_status(version, node.handler.local_status())


BAD_STATUS: dict[str, tuple[int, Callable[[Any], Any]]] = {
    "network id": (ETH69, lambda s: s.replace(network_id=s.network_id + 1)),
    "genesis 68": (ETH68, lambda s: s.replace(genesis=os.urandom(32))),
    "genesis 69": (ETH69, lambda s: s.replace(genesis=os.urandom(32))),
    "fork id unknown": (ETH69, lambda s: s.replace(fork_id=ForkID(os.urandom(4), 0))),
    "fork id remote stale": (ETH68, lambda s: s.replace(fork_id=ForkID(s.fork_id.hash[:0] + _genesis_fork(), 0))),
    "protocol version": (ETH69, lambda s: s.replace(version=68)),
    "earliest > latest": (ETH69, lambda s: s.replace(earliest=s.latest + 1)),
    "zero latest hash": (ETH69, lambda s: s.replace(latest_hash=bytes(32))),
    "td of 2^2048": (ETH68, lambda s: s.replace(td=2**2048)),  # accepted once; geth: at most 100 bits
    "td of 101 bits": (ETH68, lambda s: s.replace(td=2**100)),
}


def _genesis_fork() -> bytes:
    import zlib

    return zlib.crc32(chain().genesis_hash).to_bytes(4, "big")  # at genesis, unaware of Cancun and Prague


@pytest.mark.parametrize("case", sorted(BAD_STATUS))
def test_status_mismatch_disconnects_with_subprotocol_error(case: str) -> None:
    version, mutate = BAD_STATUS[case]

    async def scenario() -> None:
        node = await start_node(chain())
        scripted = await scripted_peer(node, version, status=False)
        try:
            await scripted.eth.send(STATUS, mutate(_good(version, node)).encode())
            await _expect_dropped(node, scripted)
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


@pytest.mark.parametrize(
    ("case", "version"),
    [("first message not Status", ETH69), ("undecodable Status", ETH69), ("Status 68 form on eth/69", ETH69),
     ("second Status", ETH68)],
)
def test_status_protocol_errors(case: str, version: int) -> None:
    async def scenario() -> None:
        node = await start_node(chain())
        scripted = await scripted_peer(node, version, status=case == "second Status")
        try:
            if case == "first message not Status":
                await scripted.eth.send(TRANSACTIONS, b"\xc0")
            elif case == "undecodable Status":
                await scripted.eth.send(STATUS, b"\xc3\x01\x02\x03")
            elif case == "Status 68 form on eth/69":
                await scripted.eth.send(STATUS, _good(ETH68, node).replace(version=69).encode())
            else:
                await scripted.eth.send(STATUS, _good(version, node).encode())
            got = await asyncio.wait_for(scripted.peer.wait_ended(), STEP)
            assert got is DiscReason.SUBPROTOCOL_ERROR and scripted.peer.remote_requested
            await asyncio.wait_for(node.handler.wait_for_peers(0), STEP)
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


def test_no_status_within_timeout_is_a_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handler_module, "HANDSHAKE_TIMEOUT", 0.3)  # geth: 5 s

    async def scenario() -> None:
        node = await start_node(chain())
        scripted = await scripted_peer(node, ETH69, status=False)
        try:
            await scripted.eth.expect(STATUS)  # the node speaks first, then waits for ours
            await _expect_dropped(node, scripted, DiscReason.READ_TIMEOUT)
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)
