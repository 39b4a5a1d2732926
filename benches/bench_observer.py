"""What the observer events cost the eth wire layer: one NewPooledTransactionHashes (64 hashes)
through ``EthPeer.handle``, with no bus, with a bus nobody watches, with the announcements
watched, and with the every-message tap watched.

The claim checked by the report: an unwatched node pays (almost) nothing, ≤ 1.10× the no-bus
time, since the wire layer asks ``EventBus.subscribed`` before building any event.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest

from ethnode.eth.protocols.eth.events import EthMessageReceived, TxsAnnounced
from ethnode.eth.protocols.eth.peer import EthPeer
from ethnode.eth.protocols.eth.protocol import ETH69, NEW_POOLED_TRANSACTION_HASHES, PooledHashes, message
from ethnode.event import EventBus

N = 64
PAYLOAD = message(ETH69, NEW_POOLED_TRANSACTION_HASHES).encode(
    PooledHashes(bytes([2]) * N, [120] * N, [os.urandom(32) for _ in range(N)]))
GROUP = f"eth observer NewPooledTransactionHashes {N}"
CASES = ("no-bus", "unwatched", "watched-announcements", "watched-all-messages")


class _Backend:
    accept_txs = True
    txpool = None

    def on_pooled_hashes(self, peer: Any, announcement: Any) -> None:
        pass


def _peer(case: str) -> tuple[EthPeer, list[Any]]:
    channel = SimpleNamespace(version=ETH69, peer=SimpleNamespace(remote_id=bytes(64), trusted=False))
    bus = None if case == "no-bus" else EventBus()
    subs = []
    if case == "watched-announcements":
        subs.append(bus.subscribe(TxsAnnounced))
    elif case == "watched-all-messages":
        subs += [bus.subscribe(TxsAnnounced), bus.subscribe(EthMessageReceived)]
    peer = EthPeer(channel, _Backend(), bus)  # type: ignore[arg-type]
    peer.status = object()  # type: ignore[assignment]  # past the handshake
    return peer, subs


@pytest.mark.parametrize("case", CASES)
def test_observer_cost(benchmark: Any, case: str) -> None:
    peer, _subs = _peer(case)

    def handle() -> None:
        coro = peer.handle(NEW_POOLED_TRANSACTION_HASHES, PAYLOAD)
        try:
            coro.send(None)  # the announcement handler never suspends: one step runs it all
        except StopIteration:
            pass
        else:
            raise AssertionError("handle suspended")

    benchmark.group = GROUP
    benchmark.extra_info["impl"] = case
    benchmark(handle)
