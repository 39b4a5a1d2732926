"""eth_getLogs and the polling filters against real executed blocks: the ethtest chain run through
py-evm, served over HTTP on loopback.

The facts come from the chain itself: the expected logs are rebuilt here from the stored
receipts and block bodies, independently of the filter code. Error texts are the ones
geth v1.17.8 (``geth --dev``) answered to the same requests.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")

import asyncio

from eth_support import ethtest_blocks, executed_ethtest_chain
from p2p_support import run_checked
from rpc_support import RPCNode

from ethnode.core.blockchain import BlockChain
from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.eip4844 import calc_excess_blob_gas
from ethnode.core.events import ChainHeadEvent
from ethnode.core.execution import BlockEnv
from ethnode.core.txpool import NewTxsEvent
from ethnode.core.types.block import Block
from ethnode.ethapi import filters as filters_mod
from ethnode.ethapi import logfilter
from ethnode.ethapi.filters import FilterAPI
from ethnode.ethapi.logfilter import LogMatcher, parse_criteria, range_logs
from ethnode.event import EventBus
from ethnode.rpc.jsonrpc import RPCError
from ethnode.trie import EMPTY_ROOT

HEAD = 40  # the node starts here; the polling tests then import blocks 41..46
EMIT = bytes.fromhex("7dcd17433742f4c0ca53122ab541d0ba67fc27df")  # the tx-emit-* contract (ethtest txinfo.json)
EMIT_TOPIC0 = (0x656D6974).to_bytes(32, "big")  # "emit"
RANDOMLOGS_5 = "0x882e7e5d"  # address prefix of block 5's randomlogs contract (10 logs in one tx)
BIG_BLOCK = 11  # 56 txs, one topicless log each
TIMEOUT = 60.0


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def stored_logs(chain: BlockChain, first: int, last: int) -> list[dict[str, Any]]:
    """Every log of canonical blocks first..last in geth's JSON shape, from receipts and bodies."""
    out = []
    for number in range(first, last + 1):
        block = chain.get_block_by_number(number)
        assert block is not None
        receipts = chain.get_receipts(block.hash, number)
        if number == 0:
            continue  # the genesis has no txs and no stored receipts
        assert receipts is not None and len(receipts) == len(block.transactions)
        index = 0
        for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
            for lg in receipt.logs:
                out.append({
                    "address": hx(lg.address), "topics": [hx(t) for t in lg.topics], "data": hx(lg.data),
                    "blockNumber": hex(number), "transactionHash": hx(tx.hash), "transactionIndex": hex(tx_index),
                    "blockHash": hx(block.hash), "blockTimestamp": hex(block.header.time), "logIndex": hex(index),
                    "removed": False,
                })
                index += 1
    return out


def serve(chain: BlockChain, scenario: Any) -> None:
    async def main() -> None:
        node = await RPCNode(chain).start()
        try:
            await scenario(node)
        finally:
            await node.stop()

    run_checked(main, timeout=TIMEOUT)


# --- eth_getLogs ---------------------------------------------------------------------------------


def test_get_logs_returns_the_stored_logs_selected_by_address_and_topics() -> None:
    chain = executed_ethtest_chain(HEAD)
    every = stored_logs(chain, 0, HEAD)
    emit = [lg for lg in every if lg["address"] == hx(EMIT)]
    assert len(every) == 99 and len(emit) == 12  # the chain holds what this test is about

    async def scenario(node: RPCNode) -> None:
        call = node.call
        assert await call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest"}) == every
        assert await call("eth_getLogs", {"fromBlock": "earliest"}) == every
        assert await call("eth_getLogs", {"fromBlock": hex(35), "toBlock": hex(38)}) == stored_logs(chain, 35, 38)
        assert await call("eth_getLogs", {}) == stored_logs(chain, HEAD, HEAD)  # latest..latest

        # address: one, or a list (OR), in chain order
        assert await call("eth_getLogs", {"fromBlock": "0x0", "address": hx(EMIT)}) == emit
        block5 = [lg for lg in every if lg["address"].startswith(RANDOMLOGS_5)]
        assert len(block5) == 10
        both = await call("eth_getLogs", {"fromBlock": "0x0", "address": [block5[0]["address"], hx(EMIT)]})
        assert both == [lg for lg in every if lg in emit or lg in block5]

        # topics: positional, OR within a position, null as a wildcard that still needs the position
        pick = [emit[1]["topics"][1], emit[3]["topics"][1]]
        assert await call("eth_getLogs", {"fromBlock": "0x0", "topics": [hx(EMIT_TOPIC0), pick]}) == \
            [emit[1], emit[3]]
        assert await call("eth_getLogs", {"fromBlock": "0x0", "topics": [None, pick[0]]}) == [emit[1]]
        assert await call("eth_getLogs", {"fromBlock": "0x0", "topics": [[pick[0], None]]}) == \
            [lg for lg in every if lg["topics"]]  # a null alternative makes the whole position a wildcard
        assert await call("eth_getLogs", {"fromBlock": "0x0", "topics": [None, None]}) == \
            [lg for lg in every if len(lg["topics"]) >= 2]
        assert await call("eth_getLogs", {"fromBlock": "0x0", "topics": [[]]}) == [lg for lg in every if lg["topics"]]
        mismatch = {"fromBlock": "0x0", "address": hx(EMIT), "topics": [block5[0]["topics"][0]]}
        assert await call("eth_getLogs", mismatch) == []

    serve(chain, scenario)


def test_get_logs_by_block_hash_numbers_logs_across_the_block() -> None:
    chain = executed_ethtest_chain(HEAD)
    big = chain.get_block_by_number(BIG_BLOCK)
    five = chain.get_block_by_number(5)
    assert big is not None and five is not None

    async def scenario(node: RPCNode) -> None:
        logs = await node.call("eth_getLogs", {"blockHash": hx(big.hash)})
        assert logs == stored_logs(chain, BIG_BLOCK, BIG_BLOCK)
        assert [lg["logIndex"] for lg in logs] == [hex(i) for i in range(56)]
        assert [lg["transactionIndex"] for lg in logs] == [hex(i) for i in range(56)]
        assert [lg["transactionHash"] for lg in logs] == [hx(tx.hash) for tx in big.transactions]
        logs = await node.call("eth_getLogs", {"blockHash": hx(five.hash)})
        assert [(lg["transactionIndex"], lg["logIndex"]) for lg in logs] == [("0x0", hex(i)) for i in range(10)]
        assert await node.call("eth_getLogs", {"blockHash": hx(five.hash), "address": hx(EMIT)}) == []

    serve(chain, scenario)


def test_get_logs_reads_receipts_only_where_the_header_bloom_may_match() -> None:
    chain = executed_ethtest_chain(HEAD)
    read: list[int] = []
    get_receipts = chain.get_receipts

    def counting(block_hash: bytes, number: int) -> Any:
        read.append(number)
        return get_receipts(block_hash, number)

    async def scenario(node: RPCNode) -> None:
        chain.get_receipts = counting  # type: ignore[method-assign]
        logs = await node.call("eth_getLogs", {"fromBlock": "0x0", "address": hx(EMIT)})
        assert sorted({int(lg["blockNumber"], 16) for lg in logs}) == read  # no other block's receipts were read
        read.clear()
        await node.call("eth_getLogs", {"fromBlock": "0x0", "topics": [hx(b"\x99" * 32)]})
        assert read == []

    serve(chain, scenario)


def test_get_logs_errors_are_geths() -> None:
    chain = executed_ethtest_chain(HEAD)
    a_hash = hx(chain.get_block_by_number(3).hash)  # type: ignore[union-attr]
    address = "0x" + "22" * 20

    async def scenario(node: RPCNode) -> None:
        async def error(*params: Any) -> tuple[int, str]:
            reply = await node.call("eth_getLogs", *params)
            assert isinstance(reply, dict) and "code" in reply, reply
            return reply["code"], reply["message"]

        assert await error({"blockHash": a_hash, "fromBlock": "0x1"}) == (
            -32602, "invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
        assert await error({"fromBlock": "0x5", "toBlock": "0x4"}) == (-32602, "invalid block range params")
        assert await error({"fromBlock": hex(HEAD + 1)}) == (-32602, "invalid block range params")  # > latest
        assert await error({"fromBlock": "0x0", "toBlock": hex(HEAD + 1)}) == (
            -32602, "block range extends beyond current head block")
        assert await error({"blockHash": "0x" + "11" * 32}) == (-32000, "unknown block")
        assert await error({"fromBlock": "pending"}) == (-32602, "pending logs are not supported")
        assert await error({"fromBlock": "safe"}) == (-32000, "safe header not found")  # no forkchoice yet
        assert await error({"address": [address] * 1001}) == (
            -32000, "exceed max addresses or topics per search position")
        assert await error({"topics": [None] * 5}) == (-32602, "invalid argument 0: exceed max topics")
        assert await error({"topics": [["0x" + "11" * 32] * 1001]}) == (-32602, "invalid argument 0: exceed max topics")
        assert await error(None) == (-32602, "missing value for required argument 0")
        assert await error() == (-32602, "missing value for required argument 0")

    serve(chain, scenario)


@pytest.mark.parametrize(
    ("criteria", "message"),
    [  # what geth v1.17.8 answers, after "invalid argument 0: "
        ("x", "json: cannot unmarshal string into Go value of type filters.input"),
        ({"blockHash": "0x11"}, "hex string has length 2, want 64 for common.Hash"),
        ({"blockHash": "11"}, "json: cannot unmarshal hex string without 0x prefix into Go struct field "
                              "input.blockHash of type common.Hash"),
        ({"blockHash": 5}, "json: cannot unmarshal non-string into Go struct field input.blockHash of type "
                           "common.Hash"),
        ({"blockHash": ""}, "hex string has length 0, want 64 for common.Hash"),
        ({"blockHash": "0x1"}, "json: cannot unmarshal hex string of odd length into Go struct field input.blockHash "
                               "of type common.Hash"),
        ({"blockHash": "0x" + "zz" * 32}, "json: cannot unmarshal invalid hex string into Go struct field "
                                          "input.blockHash of type common.Hash"),
        ({"fromBlock": 5}, "hex string without 0x prefix"),
        ({"fromBlock": "0x"}, 'hex string "0x"'),
        ({"fromBlock": "0x01"}, "hex number with leading zero digits"),
        ({"fromBlock": "0x8000000000000000"}, "block number larger than int64"),
        ({"address": 5}, "invalid addresses in query"),
        ({"address": "0x11"}, "invalid address: hex has invalid length 1 after decoding; expected 20 for address"),
        ({"address": "11"}, "invalid address: hex string without 0x prefix"),
        ({"address": ["0x11"]}, "invalid address at index 0: hex has invalid length 1 after decoding; expected 20 "
                                "for address"),
        ({"address": ["0x" + "22" * 20, 5]}, "non-string address at index 1"),
        ({"topics": "x"}, "json: cannot unmarshal string into Go struct field input.topics of type []interface {}"),
        ({"topics": {}}, "json: cannot unmarshal object into Go struct field input.topics of type []interface {}"),
        ({"topics": [5]}, "invalid topic(s)"),
        ({"topics": [[5]]}, "invalid topic(s)"),
        ({"topics": ["0x11"]}, "hex has invalid length 1 after decoding; expected 32 for topic"),
    ],
)
def test_criteria_decoding_errors_match_geth(criteria: Any, message: str) -> None:
    with pytest.raises(RPCError) as info:
        parse_criteria(criteria)
    assert (info.value.code, info.value.message) == (-32602, "invalid argument 0: " + message)


def test_criteria_decoding_follows_geths_json_rules() -> None:
    crit = parse_criteria({"FROMBLOCK": "0x2", "toblock": "latest", "topics": [["0x" + "11" * 32, None, 5]]})
    assert (crit.from_block, crit.to_block, crit.topics) == (2, -2, ((),))  # names fold case; null ends the OR list


# --- polling filters -------------------------------------------------------------------------


def test_polling_filters_see_new_heads_logs_and_pending_txs() -> None:
    chain = executed_ethtest_chain(HEAD)
    more = ethtest_blocks()[HEAD:HEAD + 6]  # blocks 41..46
    pending_tx = more[0].transactions[0]

    async def scenario(node: RPCNode) -> None:
        call = node.call
        blocks = await call("eth_newBlockFilter")
        logs = await call("eth_newFilter", {"address": hx(EMIT)})
        bounded = await call("eth_newFilter", {"fromBlock": hex(44), "toBlock": hex(45), "address": hx(EMIT)})
        everything = await call("eth_newFilter", {"fromBlock": "0x0"})
        txs = await call("eth_newPendingTransactionFilter")
        full = await call("eth_newPendingTransactionFilter", True)
        ids = [blocks, logs, bounded, everything, txs, full]
        assert len(set(ids)) == 6 and all(i.startswith("0x") and len(i) <= 34 for i in ids)
        for fid in ids:
            assert await call("eth_getFilterChanges", fid) == []

        # the pool takes block 41's tx and announces it
        assert await call("eth_sendRawTransaction", hx(pending_tx.canonical)) == hx(pending_tx.hash)
        assert await call("eth_getFilterChanges", txs) == [hx(pending_tx.hash)]
        got = await call("eth_getFilterChanges", full)
        assert [(t["hash"], t["blockHash"], t["nonce"]) for t in got] == [(hx(pending_tx.hash), None, "0x5e")]
        assert await call("eth_getFilterChanges", txs) == []

        # new blocks: the chain announces them on the node's bus
        chain.insert_chain(more)
        assert await call("eth_getFilterChanges", blocks) == [hx(b.hash) for b in more]
        new_logs = [lg for lg in stored_logs(chain, HEAD + 1, HEAD + 6) if lg["address"] == hx(EMIT)]
        assert [int(lg["blockNumber"], 16) for lg in new_logs] == [43, 44, 45, 46]
        assert await call("eth_getFilterChanges", logs) == new_logs
        assert await call("eth_getFilterChanges", logs) == []  # each log once
        assert await call("eth_getFilterChanges", bounded) == new_logs[1:3]
        assert await call("eth_getFilterChanges", blocks) == []

        # eth_getFilterLogs runs the filter's criteria over the stored chain
        assert await call("eth_getFilterLogs", everything) == stored_logs(chain, 0, HEAD + 6)
        assert await call("eth_getFilterLogs", bounded) == new_logs[1:3]
        assert await call("eth_getFilterLogs", blocks) == {"code": -32000, "message": "filter not found"}

        assert await call("eth_getFilterChanges", "0xdead") == {"code": -32000, "message": "filter not found"}
        assert await call("eth_getFilterChanges", 5) == {
            "code": -32602, "message": "invalid argument 0: json: cannot unmarshal number into Go value of type rpc.ID"}
        assert await call("eth_newFilter", {"fromBlock": "pending"}) == {
            "code": -32602, "message": "pending logs are not supported"}
        assert await call("eth_newFilter", {"fromBlock": "0x5", "toBlock": "0x4"}) == {
            "code": -32602, "message": "invalid block range params"}
        assert await call("eth_newFilter", {"fromBlock": "safe"}) == {
            "code": -32602, "message": "invalid block range params"}
        assert await call("eth_newPendingTransactionFilter", "x") == {
            "code": -32602, "message": "invalid argument 0: json: cannot unmarshal string into Go value of type bool"}
        assert await call("eth_uninstallFilter", logs) is True
        assert await call("eth_uninstallFilter", logs) is False
        assert await call("eth_getFilterChanges", logs) == {"code": -32000, "message": "filter not found"}

    serve(chain, scenario)


def _sibling_without_txs(chain: BlockChain, number: int) -> Block:
    """An executed, stored, non-canonical sibling of canonical block ``number`` holding no txs."""
    canonical = ethtest_blocks()[number - 1]
    parent = chain.get_header_by_number(number - 1)
    assert chain.executor is not None and parent is not None
    template = canonical.header.replace(tx_root=EMPTY_ROOT, blob_gas_used=0, extra=b"side")
    result = chain.executor.apply_transactions(parent, [], BlockEnv.from_header(template), canonical.withdrawals)
    side = Block.new(result.fill_header(template), [], [], canonical.withdrawals)
    chain.insert_chain([side], set_head=False)
    return side


def test_a_reorg_reports_the_logs_that_left_the_chain_as_removed() -> None:
    top = 46  # its tx emits one log
    chain = executed_ethtest_chain(top)
    original = chain.current_block
    side = _sibling_without_txs(chain, top)
    gone = stored_logs(chain, top, top)
    assert len(gone) == 1 and chain.current_block.hash == original.hash

    async def scenario(node: RPCNode) -> None:
        call = node.call
        blocks = await call("eth_newBlockFilter")
        logs = await call("eth_newFilter", {})
        chain.set_canonical(side.hash)  # what a forkchoiceUpdated to the side block does
        assert await call("eth_getFilterChanges", blocks) == [hx(side.hash)]
        assert await call("eth_getFilterChanges", logs) == [{**gone[0], "removed": True}]
        assert await call("eth_getLogs", {"fromBlock": hex(top)}) == []
        chain.set_canonical(original.hash)
        assert await call("eth_getFilterChanges", blocks) == [hx(original.hash)]
        assert await call("eth_getFilterChanges", logs) == gone

    serve(chain, scenario)


def _empty_branch(chain: BlockChain, first: int, length: int) -> list[Block]:
    """Executed, stored, non-canonical tx-less blocks first..first+length-1 forking off block first-1."""
    assert chain.executor is not None
    parent = chain.get_header_by_number(first - 1)
    branch = []
    for number in range(first, first + length):
        assert parent is not None
        canonical = ethtest_blocks()[number - 1]
        cancun = canonical.header.excess_blob_gas is not None
        template = canonical.header.replace(
            parent_hash=parent.hash, tx_root=EMPTY_ROOT, blob_gas_used=0 if cancun else None, extra=b"side",
            base_fee=calc_base_fee(chain.config, parent),
            excess_blob_gas=calc_excess_blob_gas(chain.config, parent, canonical.header.time) if cancun else None,
        )
        result = chain.executor.apply_transactions(parent, [], BlockEnv.from_header(template), canonical.withdrawals)
        block = Block.new(result.fill_header(template), [], [], canonical.withdrawals)
        chain.insert_chain([block], set_head=False)
        branch.append(block)
        parent = block.header
    return branch


def test_a_range_scan_drops_matches_a_reorg_took_away_while_it_yielded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfilter, "SCAN_BATCH", 8)
    chain = executed_ethtest_chain(16)
    side = _empty_branch(chain, 5, 12)  # 5..16 without txs: block 5's ten logs are not on it
    assert len(stored_logs(chain, 0, 12)) > 10

    async def scan() -> list[dict[str, Any]]:
        task = asyncio.ensure_future(range_logs(chain, 0, 12, LogMatcher((), ())))
        await asyncio.sleep(0)  # the scan reads blocks 0..7 and yields
        assert not task.done()
        chain.set_canonical(side[-1].hash)
        return await task

    got = run_checked(scan, timeout=TIMEOUT)
    assert chain.get_canonical_hash(5) == side[0].hash
    assert got == stored_logs(chain, 0, 12) == []  # blocks 1..4 have no logs and 5..12 are the empty branch


# --- lifetime and bounds (no HTTP: a fake clock and the bus) -----------------------------------


class _Tx:
    def __init__(self, n: int) -> None:
        self.hash = n.to_bytes(32, "big")


def test_filters_expire_unless_polled_and_hold_the_bus_only_while_needed() -> None:
    chain = executed_ethtest_chain(2)
    bus, now = EventBus(), [0.0]
    api = FilterAPI(chain, bus, clock=lambda: now[0])
    fid = api.new_block_filter()
    assert len(bus._subs[ChainHeadEvent]) == 1 and not bus._subs[NewTxsEvent]
    now[0] = filters_mod.FILTER_TIMEOUT - 1
    assert api.get_filter_changes(fid) == []  # polling resets the 5 minute deadline
    now[0] += filters_mod.FILTER_TIMEOUT - 1
    assert api.get_filter_changes(fid) == []
    now[0] += filters_mod.FILTER_TIMEOUT
    with pytest.raises(RPCError, match="filter not found"):
        api.get_filter_changes(fid)
    assert not bus._subs[ChainHeadEvent]
    txs = api.new_pending_transaction_filter()
    assert len(bus._subs[NewTxsEvent]) == 1
    assert api.uninstall_filter(txs) is True and not bus._subs[NewTxsEvent]


def test_a_long_head_jump_reports_only_the_newest_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters_mod, "MAX_HEAD_WALK", 3)
    chain = executed_ethtest_chain(2)
    bus = EventBus()
    chain.events = bus
    api = FilterAPI(chain, bus)
    fid = api.new_block_filter()
    chain.insert_chain(ethtest_blocks()[2:8])  # 3..8: one ChainHeadEvent for the batch
    assert api.get_filter_changes(fid) == [hx(b.hash) for b in ethtest_blocks()[5:8]]


def test_filter_queues_and_the_filter_count_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters_mod, "MAX_QUEUED", 3)
    monkeypatch.setattr(filters_mod, "MAX_FILTERS", 2)
    chain = executed_ethtest_chain(2)
    bus, now = EventBus(), [0.0]
    api = FilterAPI(chain, bus, clock=lambda: now[0])
    first = api.new_pending_transaction_filter()
    bus.post(NewTxsEvent(tuple(_Tx(n) for n in range(5))))
    assert api.get_filter_changes(first) == [hx(_Tx(n).hash) for n in (2, 3, 4)]  # the oldest dropped
    now[0] += 1
    second = api.new_block_filter()
    now[0] += 1
    api.get_filter_changes(first)  # polled last: second is now the least recently polled
    third = api.new_block_filter()
    assert api.get_filter_changes(first) == [] and api.get_filter_changes(third) == []
    with pytest.raises(RPCError, match="filter not found"):
        api.get_filter_changes(second)
