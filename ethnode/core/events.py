"""Chain events, posted on the node's EventBus (geth ``core/events.go``).

The chain posts its own: whatever moves the head (a sync batch, a propagated block, a
forkchoiceUpdated, a sealed block) goes through ``BlockChain``, which posts one
``ChainHeadEvent`` per call that moved the head block and a ``ChainEvent`` per block that
joined the canonical chain. So no caller compares heads before and after, and a head
move cannot go unannounced. The miner posts ``NewMinedBlockEvent``. Pool events
(``NewTxsEvent``) live with the pool in ``ethnode.core.txpool``.

Not ported: geth's ``RemovedLogsEvent`` (its logs carry the fields the RPC derives, and
the filter API already reports removed logs by walking from the old head to the new one)
and ``ChainSideEvent`` (gone from geth too).
"""

from __future__ import annotations

from dataclasses import dataclass

from ethnode.core.types.block import Block
from ethnode.core.types.header import Header


@dataclass(frozen=True)
class ChainEvent:
    """A block joined the canonical chain (geth core.ChainEvent), in ascending order.

    Posted as each block is written, the new branch's blocks one by one on a reorg; its
    body (and receipts, if executed) are stored by then. Only the header travels: geth
    adds the receipts and txs, which a consumer here reads from the chain if it needs them.
    """

    header: Header


@dataclass(frozen=True)
class ChainHeadEvent:
    """The canonical head block changed (geth core.ChainHeadEvent): once per chain call that moved it."""

    header: Header


@dataclass(frozen=True)
class NewMinedBlockEvent:
    """This node sealed a block (geth core.NewMinedBlockEvent): propagate it."""

    block: Block


__all__ = ["ChainEvent", "ChainHeadEvent", "NewMinedBlockEvent"]
