"""Chain events the eth handler reacts to, posted on the node's EventBus (geth core/events.go).

Whoever moves the chain posts them: the Engine API's forkchoiceUpdated and the
downloader post ``ChainHeadEvent``; the miner posts ``NewMinedBlockEvent``. Pool events
(``NewTxsEvent``) live with the pool in ``ethnode.core.txpool``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ethnode.core.types.block import Block
from ethnode.core.types.header import Header


@dataclass(frozen=True)
class ChainHeadEvent:
    """The canonical head block changed (geth core.ChainHeadEvent)."""

    header: Header


@dataclass(frozen=True)
class NewMinedBlockEvent:
    """This node sealed a block (geth core.NewMinedBlockEvent): propagate it."""

    block: Block


__all__ = ["ChainHeadEvent", "NewMinedBlockEvent"]
