"""How fast does a transaction spread? First arrival per peer, and the spread between peers.

    python examples/propagation_timing.py --genesis genesis.json --peer enode://A --peer enode://B --txs 10

Every announcement or delivery of a tx is an arrival from one peer, timestamped on
receipt (``time_ns``). After ``--txs`` distinct txs (plus ``--linger`` seconds for the
late copies) or ``--duration`` seconds, one line per tx: how many peers brought it and
the time from the first to the last of them, then the median spread.
"""

import argparse
import asyncio
import statistics

from ethnode.api import EthNode, NodeConfig, PeerAdded, Transactions, TxAnnouncement


async def measure(config: NodeConfig, txs: int, linger: float, duration: float) -> None:
    arrivals: dict[bytes, dict[bytes, int]] = {}  # tx hash -> peer id -> first time_ns

    def arrived(ev: TxAnnouncement | Transactions) -> None:
        hashes = ev.hashes if isinstance(ev, TxAnnouncement) else [tx.hash for tx in ev.txs]
        for h in hashes:
            arrivals.setdefault(h, {}).setdefault(ev.peer.id, ev.time_ns)

    node = EthNode(config)
    node.on((TxAnnouncement, Transactions), arrived)
    node.on(PeerAdded, lambda ev: print("connected", ev.peer.client_id, flush=True))
    async with node:
        try:
            async with asyncio.timeout(duration):
                async with node.subscribe(TxAnnouncement, Transactions) as stream:
                    async for _ in stream:  # wakes with each arrival; ``arrived`` did the bookkeeping
                        if len(arrivals) >= txs:
                            break
                await asyncio.sleep(linger)
        except TimeoutError:
            pass
    spreads = []
    for h, by_peer in arrivals.items():
        times = sorted(by_peer.values())
        spread_ms = (times[-1] - times[0]) / 1e6
        spreads.append(spread_ms)
        print(f"tx 0x{h.hex()} peers={len(by_peer)} spread_ms={spread_ms:.3f}")
    if spreads:
        print(f"txs={len(spreads)} median_spread_ms={statistics.median(spreads):.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genesis")
    p.add_argument("--network", choices=("mainnet", "sepolia", "hoodi"))
    p.add_argument("--peer", action="append", default=[])
    p.add_argument("--txs", type=int, default=100, help="stop after this many distinct txs")
    p.add_argument("--linger", type=float, default=1.0, help="seconds to wait for late copies")
    p.add_argument("--duration", type=float, default=300.0)
    args = p.parse_args()
    config = NodeConfig(genesis=args.genesis, network=args.network, static_nodes=args.peer)
    asyncio.run(measure(config, args.txs, args.linger, args.duration))


if __name__ == "__main__":
    main()
