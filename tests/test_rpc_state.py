"""Account-state JSON-RPC (eth_getBalance, eth_getTransactionCount, eth_getCode, eth_getStorageAt)
against real executed state: the first 20 ethtest blocks run through py-evm, plus an executed side
block that never became canonical.

The facts checked come from the chain itself: EIP-2935's history contract (Prague from block
12) keeps block N's hash in slot N, and a side block's state differs from its canonical
sibling's by the sibling's transactions.
"""

from __future__ import annotations

import pytest

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")

from eth_support import ethtest_blocks, executed_ethtest_chain
from p2p_support import run_checked
from rpc_support import RPCNode

from ethnode.core.blockchain import BlockChain
from ethnode.core.execution import BlockEnv
from ethnode.core.types.block import Block
from ethnode.trie import EMPTY_ROOT

HISTORY_CONTRACT = bytes.fromhex("0000F90827F1C53a10cb7A02335B175320002935")  # EIP-2935
FIRST_PRAGUE = 12  # its first block stores block 11's hash
HEAD = 20


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def word(value: bytes | int) -> str:
    return hx(value.to_bytes(32, "big") if isinstance(value, int) else value.rjust(32, b"\0"))


def _side_block(chain: BlockChain) -> tuple[Block, Block]:
    """(canonical block with txs, an executed tx-less sibling of it that is not canonical)."""
    sibling = next(b for b in ethtest_blocks()[FIRST_PRAGUE:HEAD - 1] if b.transactions)
    parent = chain.get_header_by_number(sibling.number - 1)
    assert chain.executor is not None
    template = sibling.header.replace(tx_root=EMPTY_ROOT, blob_gas_used=0, extra=b"side")
    result = chain.executor.apply_transactions(parent, [], BlockEnv.from_header(template), sibling.withdrawals)
    side = Block.new(result.fill_header(template), [], [], sibling.withdrawals)
    chain.insert_chain([side], set_head=False)
    assert chain.get_canonical_hash(sibling.number) == sibling.hash != side.hash
    return sibling, side


def test_state_rpc_reads_executed_state_at_head_history_and_side_blocks() -> None:
    chain = executed_ethtest_chain(HEAD)
    sibling, side = _side_block(chain)
    sender = sibling.transactions[0].sender

    async def scenario() -> None:
        node = await RPCNode(chain).start()  # the service hands the chain's own state reader to RPC
        try:
            call = node.call
            # EIP-2935 history: slot 11 holds block 11's hash once block 12 ran, not before.
            b11 = chain.get_canonical_hash(11)
            assert await call("eth_getStorageAt", hx(HISTORY_CONTRACT), "0xb", "latest") == word(b11)
            assert await call("eth_getStorageAt", hx(HISTORY_CONTRACT), "0xb", "0xb") == word(0)
            assert await call("eth_getStorageAt", hx(HISTORY_CONTRACT), "b", "0xc") == word(b11)  # geth decodeHash
            assert await call("eth_getStorageAt", hx(HISTORY_CONTRACT), word(11), hx(chain.get_canonical_hash(12))) \
                == word(b11)
            assert await call("eth_getStorageAt", hx(HISTORY_CONTRACT), "0x" + "00" * 33) == {
                "code": -32602, "message": 'storage key too long (want at most 32 bytes): "0x' + "00" * 33 + '"'}
            assert await call("eth_getStorageAt", hx(HISTORY_CONTRACT), "0xzz") == {
                "code": -32602, "message": 'invalid hex in storage key: "0xzz"'}
            code = chain.state().code(HISTORY_CONTRACT)
            assert code and await call("eth_getCode", hx(HISTORY_CONTRACT), "latest") == hx(code)

            # The sender of the sibling's first tx: its nonce moved in the canonical block, not in the side one.
            before = chain.state_at(chain.get_header_by_number(sibling.number - 1))
            canon = chain.state_at(sibling.header)
            side_state = chain.state_at(side.header)
            assert canon.nonce(sender) > before.nonce(sender) == side_state.nonce(sender)
            n = hex(sibling.number)
            assert await call("eth_getTransactionCount", hx(sender), n) == hex(canon.nonce(sender))
            assert await call("eth_getTransactionCount", hx(sender), hx(sibling.hash)) == hex(canon.nonce(sender))
            assert await call("eth_getTransactionCount", hx(sender), hx(side.hash)) == hex(side_state.nonce(sender))
            assert await call("eth_getBalance", hx(sender), {"blockHash": hx(side.hash)}) == hex(
                side_state.balance(sender))
            assert await call("eth_getBalance", hx(sender), hx(sibling.hash)) == hex(canon.balance(sender))
            assert canon.balance(sender) != side_state.balance(sender)
            assert await call("eth_getBalance", hx(sender), {"blockHash": hx(side.hash), "requireCanonical": True}) \
                == {"code": -32000, "message": "hash is not currently canonical"}
            head = chain.state()
            assert await call("eth_getBalance", hx(sender), "latest") == hex(head.balance(sender))
        finally:
            await node.stop()

    run_checked(scenario)


def _walk_proof(root: bytes, key: bytes, proof: list[str]) -> bytes | None:
    """A Merkle proof checked the way a light client checks it: each node is the preimage of the
    hash its parent (or the root) names, and the path of ``keccak(key)`` leads to the value."""
    from ethnode import rlp
    from ethnode.crypto.keccak import keccak256

    nodes = [bytes.fromhex(p[2:]) for p in proof]
    path, want, i = keccak256(key).hex(), root, 0
    node: object = None
    for raw in nodes:
        assert keccak256(raw) == want, "a proof node is not the one its parent names"
        node = rlp.decode(raw)
        while True:
            assert isinstance(node, list)
            if len(node) == 17:
                child = node[int(path[i], 16)]
                i += 1
            else:
                nibbles = node[0].hex()
                rest = nibbles[1:] if int(nibbles[0], 16) & 1 else nibbles[2:]
                if path[i:i + len(rest)] != rest:
                    return None  # the path leaves the trie: proof of absence
                i += len(rest)
                if int(nibbles[0], 16) & 2:
                    return node[1]  # type: ignore[no-any-return]
                child = node[1]
            if isinstance(child, list):
                node = child
                continue
            if not child:
                return None
            want = child
            break
    raise AssertionError("the proof ended before the path did")


def test_get_proof_nodes_prove_the_account_and_its_slots() -> None:
    """eth_getProof from the stored tries: the account proof leads from the block's state root to the
    account's record, each storage proof from its storage root to the slot's value (or its absence);
    the field-by-field comparison with geth is tests/test_rpc_geth_diff.py."""
    from ethnode import rlp
    from ethnode.core.genesis import StateAccount

    chain = executed_ethtest_chain(HEAD)

    async def scenario() -> None:
        node = await RPCNode(chain).start()
        try:
            head = chain.current_block
            keys = [hx((11).to_bytes(32, "big")), "0xb", "0x1234"]  # block 11's hash (twice), an empty slot
            got = await node.call("eth_getProof", hx(HISTORY_CONTRACT), keys, "latest")
            leaf = _walk_proof(head.state_root, HISTORY_CONTRACT, got["accountProof"])
            account = StateAccount.decode(leaf)
            assert hx(account.storage_root) == got["storageHash"] and hx(account.code_hash) == got["codeHash"]
            assert account.nonce == int(got["nonce"], 16) and account.balance == int(got["balance"], 16)
            b11 = chain.get_canonical_hash(11)
            for entry, key in zip(got["storageProof"], keys, strict=True):
                value = _walk_proof(account.storage_root, (int(key, 16)).to_bytes(32, "big"), entry["proof"])
                assert int(entry["value"], 16) == (int.from_bytes(rlp.decode(value), "big") if value else 0)
            assert [e["key"] for e in got["storageProof"]] == [keys[0], "0xb", "0x1234"]  # 32 bytes kept, else hex
            assert int(got["storageProof"][0]["value"], 16) == int.from_bytes(b11, "big")
            assert got["storageProof"][2]["value"] == "0x0" and got["storageProof"][2]["proof"]
            absent = await node.call("eth_getProof", "0x" + "ee" * 20, ["0x0"], "0x5")
            assert _walk_proof(chain.get_header_by_number(5).state_root, b"\xee" * 20, absent["accountProof"]) is None
            assert absent["codeHash"] == absent["storageHash"] == hx(bytes(32))  # geth: zero for no account
            assert absent["storageProof"] == [{"key": "0x0", "value": "0x0", "proof": []}]
            assert (await node.call("eth_getProof", hx(HISTORY_CONTRACT), ["0x0"] * 1025))["message"] == \
                "too many storage keys requested (max 1024, got 1025)"
        finally:
            await node.stop()

    run_checked(scenario)
