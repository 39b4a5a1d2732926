"""Block execution on import (py-evm behind ``Executor``): the ethtest chain verified end to end,
every rejection naming block, field and both values with nothing written, receipts served,
the block-building API, fork selection and the Prague request rules.

The 600-block chain is executed once per module (a few seconds) and shared.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from shared_support import shared_path

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")

from chain_support import open_chain
from eth_support import (
    ETHTEST_CHAIN_ID,
    ETHTEST_HEAD,
    ethtest_blocks,
    executed_ethtest_chain,
    genesis_json,
    scripted_peer,
    start_node,
)
from p2p_support import run_checked

from ethnode import rlp
from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.chainconfig import MAINNET_CONFIG, ChainConfig
from ethnode.core.errors import BlockValidationError, InvalidBlockError
from ethnode.core.execution import BlockEnv, TxExecutionError, UnsupportedForkError
from ethnode.core.execution.pyevm import fork_for
from ethnode.core.execution.system import (
    DEPOSIT_EVENT_TOPIC,
    deposit_log_to_request,
    deposit_requests,
    requests_hash,
)
from ethnode.core.genesis import EMPTY_REQUESTS_HASH, Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.state import StateDatabase, StateView
from ethnode.core.types.block import Block, derive_tx_root
from ethnode.core.types.header import Header
from ethnode.core.types.receipt import Log, Receipt, create_bloom, receipts_root
from ethnode.core.types.transaction import DynamicFeeTx, LegacyTx
from ethnode.crypto.keys import PrivateKey
from ethnode.eth.protocols.eth.protocol import ETH68, ETH69, GET_RECEIPTS, RECEIPTS, message
from ethnode.trie import EMPTY_ROOT

UNFUNDED = PrivateKey(bytes.fromhex("77" * 32))
FIRST_PRAGUE = 12  # ethtest block times are 10 s apart; pragueTime is 120
REQUESTS_BLOCK = 13  # the one block whose requests are not empty
WITHDRAWALS_BLOCK = 17


@pytest.fixture(scope="module")
def executed() -> BlockChain:
    return executed_ethtest_chain(600)


# --- the ethtest chain ---------------------------------------------------------------------


def test_ethtest_chain_executes_with_every_root_verified(executed: BlockChain) -> None:
    head = executed.current_block
    assert head.number == 600 and head.hash == ETHTEST_HEAD
    for block in ethtest_blocks():
        header = block.header
        receipts = executed.get_receipts(block.hash, block.number)
        assert receipts is not None and len(receipts) == len(block.tx_items)
        assert receipts_root(receipts) == header.receipt_root and create_bloom(receipts) == header.bloom
        assert (receipts[-1].cumulative_gas_used if receipts else 0) == header.gas_used


def test_head_state_matches_geths_dump_of_block_600(executed: BlockChain) -> None:
    dump = json.loads(shared_path("chains", "ethtest", "headstate.json").read_text())
    state = executed.state()
    assert state.root.hex() == dump["root"].removeprefix("0x")
    for address_hex, acct in dump["accounts"].items():
        address = bytes.fromhex(address_hex[2:])
        assert state.balance(address) == int(acct["balance"]), address_hex
        assert state.nonce(address) == acct["nonce"], address_hex
        assert state.code(address) == bytes.fromhex(acct.get("code", "0x")[2:]), address_hex
        for slot, value in acct.get("storage", {}).items():
            assert state.storage(address, int(slot, 16)) == int(value, 16), (address_hex, slot)


def test_state_at_older_blocks(executed: BlockChain) -> None:
    info = json.loads(shared_path("chains", "ethtest", "txinfo.json").read_text())
    contract = bytes.fromhex(info["deploy-callenv"]["contract"][2:])  # deployed in block 1
    assert executed.state_at(executed.genesis).code(contract) == b""
    assert executed.state_at(executed.get_header_by_number(1)).code(contract) != b""
    reader = executed.head_state_reader()
    eoa = executed.get_block_by_number(1).transactions[0].sender
    assert reader.nonce(eoa, 0) == 0 and reader.nonce(eoa, 1) >= 1
    assert reader.nonce(eoa) == executed.state().nonce(eoa) and reader.nonce(eoa, 601) is None


def test_withdrawals_are_credited_in_gwei(executed: BlockChain) -> None:
    block = executed.get_block_by_number(WITHDRAWALS_BLOCK)
    before = executed.state_at(executed.get_header_by_number(WITHDRAWALS_BLOCK - 1))
    after = executed.state_at(block.header)
    credited: dict[bytes, int] = {}
    for w in block.withdrawals:
        credited[w.address] = credited.get(w.address, 0) + w.amount * 10**9
    senders = {tx.sender for tx in block.transactions} | {tx.to for tx in block.transactions}
    for address, amount in credited.items():
        if address not in senders and address != block.header.coinbase:
            assert after.balance(address) - before.balance(address) == amount


# --- receipts on the wire ----------------------------------------------------------------


@pytest.mark.parametrize("version", [ETH68, ETH69])
def test_executed_receipts_are_served(executed: BlockChain, version: int) -> None:
    numbers = [n for n in (1, 9, REQUESTS_BLOCK, 300) if executed.get_block_by_number(n).tx_items]

    async def scenario() -> None:
        node = await start_node(executed)
        scripted = await scripted_peer(node, version)
        try:
            msg = message(version, GET_RECEIPTS)
            hashes = [executed.get_canonical_hash(n) for n in numbers]
            await scripted.eth.send(GET_RECEIPTS, msg.encode(hashes, 9))
            rid, lists = rlp.decode(await scripted.eth.expect(RECEIPTS))
            assert int.from_bytes(rid, "big") == 9 and len(lists) == len(numbers)
            for n, items in zip(numbers, lists, strict=True):
                header = executed.get_header_by_number(n)
                if version == ETH68:  # consensus form, bloom included
                    got = [Receipt.decode_eth68_item(rlp.encode(i)) for i in items]
                    assert all(len(rlp.decode(_payload(i))[2]) == 256 for i in items)
                else:  # EIP-7642: [type, status, gas, logs], no bloom
                    got = [Receipt.decode_eth69_item(rlp.encode(i)) for i in items]
                    assert all(len(i) == 4 for i in items)
                assert receipts_root(got) == header.receipt_root and create_bloom(got) == header.bloom
        finally:
            await scripted.stop()
            await node.stop()

    run_checked(scenario)


def _payload(item: Any) -> bytes:
    """The RLP list of an eth/68 receipt item: typed receipts are a string holding type + list."""
    if isinstance(item, bytes):
        return item[1:]
    return rlp.encode(item)


# --- rejections: block, field, both values; nothing written -----------------------------------


def _tamper(block: Block, **changes: Any) -> Block:
    return Block(block.header.replace(**changes), block.tx_items, block.uncles, block.withdrawals)


@pytest.fixture(scope="module")
def prague_chain() -> BlockChain:
    return executed_ethtest_chain(REQUESTS_BLOCK - 1)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("gas_used", 21_000 * 7, "invalid gas used (remote: 147000 local: {gas_used})"),
        ("bloom", b"\x01" * 256, "invalid bloom (remote: 0101"),
        ("receipt_root", b"\x02" * 32,
         "invalid receipt root hash (remote: " + "02" * 32 + " local: {receipt_root})"),
        ("requests_hash", b"\x03" * 32, "invalid requests hash (remote: " + "03" * 32 + " local: {requests})"),
        ("state_root", b"\x04" * 32, "invalid merkle root (remote: " + "04" * 32 + " local: {state_root})"),
    ],
)
def test_a_block_failing_a_check_is_rejected_and_nothing_is_written(
    prague_chain: BlockChain, field: str, value: Any, reason: str
) -> None:
    good = ethtest_blocks()[REQUESTS_BLOCK - 1]
    bad = _tamper(good, **{field: value})
    db = prague_chain.db
    before = dict(db._data)  # type: ignore[attr-defined]
    with pytest.raises(InvalidBlockError) as err:
        prague_chain.insert_chain([bad])
    h = good.header
    expected = reason.format(gas_used=h.gas_used, receipt_root=h.receipt_root.hex(),
                             requests=h.requests_hash.hex(), state_root=h.state_root.hex())
    assert str(err.value).startswith(f"invalid block #{REQUESTS_BLOCK} (0x{bad.hash.hex()}): ")
    assert expected in str(err.value), str(err.value)
    assert err.value.number == REQUESTS_BLOCK
    assert dict(db._data) == before  # type: ignore[attr-defined]  # not a byte of it stored
    assert prague_chain.get_receipts(bad.hash, REQUESTS_BLOCK) is None
    assert prague_chain.current_block.number == REQUESTS_BLOCK - 1


def _unfunded_tx(nonce: int = 0) -> DynamicFeeTx:
    tx = DynamicFeeTx(ETHTEST_CHAIN_ID, nonce, 1, 10**12, 21_000, b"\x11" * 20, 1, b"", [], 0, 0, 0)
    return tx.sign(UNFUNDED)  # type: ignore[return-value]


def test_a_tx_that_cannot_apply_rejects_its_block(prague_chain: BlockChain) -> None:
    template = ethtest_blocks()[REQUESTS_BLOCK - 1]
    tx = _unfunded_tx()
    header = template.header.replace(tx_root=derive_tx_root([tx.canonical]))
    bad = Block.new(header, [tx], [], template.withdrawals)
    with pytest.raises(InvalidBlockError, match=rf"could not apply tx 0 \[0x{tx.hash.hex()}\]: .*(funds|balance)"):
        prague_chain.insert_chain([bad])
    assert not prague_chain.has_block(bad.hash, bad.number)


# --- the block-building API ----------------------------------------------------------------


def _zeroed(header: Header) -> Header:
    return header.replace(state_root=bytes(32), receipt_root=bytes(32), bloom=bytes(256), gas_used=0,
                          requests_hash=bytes(32))


def test_apply_transactions_rebuilds_a_blocks_header(prague_chain: BlockChain) -> None:
    block = ethtest_blocks()[REQUESTS_BLOCK - 1]
    parent = prague_chain.current_block
    env = BlockEnv.from_header(block.header)
    txs = list(block.transactions)
    executor = prague_chain.executor
    assert executor is not None
    result = executor.apply_transactions(parent, txs, env, block.withdrawals)
    assert result.fill_header(_zeroed(block.header)) == block.header
    assert result.requests is not None and result.requests_hash == block.header.requests_hash
    # A tx that does not fit is skipped when building, fatal otherwise.
    with_bad = [*txs[:1], _unfunded_tx(), *txs[1:]]
    skipped = executor.apply_transactions(parent, with_bad, env, block.withdrawals, skip_invalid=True)
    assert skipped.transactions == txs and skipped.state_root == block.header.state_root
    with pytest.raises(TxExecutionError, match="could not apply tx 1"):
        executor.apply_transactions(parent, with_bad, env, block.withdrawals)
    # The gas pool: a tx above what the block has left is refused before it runs.
    builder = executor.new_block(parent, BlockEnv.from_header(block.header.replace(gas_limit=30_000)))
    with pytest.raises(TxExecutionError, match="gas limit reached"):
        builder.apply_transaction(_unfunded_tx().replace(gas=40_000).sign(UNFUNDED))


def test_a_built_side_block_is_executed_on_its_parent_and_can_become_head() -> None:
    chain = executed_ethtest_chain(20)
    sibling_of = ethtest_blocks()[15]  # block 16, whose parent (15) is not the head
    parent = chain.get_header_by_number(15)
    executor = chain.executor
    assert executor is not None
    template = sibling_of.header.replace(tx_root=EMPTY_ROOT, blob_gas_used=0, extra=b"side")
    result = executor.apply_transactions(parent, [], BlockEnv.from_header(template), sibling_of.withdrawals)
    side = Block.new(result.fill_header(template), [], [], sibling_of.withdrawals)
    chain.insert_chain([side], set_head=False)
    assert chain.current_block.number == 20 and chain.get_receipts(side.hash, 16) == []
    reader = chain.head_state_reader()
    view = reader.view()
    assert view is not None and view.root == ethtest_blocks()[19].header.state_root
    chain.set_canonical(side.hash)  # forkchoiceUpdated to the side block: a reorg
    view = reader.view()
    assert chain.current_block.hash == side.hash and view is not None and view.root == side.header.state_root


# --- forks ----------------------------------------------------------------------------------


def test_fork_selection_follows_the_config() -> None:
    ethtest = ChainConfig.from_json(genesis_json()["config"])
    assert [fork_for(ethtest, n, t, 0).name for n, t in ((1, 10), (6, 60), (12, 120))] == [
        "shanghai", "cancun", "prague"]
    mainnet = [(0, "frontier"), (1_150_000, "homestead"), (2_463_000, "tangerine_whistle"),
               (2_675_000, "spurious_dragon"), (4_370_000, "byzantium"), (7_280_000, "petersburg"),
               (9_069_000, "istanbul"), (12_244_000, "berlin"), (12_965_000, "london"),
               (15_050_000, "gray_glacier")]
    for number, name in mainnet:
        assert fork_for(MAINNET_CONFIG, number, 0, 1).name == name
    assert fork_for(MAINNET_CONFIG, 15_537_394, 1_663_224_179, 0).name == "paris"  # difficulty 0: merged
    assert fork_for(MAINNET_CONFIG, 17_034_870, 1_681_338_455, 0).name == "shanghai"
    with pytest.raises(UnsupportedForkError, match=r"block #23935694 is under the osaka fork, .*--noexec"):
        fork_for(MAINNET_CONFIG, 23_935_694, 1_764_798_551, 0)
    with pytest.raises(UnsupportedForkError, match="DAO fork block"):
        fork_for(MAINNET_CONFIG, 1_920_000, 0, 1)


def test_unsupported_fork_stops_execution_with_one_line() -> None:
    obj = genesis_json()
    obj["config"] = {**obj["config"], "osakaTime": 100}
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db, execute=True, evm="py-evm")  # the pure twin stops at Prague
    executor = chain.executor
    assert executor is not None
    with pytest.raises(UnsupportedForkError) as err:
        executor.new_block(chain.genesis, BlockEnv(number=10, time=100, gas_limit=30_000_000, fee_recipient=bytes(20)))
    assert "\n" not in str(err.value) and "osaka" in str(err.value) and "#10" in str(err.value)


# --- pre-merge rules: rewards, pre-Byzantium receipts ------------------------------------------


def _pow_chain(**forks: int) -> BlockChain:
    key = PrivateKey(bytes.fromhex("42" * 32))
    funded = LegacyTx(0, 1, 21_000, b"\x00" * 20, 0, b"", 0, 0, 0).sign(key).sender
    obj = {"config": {"chainId": 1, **{k: 0 for k in forks}}, "gasLimit": "0x1000000", "difficulty": "0x20000",
           "alloc": {"0x" + funded.hex(): {"balance": hex(10**20)}}}
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    return open_chain(db, execute=True)


def _store(chain: BlockChain, result: Any) -> StateView:
    batch = chain.db.new_batch()
    result.state.write_to(batch)
    batch.write()
    return StateView(StateDatabase(chain.db), result.state_root)


def test_pre_merge_block_and_uncle_rewards() -> None:
    chain = _pow_chain(homesteadBlock=0, eip150Block=0, eip155Block=0, eip158Block=0, byzantiumBlock=0,
                       constantinopleBlock=0, petersburgBlock=0)
    miner, uncle_miner = b"\x0a" * 20, b"\x0b" * 20
    uncle = chain.genesis.replace(number=1, coinbase=uncle_miner)
    env = BlockEnv(number=2, time=20, gas_limit=10**7, fee_recipient=miner, difficulty=0x20000, uncles=[uncle])
    assert chain.executor is not None
    result = chain.executor.apply_transactions(chain.genesis, [], env)
    state = _store(chain, result)
    base = 2 * 10**18  # Constantinople: 2 ETH
    assert state.balance(miner) == base + base // 32
    assert state.balance(uncle_miner) == (1 + 8 - 2) * base // 8


def test_pre_byzantium_receipts_carry_the_intermediate_state_root() -> None:
    chain = _pow_chain(homesteadBlock=0, eip150Block=0)
    key = PrivateKey(bytes.fromhex("42" * 32))
    tx = LegacyTx(0, 10**9, 21_000, b"\x22" * 20, 5, b"", 0, 0, 0).sign(key)  # unprotected, pre-EIP-155
    env = BlockEnv(number=1, time=10, gas_limit=10**7, fee_recipient=b"\x0a" * 20, difficulty=0x20000)
    assert chain.executor is not None
    builder = chain.executor.new_block(chain.genesis, env)
    receipt = builder.apply_transaction(tx)
    assert len(receipt.post_state) == 32 and receipt.cumulative_gas_used == 21_000
    result = builder.finish()
    assert _store(chain, result).balance(b"\x22" * 20) == 5
    assert result.state_root != receipt.post_state  # the block reward comes after the tx


# --- EIP-7685 requests -------------------------------------------------------------------------


def _deposit_log_data(pubkey: bytes, creds: bytes, amount: bytes, sig: bytes, index: bytes) -> bytes:
    words = [160, 256, 320, 384, 512]
    head = b"".join(w.to_bytes(32, "big") for w in words)
    body = b""
    for field in (pubkey, creds, amount, sig, index):
        body += len(field).to_bytes(32, "big") + field.ljust(-(-len(field) // 32) * 32, b"\0")
    return head + body


def test_deposit_logs_become_requests_and_bad_layouts_are_refused() -> None:
    pubkey, creds, amount, sig, index = b"\x01" * 48, b"\x02" * 32, b"\x03" * 8, b"\x04" * 96, b"\x05" * 8
    data = _deposit_log_data(pubkey, creds, amount, sig, index)
    assert len(data) == 576
    assert deposit_log_to_request(data) == pubkey + creds + amount + sig + index
    contract = b"\xdd" * 20
    logs = [Log(contract, [DEPOSIT_EVENT_TOPIC], data), Log(b"\xee" * 20, [DEPOSIT_EVENT_TOPIC], data),
            Log(contract, [b"\x00" * 32], data)]
    assert deposit_requests(logs, contract) == b"\x00" + pubkey + creds + amount + sig + index
    with pytest.raises(BlockValidationError, match="deposit wrong length"):
        deposit_log_to_request(data[:-1])
    with pytest.raises(BlockValidationError, match="invalid offset"):
        deposit_log_to_request((161).to_bytes(32, "big") + data[32:])
    assert requests_hash([]) == EMPTY_REQUESTS_HASH == requests_hash([b"\x00", b"\x01"])
    one = b"\x01" + b"\x09" * 76
    assert requests_hash([one]) == hashlib.sha256(hashlib.sha256(one).digest()).digest()
