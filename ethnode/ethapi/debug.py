"""The ``debug_getRaw*`` methods: blocks, headers, receipts and transactions as consensus bytes.

Tools that verify a node (or feed another one) want the exact bytes the chain hashed, not
their JSON rendering. geth v1.17.10 ``DebugAPI``: a block by number or tag that does not
exist answers "0x" (a nil byte slice; null for receipts); by hash, an error naming the hash
the way Go's ``%d`` prints a byte array ("header #[171 171 ...] not found"); receipts of an
unknown hash are an empty list.
"""

from __future__ import annotations

from typing import Any

from ethnode.core.blockchain import BlockChain
from ethnode.core.types.transaction import BlobTxWithSidecar
from ethnode.ethapi.eth import EthAPI
from ethnode.rpc.hexutil import data, hash_arg
from ethnode.rpc.jsonrpc import RPCError, server_error

_NOT_FOUND = ("header not found", "header for hash not found")


def go_bytes(value: bytes) -> str:
    """Go's ``%d`` of a byte array: ``[1 2 3]``."""
    return "[" + " ".join(str(b) for b in value) + "]"


class DebugAPI:
    """``debug_getRawHeader/Block/Receipts/Transaction`` over the chain and the pool."""

    def __init__(self, eth: EthAPI) -> None:
        self._eth = eth
        self.chain: BlockChain = eth.chain

    def _hash_of(self, block: Any) -> bytes | None:
        """geth: a hash is taken as given; a number or tag must name a block (else None: null)."""
        if isinstance(block, dict) and "blockHash" in block and "blockNumber" not in block:
            return hash_arg(0, block["blockHash"])
        if isinstance(block, str) and len(block) == 66:
            return hash_arg(0, block)
        try:
            header = self._eth._header_for_state(0, block)
        except RPCError as exc:
            if exc.message in _NOT_FOUND:
                return None
            raise
        return header.hash  # type: ignore[no-any-return]

    def get_raw_header(self, block: Any) -> str:
        block_hash = self._hash_of(block)
        if block_hash is None:
            return "0x"  # geth: a nil hexutil.Bytes
        header = self.chain.get_header_by_hash(block_hash)
        if header is None:
            raise server_error(f"header #{go_bytes(block_hash)} not found")
        return data(header.encode())

    def get_raw_block(self, block: Any) -> str:
        block_hash = self._hash_of(block)
        if block_hash is None:
            return "0x"
        found = self.chain.get_block_by_hash(block_hash)
        if found is None:
            raise server_error(f"block #{go_bytes(block_hash)} not found")
        return data(found.encode())

    def get_raw_receipts(self, block: Any) -> list[str] | None:
        block_hash = self._hash_of(block)
        if block_hash is None:
            return None
        header = self.chain.get_header_by_hash(block_hash)
        receipts = None if header is None else self.chain.get_receipts(block_hash, header.number)
        return [data(r.consensus_encoding()) for r in receipts or ()]

    def get_raw_transaction(self, tx_hash: Any) -> str:
        h = hash_arg(0, tx_hash)
        found = self.chain.get_transaction(h)
        if found is not None:
            return data(found[0].canonical)
        pooled = self._eth.txpool.get(h) if self._eth.txpool is not None else None
        if pooled is None:
            return "0x"
        inner = pooled.tx if isinstance(pooled, BlobTxWithSidecar) else pooled
        return data(inner.canonical)


__all__ = ["DebugAPI", "go_bytes"]
