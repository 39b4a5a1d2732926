"""The Engine API as a consensus client drives it: build on one node, validate on another.

Node A builds (forkchoiceUpdated with attributes, then getPayload) from its pool; node B
receives each payload (newPayload, then forkchoiceUpdated) and must find it VALID with the
same state root, then both move head, safe and finalized. Both are real chains over real
databases and executors; the "consensus client" is this test, speaking the JSON shapes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from chain_support import open_chain
from txpool_support import ADDRS, GWEI, blob_sidecar, blob_tx, dyn, genesis_json, make_pool

from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.execution import compiled_engine_error
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.systemcontracts import system_contracts_alloc
from ethnode.core.types.block import Block
from ethnode.eth.catalyst.api import EngineAPI
from ethnode.eth.catalyst.payload import ExecutionPayload, block_to_payload, payload_to_block
from ethnode.miner.payload_building import BuildPayloadArgs
from ethnode.rpc.jsonrpc import RPCError

ZERO = "0x" + "00" * 32
RECIPIENT = "0x" + "fe" * 20
PRAGUE = ("shanghaiTime", "cancunTime", "pragueTime")
OSAKA = (*PRAGUE, "osakaTime")
AMSTERDAM = (*OSAKA, "amsterdamTime")
FUNDED = ADDRS[:4]

needs_revm = pytest.mark.skipif(compiled_engine_error() is not None, reason="revm engine unavailable")


def _genesis(time_forks: tuple[str, ...]) -> dict[str, Any]:
    obj = genesis_json(time_forks=time_forks)
    obj["alloc"] = {"0x" + a.hex(): {"balance": hex(10**21)} for a in FUNDED}
    obj["alloc"].update(system_contracts_alloc())
    if "osakaTime" in time_forks:
        obj["config"]["blobSchedule"]["osaka"] = copy.deepcopy(obj["config"]["blobSchedule"]["prague"])
    if "amsterdamTime" in time_forks:
        obj["config"]["blobSchedule"]["amsterdam"] = copy.deepcopy(obj["config"]["blobSchedule"]["prague"])
    return obj


def _node(obj: dict[str, Any], evm: str | None) -> BlockChain:
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    return open_chain(db, execute=True, evm=evm)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


class Versions:
    def __init__(self, fork: str) -> None:
        self.fcu = {"prague": 3, "osaka": 3, "amsterdam": 4}[fork]
        self.get = {"prague": 4, "osaka": 5, "amsterdam": 6}[fork]
        self.new = {"prague": 4, "osaka": 4, "amsterdam": 5}[fork]


def _drive(a: EngineAPI, b: EngineAPI, pool: Any, fork: str, blocks: int) -> list[dict[str, Any]]:
    """Build ``blocks`` blocks on A, each with a few transfers and a withdrawal, validate on B."""
    v = Versions(fork)
    nonce = 0
    payloads = []
    for i in range(blocks):
        head = a.chain.current_block
        txs = [dyn(k, nonce, tip=GWEI, value=10**15 + k) for k in range(3)]
        assert all(err is None for err in pool.add(txs, local=True))
        nonce += 1
        attrs: dict[str, Any] = {
            "timestamp": hex(head.time + 12), "prevRandao": _hex(bytes([i + 1]) * 32),
            "suggestedFeeRecipient": RECIPIENT,
            "withdrawals": [{"index": hex(i), "validatorIndex": hex(7), "address": _hex(ADDRS[9]),
                             "amount": hex(10**9)}],
            "parentBeaconBlockRoot": _hex(bytes([0xB0 + i]) * 32),
        }
        if v.fcu == 4:
            attrs["slotNumber"] = hex(100 + i)
        state = {"headBlockHash": _hex(head.hash), "safeBlockHash": ZERO, "finalizedBlockHash": ZERO}
        started = getattr(a, f"forkchoice_updated_v{v.fcu}")(state, attrs)
        assert started["payloadStatus"]["status"] == "VALID" and started["payloadId"] is not None
        envelope = getattr(a, f"get_payload_v{v.get}")(started["payloadId"])
        payload = envelope["executionPayload"]
        assert len(payload["transactions"]) == 3 and int(envelope["blockValue"], 16) > 0
        assert envelope["shouldOverrideBuilder"] is False and envelope["blobsBundle"]["blobs"] == []
        args: list[Any] = [payload, [], attrs["parentBeaconBlockRoot"], envelope["executionRequests"]]
        for api in (b, a):  # the builder too: a consensus client imports its own block through newPayload
            status = getattr(api, f"new_payload_v{v.new}")(*args)
            assert status == {"status": "VALID", "latestValidHash": payload["blockHash"], "validationError": None}
        # Known already: VALID again without executing.
        assert getattr(b, f"new_payload_v{v.new}")(*args)["status"] == "VALID"
        assert b.chain.current_block.hash == head.hash  # newPayload does not move the head
        safe = _hex(head.hash)
        final = _hex(a.chain.get_canonical_hash(max(0, head.number - 1)) or bytes(32))
        update = {"headBlockHash": payload["blockHash"], "safeBlockHash": safe, "finalizedBlockHash": final}
        for api in (a, b):
            assert getattr(api, f"forkchoice_updated_v{v.fcu}")(update)["payloadStatus"]["status"] == "VALID"
            assert _hex(api.chain.current_block.hash) == payload["blockHash"]
        new_head = a.chain.get_block_by_hash(a.chain.current_block.hash)
        assert new_head is not None
        pool.set_head(new_head)
        payloads.append(payload)
    return payloads


@pytest.mark.parametrize("fork,evm", [
    ("prague", "py-evm"),
    pytest.param("prague", "revm", marks=needs_revm),
    pytest.param("osaka", "revm", marks=needs_revm),
    pytest.param("amsterdam", "revm", marks=needs_revm),
])
def test_payloads_built_on_one_node_are_valid_on_another(fork: str, evm: str) -> None:
    if evm == "py-evm":
        pytest.importorskip("eth", reason="py-evm is not installed")
    obj = _genesis({"prague": PRAGUE, "osaka": OSAKA, "amsterdam": AMSTERDAM}[fork])
    chain_a, chain_b = _node(obj, evm), _node(obj, evm)
    pool = make_pool(chain_a, state=chain_a.head_state_reader())
    a, b = EngineAPI(chain_a, pool), EngineAPI(chain_b)
    payloads = _drive(a, b, pool, fork, 4)
    assert chain_a.current_block.hash == chain_b.current_block.hash
    assert chain_b.current_block.state_root == chain_a.current_block.state_root
    head = chain_b.current_block
    assert head.number == 4 and int(payloads[-1]["blockNumber"], 16) == 4
    # The recipient earned the tips; the withdrawal address got 4 gwei-denominated credits.
    state = chain_b.state_at(head)
    assert state.balance(bytes.fromhex(RECIPIENT[2:])) > 0
    assert state.balance(ADDRS[9]) == 4 * 10**9 * 10**9
    if fork == "amsterdam":
        assert all("blockAccessList" in p and p["slotNumber"] for p in payloads)
    bodies = b.get_payload_bodies_by_range_v2("0x1", "0x4")
    assert [len(x["transactions"]) for x in bodies] == [3, 3, 3, 3]
    assert (bodies[0]["blockAccessList"] is not None) == (fork == "amsterdam")


def _built(fork: str = "prague", evm: str | None = None) -> tuple[EngineAPI, EngineAPI, dict[str, Any], list[Any]]:
    obj = _genesis(PRAGUE if fork == "prague" else OSAKA)
    chain_a, chain_b = _node(obj, evm), _node(obj, evm)
    pool = make_pool(chain_a, state=chain_a.head_state_reader())
    a, b = EngineAPI(chain_a, pool), EngineAPI(chain_b)
    pool.add([dyn(0, 0, value=1)], local=True)
    head = chain_a.current_block
    attrs = {"timestamp": hex(head.time + 12), "prevRandao": ZERO, "suggestedFeeRecipient": RECIPIENT,
             "withdrawals": [], "parentBeaconBlockRoot": ZERO}
    state = {"headBlockHash": _hex(head.hash), "safeBlockHash": ZERO, "finalizedBlockHash": ZERO}
    started = a.forkchoice_updated_v3(state, attrs)
    env = a.get_payload_v4(started["payloadId"])
    return a, b, env, [env["executionPayload"], [], ZERO, env["executionRequests"]]


def test_a_payload_that_is_not_its_block_is_invalid() -> None:
    a, b, env, args = _built()
    payload = dict(args[0], stateRoot="0x" + "11" * 32)
    status = b.new_payload_v4(payload, *args[1:])
    assert status["status"] == "INVALID" and status["validationError"].startswith("blockhash mismatch")
    # A payload whose hash is right but whose execution disagrees: INVALID, latest valid = parent.
    status = b.new_payload_v4(args[0], ["0x01" + "00" * 31], *args[2:])
    assert status["status"] == "INVALID" and "invalid number of versionedHashes" in status["validationError"]


def test_wrong_version_and_missing_fields_are_params_errors() -> None:
    a, b, env, args = _built()
    with pytest.raises(RPCError) as err:
        b.new_payload_v3(*args[:3])  # a Prague payload through the Cancun method
    assert err.value.code == -38005
    assert err.value.data == {"err": "newPayloadV3 must only be called for cancun payloads"}
    # null for a list parameter is refused before the method runs, as geth's RPC layer does
    # (its "nil executionRequests post-prague" is only reachable from Go callers).
    for call, index in ((lambda: b.new_payload_v4(args[0], args[1], args[2], None), 3),
                        (lambda: b.new_payload_v4(args[0], None, *args[2:]), 1),
                        (lambda: b.forkchoice_updated_v3(None), 0), (lambda: b.get_payload_v4(None), 0)):
        with pytest.raises(RPCError) as err:
            call()
        assert (err.value.code, err.value.message, err.value.data) == (
            -32602, f"missing value for required argument {index}", None)
    with pytest.raises(RPCError) as err:
        b.new_payload_v4(dict(args[0], withdrawals=None), *args[1:])
    assert err.value.data == {"err": "nil withdrawals post-shanghai"}
    with pytest.raises(RPCError) as err:
        a.get_payload_v4("0x0300000000000000")
    assert (err.value.code, err.value.message) == (-38001, "Unknown payload")
    payload_id = BuildPayloadArgs(bytes(32), 1, bytes(20), bytes(32), (), None, version=3).id()
    assert payload_id[0] == 3 and len(payload_id) == 8


def test_unknown_parent_is_syncing_and_a_rejected_block_taints_its_children() -> None:
    a, b, env, args = _built()
    orphan = dict(args[0])
    status = b.new_payload_v4(dict(orphan, parentHash="0x" + "22" * 32), *args[1:])
    assert status["status"] == "INVALID"  # the block hash no longer matches: checked first, as geth
    # A block that executes wrong (gas used off) is INVALID with the parent as latest valid hash.
    good = a.chain.get_block_by_hash(bytes.fromhex(args[0]["blockHash"][2:]))
    assert good is None  # built, not inserted on A
    b_head = b.chain.current_block
    assert b.new_payload_v4(*args)["status"] == "VALID"
    assert b.chain.current_block.hash == b_head.hash


def test_forkchoice_to_an_unknown_head_starts_a_sync() -> None:
    a, b, env, args = _built()
    asked: list[bytes] = []
    b.on_unknown_head = asked.append
    state = {"headBlockHash": args[0]["blockHash"], "safeBlockHash": ZERO, "finalizedBlockHash": ZERO}
    assert b.forkchoice_updated_v3(state)["payloadStatus"]["status"] == "SYNCING"
    assert asked == [bytes.fromhex(args[0]["blockHash"][2:])]
    bad_final = dict(state, headBlockHash=_hex(b.chain.current_block.hash), finalizedBlockHash="0x" + "33" * 32)
    with pytest.raises(RPCError) as err:
        b.forkchoice_updated_v3(bad_final)
    assert err.value.code == -38002 and err.value.data == {"err": "final block not available in database"}


def test_attributes_for_the_wrong_fork_are_refused() -> None:
    a, b, env, args = _built()
    head = a.chain.current_block
    state = {"headBlockHash": _hex(head.hash), "safeBlockHash": ZERO, "finalizedBlockHash": ZERO}
    attrs = {"timestamp": hex(head.time + 12), "prevRandao": ZERO, "suggestedFeeRecipient": RECIPIENT,
             "withdrawals": []}
    with pytest.raises(RPCError) as err:
        a.forkchoice_updated_v3(state, attrs)
    assert (err.value.code, err.value.data) == (-38003, {"err": "missing beacon root"})
    with pytest.raises(RPCError) as err:
        a.forkchoice_updated_v2(state, attrs)
    assert err.value.code == -38005


def test_a_blob_tx_is_built_only_with_its_forks_sidecar_form() -> None:
    """Before Osaka a payload's blobs bundle (V1) has one proof per blob: geth's miner takes only
    version 0 sidecars then, though its pool holds version 1 ones; so must ours (ethnode's pool
    takes both before Osaka). Found by the geth interop test: getPayloadV4 returned 128 proofs."""
    obj = _genesis(PRAGUE)
    chain = _node(obj, None)
    pool = make_pool(chain, state=chain.head_state_reader())
    api = EngineAPI(chain, pool)
    early = blob_tx(0, 0, sidecar=blob_sidecar(1, version=1, seed=1))
    legacy_form = blob_tx(1, 0, sidecar=blob_sidecar(2, version=0, seed=2))
    assert pool.add([early, legacy_form], local=True) == [None, None]
    head = chain.current_block
    attrs = {"timestamp": hex(head.time + 12), "prevRandao": ZERO, "suggestedFeeRecipient": RECIPIENT,
             "withdrawals": [], "parentBeaconBlockRoot": ZERO}
    state = {"headBlockHash": _hex(head.hash), "safeBlockHash": ZERO, "finalizedBlockHash": ZERO}
    env = api.get_payload_v4(api.forkchoice_updated_v3(state, attrs)["payloadId"])
    assert env["executionPayload"]["transactions"] == [_hex(legacy_form.tx.canonical)]
    bundle = env["blobsBundle"]
    assert len(bundle["blobs"]) == len(bundle["commitments"]) == len(bundle["proofs"]) == 2


def test_a_payload_with_a_wrong_number_on_a_known_parent_is_invalid() -> None:
    """geth finds a recent parent by hash whatever number the payload claims, then rejects the
    number; SYNCING would tell the consensus client we lack a parent we hold."""
    a, b, env, args = _built()
    good = payload_to_block(ExecutionPayload.from_json(args[0]), [], bytes(32), [])
    header = good.header.replace(number=good.number + 1)
    bad = block_to_payload(Block.new(header, list(good.transactions), (), good.withdrawals))
    status = b.new_payload_v4(bad, *args[1:])
    assert status == {"status": "INVALID", "latestValidHash": _hex(b.chain.current_block.hash),
                      "validationError": "invalid block number"}
