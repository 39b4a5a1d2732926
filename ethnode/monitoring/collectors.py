"""What the node reports at scrape time: peers, tx pool, chain head, known caches, sync.

Each gauge reads the live objects when ``/metrics`` is fetched, so nothing is updated on
the paths that change them. Names follow geth's (``p2p/peers/inbound`` ->
``p2p_peers_inbound``, ``txpool/pending`` -> ``txpool_pending``, ``chain/head/block`` ->
``chain_head_block``).
"""

from __future__ import annotations

from collections.abc import Callable

from ethnode.eth.service import EthereumService
from ethnode.metrics.registry import Registry
from ethnode.p2p.server import Server

NAMES = (
    "p2p_peers", "p2p_peers_inbound", "p2p_peers_outbound", "txpool_pending", "txpool_queued", "txpool_size",
    "chain_head_block", "chain_head_header", "eth_peers", "eth_known_txs", "eth_known_blocks",
    "eth_downloader_syncing", "eth_downloader_highest_block",
)


def register_node_collectors(
    registry: Registry, p2p: Callable[[], Server | None], eth: Callable[[], EthereumService | None]
) -> None:
    """Gauges over the p2p Server (``p2p()``) and the Ethereum service (``eth()``); either may be None."""

    def peers(inbound: bool | None) -> Callable[[], int]:
        def read() -> int:
            server = p2p()
            if server is None:
                return 0
            return sum(1 for p in server.peers() if inbound is None or p.inbound == inbound)
        return read

    def from_eth(fn: Callable[[EthereumService], float]) -> Callable[[], float]:
        def read() -> float:
            svc = eth()
            if svc is None:
                raise LookupError("no eth service")
            return fn(svc)
        return read

    def known_txs(svc: EthereumService) -> float:
        return sum(len(p.known_txs) for p in svc.handler.peers)

    def known_blocks(svc: EthereumService) -> float:
        return sum(len(p.known_blocks) for p in svc.handler.peers)

    def syncing(svc: EthereumService) -> float:
        return 1.0 if svc.downloader.syncing else 0.0

    g = registry.gauge_func
    g("p2p_peers", "connected peers past Hello (geth p2p/peers)", peers(None))
    g("p2p_peers_inbound", "connected inbound peers", peers(True))
    g("p2p_peers_outbound", "connected dialed peers", peers(False))
    g("txpool_pending", "executable txs in the pool (geth txpool/pending)", from_eth(lambda s: s.txpool.stats()[0]))
    g("txpool_queued", "gapped txs in the pool (geth txpool/queued)", from_eth(lambda s: s.txpool.stats()[1]))
    g("txpool_size", "all txs in the pool", from_eth(lambda s: len(s.txpool)))
    g("chain_head_block", "number of the head block (geth chain/head/block)",
      from_eth(lambda s: s.chain.current_block.number))
    g("chain_head_header", "number of the head header (geth chain/head/header)",
      from_eth(lambda s: s.chain.current_header.number))
    g("eth_peers", "registered eth peers", from_eth(lambda s: len(s.handler.peers)))
    g("eth_known_txs", "entries in the per-peer known-tx caches, summed", from_eth(known_txs))
    g("eth_known_blocks", "entries in the per-peer known-block caches, summed", from_eth(known_blocks))
    g("eth_downloader_syncing", "1 while the downloader runs a sync", from_eth(syncing))
    g("eth_downloader_highest_block", "the head the running (or last) sync aims at",
      from_eth(lambda s: s.downloader.progress().highest_block))


__all__ = ["register_node_collectors", "NAMES"]
