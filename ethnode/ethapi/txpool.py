"""The ``txpool_`` namespace (geth ``internal/ethapi.TxPoolAPI``): counts, content, inspection.

Shapes as geth: ``{"pending": {ADDRESS: {NONCE: tx}}, "queued": {...}}`` with EIP-55
addresses and decimal nonces as keys; pool txs carry null block fields and their fee
cap as ``gasPrice``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ethnode.core.blockchain import BlockChain
from ethnode.core.txpool import TxPool
from ethnode.ethapi.marshal import _inner, tx_fields
from ethnode.rpc.hexutil import address_arg, checksum_address, quantity


class TxPoolAPI:
    def __init__(self, txpool: TxPool, chain: BlockChain) -> None:
        self.txpool = txpool
        self.chain = chain

    def status(self) -> dict[str, str]:
        pending, queued = self.txpool.stats()
        return {"pending": quantity(pending), "queued": quantity(queued)}

    def content(self) -> dict[str, Any]:
        pending, queued = self.txpool.content()
        return {"pending": self._by_account(pending), "queued": self._by_account(queued)}

    def content_from(self, address: Any) -> dict[str, Any]:
        addr = address_arg(0, address)
        pending, queued = self.txpool.content_from(addr)
        return {"pending": self._by_nonce(pending), "queued": self._by_nonce(queued)}

    def inspect(self) -> dict[str, Any]:
        """geth's one-line summaries: ``"0xto: VALUE wei + GAS gas × PRICE wei"``."""
        pending, queued = self.txpool.content()

        def summary(item: Any) -> str:
            tx = _inner(item)
            to = "contract creation" if tx.to is None else checksum_address(tx.to)  # type: ignore[attr-defined]
            return f"{to}: {tx.value} wei + {tx.gas} gas × {tx.gas_fee_cap} wei"  # type: ignore[attr-defined]

        def group(by_sender: Mapping[bytes, Sequence[Any]]) -> dict[str, dict[str, str]]:
            return {checksum_address(s): {str(_inner(t).nonce): summary(t) for t in txs}  # type: ignore[attr-defined]
                    for s, txs in by_sender.items()}

        return {"pending": group(pending), "queued": group(queued)}

    def _by_nonce(self, txs: Sequence[Any]) -> dict[str, Any]:
        config = self.chain.config
        return {str(_inner(t).nonce): tx_fields(t, config) for t in txs}  # type: ignore[attr-defined]

    def _by_account(self, by_sender: Mapping[bytes, Sequence[Any]]) -> dict[str, Any]:
        return {checksum_address(sender): self._by_nonce(txs) for sender, txs in by_sender.items()}


__all__ = ["TxPoolAPI"]
