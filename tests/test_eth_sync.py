"""Acceptance 9(a): one ethnode holds the imported ethtest chain, a second one starting from the
genesis syncs all of it over loopback, once on eth/69 and once on eth/68, driven the way a node
drives it: the peer registers, the syncer picks the best peer, the downloader syncs to its head.

The syncer waits for 5 peers before a peer event starts a sync (else the 10 s forced cycle does);
the test lowers that to 1 so the sync starts when the one peer registers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_support import ETHTEST_HEAD, STEP, connect, ethtest_chain, start_node
from p2p_support import run_checked

import ethnode
from ethnode.core.events import ChainHeadEvent
from ethnode.eth.protocols.eth.protocol import ETH68, ETH69


@pytest.mark.parametrize("version", [ETH69, ETH68])
def test_second_ethnode_syncs_the_ethtest_chain(version: int) -> None:
    async def scenario() -> None:
        full = await start_node(ethtest_chain(600))
        empty_chain = ethtest_chain(0)
        empty_chain.verify_senders = True  # as a real node checks every tx signature
        moves: list[int] = []  # the head after each import batch that moved it
        insert_chain = empty_chain.insert_chain

        def counted(*args: Any, **kwargs: Any) -> Any:
            before = empty_chain.current_block.hash
            stats = insert_chain(*args, **kwargs)
            if empty_chain.current_block.hash != before:
                moves.append(empty_chain.current_block.number)
            return stats

        empty_chain.insert_chain = counted  # type: ignore[method-assign]
        fresh = await start_node(empty_chain, versions=(version,))
        downloader = fresh.handler.downloader
        fresh.handler.syncer.min_peers = 1
        heads = fresh.bus.subscribe(ChainHeadEvent)
        try:
            loop = asyncio.get_running_loop()
            _, peer = await connect(full, fresh)  # returns once both registered: the sync has begun
            started = loop.time()
            assert peer.version == version
            announced: list[int] = []
            async with asyncio.timeout(STEP):
                while fresh.chain.current_block.hash != ETHTEST_HEAD:
                    announced.append((await heads.get()).header.number)
            rate = 600 / (loop.time() - started)
            assert fresh.chain.current_block.number == 600
            assert fresh.handler.syncer.attempts >= 1 and downloader.drops == 0
            progress = downloader.progress()
            assert (progress.starting_block, progress.current_block, progress.highest_block) == (0, 600, 600)
            await asyncio.wait_for(downloader.idle.wait(), STEP)
            while not heads.queue.empty():
                announced.append(heads.queue.get_nowait().header.number)
            assert announced == moves and moves[-1] == 600  # the chain announced each batch once
            assert downloader.last_sync is not None and downloader.last_sync.blocks == 600
            print(f"eth/{version}: 600 blocks at {rate:.0f} blocks/s from connect, "
                  f"{downloader.last_sync.blocks_per_second:.0f} in the downloader ({ethnode.backends()['rlp']} rlp)")
            # Everything the fresh node now serves is the chain it synced: spot-check a body.
            assert fresh.chain.get_block_by_number(300).hash == full.chain.get_block_by_number(300).hash
        finally:
            heads.unsubscribe()
            await fresh.stop()
            await full.stop()

    run_checked(scenario)
