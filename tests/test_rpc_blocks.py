"""Block accessors of the eth namespace (counts, by-index lookups, raw txs, block receipts,
headers, blob base fee) against a chain executed by py-evm, checked against the node's
own single-item answers and against the blocks themselves."""

from __future__ import annotations

import pytest

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")

from eth_support import executed_ethtest_chain
from p2p_support import run_checked
from rpc_support import RPCNode

from ethnode.crypto.keccak import keccak256

HEAD = 20
BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE = 5007716  # EIP-7691, ../shared/chains/ethtest/genesis.json blobSchedule


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def fake_exponential(factor: int, numerator: int, denominator: int) -> int:
    """EIP-4844's integer approximation of factor * e ** (numerator / denominator)."""
    i, output, accum = 1, 0, factor * denominator
    while accum > 0:
        output += accum
        accum = (accum * numerator) // (denominator * i)
        i += 1
    return output // denominator


def test_block_accessors_on_an_executed_chain() -> None:
    chain = executed_ethtest_chain(HEAD)
    with_txs = [chain.get_block_by_number(n) for n in range(1, HEAD + 1)]
    with_txs = [b for b in with_txs if len(b.transactions) >= 2]
    assert with_txs, "the first ethtest blocks carry txs"
    block = with_txs[0]
    n, h = hex(block.number), hx(block.hash)

    async def scenario() -> None:
        node = await RPCNode(chain).start()
        call = node.call
        try:
            count = hex(len(block.transactions))
            assert await call("eth_getBlockTransactionCountByNumber", n) == count
            assert await call("eth_getBlockTransactionCountByHash", h) == count
            assert await call("eth_getBlockTransactionCountByNumber", hex(HEAD + 1)) is None
            assert await call("eth_getBlockTransactionCountByHash", "0x" + "ab" * 32) is None
            assert await call("eth_getUncleCountByBlockNumber", n) == "0x0"  # post-merge: no uncles
            assert await call("eth_getUncleByBlockHashAndIndex", h, "0x0") is None

            for i, tx in enumerate(block.transactions):
                by_hash = await call("eth_getTransactionByHash", hx(tx.hash))
                assert await call("eth_getTransactionByBlockNumberAndIndex", n, hex(i)) == by_hash
                assert await call("eth_getTransactionByBlockHashAndIndex", h, hex(i)) == by_hash
                raw = await call("eth_getRawTransactionByHash", hx(tx.hash))
                assert keccak256(bytes.fromhex(raw[2:])) == tx.hash
                assert await call("eth_getRawTransactionByBlockNumberAndIndex", n, hex(i)) == raw
            past = hex(len(block.transactions))
            assert await call("eth_getTransactionByBlockNumberAndIndex", n, past) is None
            assert await call("eth_getRawTransactionByHash", "0x" + "cd" * 32) == "0x"

            receipts = [await call("eth_getTransactionReceipt", hx(tx.hash)) for tx in block.transactions]
            assert await call("eth_getBlockReceipts", n) == receipts
            assert await call("eth_getBlockReceipts", h) == receipts
            assert await call("eth_getBlockReceipts", {"blockHash": h}) == receipts
            assert await call("eth_getBlockReceipts", hex(HEAD + 5)) is None
            assert [r["cumulativeGasUsed"] for r in receipts][-1] == hex(block.header.gas_used)

            full = await call("eth_getBlockByNumber", n, False)
            header = await call("eth_getHeaderByNumber", n)
            assert header == {k: v for k, v in full.items() if k not in ("size", "transactions", "uncles",
                                                                         "withdrawals")}
            assert await call("eth_getHeaderByHash", h) == header
            assert await call("eth_getHeaderByNumber", hex(HEAD + 1)) is None

            head = chain.current_block
            want = fake_exponential(1, head.excess_blob_gas, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE)
            assert await call("eth_blobBaseFee") == hex(want)
        finally:
            await node.stop()

    run_checked(scenario)
