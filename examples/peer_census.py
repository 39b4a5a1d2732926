"""Count the peers a node meets: client names, capabilities and eth versions.

    python examples/peer_census.py --genesis genesis.json --peer enode://... --peer enode://...
    python examples/peer_census.py --network mainnet --discovery --duration 300

Stops after ``--duration`` seconds or once ``--until`` peers were seen, then prints one
line per peer and the counts.
"""

import argparse
import asyncio
from collections import Counter

from ethnode.api import EthNode, NodeConfig, PeerAdded, PeerDropped


async def census(config: NodeConfig, duration: float, until: int | None) -> None:
    peers: dict[bytes, PeerAdded] = {}
    drops: Counter[str] = Counter()
    node = EthNode(config)
    async with node.subscribe(PeerAdded, PeerDropped) as stream, node:  # subscribed before start: no peer missed
        try:
            async with asyncio.timeout(duration):
                async for ev in stream:
                    if isinstance(ev, PeerAdded):
                        peers[ev.peer.id] = ev
                        if until is not None and len(peers) >= until:
                            break
                    else:
                        drops[ev.reason] += 1
        except TimeoutError:
            pass
    for ev in peers.values():
        print(f"peer {ev.peer.id_hex[:16]} {ev.peer.client_id} caps={','.join(ev.peer.caps)} eth/{ev.eth_version}")
    clients = Counter((ev.peer.client_id or "?").split("/")[0] for ev in peers.values())
    versions = Counter(f"eth/{ev.eth_version}" for ev in peers.values())
    print(f"peers={len(peers)}")
    for name, n in clients.most_common():
        print(f"client {name} {n}")
    for name, n in versions.most_common():
        print(f"version {name} {n}")
    for reason, n in drops.most_common():
        print(f"dropped {reason!r} {n}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genesis")
    p.add_argument("--network", choices=("mainnet", "sepolia", "hoodi"))
    p.add_argument("--peer", action="append", default=[])
    p.add_argument("--discovery", action="store_true")
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--until", type=int, help="stop once this many peers were seen")
    args = p.parse_args()
    config = NodeConfig(genesis=args.genesis, network=args.network, static_nodes=args.peer,
                        discovery=args.discovery, max_peers=200,
                        listen_addr="0.0.0.0:30303" if args.discovery else "127.0.0.1:0")
    asyncio.run(census(config, args.duration, args.until))


if __name__ == "__main__":
    main()
