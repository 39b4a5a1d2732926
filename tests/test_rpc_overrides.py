"""eth_call / eth_estimateGas / eth_createAccessList with geth's state and block overrides, on the
executed ethtest chain (contracts as described in test_rpc_call), and the two engines agreeing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")

from test_rpc_call import (  # noqa: E402  (after the importorskip)
    CALLENV,
    DELEGATED,
    ETHTEST_CHAIN_ID,
    HEAD,
    INVOKED,
    NOBODY,
    SENDER,
    hx,
    serve,
    server_error,
    word,
)

from ethnode.core.blockchain import BlockChain
from ethnode.core.execution import PYEVM, REVM, CallMessage, compiled_engine_error, create_executor
from ethnode.core.execution.overrides import AccountOverride, BlockOverrides
from ethnode.core.execution.precheck import checksum
from ethnode.ethapi.marshal import contract_address

SELFBALANCE = bytes.fromhex("4760005260206000f3")  # SELFBALANCE, return it
SLOAD_0 = bytes.fromhex("60005460005260206000f3")  # return slot 0
SLOAD_0_BUMP = bytes.fromhex("6000546001016000556000545f5260205ff3")  # slot0 += 1; return slot 0
CREATE_EMPTY = bytes.fromhex("600060006000f060005260206000f3")  # CREATE(0,0,0), return the address
ONE_ETHER = 10**18
IDENTITY = (4).to_bytes(20, "big")  # the identity precompile


@pytest.fixture(scope="module")
def chain() -> BlockChain:
    from eth_support import executed_ethtest_chain

    return executed_ethtest_chain(HEAD)


def test_state_overrides_in_eth_call(chain: BlockChain) -> None:
    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        # code and balance on an account that does not exist
        ov = {hx(NOBODY): {"code": hx(SELFBALANCE), "balance": "0x1234"}}
        assert await call("eth_call", {"to": hx(NOBODY)}, "latest", ov) == hx(word(0x1234))
        assert await call("eth_call", {"to": hx(NOBODY)}, "latest") == "0x"  # nothing kept
        # stateDiff sets the slots listed; state replaces the whole storage
        slot0, slot1 = hx(word(0)), hx(word(1))
        diff = {hx(DELEGATED): {"code": hx(SLOAD_0), "stateDiff": {slot1: hx(word(5))}}}
        assert await call("eth_call", {"to": hx(DELEGATED)}, "latest", diff) == hx(INVOKED)
        whole = {hx(DELEGATED): {"code": hx(SLOAD_0), "state": {slot1: hx(word(5))}}}
        assert await call("eth_call", {"to": hx(DELEGATED)}, "latest", whole) == hx(word(0))
        diff0 = {hx(DELEGATED): {"code": hx(SLOAD_0_BUMP), "stateDiff": {slot0: hx(word(41))}}}
        assert await call("eth_call", {"to": hx(DELEGATED)}, "latest", diff0) == hx(word(42))
        # the nonce: CREATE's address follows it
        for nonce in (0, 5):
            ov = {hx(NOBODY): {"code": hx(CREATE_EMPTY), "nonce": hex(nonce)}}
            created = contract_address(NOBODY, nonce)
            assert await call("eth_call", {"to": hx(NOBODY)}, "latest", ov) == hx(word(created))
        # a balance lets a sender without funds pay
        transfer = {"from": hx(NOBODY), "to": hx(SENDER), "value": hex(ONE_ETHER)}
        refused = await call("eth_call", transfer)
        assert refused["message"].startswith("err: insufficient funds for gas * price + value")
        assert await call("eth_call", transfer, "latest", {hx(NOBODY): {"balance": hex(2 * ONE_ETHER)}}) == "0x"
        # an overridden precompile address runs its code; a moved precompile answers at its new address
        ov = {hx(IDENTITY): {"code": hx(SELFBALANCE), "balance": "0x5"}}
        assert await call("eth_call", {"to": hx(IDENTITY), "input": "0xabcd"}, "latest", ov) == hx(word(5))
        moved = {hx(IDENTITY): {"movePrecompileToAddress": hx(NOBODY)}}
        assert await call("eth_call", {"to": hx(NOBODY), "input": "0xabcd"}, "latest", moved) == "0xabcd"
        assert await call("eth_call", {"to": hx(IDENTITY), "input": "0xabcd"}, "latest", moved) == "0x"
        assert await call("eth_call", {"to": hx(IDENTITY), "input": "0xabcd"}) == "0xabcd"  # nothing kept
        # null overrides are none
        assert await call("eth_call", {"to": hx(NOBODY)}, "latest", None, None) == "0x"

    serve(chain, scenario)


def test_block_overrides_in_eth_call(chain: BlockChain) -> None:
    head = chain.current_block
    coinbase, randao = b"\x11" * 20, b"\x22" * 32

    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        block = {"number": "0x3039", "feeRecipient": hx(coinbase), "prevRandao": hx(randao),
                 "baseFeePerGas": "0x7", "time": hex(head.time + 12)}
        priced = {"from": hx(SENDER), "to": hx(CALLENV), "maxFeePerGas": "0x10", "maxPriorityFeePerGas": "0x0"}
        out = await call("eth_call", priced, "latest", None, block)
        assert out == hx(b"".join([word(0x3039), word(ETHTEST_CHAIN_ID), word(coinbase), word(7), word(randao),
                                   word(SENDER), word(0)]))
        # a free call still reads BASEFEE as 0 (geth NoBaseFee), the override notwithstanding
        out = await call("eth_call", {"to": hx(CALLENV)}, "latest", {}, block)
        assert bytes.fromhex(out[2:])[96:128] == word(0)
        # a fee cap under the overridden base fee is refused as geth refuses it
        low = {"from": hx(SENDER), "to": hx(CALLENV), "maxFeePerGas": "0x6"}
        reply = await call("eth_call", low, "latest", None, {"baseFeePerGas": "0x7"})
        assert reply == server_error(f"err: max fee per gas less than block base fee: address {checksum(SENDER)}, "
                                     "maxFeePerGas: 6, baseFee: 7 (supplied gas 50000000)")
        assert await call("eth_call", {"to": hx(CALLENV)}, "latest", None, {"beaconRoot": hx(randao)}) == \
            server_error('block override "beaconRoot" is not supported for this RPC method')

    serve(chain, scenario)


def test_overrides_in_estimate_gas_and_access_list(chain: BlockChain) -> None:
    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        transfer = {"from": hx(NOBODY), "to": hx(SENDER), "value": hex(ONE_ETHER)}
        funded = {hx(NOBODY): {"balance": hex(2 * ONE_ETHER)}}
        assert await call("eth_estimateGas", transfer) == server_error(
            f"failed with 50000000 gas: insufficient funds for gas * price + value: address {checksum(NOBODY)} "
            f"have 0 want {ONE_ETHER}")
        assert await call("eth_estimateGas", transfer, "latest", funded) == "0x5208"
        # code put on the recipient makes it a call that runs it
        estimate = await call("eth_estimateGas", {"to": hx(NOBODY)}, "latest", {hx(NOBODY): {"code": hx(SLOAD_0)}})
        assert int(estimate, 16) > 21_000 + 2_100
        # geth's estimator and eth_createAccessList run the fork's precompiles, overrides or not
        plain = await call("eth_estimateGas", {"to": hx(IDENTITY), "input": "0xabcd"})
        coded = {hx(IDENTITY): {"code": hx(SLOAD_0)}}
        assert await call("eth_estimateGas", {"to": hx(IDENTITY), "input": "0xabcd"}, "latest", coded) == plain
        moved = {hx(IDENTITY): {"movePrecompileToAddress": hx(NOBODY)}}
        assert await call("eth_createAccessList", {"to": hx(NOBODY)}, "latest", moved) == server_error(
            f"account {checksum(IDENTITY)} is not a precompile")
        listed = await call("eth_createAccessList", {"from": hx(SENDER), "to": hx(NOBODY)}, "latest",
                            {hx(NOBODY): {"code": hx(SLOAD_0)}})
        assert listed["accessList"] == [{"address": hx(NOBODY), "storageKeys": [hx(word(0))]}]

    serve(chain, scenario)


def test_override_refusals_are_geths(chain: BlockChain) -> None:
    async def scenario(call: Callable[..., Awaitable[Any]]) -> None:
        both = {hx(NOBODY): {"state": {}, "stateDiff": {}}}
        assert await call("eth_call", {"to": hx(NOBODY)}, "latest", both) == server_error(
            "account 0x00000000000000000000000000000000000000eE has both 'state' and 'stateDiff'")
        move = {hx(NOBODY): {"movePrecompileToAddress": hx(b"\x12" * 20)}}
        assert await call("eth_call", {"to": hx(NOBODY)}, "latest", move) == server_error(
            "account 0x00000000000000000000000000000000000000eE is not a precompile")
        onto = {hx(IDENTITY): {"movePrecompileToAddress": hx(NOBODY)}, hx(NOBODY): {"balance": "0x1"}}
        assert await call("eth_call", {"to": hx(NOBODY)}, "latest", onto) == server_error(
            "account 0x00000000000000000000000000000000000000eE is already overridden")
        assert await call("eth_call", {"to": hx(NOBODY)}, "latest", {hx(NOBODY): {"balance": 1}}) == {
            "code": -32602, "message": "invalid argument 2: json: cannot unmarshal non-string into Go struct field "
                                       "OverrideAccount.balance of type *hexutil.Big"}
        assert await call("eth_call", {"to": hx(NOBODY)}, "latest", {"0x12": {}}) == {
            "code": -32602, "message": "invalid argument 2: hex string has length 2, want 40 for common.Address"}
        assert await call("eth_estimateGas", {"to": hx(NOBODY)}, "latest", None, {"time": 5}) == {
            "code": -32602, "message": "invalid argument 3: json: cannot unmarshal non-string into Go struct field "
                                       "BlockOverrides.Time of type hexutil.Uint64"}
        assert await call("eth_blockNumber") == hex(HEAD)  # still serving

    serve(chain, scenario)


@pytest.mark.skipif(compiled_engine_error() is not None, reason="the compiled engine is not built")
def test_engines_agree_on_overridden_calls(chain: BlockChain) -> None:
    """revm's OverlayState and py-evm's state writes give the same results (pre-Osaka chain)."""
    engines = [create_executor(chain.config, chain.state_db, chain.get_header, engine=e) for e in (REVM, PYEVM)]
    head = chain.current_block
    cases = [
        (CallMessage(gas=100_000, to=NOBODY), {NOBODY: AccountOverride(code=SELFBALANCE, balance=77)}, None),
        (CallMessage(gas=100_000, to=DELEGATED),
         {DELEGATED: AccountOverride(code=SLOAD_0_BUMP, state_diff={word(0): word(9)})}, None),
        (CallMessage(gas=100_000, to=DELEGATED),
         {DELEGATED: AccountOverride(code=SLOAD_0_BUMP, state={word(1): word(9)})}, None),
        (CallMessage(gas=100_000, to=NOBODY), {NOBODY: AccountOverride(code=CREATE_EMPTY, nonce=9)}, None),
        (CallMessage(gas=100_000, to=NOBODY, data=b"\xab" * 40), {IDENTITY: AccountOverride(move_precompile_to=NOBODY)},
         None),
        (CallMessage(gas=100_000, to=DELEGATED),  # STATICCALLs the moved precompile: its warmth is in the gas
         {IDENTITY: AccountOverride(move_precompile_to=NOBODY),
          DELEGATED: AccountOverride(code=bytes.fromhex("5f5f5f5f73" + NOBODY.hex() + "5afa5a5f5260205ff3"))}, None),
        (CallMessage(gas=100_000, sender=SENDER, to=CALLENV, gas_price=9, gas_fee_cap=9),
         None, BlockOverrides(number=99, fee_recipient=b"\x01" * 20, base_fee=3, gas_limit=1_000_000)),
    ]
    for message, state, block in cases:
        revm, pyevm = (e.call(head, message, state_override=state, block_override=block) for e in engines)
        assert (revm.output, revm.gas_used, revm.error) == (pyevm.output, pyevm.gas_used, pyevm.error)
        assert not revm.failed and revm.output
