"""eth_call and eth_estimateGas on real executed state: the first 20 ethtest blocks run through py-evm.

The contracts are the chain's own (txinfo.json names them; their code, read back from
state, is disassembled in the comments below), and the gas facts are its receipts:

- callenv (block 1) returns 7 words: NUMBER, CHAINID, COINBASE, BASEFEE, PREVRANDAO, ORIGIN, CALLVALUE.
- callme (block 2) returns 0xffee for calldata 0xff01; otherwise it reverts with the raw text
  "wrong-calldatasize" (calldata not 2 bytes) or "wrong-calldata".
- callrevert (block 3) reverts with Panic(1) for a zero first word, else with Error("user error").
- the emit contract (genesis) stores and logs its calldata; block 10's legacy tx called it and
  used 49768 gas.
- block 12 deploys a proxy (with calldata: SSTORE slot 0 = first word; returns ADDRESS and
  slot 0) and EIP-7702-delegates account 0xeda8... to it, then calls it with "invoked".
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")

from chain_support import open_chain
from eth_support import ETHTEST_CHAIN_ID, ethtest_blocks, executed_ethtest_chain
from p2p_support import run_checked
from rpc_support import RPCNode

from ethnode.core.blockchain import BlockChain
from ethnode.core.execution import CallMessage, CallPreconditionError, CallTimeoutError, VMErrorKind
from ethnode.ethapi.call import TransactionArgs, estimate_gas, go_duration, unpack_revert
from ethnode.ethapi.eth import EthAPI
from ethnode.rpc.jsonrpc import RPCError

HEAD = 20
CALLENV = bytes.fromhex("9344b07175800259691961298ca11c824e65032d")  # txinfo.json deploy-callenv, block 1
CALLME = bytes.fromhex("17e7eedce4ac02ef114a7ed9fe6e2f33feba1667")  # deploy-callme, block 2
CALLREVERT = bytes.fromhex("0ee3ab1371c93e7c0c281cc0c2107cdebc8b1930")  # deploy-callrevert, block 3
EMIT = bytes.fromhex("7dcd17433742f4c0ca53122ab541d0ba67fc27df")  # tx-emit-* target
DELEGATED = bytes.fromhex("eda8645ba6948855e3b3cd596bbb07596d59c603")  # tx-eip7702 account
SENDER = bytes.fromhex("7435ed30a8b4aeb0877cef0c6e8cffe834eb865f")  # funded: sent every tx of the chain
NOBODY = bytes.fromhex("00000000000000000000000000000000000000ee")  # no account at all
EMIT_TX_BLOCK = 10  # its legacy emit tx (no access list) used exactly this much gas:
EMIT_TX_GAS_USED = 49_768
PANIC_1 = bytes.fromhex("4e487b71") + (1).to_bytes(32, "big")
USER_ERROR = bytes.fromhex("08c379a0") + (32).to_bytes(32, "big") + (10).to_bytes(32, "big") + b"user error"  # 78 bytes
INVOKED = b"invoked".ljust(32, b"\0")  # what block 12's call stored in the delegated account's slot 0
INFINITE_LOOP = bytes.fromhex("5b600056")  # JUMPDEST PUSH1 0 JUMP


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def word(value: bytes | int) -> bytes:
    return value.to_bytes(32, "big") if isinstance(value, int) else value.rjust(32, b"\0")


def server_error(message: str) -> dict[str, Any]:
    return {"code": -32000, "message": message}


@pytest.fixture(scope="module")
def chain() -> BlockChain:
    return executed_ethtest_chain(HEAD)


def serve(chain: BlockChain, scenario: Callable[[Callable[..., Awaitable[Any]]], Awaitable[None]]) -> None:
    async def main() -> None:
        node = await RPCNode(chain).start()
        try:
            await scenario(node.call)
        finally:
            await node.stop()

    run_checked(main)


def _emit_tx() -> Any:
    tx = ethtest_blocks()[EMIT_TX_BLOCK - 1].transactions[0]
    assert tx.type == 0 and tx.to == EMIT and tx.sender == SENDER
    return tx


# --- eth_call -----------------------------------------------------------------------------------


def test_call_returns_contract_output_in_the_blocks_context(chain: BlockChain) -> None:
    head = chain.current_block
    block5 = chain.get_header_by_number(5)

    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        assert await call("eth_call", {"to": hx(CALLME), "input": "0xff01"}) == "0xffee"
        assert await call("eth_call", {"to": hx(CALLME), "data": "0xff01"}, "latest") == "0xffee"
        # geth's eth_call prefers "input" and does not compare it with "data" (only sendTransaction does)
        assert await call("eth_call", {"to": hx(CALLME), "data": "0x00", "input": "0xff01"}) == "0xffee"

        # A free call (no fee fields) reads BASEFEE as 0, as geth lowers it; the rest is the head's context.
        out = await call("eth_call", {"from": hx(SENDER), "to": hx(CALLENV), "value": "0x7"})
        assert out == hx(b"".join([word(HEAD), word(ETHTEST_CHAIN_ID), word(head.coinbase), word(0),
                                   word(head.mix_digest), word(SENDER), word(7)]))
        # With a fee the block's base fee is visible; an older block gives its own number and base fee.
        priced = {"from": hx(SENDER), "to": hx(CALLENV), "gasPrice": hex(head.base_fee)}
        out = bytes.fromhex((await call("eth_call", priced))[2:])
        assert out[96:128] == word(head.base_fee) and out[:32] == word(HEAD)
        priced["gasPrice"] = hex(block5.base_fee)
        out = bytes.fromhex((await call("eth_call", priced, "0x5"))[2:])
        assert out[:32] == word(5) and out[96:128] == word(block5.base_fee)
        out = bytes.fromhex((await call("eth_call", {"to": hx(CALLENV)}, {"blockHash": hx(block5.hash)}))[2:])
        assert out[:32] == word(5) and out[160:192] == word(0)  # ORIGIN defaults to the zero address

        # A contract creation returns the deployed code: block 2's deployment of callme.
        deploy = ethtest_blocks()[1].transactions[0]
        code = chain.state().code(CALLME)
        assert await call("eth_call", {"from": hx(SENDER), "input": hx(deploy.data)}) == hx(code)

    serve(chain, scenario)


def test_call_reverts_with_code_3_reason_and_data(chain: BlockChain) -> None:
    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        assert await call("eth_call", {"to": hx(CALLME), "input": "0xff"}) == {
            "code": 3, "message": "execution reverted", "data": hx(b"wrong-calldatasize")}
        assert await call("eth_call", {"to": hx(CALLME), "input": "0xff02"}) == {
            "code": 3, "message": "execution reverted", "data": hx(b"wrong-calldata")}
        assert await call("eth_call", {"to": hx(CALLREVERT), "input": hx(word(0))}) == {
            "code": 3, "message": "execution reverted: assert(false)", "data": hx(PANIC_1)}
        assert await call("eth_call", {"to": hx(CALLREVERT), "input": hx(word(1))}) == {
            "code": 3, "message": "execution reverted: user error", "data": hx(USER_ERROR)}
        # eth_estimateGas reports the same revert, found by its first run at the cap.
        assert await call("eth_estimateGas", {"to": hx(CALLREVERT), "input": hx(word(1))}) == {
            "code": 3, "message": "execution reverted: user error", "data": hx(USER_ERROR)}
        assert await call("eth_estimateGas", {"to": hx(CALLME)}) == {
            "code": 3, "message": "execution reverted", "data": hx(b"wrong-calldatasize")}

    serve(chain, scenario)


def test_call_failures_carry_geths_messages(chain: BlockChain) -> None:
    head = chain.current_block
    emit = _emit_tx()

    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        assert await call("eth_call", {"input": "0xfe"}) == server_error("invalid opcode: INVALID")
        assert await call("eth_call", {"input": "0xef"}) == server_error("invalid opcode: opcode 0xef not defined")
        assert await call("eth_call", {"input": "0x01"}) == server_error("stack underflow (0 <=> 2)")
        assert await call("eth_call", {"input": "0x600056"}) == server_error("invalid jump destination")
        assert await call("eth_call", {"from": hx(SENDER), "to": hx(EMIT), "input": hx(emit.data),
                                       "gas": hex(30_000)}) == server_error("out of gas")
        # Checks made before execution: geth's "err: ... (supplied gas N)".
        assert await call("eth_call", {"to": hx(CALLME), "input": "0xff01", "gas": hex(21_000)}) == server_error(
            "err: intrinsic gas too low: have 21000, want 21032 (supplied gas 21000)")
        assert await call("eth_call", {"to": hx(CALLME), "gasPrice": "0x1"}) == server_error(
            "err: max fee per gas less than block base fee: address 0x0000000000000000000000000000000000000000, "
            f"maxFeePerGas: 1, baseFee: {head.base_fee} (supplied gas 50000000)")
        # Gas above the RPC gas cap (50M) is bounded by it; an empty account cannot pay for it.
        assert await call("eth_call", {"from": hx(NOBODY), "to": hx(CALLME), "gas": hex(10**12),
                                       "gasPrice": hex(head.base_fee)}) == server_error(
            "err: insufficient funds for gas * price + value: address 0x00000000000000000000000000000000000000eE "
            f"have 0 want {50_000_000 * head.base_fee} (supplied gas 50000000)")
        # ...but a free call needs no balance, and skips the nonce check entirely.
        assert await call("eth_call", {"from": hx(NOBODY), "to": hx(CALLME), "input": "0xff01", "nonce": "0x63"}) \
            == "0xffee"
        assert await call("eth_call", {"to": hx(CALLME), "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x2"}) \
            == server_error("err: max priority fee per gas higher than max fee per gas: address "
                            "0x0000000000000000000000000000000000000000, maxPriorityFeePerGas: 2, maxFeePerGas: 1 "
                            "(supplied gas 50000000)")

    serve(chain, scenario)


def test_calls_at_older_blocks_see_older_state(chain: BlockChain) -> None:
    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        assert await call("eth_call", {"to": hx(CALLME), "input": "0xff01"}, "0x1") == "0x"  # not deployed yet
        assert await call("eth_call", {"to": hx(CALLME), "input": "0xff01"}, "0x2") == "0xffee"
        assert await call("eth_call", {"to": hx(CALLREVERT), "input": hx(word(1))}, "0x2") == "0x"
        # EIP-7702: from block 12 the account runs the proxy's code in its own context.
        assert await call("eth_call", {"to": hx(DELEGATED)}, "0xb") == "0x"
        assert await call("eth_call", {"to": hx(DELEGATED)}, "0xc") == hx(word(DELEGATED) + INVOKED)

    serve(chain, scenario)


def test_calls_write_nothing(chain: BlockChain) -> None:
    head = chain.current_block
    stored = dict(chain.db.iterate())

    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        # The proxy stores its calldata, and the call sees its own write...
        assert await call("eth_call", {"to": hx(DELEGATED), "input": hx(word(5))}) == hx(word(DELEGATED) + word(5))
        assert int(await call("eth_estimateGas", {"from": hx(SENDER), "to": hx(DELEGATED), "input": hx(word(5))}),
                   16) > 21_000
        assert await call("eth_call", {"from": hx(SENDER), "input": hx(ethtest_blocks()[1].transactions[0].data)}) \
            != "0x"
        # ...but it is gone for the next call and for the state readers.
        assert await call("eth_call", {"to": hx(DELEGATED)}) == hx(word(DELEGATED) + INVOKED)
        assert await call("eth_getStorageAt", hx(DELEGATED), "0x0") == hx(INVOKED)

    serve(chain, scenario)
    assert chain.current_block.hash == head.hash and chain.state().root == head.state_root
    assert dict(chain.db.iterate()) == stored  # not one key added, changed or removed


# --- eth_estimateGas ----------------------------------------------------------------------------


def test_estimate_gas_of_a_plain_transfer_is_21000(chain: BlockChain) -> None:
    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        assert await call("eth_estimateGas", {"from": hx(SENDER), "to": hx(NOBODY), "value": "0x1"}) == "0x5208"
        assert await call("eth_estimateGas", {"to": hx(NOBODY)}, "pending") == "0x5208"
        assert await call("eth_estimateGas", {"from": hx(SENDER), "to": hx(NOBODY), "value": "0x1",
                                               "maxFeePerGas": hex(10**10)}, "0x3") == "0x5208"

    serve(chain, scenario)


def test_estimate_gas_is_the_least_gas_that_succeeds(chain: BlockChain) -> None:
    emit = _emit_tx()
    at = hex(EMIT_TX_BLOCK - 1)  # the state block 10's tx ran on (the call runs in block 9's context)
    base_fee = chain.get_header_by_number(EMIT_TX_BLOCK - 1).base_fee
    args = {"from": hx(SENDER), "to": hx(EMIT), "value": hex(emit.value), "input": hx(emit.data)}
    proxy = {"from": hx(SENDER), "to": hx(DELEGATED), "input": hx(word(5))}

    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        async def succeeds(call_args: dict[str, Any], gas: int, block: str = "latest") -> bool:
            out = await call("eth_call", {**call_args, "gas": hex(gas)}, block)
            if isinstance(out, dict):
                assert out == server_error("out of gas"), out
                return False
            return True

        # The receipt's gas is exactly the least that succeeds for this tx...
        assert await succeeds(args, EMIT_TX_GAS_USED, at) and not await succeeds(args, EMIT_TX_GAS_USED - 1, at)
        # ...and geth's estimator lands on it or above it by less than its 1.5% error ratio.
        for call_args in (args, {**args, "gasPrice": hex(base_fee)}, {**args, "maxFeePerGas": hex(base_fee * 2)}):
            estimate = int(await call("eth_estimateGas", call_args, at), 16)
            assert EMIT_TX_GAS_USED <= estimate and (estimate - EMIT_TX_GAS_USED) / estimate < 0.015
        # A storage write through a 7702 delegation: the estimate works, 1.5% less does not.
        estimate = int(await call("eth_estimateGas", proxy), 16)
        assert await succeeds(proxy, estimate) and not await succeeds(proxy, int(estimate * 0.985))

    serve(chain, scenario)


def test_estimate_gas_errors(chain: BlockChain) -> None:
    emit = _emit_tx()
    head = chain.current_block

    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        too_little = {"from": hx(SENDER), "to": hx(EMIT), "input": hx(emit.data), "gas": hex(30_000)}
        assert await call("eth_estimateGas", too_little) == server_error("gas required exceeds allowance (30000)")
        # With a fee, the sender's balance bounds the gas; geth refuses even a zero value from an empty account.
        assert await call("eth_estimateGas", {"from": hx(NOBODY), "to": hx(CALLME), "gasPrice": "0x3b9aca00"}) \
            == server_error("insufficient funds for transfer")
        assert await call("eth_estimateGas", {"to": hx(CALLME), "input": "0xfe01"}) == {
            "code": 3, "message": "execution reverted", "data": hx(b"wrong-calldata")}
        assert await call("eth_estimateGas", {"input": "0xfe"}) == server_error("invalid opcode: INVALID")
        # A check that more gas cannot fix fails the first run, in geth's "failed with N gas" form.
        assert await call("eth_estimateGas", {"from": hx(SENDER), "to": hx(CALLME), "gasPrice": "0x1"}) == \
            server_error("failed with 50000000 gas: max fee per gas less than block base fee: address "
                         f"0x7435ed30A8b4AEb0877CEf0c6E8cFFe834eb865f, maxFeePerGas: 1, baseFee: {head.base_fee}")

    serve(chain, scenario)


# --- arguments ----------------------------------------------------------------------------------


def test_bad_arguments_get_geths_errors(chain: BlockChain) -> None:
    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        invalid = -32602
        for method in ("eth_call", "eth_estimateGas"):
            assert await call(method, {"to": hx(CALLME), "gasPrice": "0x1", "maxFeePerGas": "0x1"}) == server_error(
                "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
            assert await call(method, {"to": hx(CALLME)}, "0x999") == server_error("header not found")
            assert await call(method, {"to": hx(CALLME), "chainId": "0x1"}) == server_error(
                f"chainId does not match node's (have=1, want={ETHTEST_CHAIN_ID})")
        assert await call("eth_call", {"from": "7435ed30a8b4aeb0877cef0c6e8cffe834eb865f"}) == {
            "code": invalid, "message": "invalid argument 0: json: cannot unmarshal hex string without 0x prefix "
                                        "into Go struct field TransactionArgs.from of type common.Address"}
        assert await call("eth_call", {"to": "0x17e7eedce4ac02ef114a7ed9fe6e2f33feba16"}) == {
            "code": invalid, "message": "invalid argument 0: hex string has length 38, want 40 for common.Address"}
        assert await call("eth_call", {"to": hx(CALLME), "gas": 21000}) == {
            "code": invalid, "message": "invalid argument 0: json: cannot unmarshal non-string into Go struct field "
                                        "TransactionArgs.gas of type hexutil.Uint64"}
        assert await call("eth_call", {"to": hx(CALLME), "value": "0x01"}) == {
            "code": invalid, "message": "invalid argument 0: json: cannot unmarshal hex number with leading zero "
                                        "digits into Go struct field TransactionArgs.value of type *hexutil.Big"}
        assert await call("eth_call", "0x00") == {
            "code": invalid, "message": "invalid argument 0: json: cannot unmarshal string into Go value of type "
                                        "ethapi.TransactionArgs"}
        assert await call("eth_call") == {"code": invalid, "message": "missing value for required argument 0"}
        assert await call("eth_call", {"to": hx(CALLME)}, "latest", {hx(CALLME): {"code": 0}}) == {
            "code": invalid, "message": "invalid argument 2: json: cannot unmarshal non-string into Go struct field "
                                        "OverrideAccount.code of type hexutil.Bytes"}

    serve(chain, scenario)


def test_state_not_stored_is_not_available() -> None:
    chain = open_chain(executed_ethtest_chain().db)  # same genesis, no execution
    chain._state_root_warned = True
    chain.insert_chain(ethtest_blocks()[:3])
    root = chain.current_block.state_root

    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        for method in ("eth_call", "eth_estimateGas"):
            assert await call(method, {"to": hx(CALLME)}) == server_error(f"state 0x{root.hex()} is not available")

    serve(chain, scenario)


def test_a_call_past_its_deadline_is_aborted(chain: BlockChain) -> None:
    """geth --rpc.evmtimeout: an endless loop ends at the deadline, not at the gas.

    The gas cap is lifted (geth --rpc.gascap 0): revm runs 50M gas of this loop in well under
    the deadline, so the default cap would end it at the gas."""
    api = EthAPI(SimpleNamespace(chain=chain, txpool=None), evm_timeout=0.2, gas_cap=0)
    started = time.monotonic()
    with pytest.raises(RPCError) as err:
        api.call({"input": hx(INFINITE_LOOP), "gas": hex(10**15)})
    assert time.monotonic() - started < 2
    assert (err.value.code, err.value.message) == (-32000, "execution aborted (timeout = 200ms)")
    with pytest.raises(CallTimeoutError):
        chain.executor.call(chain.current_block, CallMessage(gas=10**15, data=INFINITE_LOOP),
                            deadline=time.monotonic() + 0.1)


# --- executor and helpers -------------------------------------------------------------------------


def test_executor_call_reports_gas_and_kinds(chain: BlockChain) -> None:
    """The engine-level operation: gas as a receipt would count it, the failure kind, precondition errors."""
    executor = chain.executor
    emit = _emit_tx()
    before = chain.get_header_by_number(EMIT_TX_BLOCK - 1)
    message = CallMessage(gas=emit.gas, sender=SENDER, to=EMIT, value=emit.value, data=emit.data)
    result = executor.call(before, message)
    assert not result.failed and result.gas_used == EMIT_TX_GAS_USED == result.max_used_gas
    reverted = executor.call(chain.current_block, CallMessage(gas=100_000, to=CALLREVERT, data=word(0)))
    assert (reverted.error, reverted.output, reverted.message) == (VMErrorKind.REVERT, PANIC_1, "execution reverted")
    oog = executor.call(before, CallMessage(gas=30_000, sender=SENDER, to=EMIT, data=emit.data))
    assert oog.error is VMErrorKind.OUT_OF_GAS and oog.gas_used == 30_000
    with pytest.raises(CallPreconditionError) as err:  # a free call still needs the value (geth buyGas)
        executor.call(before, CallMessage(gas=100_000, sender=NOBODY, to=EMIT, value=1))
    assert str(err.value) == ("insufficient funds for gas * price + value: address "
                              "0x00000000000000000000000000000000000000eE have 0 want 1")


def test_unpack_revert_follows_geth() -> None:
    assert unpack_revert(USER_ERROR) == "user error"
    assert unpack_revert(PANIC_1) == "assert(false)"
    assert unpack_revert(bytes.fromhex("4e487b71") + word(0x99)) == "unknown panic code: 0x99"
    assert unpack_revert(b"wrong-calldata") is None
    assert unpack_revert(USER_ERROR[:40]) is None  # truncated: not a valid Error(string)
    assert go_duration(5) == "5s" and go_duration(0.2) == "200ms" and go_duration(1.5) == "1.5s"


def test_transaction_args_defaults_and_fee_normalization() -> None:
    base_fee = 7
    args = TransactionArgs.from_json(0, {"to": hx(CALLME)})
    args.call_defaults(50_000_000, base_fee, 1)
    free = args.to_message(base_fee)
    assert (free.gas, free.gas_price, free.gas_fee_cap, free.gas_tip_cap, free.sender) == (50_000_000, 0, 0, 0,
                                                                                          bytes(20))
    args = TransactionArgs.from_json(0, {"maxFeePerGas": "0x64", "maxPriorityFeePerGas": "0x2", "gas": "0x5208"})
    args.call_defaults(50_000_000, base_fee, 1)
    msg = args.to_message(base_fee)
    assert (msg.gas, msg.gas_price, msg.gas_fee_cap, msg.gas_tip_cap, msg.to) == (21000, 9, 100, 2, None)
    args = TransactionArgs.from_json(0, {"gasPrice": "0x5", "gas": "0xffffffff"})
    args.call_defaults(1_000_000, None, 1)  # pre-London: one price for all three
    msg = args.to_message(None)
    assert (msg.gas, msg.gas_price, msg.gas_fee_cap, msg.gas_tip_cap) == (1_000_000, 5, 5, 5)


def test_estimator_search_on_a_model() -> None:
    """geth's search against a message that needs exactly ``need`` gas: within 1.5% above it, 21000 shortcut."""
    from ethnode.core.execution import CallResult

    need, used = 123_457, 100_000
    runs: list[int] = []

    def run(gas: int) -> CallResult:
        runs.append(gas)
        ok = gas >= need
        return CallResult(b"", used if ok else gas, used if ok else gas, None if ok else VMErrorKind.OUT_OF_GAS)

    message = CallMessage(gas=0, to=CALLME, data=b"\1")
    estimate = estimate_gas(run, message, block_gas_limit=30_000_000, gas_cap=50_000_000, balance=0,
                            recipient_has_code=True, cancun=True)
    assert need <= estimate and (estimate - need) / estimate < 0.015
    assert runs[0] == 30_000_000 and len(runs) < 20
    exact = estimate_gas(run, message, block_gas_limit=30_000_000, gas_cap=50_000_000, balance=0,
                         recipient_has_code=True, cancun=True, error_ratio=0)
    assert exact == need
