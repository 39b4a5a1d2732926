"""The rest of geth's BlockChainAPI and TransactionAPI block accessors, in the ``eth`` namespace.

Transaction counts, txs and uncles by block and index, whole-block receipts, headers, raw
txs and the blob base fee: what block explorers and web3.py's helpers ask for. geth returns
``null`` (not an error) for a block it does not have, and so do these.
"""

from __future__ import annotations

from typing import Any

from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.eip4844 import calc_blob_fee
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.core.types.transaction import BlobTxWithSidecar
from ethnode.ethapi.eth import Backend, EthAPI, _block_number
from ethnode.ethapi.marshal import header_fields, receipt_fields, tx_fields
from ethnode.rpc.hexutil import data, hash_arg, quantity, uint_arg
from ethnode.rpc.jsonrpc import RPCError

NOT_FOUND = ("header not found", "header for hash not found")


def _index(index: int, value: Any) -> int:
    """geth hexutil.Uint: a quantity."""
    return uint_arg(index, value)


class BlockAPI:
    """eth_getBlockTransactionCountBy*, eth_getTransactionBy*AndIndex, eth_getUncle*, eth_getBlockReceipts, ..."""

    def __init__(self, backend: Backend, eth: EthAPI | None = None) -> None:
        self.chain = backend.chain
        self.txpool = backend.txpool
        self._eth = eth if eth is not None else EthAPI(backend)  # its block-tag and block-or-hash resolution

    # --- lookups ------------------------------------------------------------------------

    def _block_by_number(self, value: Any) -> Block | None:
        header = self._eth._header_by_tag(_block_number(0, value))
        return None if header is None else self.chain.get_block(header.hash, header.number)

    def _block_by_hash(self, value: Any) -> Block | None:
        return self.chain.get_block_by_hash(hash_arg(0, value))  # type: ignore[no-any-return]

    def _tx_at(self, block: Block | None, index: int) -> dict[str, Any] | None:
        if block is None or index >= len(block.transactions):
            return None
        return tx_fields(block.transactions[index], self.chain.config, block.header, index)

    def _raw_tx_at(self, block: Block | None, index: int) -> str | None:
        if block is None or index >= len(block.tx_items):
            return None
        return data(block.transactions[index].canonical)

    def _uncle_at(self, block: Block | None, index: int) -> dict[str, Any] | None:
        """geth: the uncle as a header-only block (RPCMarshalBlock without txs): header fields, size, uncles."""
        if block is None or index >= len(block.uncles):
            return None
        uncle: Header = block.uncles[index]
        out = header_fields(uncle)
        out["size"] = quantity(len(Block.new(uncle, [], []).encode()))
        out["uncles"] = []
        return out

    # --- counts -------------------------------------------------------------------------

    def get_block_transaction_count_by_number(self, number: Any) -> str | None:
        block = self._block_by_number(number)
        return None if block is None else quantity(len(block.tx_items))

    def get_block_transaction_count_by_hash(self, block_hash: Any) -> str | None:
        block = self._block_by_hash(block_hash)
        return None if block is None else quantity(len(block.tx_items))

    def get_uncle_count_by_block_number(self, number: Any) -> str | None:
        block = self._block_by_number(number)
        return None if block is None else quantity(len(block.uncles))

    def get_uncle_count_by_block_hash(self, block_hash: Any) -> str | None:
        block = self._block_by_hash(block_hash)
        return None if block is None else quantity(len(block.uncles))

    # --- by index -----------------------------------------------------------------------

    def get_transaction_by_block_number_and_index(self, number: Any, index: Any) -> dict[str, Any] | None:
        return self._tx_at(self._block_by_number(number), _index(1, index))

    def get_transaction_by_block_hash_and_index(self, block_hash: Any, index: Any) -> dict[str, Any] | None:
        return self._tx_at(self._block_by_hash(block_hash), _index(1, index))

    def get_raw_transaction_by_block_number_and_index(self, number: Any, index: Any) -> str | None:
        return self._raw_tx_at(self._block_by_number(number), _index(1, index))

    def get_raw_transaction_by_block_hash_and_index(self, block_hash: Any, index: Any) -> str | None:
        return self._raw_tx_at(self._block_by_hash(block_hash), _index(1, index))

    def get_uncle_by_block_number_and_index(self, number: Any, index: Any) -> dict[str, Any] | None:
        return self._uncle_at(self._block_by_number(number), _index(1, index))

    def get_uncle_by_block_hash_and_index(self, block_hash: Any, index: Any) -> dict[str, Any] | None:
        return self._uncle_at(self._block_by_hash(block_hash), _index(1, index))

    def get_raw_transaction_by_hash(self, tx_hash: Any) -> str | None:
        """The canonical encoding from the chain, else the pool's (geth: "0x" when unknown)."""
        h = hash_arg(0, tx_hash)
        found = self.chain.get_transaction(h)
        if found is not None:
            return data(found[0].canonical)
        pooled = self.txpool.get(h)
        if pooled is None:
            return "0x"
        inner = pooled.tx if isinstance(pooled, BlobTxWithSidecar) else pooled  # a blob tx: without its sidecar
        return data(inner.canonical)

    # --- whole blocks -------------------------------------------------------------------

    def get_block_receipts(self, block: Any) -> list[dict[str, Any]] | None:
        """All receipts of a block given by tag, number or hash (geth BlockNumberOrHash)."""
        try:
            header = self._eth._header_for_state(0, block)
        except RPCError as exc:
            if exc.message in NOT_FOUND:  # geth answers null for a block it does not have
                return None
            raise
        found = self.chain.get_block(header.hash, header.number)
        if found is not None and not found.tx_items:
            return []  # geth: an empty list, the genesis block's too (it has no stored receipts)
        receipts = self.chain.get_receipts(header.hash, header.number)
        if found is None or receipts is None or len(receipts) != len(found.tx_items):
            return None
        return [receipt_fields(found, receipts, i, self.chain.config) for i in range(len(receipts))]

    def get_header_by_number(self, number: Any) -> dict[str, Any] | None:
        header = self._eth._header_by_tag(_block_number(0, number))
        return None if header is None else header_fields(header)

    def get_header_by_hash(self, block_hash: Any) -> dict[str, Any] | None:
        header = self.chain.get_header_by_hash(hash_arg(0, block_hash))
        return None if header is None else header_fields(header)

    def base_fee(self) -> str | None:
        """The next block's base fee (geth EthereumAPI.BaseFee); null when it is not a London block."""
        head = self.chain.current_block
        if not self.chain.config.is_london(head.number + 1):
            return None
        return quantity(calc_base_fee(self.chain.config, head))

    def blob_base_fee(self) -> str | None:
        """The head block's blob base fee (geth EthereumAPI.BlobBaseFee); null before Cancun."""
        head = self.chain.current_block
        if head.excess_blob_gas is None:
            return None
        return quantity(calc_blob_fee(self.chain.config, head))


__all__ = ["BlockAPI"]
