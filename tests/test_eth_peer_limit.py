"""The eth handler's peer limit, as geth's: MaxPeers caps eth peers (TooManyPeers past it), a
trusted peer is let in anyway, and the syncer's minimum peer count drops to MaxPeers.

Real servers on loopback: the node under test and scripted peers that dial it.
"""

from __future__ import annotations

import asyncio

from eth_support import STEP, ScriptedEth, ethtest_chain, local_server, scripted_peer, start_node
from p2p_support import run_checked

from ethnode.crypto.keccak import keccak256
from ethnode.eth.protocols.eth.handshake import make_status
from ethnode.eth.protocols.eth.protocol import ETH69, PROTOCOL_LENGTHS, STATUS
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.protocol import Protocol
from ethnode.p2p.server import Server


def node_id_of(server: Server) -> bytes:
    return keccak256(server.node_id)


def test_max_peers_refuses_the_next_peer_but_not_a_trusted_one() -> None:
    chain = ethtest_chain(10)

    async def scenario() -> None:
        node = await start_node(chain)
        node.handler.max_peers = 1
        first = await scripted_peer(node, ETH69)
        extra = await scripted_peer(node, ETH69, status=False)
        trusted_server = local_server([Protocol("eth", ETH69, PROTOCOL_LENGTHS[ETH69], ScriptedEth)])
        await trusted_server.start()
        try:
            # Past the limit: the Status is answered, then the peer is sent away.
            await extra.eth.send(STATUS, make_status(ETH69, node.handler.local_status()).encode())
            assert await asyncio.wait_for(extra.peer.wait_ended(), STEP) is DiscReason.TOO_MANY_PEERS
            assert len(node.handler.peers) == 1

            node.server.add_trusted_peer(trusted_server.enode)
            peer = await trusted_server.dial(node.server.enode)
            await asyncio.wait_for(peer.wait_ready(), STEP)
            eth = peer.handlers["eth"]
            await eth.send(STATUS, make_status(ETH69, node.handler.local_status()).encode())
            await eth.expect(STATUS)
            await asyncio.wait_for(node.handler.wait_for_peers(2), STEP)
            registered = node.handler.peers.peer(node_id_of(trusted_server))
            assert registered is not None and registered.trusted
            assert not node.handler.peers.peer(node_id_of(first.server)).trusted
        finally:
            await trusted_server.stop()
            await extra.stop()
            await first.stop()
            await node.stop()

    run_checked(scenario)


def test_syncer_needs_at_most_max_peers_peers() -> None:
    behind, ahead = ethtest_chain(5), ethtest_chain(10)

    async def scenario() -> None:
        node = await start_node(behind, loops=False)
        source = await start_node(ahead, loops=False)
        try:
            await source.server.dial(node.server.enode)
            await asyncio.wait_for(node.handler.wait_for_peers(1), STEP)
            syncer = node.handler.syncer
            assert syncer.min_peers > 1 and syncer.next_sync_target(forced=False) is None  # geth: 5 peers
            node.handler.max_peers = 1
            target = syncer.next_sync_target(forced=False)
            assert target is not None and target.block_range is not None and target.block_range.latest == 10
        finally:
            await source.stop()
            await node.stop()

    run_checked(scenario)
