"""Print every transaction and block announcement the peers send, as they arrive.

    python examples/announcement_sniffer.py --genesis genesis.json --peer enode://...
    python examples/announcement_sniffer.py --network sepolia --discovery

One line per announced hash: receive time (ns), the announcing peer's client, hash,
tx type and size (blocks: number). ``--count N`` stops after N lines.
"""

import argparse
import asyncio

from ethnode.api import BlockAnnouncement, EthNode, NodeConfig, PeerAdded, TxAnnouncement


async def sniff(config: NodeConfig, count: int | None) -> None:
    node = EthNode(config)
    node.on(PeerAdded, lambda ev: print("connected", ev.peer.client_id, flush=True))
    async with node, node.subscribe(TxAnnouncement, BlockAnnouncement) as stream:
        print("listening as", node.enode, flush=True)
        seen = 0
        async for ann in stream:
            who = (ann.peer.client_id or "?").split("/")[0]
            if isinstance(ann, TxAnnouncement):
                for h, t, size in zip(ann.hashes, ann.types, ann.sizes, strict=True):
                    print(f"tx {ann.time_ns} {who} 0x{h.hex()} type={t} size={size}", flush=True)
                    seen += 1
            else:
                print(f"block {ann.time_ns} {who} 0x{ann.hash.hex()} number={ann.number}", flush=True)
                seen += 1
            if count is not None and seen >= count:
                return


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genesis", help="genesis file of the network (or --network)")
    p.add_argument("--network", choices=("mainnet", "sepolia", "hoodi"))
    p.add_argument("--peer", action="append", default=[], help="enode URL to connect to (repeatable)")
    p.add_argument("--discovery", action="store_true", help="find peers with discv4 (the network's bootnodes)")
    p.add_argument("--count", type=int, help="stop after this many announced hashes")
    args = p.parse_args()
    config = NodeConfig(genesis=args.genesis, network=args.network, static_nodes=args.peer,
                        discovery=args.discovery,
                        listen_addr="0.0.0.0:30303" if args.discovery else "127.0.0.1:0")
    asyncio.run(sniff(config, args.count))


if __name__ == "__main__":
    main()
