"""A sub-protocol of your own next to eth: "ping/1", two messages, a handler, a round trip.

    python examples/custom_subprotocol.py                 # two local nodes, 5 pings
    python examples/custom_subprotocol.py --serve         # a node answering pings; prints its enode
    python examples/custom_subprotocol.py --connect enode://...   # ping that node

The message table maps each code to its RLP schema; the node offers "ping/1" in Hello,
decodes what a peer sends with the table (anything else drops the peer) and calls the
handler with the decoded value and the receive time.
"""

import argparse
import asyncio
import time

from ethnode.api import EthNode, NodeConfig, SubPeer, SubProtocol, sedes

PING, PONG = 0, 1
MESSAGES = {PING: sedes.Tuple(sedes.uint64, sedes.uint64), PONG: sedes.Tuple(sedes.uint64, sedes.uint64)}
pongs: asyncio.Queue = asyncio.Queue()
connected: asyncio.Queue = asyncio.Queue()  # the client's SubPeer for each peer that speaks ping/1


async def handle(peer: SubPeer, code: int, value: tuple, time_ns: int) -> None:
    seq, sent_ns = value
    if code == PING:
        await peer.send(PONG, (seq, sent_ns))
    else:
        pongs.put_nowait((seq, (time_ns - sent_ns) / 1e6, peer.client_id))


def node(client: bool = False, **kw) -> EthNode:
    on_connect = connected.put_nowait if client else None
    return EthNode(NodeConfig(eth_versions=(), protocols=[SubProtocol("ping", 1, MESSAGES, handle, on_connect)], **kw))


async def ping(client: EthNode, enode: str, count: int) -> None:
    await client.connect(enode)
    sub = await asyncio.wait_for(connected.get(), 10)
    for seq in range(count):
        await sub.send(PING, (seq, time.time_ns()))
        got, rtt_ms, who = await asyncio.wait_for(pongs.get(), 10)
        print(f"pong seq={got} rtt_ms={rtt_ms:.3f} from={who.split('/')[0]}", flush=True)


async def main(args: argparse.Namespace) -> None:
    if args.serve:
        async with node(listen_addr=args.listen) as server:
            print(server.enode, flush=True)
            await asyncio.Event().wait()
    async with node(client=True) as client:
        if args.connect:
            await ping(client, args.connect, args.count)
            return
        async with node() as server:
            await ping(client, server.enode, args.count)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--serve", action="store_true")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--connect", metavar="ENODE")
    p.add_argument("--count", type=int, default=5)
    asyncio.run(main(p.parse_args()))
