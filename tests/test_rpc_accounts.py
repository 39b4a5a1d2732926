"""The dev accounts' RPC (eth_accounts, eth_sendTransaction, eth_signTransaction, eth_sign,
eth_signTypedData_v4) on a real executed chain and its pool, as geth --dev serves its dev account.

The chain is a post-merge London genesis funding two dev keys, executed with py-evm, so
eth_sendTransaction's defaults come from the real estimator, oracle and pool. Signatures
are checked with eth_account, an implementation independent of ethnode's (its own
secp256k1, RLP, EIP-191 and EIP-712 code), and the EIP-712 example of the EIP itself.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")
eth_account = pytest.importorskip("eth_account")

from chain_support import open_chain  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.messages import encode_defunct, encode_typed_data  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402
from p2p_support import run_checked  # noqa: E402
from rpc_support import CHAIN_ID, DEV_ADDR, DEV_KEY, GWEI, OTHER_ADDR, RPCNode, ThreadedNode  # noqa: E402

from ethnode.core.blockchain import BlockChain, setup_genesis  # noqa: E402
from ethnode.core.eip1559 import calc_base_fee  # noqa: E402
from ethnode.core.execution import BlockEnv  # noqa: E402
from ethnode.core.genesis import Genesis  # noqa: E402
from ethnode.core.rawdb import MemoryDB  # noqa: E402
from ethnode.core.types.transaction import (  # noqa: E402
    AccessListTx,
    DynamicFeeTx,
    LegacyTx,
    address_of,
    decode_tx,
)
from ethnode.crypto.keccak import keccak256  # noqa: E402
from ethnode.crypto.keys import PrivateKey  # noqa: E402
from ethnode.ethapi.accounts import DevAccounts, text_hash  # noqa: E402
from ethnode.ethapi.typeddata import TypedDataError, typed_data_hash  # noqa: E402

KEY2 = PrivateKey(bytes([7]) * 32)
ADDR2 = address_of(KEY2.node_id)
STRANGER = bytes.fromhex("00000000000000000000000000000000000000bb")  # funded, no key here
BALANCE = 10**24
# Init code deploying a runtime that returns 42: PUSH10 <runtime> PUSH1 0 MSTORE PUSH1 10 PUSH1 22 RETURN
RUNTIME = bytes.fromhex("602a60005260206000f3")
INITCODE = bytes.fromhex("69") + RUNTIME + bytes.fromhex("600052600a6016f3")

Call = Callable[..., Awaitable[Any]]


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def err(message: str, code: int = -32000) -> dict[str, Any]:
    return {"code": code, "message": message}


def checksum(addr: bytes) -> str:
    return str(to_checksum_address(addr))


def _chain(london: bool = True) -> BlockChain:
    forks = ["homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
             "constantinopleBlock", "petersburgBlock", "istanbulBlock", "berlinBlock"]
    config: dict[str, Any] = {"chainId": CHAIN_ID, **dict.fromkeys(forks, 0)}
    if london:
        config.update(londonBlock=0, terminalTotalDifficulty=0)
    obj = {
        "config": config, "difficulty": "0x0" if london else "0x1", "gasLimit": "0x1c9c380", "extraData": "0x",
        "alloc": {hx(a): {"balance": hex(BALANCE)} for a in (DEV_ADDR, ADDR2, STRANGER)},
    }
    if london:
        obj["baseFeePerGas"] = hex(GWEI)
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db, execute=True)
    chain._state_root_warned = True
    return chain


@pytest.fixture(scope="module")
def chain() -> BlockChain:
    return _chain()


def serve(chain: BlockChain, scenario: Callable[[RPCNode], Awaitable[None]],
          keys: tuple[PrivateKey, ...] = (DEV_KEY, KEY2)) -> None:
    async def main() -> None:
        node = await RPCNode(chain, dev_keys=keys, modules=("eth", "txpool")).start()
        try:
            await scenario(node)
        finally:
            await node.stop()

    run_checked(main)


def pooled(node: RPCNode, tx_hash: str) -> Any:
    tx = node.eth.txpool.get(bytes.fromhex(tx_hash[2:]))
    assert tx is not None, "not in the pool"
    return tx


def recovered_by_eth_account(tx: Any) -> bytes:
    """The sender as eth_account recovers it from the raw bytes (its own RLP and secp256k1)."""
    return bytes.fromhex(Account.recover_transaction(tx.canonical)[2:])


# --- eth_accounts and the unknown account -------------------------------------------------------


def test_accounts_are_the_dev_keys_and_none_without_them(chain: BlockChain) -> None:
    async def with_keys(node: RPCNode) -> None:
        assert await node.call("eth_accounts") == [hx(DEV_ADDR), hx(ADDR2)]  # lower case, as geth's Address JSON

    async def without(node: RPCNode) -> None:
        assert await node.call("eth_accounts") == []
        transfer = {"from": hx(DEV_ADDR), "to": hx(OTHER_ADDR)}
        assert await node.call("eth_sendTransaction", transfer) == err("unknown account")
        assert await node.call("eth_sign", hx(DEV_ADDR), "0x00") == err("unknown account")

    serve(chain, with_keys)
    serve(chain, without, keys=())
    assert DevAccounts([DEV_KEY, KEY2, DEV_KEY]).addresses == [DEV_ADDR, ADDR2]  # a key given twice counts once


# --- eth_sendTransaction ------------------------------------------------------------------------


def test_send_transaction_fills_geths_defaults_signs_and_pools(chain: BlockChain) -> None:
    head = chain.current_block

    async def scenario(node: RPCNode) -> None:
        call = node.call
        tip = int(await call("eth_maxPriorityFeePerGas"), 16)
        assert tip == GWEI // 1000  # the oracle's default (geth --miner.gasprice): no block holds a tx yet

        # A transfer: EIP-1559 fees (tip from the oracle, cap = tip + 2 * base fee), the pool's nonce,
        # gas from the estimator, the chain id.
        h1 = await call("eth_sendTransaction", {"from": hx(DEV_ADDR), "to": hx(OTHER_ADDR), "value": "0x3e8"})
        t1 = pooled(node, h1)
        assert isinstance(t1, DynamicFeeTx) and hx(t1.hash) == h1
        assert (t1.chain_id, t1.nonce, t1.gas_tip_cap, t1.gas_fee_cap, t1.gas) == (
            CHAIN_ID, 0, tip, tip + 2 * head.base_fee, 21000)
        assert (t1.to, t1.value, t1.data, list(t1.access_list)) == (OTHER_ADDR, 1000, b"", [])
        assert t1.sender == DEV_ADDR == recovered_by_eth_account(t1)
        got = await call("eth_getTransactionByHash", h1)
        assert got["from"] == hx(DEV_ADDR) and got["blockHash"] is None and got["nonce"] == "0x0"

        # A contract creation: the next pool nonce, gas exactly what eth_estimateGas says for it.
        estimate = await call("eth_estimateGas", {"from": hx(DEV_ADDR), "input": hx(INITCODE)})
        h2 = await call("eth_sendTransaction", {"from": hx(DEV_ADDR), "data": hx(INITCODE)})
        t2 = pooled(node, h2)
        assert (t2.to, t2.nonce, t2.data, t2.gas, t2.value) == (None, 1, INITCODE, int(estimate, 16), 0)
        assert recovered_by_eth_account(t2) == DEV_ADDR
        assert await call("eth_getTransactionCount", hx(DEV_ADDR), "pending") == "0x2"

        # gasPrice given: a legacy tx, EIP-155 signed; with an access list too: EIP-2930.
        h3 = await call("eth_sendTransaction", {"from": hx(DEV_ADDR), "to": hx(OTHER_ADDR),
                                                "gasPrice": hex(2 * GWEI), "gas": "0x5208"})
        t3 = pooled(node, h3)
        assert isinstance(t3, LegacyTx) and t3.protected and t3.chain_id == CHAIN_ID
        assert (t3.nonce, t3.gas_price, t3.gas, t3.v in (2 * CHAIN_ID + 35, 2 * CHAIN_ID + 36)) == (2, 2 * GWEI,
                                                                                                    21000, True)
        assert recovered_by_eth_account(t3) == DEV_ADDR
        slot = "0x" + "00" * 31 + "01"
        h4 = await call("eth_sendTransaction", {
            "from": hx(DEV_ADDR), "to": hx(OTHER_ADDR), "gasPrice": hex(2 * GWEI),
            "accessList": [{"address": hx(OTHER_ADDR), "storageKeys": [slot]}], "chainId": hex(CHAIN_ID)})
        t4 = pooled(node, h4)
        assert isinstance(t4, AccessListTx) and t4.nonce == 3 and t4.gas > 21000  # the list's gas is estimated
        assert [(a.address, list(a.storage_keys)) for a in t4.access_list] == [(OTHER_ADDR, [bytes.fromhex(slot[2:])])]

        # Given fields are kept: nonce, gas, both 1559 fees; the second account signs its own.
        h5 = await call("eth_sendTransaction", {"from": hx(ADDR2), "to": hx(DEV_ADDR), "nonce": "0x0",
                                                "gas": "0x6000", "maxFeePerGas": hex(5 * GWEI),
                                                "maxPriorityFeePerGas": hex(2 * GWEI)})
        t5 = pooled(node, h5)
        assert (t5.nonce, t5.gas, t5.gas_fee_cap, t5.gas_tip_cap) == (0, 0x6000, 5 * GWEI, 2 * GWEI)
        assert recovered_by_eth_account(t5) == ADDR2

        # What was pooled runs: every tx of the pool applies on the head's state, the creation deploys.
        pending = node.eth.txpool.pending()
        txs = pending[DEV_ADDR] + pending[ADDR2]
        assert [tx.hash for tx in txs] == [t.hash for t in (t1, t2, t3, t4, t5)]
        env = BlockEnv(number=head.number + 1, time=head.time + 12, gas_limit=head.gas_limit,
                       fee_recipient=bytes(20), base_fee=calc_base_fee(chain.config, head))
        result = chain.executor.apply_transactions(head, txs, env)
        assert [r.status for r in result.receipts] == [1] * 5
        assert RUNTIME in [value for _, value in result.state.items()]  # the deployed code, stored by hash

    serve(chain, scenario)


def test_send_transaction_refusals_are_geths(chain: BlockChain) -> None:
    dev, to = hx(DEV_ADDR), hx(OTHER_ADDR)

    async def scenario(node: RPCNode) -> None:
        async def send(**fields: Any) -> Any:
            return await node.call("eth_sendTransaction", {"from": dev, "to": to, **fields})

        assert await node.call("eth_sendTransaction", {"from": hx(STRANGER), "to": to}) == err("unknown account")
        assert await node.call("eth_sendTransaction", {"to": to}) == err("unknown account")  # geth: from = 0x0
        assert await send(gasPrice="0x1", maxFeePerGas="0x1") == err(
            "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
        assert await send(maxFeePerGas="0x0", maxPriorityFeePerGas="0x0") == err("maxFeePerGas must be non-zero")
        assert await send(maxFeePerGas="0x1", maxPriorityFeePerGas="0x2") == err(
            "maxFeePerGas (0x1) < maxPriorityFeePerGas (0x2)")
        assert await send(maxFeePerGas="0x1") == err(  # the oracle's 0.001 gwei tip is above the given cap
            f"maxFeePerGas (0x1) < maxPriorityFeePerGas ({hex(GWEI // 1000)})")
        assert await send(gasPrice="0x0") == err("gasPrice must be non-zero after london fork")
        assert await send(data="0x01", input="0x02") == err(
            'both "data" and "input" are set and not equal. Please use "input" to pass transaction call data')
        assert await node.call("eth_sendTransaction", {"from": dev}) == err(
            "contract creation without any data provided")
        assert await send(chainId="0x1") == err(f"chainId does not match node's (have=1, want={CHAIN_ID})")
        assert await send(blobVersionedHashes=["0x01" + "00" * 31]) == err("signing blob transactions not supported")
        assert await send(maxFeePerBlobGas="0x1") == err("signing blob transactions not supported")
        assert await send(blobs=["0x00"]) == err('"blobs" is not supported for this RPC method')
        assert await send(gasPrice=hex(10**14), gas="0x5208") == err(  # 2.1 ether of fee over the 1 ether cap
            "tx fee (2.10 ether) exceeds the configured cap (1.00 ether)")
        assert await send(value=hex(BALANCE * 2)) == err("insufficient funds for transfer")  # from the estimator
        assert await send(authorizationList=[]) == err(
            "invalid argument 0: authorizationList is not supported by ethnode's eth_sendTransaction", -32602)
        assert await send(gas="0x1") == err("intrinsic gas too low: gas 1, minimum needed 21000")  # the pool's
        assert await node.call("eth_sendTransaction", "nope") == err(
            "invalid argument 0: json: cannot unmarshal string into Go value of type ethapi.TransactionArgs", -32602)
        assert node.eth.txpool.stats() == (0, 0)

    serve(chain, scenario)


def test_send_transaction_before_london_sets_a_gas_price() -> None:
    chain = _chain(london=False)

    async def scenario(node: RPCNode) -> None:
        h = await node.call("eth_sendTransaction", {"from": hx(DEV_ADDR), "to": hx(OTHER_ADDR)})
        tx = pooled(node, h)
        assert isinstance(tx, LegacyTx) and tx.gas_price == GWEI // 1000 and tx.gas == 21000 and tx.chain_id == CHAIN_ID
        assert recovered_by_eth_account(tx) == DEV_ADDR
        assert await node.call("eth_sendTransaction", {"from": hx(DEV_ADDR), "to": hx(OTHER_ADDR),
                                                       "maxPriorityFeePerGas": "0x1"}) == err(
            "maxFeePerGas and maxPriorityFeePerGas are not valid before London is active")

    serve(chain, scenario)


# --- eth_signTransaction ------------------------------------------------------------------------


def test_sign_transaction_returns_raw_and_geths_tx_json(chain: BlockChain) -> None:
    dev, to = hx(DEV_ADDR), hx(OTHER_ADDR)
    full = {"from": dev, "to": to, "gas": "0x5208", "nonce": "0x7", "value": "0x10", "input": "0xabcd",
            "maxFeePerGas": hex(3 * GWEI), "maxPriorityFeePerGas": hex(GWEI)}

    async def scenario(node: RPCNode) -> None:
        call = node.call

        def without(*names: str, **more: Any) -> dict[str, Any]:
            return {k: v for k, v in full.items() if k not in names} | more

        assert await call("eth_signTransaction", without("gas")) == err("gas not specified")
        assert await call("eth_signTransaction", without("maxFeePerGas")) == err(
            "missing gasPrice or maxFeePerGas/maxPriorityFeePerGas")
        assert await call("eth_signTransaction", without("nonce")) == err("nonce not specified")
        assert await call("eth_signTransaction", without(**{"from": hx(STRANGER)})) == err(
            "unknown account")
        assert await call("eth_signTransaction", without(blobVersionedHashes=["0x01" + "00" * 31])) == err(
            "signing blob transactions not supported")
        assert await call("eth_signTransaction", without("maxFeePerGas", "maxPriorityFeePerGas",
                                                         gasPrice=hex(10**14))) == err(
            "tx fee (2.10 ether) exceeds the configured cap (1.00 ether)")

        out = await call("eth_signTransaction", full)
        raw = bytes.fromhex(out["raw"][2:])
        tx = decode_tx(raw)
        assert isinstance(tx, DynamicFeeTx) and tx.sender == DEV_ADDR
        assert bytes.fromhex(Account.recover_transaction(raw)[2:]) == DEV_ADDR
        assert out["tx"] == {  # geth types.Transaction JSON: null for the other types' fee fields, hash last
            "type": "0x2", "chainId": hex(CHAIN_ID), "nonce": "0x7", "to": to, "gas": "0x5208", "gasPrice": None,
            "maxPriorityFeePerGas": hex(GWEI), "maxFeePerGas": hex(3 * GWEI), "value": "0x10", "input": "0xabcd",
            "accessList": [], "v": hex(tx.y_parity), "r": hex(tx.r), "s": hex(tx.s), "yParity": hex(tx.y_parity),
            "hash": hx(tx.hash),
        }
        assert list(out["tx"]) == ["type", "chainId", "nonce", "to", "gas", "gasPrice", "maxPriorityFeePerGas",
                                   "maxFeePerGas", "value", "input", "accessList", "v", "r", "s", "yParity", "hash"]
        assert node.eth.txpool.stats() == (0, 0)  # signed, not sent

        legacy = await call("eth_signTransaction", without("maxFeePerGas", "maxPriorityFeePerGas", "nonce", "input",
                                                           gasPrice=hex(GWEI), nonce="0x0"))
        ltx = decode_tx(bytes.fromhex(legacy["raw"][2:]))
        assert isinstance(ltx, LegacyTx) and ltx.chain_id == CHAIN_ID
        assert bytes.fromhex(Account.recover_transaction(legacy["raw"])[2:]) == DEV_ADDR
        assert legacy["tx"]["v"] == hex(ltx.v) and legacy["tx"]["chainId"] == hex(CHAIN_ID)
        assert "yParity" not in legacy["tx"] and "accessList" not in legacy["tx"]
        assert legacy["tx"]["maxFeePerGas"] is None and legacy["tx"]["gasPrice"] == hex(GWEI)
        # The signed tx is a valid submission (its nonce is the account's next one).
        assert await call("eth_sendRawTransaction", legacy["raw"]) == legacy["tx"]["hash"]

    serve(chain, scenario)


# --- eth_sign and EIP-712 -----------------------------------------------------------------------

MAIL = {  # EIP-712's own example; its signature with keccak256("cow") is in the EIP's Example.js
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                         {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                 {"name": "contents", "type": "string"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
               "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
    "message": {"from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                "contents": "Hello, Bob!"},
}
MAIL_HASH = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
MAIL_SIG_COW = ("4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"
                "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562" "1c")

RICH = {  # every kind of field: nested structs, arrays of structs and of arrays, bytes, signed ints
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
                         {"name": "salt", "type": "bytes32"}],
        "Order": [{"name": "maker", "type": "address"}, {"name": "items", "type": "Item[]"},
                  {"name": "matrix", "type": "uint16[][]"}, {"name": "tags", "type": "string[]"},
                  {"name": "payload", "type": "bytes"}, {"name": "id", "type": "bytes4"},
                  {"name": "delta", "type": "int64"}, {"name": "open", "type": "bool"},
                  {"name": "amount", "type": "uint256"}, {"name": "owners", "type": "address[2]"}],
        "Item": [{"name": "sku", "type": "string"}, {"name": "price", "type": "Price"}],
        "Price": [{"name": "value", "type": "uint128"}, {"name": "currency", "type": "bytes3"}],
    },
    "primaryType": "Order",
    "domain": {"name": "Shop", "chainId": CHAIN_ID, "salt": "0x" + "ab" * 32},
    "message": {
        "maker": hx(DEV_ADDR),
        "items": [{"sku": "apple", "price": {"value": 3, "currency": "0x455552"}},
                  {"sku": "pear", "price": {"value": "0x10", "currency": "0x555344"}}],
        "matrix": [[1, 2], [], [65535]], "tags": ["a", "", "ü"], "payload": "0x00ff00",
        "id": "0xdeadbeef", "delta": -12345, "open": True, "amount": str(2**200),
        "owners": [hx(DEV_ADDR), hx(ADDR2)],
    },
}


def eth_account_digest(typed: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=typed)
    return keccak256(b"\x19" + signable.version + signable.header + signable.body)


def test_typed_data_hash_matches_the_eip_and_eth_account() -> None:
    assert typed_data_hash(MAIL).hex() == MAIL_HASH == eth_account_digest(MAIL).hex()
    assert typed_data_hash(RICH) == eth_account_digest(RICH)
    no_domain_type = {**MAIL, "types": {k: v for k, v in MAIL["types"].items() if k != "EIP712Domain"}}
    assert typed_data_hash(no_domain_type).hex() == MAIL_HASH  # derived from the domain's fields, as ethers does
    no_primary = {k: v for k, v in MAIL.items() if k != "primaryType"}
    assert typed_data_hash(no_primary).hex() == MAIL_HASH

    def broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
        typed = json.loads(json.dumps(RICH))
        target = typed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return typed

    for path, value, message in [
        (("message", "maker"), "0x1234", "provided data '0x1234' doesn't match type 'address'"),
        (("message", "open"), "true", "provided data 'true' doesn't match type 'bool'"),
        (("message", "id"), "0xdead", "provided data '0xdead' doesn't match type 'bytes4'"),
        (("message", "payload"), "00ff", "provided data '00ff' doesn't match type 'bytes'"),
        (("message", "delta"), 2**63, "integer larger than 'int64'"),
        (("message", "amount"), -1, "invalid negative value for unsigned type uint256"),
        (("message", "amount"), "1_000", 'invalid hex or decimal integer "1_000"'),
        (("message", "amount"), 1.5, "invalid float value 1.5 for type uint256"),
        (("message", "items"), {}, "provided data '{}' doesn't match type 'Item[]'"),
        (("message", "extra"), 1, "there is extra data provided in the message (10 < 11)"),
        (("types", "Item", 1, "type"), "Cost", 'reference type "Cost" is undefined'),
        (("types", "Price", 0, "type"), "Price", 'type "Price" cannot reference itself'),
        (("types", "Price", 0, "type"), "uint7", 'reference type "uint7" is undefined'),
        (("domain",), {}, "domain is undefined"),
    ]:
        with pytest.raises(TypedDataError) as info:
            typed_data_hash(broken(path, value))
        assert str(info.value) == message, path
    missing = broken(("message", "open"), None)
    del missing["message"]["open"]
    with pytest.raises(TypedDataError, match="provided data '<nil>' doesn't match type 'bool'"):
        typed_data_hash(missing)


def test_eth_sign_and_typed_data_match_eth_account(chain: BlockChain) -> None:
    cow = PrivateKey(keccak256(b"cow"))
    cow_addr = address_of(cow.node_id)
    messages = [b"", b"hello", bytes(range(256)) * 2]

    async def scenario(node: RPCNode) -> None:
        call = node.call
        for message in messages:
            for key in (DEV_KEY, KEY2):
                addr = address_of(key.node_id)
                sig = await call("eth_sign", hx(addr), hx(message))
                expected = Account.sign_message(encode_defunct(primitive=message), key.secret).signature
                assert sig == hx(expected) and sig[-2:] in ("1b", "1c")  # v = 27/28
                assert Account.recover_message(encode_defunct(primitive=message), signature=sig) == checksum(addr)
                assert cow.sign(text_hash(message))[:64] != bytes.fromhex(sig[2:130])  # another key differs
        assert await call("eth_sign", hx(STRANGER), "0x00") == err("unknown account")
        assert await call("eth_sign", hx(DEV_ADDR), "0x0") == err(
            "invalid argument 1: json: cannot unmarshal hex string of odd length into Go value of type hexutil.Bytes",
            -32602)
        assert (await call("eth_sign", "0x12", "0x00"))["code"] == -32602

        # EIP-712: the EIP's own example signature, by the "cow" key.
        assert await call("eth_signTypedData_v4", hx(cow_addr), MAIL) == hx(bytes.fromhex(MAIL_SIG_COW))
        for typed in (MAIL, RICH):
            expected = hx(Account.sign_typed_data(DEV_KEY.secret, full_message=typed).signature)
            assert await call("eth_signTypedData_v4", hx(DEV_ADDR), typed) == expected
            assert await call("eth_signTypedData_v4", hx(DEV_ADDR), json.dumps(typed)) == expected  # ethers/MetaMask
            assert await call("eth_signTypedData", hx(DEV_ADDR), typed) == expected  # web3.py's name
        assert await call("eth_signTypedData_v4", hx(STRANGER), MAIL) == err("unknown account")
        assert await call("eth_signTypedData_v4", hx(DEV_ADDR), "{nope") == err(
            "invalid argument 1: typed data is not valid JSON", -32602)
        assert await call("eth_signTypedData_v4", hx(DEV_ADDR), {**MAIL, "domain": {}}) == err("domain is undefined")

    serve(chain, scenario, keys=(DEV_KEY, KEY2, cow))


# --- web3.py over HTTP --------------------------------------------------------------------------


def test_web3_accounts_send_transaction_and_sign(chain: BlockChain) -> None:
    web3 = pytest.importorskip("web3")
    with ThreadedNode(RPCNode(chain, dev_keys=[DEV_KEY], modules=("eth", "net", "web3"))) as running:
        w3 = web3.Web3(web3.Web3.HTTPProvider(f"http://127.0.0.1:{running.node.rpc_port}",
                                              request_kwargs={"timeout": 10}))
        dev = checksum(DEV_ADDR)
        assert w3.eth.accounts == [dev]
        tx_hash = w3.eth.send_transaction({"from": dev, "to": checksum(OTHER_ADDR), "value": 12345})
        pending = w3.eth.get_transaction(tx_hash)
        assert pending["from"] == dev and pending["value"] == 12345 and pending["blockHash"] is None
        assert pending["nonce"] == 0 and pending["type"] == 2  # web3 sends its own gas (estimate + margin)
        assert w3.eth.get_transaction_count(dev, "pending") == 1
        sig = w3.eth.sign(dev, text="hi")
        assert bytes(sig) == Account.sign_message(encode_defunct(text="hi"), DEV_KEY.secret).signature
        typed_sig = w3.eth.sign_typed_data(dev, MAIL)
        assert bytes(typed_sig) == Account.sign_typed_data(DEV_KEY.secret, full_message=MAIL).signature
