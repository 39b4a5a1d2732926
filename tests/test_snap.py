"""snap serving from the stored tries: range walks, edge proofs, geth's limits, and the wire.

The state is real: a genesis allocation of a few hundred accounts (some with code and
storage, one with many slots) written by ``setup_genesis``, and for the served-state
window the ethtest chain executed. Replies are checked against an independent model
(every account read back through ``StateView``, the point-lookup path) and their edge
proofs with py-trie's proof reader; geth's own ``VerifyRangeProof`` judges them in
``test_interop_geth_snaptest``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from chain_support import open_chain
from eth_support import STEP, ScriptedEth, ethtest_chain, local_server, start_node
from hypothesis import given, settings
from hypothesis import strategies as st
from p2p_support import run_checked
from trie import HexaryTrie

import ethnode.eth.protocols.snap.serve as serve_module
from ethnode import rlp
from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.genesis import EMPTY_CODE_HASH, Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.state.ranges import compact_to_nibbles, iter_leaves, node_at_path, prove
from ethnode.core.state.trie import MissingNodeError
from ethnode.crypto.keccak import keccak256
from ethnode.eth.protocols.eth.handshake import make_status
from ethnode.eth.protocols.eth.protocol import ETH69, PROTOCOL_LENGTHS, STATUS
from ethnode.eth.protocols.snap import protocol as snap
from ethnode.eth.protocols.snap import walk
from ethnode.eth.protocols.snap.protocol import SnapViolation
from ethnode.eth.protocols.snap.serve import (
    MAX_ACCESS_LIST_LOOKUPS,
    MAX_CODE_LOOKUPS,
    STATE_HISTORY,
    SnapServer,
    drive,
    run,
    slim_account,
)
from ethnode.p2p.disconnect import DiscReason
from ethnode.p2p.protocol import Protocol
from ethnode.trie import EMPTY_ROOT, trie_root

N_ACCOUNTS = 300
BIG = bytes.fromhex("bb" * 20)  # a contract with many slots, for storage replies cut by bytes
BIG_SLOTS = 400
ZERO = bytes(32)
MAX = b"\xff" * 32
MiB2 = 2 * 1024 * 1024


def _word(n: int) -> str:
    return "0x" + n.to_bytes(32, "big").hex()


def _address(i: int) -> bytes:
    return keccak256(i.to_bytes(4, "big"))[:20]


def _genesis_json() -> dict[str, Any]:
    alloc: dict[str, Any] = {}
    for i in range(N_ACCOUNTS):
        entry: dict[str, Any] = {"balance": hex(i + 1), "nonce": hex(i % 5)}
        if i % 25 == 0:
            entry["code"] = "0x60" + f"{i % 256:02x}" + "00" * (i % 7) + "f3"
            entry["storage"] = {_word(s + 1): _word(s * 7 + 1) for s in range(30)}
        alloc["0x" + _address(i).hex()] = entry
    alloc["0x" + BIG.hex()] = {"balance": "0x1", "code": "0x6001600055",
                               "storage": {_word(s + 1): _word(2**200 + s) for s in range(BIG_SLOTS)}}
    return {
        "config": {"chainId": 1337, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0,
                   "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0, "istanbulBlock": 0,
                   "berlinBlock": 0, "londonBlock": 0, "terminalTotalDifficulty": 0, "shanghaiTime": 0},
        "gasLimit": "0x1c9c380", "difficulty": "0x0", "alloc": alloc,
    }


def _chain() -> BlockChain:
    obj = _genesis_json()
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    return open_chain(db, execute=True)


@pytest.fixture(scope="module")
def chain() -> BlockChain:
    return _chain()


@pytest.fixture(scope="module")
def server(chain: BlockChain) -> SnapServer:
    return SnapServer(chain, chain.state_db)


@pytest.fixture(scope="module")
def model(chain: BlockChain) -> dict[bytes, bytes]:
    """keccak(address) -> full account RLP, read by point lookups (not by the range walk)."""
    view = chain.state()
    out = {}
    for address in [_address(i) for i in range(N_ACCOUNTS)] + [BIG]:
        account = view.account(address)
        assert account is not None
        out[keccak256(address)] = account.encode()
    return dict(sorted(out.items()))


def _decode_accounts(items: list[bytes]) -> list[tuple[bytes, bytes]]:
    return [(key, rlp.encode(body)) for key, body in map(rlp.decode, items)]


def _proven(root: bytes, key: bytes, proof: list[bytes]) -> bytes:
    """The value ``proof`` proves for ``key`` under ``root`` (b"" for absent), by py-trie."""
    return HexaryTrie.get_from_proof(root, key, [rlp.decode(node) for node in proof])  # type: ignore[no-any-return]


def _plus(key: bytes, n: int) -> bytes:
    return (int.from_bytes(key, "big") + n).to_bytes(32, "big")


# --- the range walk ------------------------------------------------------------------------


def test_walk_from_any_start_yields_every_later_key_in_order(chain: BlockChain, model: dict[bytes, bytes]) -> None:
    root = chain.current_block.state_root
    keys = list(model)
    starts = [ZERO, MAX, keys[0], keys[-1], _plus(keys[0], 1), _plus(keys[-1], 1), _plus(keys[150], -1)]
    starts += [keys[i] for i in range(0, len(keys), 37)] + [bytes([b]) + bytes(31) for b in (0x01, 0x7f, 0x80, 0xfe)]
    for start in starts:
        walked = list(iter_leaves(chain.state_db.get, root, start))
        assert walked == [(k, model[k]) for k in keys if k >= start], start.hex()
    assert list(iter_leaves(chain.state_db.get, EMPTY_ROOT, ZERO)) == []


def test_walk_reads_only_the_nodes_it_needs(chain: BlockChain, model: dict[bytes, bytes]) -> None:
    """Ten accounts from the middle of the trie cost a path and ten leaves, not the whole trie."""
    root = chain.current_block.state_root
    reads: list[bytes] = []

    def counting_get(key: bytes) -> bytes | None:
        reads.append(key)
        return chain.state_db.get(key)

    walk = iter_leaves(counting_get, root, list(model)[150])
    for _ in range(10):
        next(walk)
    assert len(reads) < 40, len(reads)


# --- AccountRange ----------------------------------------------------------------------------


def test_whole_state_range_with_proofs(chain: BlockChain, server: SnapServer, model: dict[bytes, bytes]) -> None:
    root = chain.current_block.state_root
    reply = run(server.account_range(root, ZERO, MAX, MiB2))
    got = _decode_accounts(reply.accounts)
    assert [k for k, _ in got] == list(model)
    assert all(body == slim_account(model[k]) for k, body in got)
    last = got[-1][0]
    assert _proven(root, ZERO, reply.proof) == b""
    assert _proven(root, last, reply.proof) == model[last]
    assert len(reply.proof) == len(set(reply.proof))  # one copy of nodes both paths share


def test_slim_bodies_drop_empty_root_and_code(model: dict[bytes, bytes]) -> None:
    eoa = next(v for v in model.values() if rlp.decode(v)[3] == EMPTY_CODE_HASH)
    nonce, balance, root, code = rlp.decode(slim_account(eoa))
    assert (root, code) == (b"", b"") and rlp.decode(eoa)[:2] == [nonce, balance]
    contract = model[keccak256(BIG)]
    assert slim_account(contract) == contract  # storage and code: nothing to slim


def test_range_stops_at_the_first_key_past_the_limit(chain: BlockChain, server: SnapServer,
                                                     model: dict[bytes, bytes]) -> None:
    root = chain.current_block.state_root
    keys = list(model)
    reply = run(server.account_range(root, _plus(keys[10], 1), keys[20], MiB2))
    assert [k for k, _ in _decode_accounts(reply.accounts)] == keys[11:21]
    reply = run(server.account_range(root, keys[10], _plus(keys[20], 1), MiB2))  # limit between keys
    assert [k for k, _ in _decode_accounts(reply.accounts)] == keys[10:22]
    assert _proven(root, keys[10], reply.proof) == model[keys[10]]
    assert _proven(root, keys[21], reply.proof) == model[keys[21]]
    # a limit before the origin still returns the first account at or after the origin (geth)
    reply = run(server.account_range(root, keys[5], ZERO, MiB2))
    assert [k for k, _ in _decode_accounts(reply.accounts)] == [keys[5]]


def test_byte_limit_cuts_after_the_item_that_crosses_it(chain: BlockChain, server: SnapServer,
                                                        model: dict[bytes, bytes]) -> None:
    root = chain.current_block.state_root
    for nbytes in (0, 1, 500, 3000):
        expected, size = [], 0
        for key, full in model.items():
            expected.append(key)
            size += 32 + len(slim_account(full))
            if size > nbytes:
                break
        reply = run(server.account_range(root, ZERO, MAX, nbytes))
        assert [k for k, _ in _decode_accounts(reply.accounts)] == expected, nbytes
    assert len(run(server.account_range(root, ZERO, MAX, 0)).accounts) == 1


def test_start_past_the_last_key_proves_the_empty_tail(chain: BlockChain, server: SnapServer,
                                                       model: dict[bytes, bytes]) -> None:
    root = chain.current_block.state_root
    reply = run(server.account_range(root, _plus(list(model)[-1], 1), MAX, MiB2))
    assert reply.accounts == [] and reply.proof
    assert _proven(root, _plus(list(model)[-1], 1), reply.proof) == b""


def test_roots_we_do_not_serve_answer_empty(chain: BlockChain, server: SnapServer) -> None:
    storage_root = chain.state().account(BIG).storage_root
    for root in (b"\x13\x37" + bytes(30), storage_root, EMPTY_ROOT):
        assert run(server.account_range(root, ZERO, MAX, MiB2)).accounts == []
        assert run(server.account_range(root, ZERO, MAX, MiB2)).proof == []
        assert run(server.storage_ranges(root, [keccak256(BIG)], b"", b"", MiB2)).slots == []
        assert run(server.trie_nodes(root, [rlp.encode([b""])], MiB2)) == []


def test_only_the_recent_states_are_served() -> None:
    """geth keeps the head's state and 128 before it; older roots (genesis here) answer empty."""
    chain = ethtest_chain(STATE_HISTORY + 40, execute=True)
    served = SnapServer(chain, chain.state_db)
    head = chain.current_block.number
    for number, expect in ((head, True), (head - STATE_HISTORY, True), (head - STATE_HISTORY - 1, False), (0, False)):
        header = chain.get_header_by_number(number)
        assert header is not None and chain.state_db.has_state(header.state_root)  # stored: an archive
        got = run(served.account_range(header.state_root, ZERO, MAX, 4000))
        assert bool(got.accounts) is expect, number


# --- StorageRanges -----------------------------------------------------------------------------


def _storage(chain: BlockChain, address: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    storage_root = chain.state().account(address).storage_root
    return storage_root, list(iter_leaves(chain.state_db.get, storage_root))


def test_whole_storage_tries_come_without_proofs(chain: BlockChain, server: SnapServer) -> None:
    root = chain.current_block.state_root
    small = [_address(0), _address(25)]
    reply = run(server.storage_ranges(root, [keccak256(a) for a in small], b"", b"", MiB2))
    assert reply.proof == []
    for address, got in zip(small, reply.slots, strict=True):
        _, slots = _storage(chain, address)
        assert [tuple(rlp.decode(item)) for item in got] == slots and len(slots) == 30


def test_a_storage_trie_cut_by_bytes_is_proven_and_ends_the_reply(chain: BlockChain, server: SnapServer) -> None:
    root = chain.current_block.state_root
    big_root, big_slots = _storage(chain, BIG)
    accounts = [keccak256(_address(0)), keccak256(BIG), keccak256(_address(25))]
    reply = run(server.storage_ranges(root, accounts, b"", b"", 4000))
    assert len(reply.slots) == 2  # the cut contract is the last one served
    got = [tuple(rlp.decode(item)) for item in reply.slots[1]]
    assert got == big_slots[: len(got)] and 0 < len(got) < BIG_SLOTS
    size = 30 * 32 + sum(len(v) for _, v in _storage(chain, _address(0))[1])
    assert size + sum(32 + len(v) for _, v in got[:-1]) < 4000 * 1.1 <= size + sum(32 + len(v) for _, v in got)
    assert _proven(big_root, ZERO, reply.proof) == b""
    assert _proven(big_root, got[-1][0], reply.proof) == got[-1][1]


def test_storage_from_an_origin_to_a_limit(chain: BlockChain, server: SnapServer) -> None:
    root = chain.current_block.state_root
    big_root, big_slots = _storage(chain, BIG)
    origin, limit = _plus(big_slots[100][0], 1), big_slots[120][0]
    reply = run(server.storage_ranges(root, [keccak256(BIG), keccak256(_address(0))], origin, limit, MiB2))
    assert [tuple(rlp.decode(i)) for i in reply.slots[0]] == big_slots[101:121] and len(reply.slots) == 1
    assert _proven(big_root, origin, reply.proof) == b""
    assert _proven(big_root, big_slots[120][0], reply.proof) == big_slots[120][1]


def test_storage_of_a_missing_account(chain: BlockChain, server: SnapServer) -> None:
    root = chain.current_block.state_root
    stranger = keccak256(b"nobody")
    reply = run(server.storage_ranges(root, [stranger, keccak256(_address(0))], b"", b"", MiB2))
    assert len(reply.slots) == 1 and len(reply.slots[0]) == 30  # nothing for it, the next one served
    assert run(server.storage_ranges(root, [stranger], b"\x01" * 32, b"", MiB2)).slots == []  # nothing to prove


# --- ByteCodes ---------------------------------------------------------------------------------


def test_bytecodes(chain: BlockChain, server: SnapServer) -> None:
    view = chain.state()
    codes = [view.code(_address(i)) for i in range(0, N_ACCOUNTS, 25)]
    hashes = [keccak256(c) for c in codes]
    assert run(server.byte_codes(hashes, MiB2)) == codes
    root = chain.current_block.state_root
    assert run(server.byte_codes([root, keccak256(b"nothing"), hashes[1]], MiB2)) == [codes[1]]  # a node is no code
    assert run(server.byte_codes([EMPTY_CODE_HASH] * 3, MiB2)) == [b""] * 3
    assert run(server.byte_codes(hashes, 0)) == codes[:1]
    assert len(run(server.byte_codes([EMPTY_CODE_HASH] * (MAX_CODE_LOOKUPS + 5), MiB2))) == MAX_CODE_LOOKUPS


# --- TrieNodes (snap/1) ------------------------------------------------------------------------


def test_trie_nodes_by_path(chain: BlockChain, server: SnapServer, model: dict[bytes, bytes]) -> None:
    root = chain.current_block.state_root
    get = chain.state_db.get
    root_node = get(root)
    first_child = rlp.decode(root_node)[0]  # the root is a branch: child 0 is a hash
    big_root, _ = _storage(chain, BIG)
    paths = [
        rlp.encode([b""]),  # the root
        rlp.encode([b"\x10"]),  # odd path [0]
        rlp.encode([b"\x00" + bytes(40)]),  # runs off the trie
        rlp.encode([keccak256(BIG), b""]),  # a storage root
        rlp.encode([keccak256(b"nobody"), b""]),  # no such account: nothing for the set
    ]
    nodes = run(server.trie_nodes(root, paths, MiB2))
    assert nodes == [root_node, get(first_child), b"", get(big_root)]
    with pytest.raises(SnapViolation, match="zero-item pathset"):
        run(server.trie_nodes(root, [rlp.encode([b""]), rlp.encode([])], MiB2))
    with pytest.raises(SnapViolation, match="bad request"):
        run(server.trie_nodes(root, [rlp.encode([[b"\x00"]])], MiB2))
    assert len(run(server.trie_nodes(root, [rlp.encode([b""])] * 10, 1))) == 1  # bytes: the crossing node is last


def test_compact_paths_and_node_lookup_follow_geth(chain: BlockChain, model: dict[bytes, bytes]) -> None:
    assert compact_to_nibbles(b"") == []
    assert compact_to_nibbles(b"\x00") == [] and compact_to_nibbles(b"\x10") == [0]
    assert compact_to_nibbles(b"\x3a\xbc") == [0xA, 0xB, 0xC, 16]  # leaf flag keeps the terminator
    get = chain.state_db.get
    root = chain.current_block.state_root
    key = list(model)[0]
    nibbles = [int(c, 16) for c in key.hex()]
    # every stored node on the key's path is what GetNode answers for some prefix of the path
    found = {node_at_path(get, root, nibbles[:i])[0] for i in range(len(nibbles) + 1)}
    on_path = prove(get, root, key)
    assert len(on_path) >= 2 and set(on_path) <= found
    assert node_at_path(get, root, [])[0] == get(root)
    first = rlp.decode(get(root))[nibbles[0]]
    assert node_at_path(get, root, nibbles[:1]) == (get(first), 2)  # two loads: the root and the child


# --- AccessLists (snap/2) ------------------------------------------------------------------------


def test_access_lists_keep_request_order(chain: BlockChain, server: SnapServer) -> None:
    db = MemoryDB()
    obj = _genesis_json()
    setup_genesis(db, Genesis.from_json(obj), obj)
    own = open_chain(db, execute=True)
    head = own.current_block
    bal = rlp.encode([[b"\x01" * 20, [], [], [], [], []]])
    rawdb.write_block_access_list(db, head.hash, head.number, bal)
    served = SnapServer(own, own.state_db)
    unknown = b"\xde\xad" * 16
    assert run(served.access_lists([head.hash, unknown, head.hash], MiB2)) == [bal, b"\x80", bal]
    assert run(served.access_lists([unknown, head.hash, head.hash], 1)) == [b"\x80", bal]  # the crossing one is last
    assert run(served.access_lists([], MiB2)) == []
    assert len(run(served.access_lists([unknown] * (MAX_ACCESS_LIST_LOOKUPS + 3), MiB2))) == MAX_ACCESS_LIST_LOOKUPS


# --- on the wire -------------------------------------------------------------------------------------


async def _snap_peer(node: Any, snap_version: int, *, eth: bool = True) -> tuple[Any, ScriptedEth]:
    protocols = [Protocol("snap", snap_version, snap.PROTOCOL_LENGTHS[snap_version], ScriptedEth)]
    if eth:
        protocols.append(Protocol("eth", ETH69, PROTOCOL_LENGTHS[ETH69], ScriptedEth))
    server = local_server(protocols)
    await server.start()
    peer = await server.dial(node.server.enode)
    await asyncio.wait_for(peer.wait_ready(), STEP)
    if eth:
        scripted_eth = peer.handlers["eth"]
        await scripted_eth.send(STATUS, make_status(ETH69, node.handler.local_status()).encode())
        await scripted_eth.expect(STATUS)
    return server, peer


def _request(*fields: Any) -> bytes:
    return rlp.encode(list(fields))


def test_wire_serves_and_keeps_a_peer_asking_for_unknown_state(model: dict[bytes, bytes]) -> None:
    async def scenario() -> None:
        node = await start_node(_chain())
        assert {(p.name, p.version) for p in node.server.protocols} >= {("snap", 1), ("snap", 2)}
        server, peer = await _snap_peer(node, snap.SNAP1)
        try:
            s = peer.handlers["snap"]
            root = node.chain.current_block.state_root
            await s.send(snap.GET_ACCOUNT_RANGE, _request(7, b"\x13" * 32, ZERO, MAX, 4000))
            request_id, accounts, proof = rlp.decode(await s.expect(snap.ACCOUNT_RANGE))
            assert (request_id, accounts, proof) == (b"\x07", [], [])
            await s.send(snap.GET_ACCOUNT_RANGE, _request(8, root, ZERO, MAX, 4000))
            request_id, accounts, proof = rlp.decode(await s.expect(snap.ACCOUNT_RANGE))
            direct = run(SnapServer(node.chain, node.chain.state_db).account_range(root, ZERO, MAX, 4000))
            assert [rlp.encode(a) for a in accounts] == direct.accounts and proof == direct.proof
            await s.send(snap.GET_TRIE_NODES, _request(9, root, [[b""]], 4000))
            assert rlp.decode(await s.expect(snap.TRIE_NODES)) == [b"\x09", [node.chain.state_db.get(root)]]
            (ours,) = node.server.peers()
            assert ours.handlers["snap"].info() == {"version": snap.SNAP1}  # admin_peers' protocols.snap
        finally:
            await server.stop()
            await node.stop()

    run_checked(scenario)


@pytest.mark.parametrize("version, code, payload", [
    (snap.SNAP1, snap.GET_ACCOUNT_RANGE, lambda root: _request(1, root, ZERO, MAX)),  # a field short
    (snap.SNAP1, snap.GET_STORAGE_RANGES, lambda root: _request(1, root, [b"\x01"], b"", b"", 10)),  # 1-byte hash
    (snap.SNAP1, snap.ACCOUNT_RANGE, lambda root: _request(1, [], [])),  # a reply to nothing we asked
    (snap.SNAP1, snap.GET_TRIE_NODES, lambda root: _request(1, root, [[b""], []], 5000)),  # an empty path set
    (snap.SNAP2, snap.GET_TRIE_NODES, lambda root: _request(1, root, [[b""]], 10)),  # gone in snap/2
], ids=["short-request", "bad-account-hash", "unsolicited-reply", "empty-path-set", "trie-nodes-on-snap2"])
def test_wire_violations_drop_the_peer(version: int, code: int, payload: Any) -> None:
    async def scenario() -> None:
        node = await start_node(_chain())
        server, peer = await _snap_peer(node, version)
        try:
            s = peer.handlers["snap"]
            await s.send(code, payload(node.chain.current_block.state_root))
            assert await asyncio.wait_for(peer.wait_ended(), STEP) is DiscReason.SUBPROTOCOL_ERROR
        finally:
            await server.stop()
            await node.stop()

    run_checked(scenario)


def test_snap_without_eth_is_refused() -> None:
    async def scenario() -> None:
        node = await start_node(_chain())
        server, peer = await _snap_peer(node, snap.SNAP2, eth=False)
        try:
            assert await asyncio.wait_for(peer.wait_ended(), STEP) is DiscReason.SUBPROTOCOL_ERROR
        finally:
            await server.stop()
            await node.stop()

    run_checked(scenario)


def test_snap2_serves_access_lists_on_the_wire() -> None:
    async def scenario() -> None:
        node = await start_node(_chain())
        server, peer = await _snap_peer(node, snap.SNAP2)
        try:
            s = peer.handlers["snap"]
            await s.send(snap.GET_ACCESS_LISTS, _request(3, [node.chain.current_block.hash, b"\x01" * 32], MiB2))
            assert rlp.decode(await s.expect(snap.ACCESS_LISTS)) == [b"\x03", [b"", b""]]  # genesis has none
        finally:
            await server.stop()
            await node.stop()

    run_checked(scenario)


def test_long_queries_are_served_in_slices(chain: BlockChain, server: SnapServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole-state reply lets other peers' tasks run between slices (one loop serves all)."""
    root = chain.current_block.state_root
    monkeypatch.setattr(serve_module, "WALK_CHUNK", 10)  # accounts per walk call: a slice at each

    async def scenario() -> None:
        turns = 0
        stop = asyncio.Event()

        async def other_peer() -> None:
            nonlocal turns
            while not stop.is_set():
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other_peer())
        await asyncio.sleep(0)
        before = turns
        reply = await drive(server.account_range(root, ZERO, MAX, MiB2), slice_seconds=0.0)
        stop.set()
        await task
        assert len(reply.accounts) == N_ACCOUNTS + 1
        assert turns - before >= N_ACCOUNTS // 10 - 1  # a turn after every chunk at a zero slice

    run_checked(scenario)


# --- the compiled walk and its pure twin ---------------------------------------------------------------


def _twins() -> tuple[Any, Any]:
    try:
        compiled = walk.implementation("compiled").snap_account_chunk
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"compiled snap walk unavailable: {exc}")
    return compiled, walk.implementation("pure").snap_account_chunk


def test_compiled_walk_agrees_with_its_twin(chain: BlockChain, model: dict[bytes, bytes]) -> None:
    compiled, pure = _twins()
    get, root = chain.state_db.get, chain.current_block.state_root
    keys = list(model)
    cases = [(ZERO, MAX, 0, 10**9, 1000), (ZERO, MAX, 0, 3000, 1000), (keys[7], keys[40], 0, 10**9, 1000),
             (_plus(keys[7], 1), MAX, 500, 900, 1000), (ZERO, MAX, 0, 10**9, 17), (MAX, ZERO, 0, 10, 5),
             (_plus(keys[-1], 1), MAX, 0, 100, 5), (keys[100], ZERO, 0, 0, 1)]
    for start, limit, size, nbytes, max_items in cases:
        want = pure(get, root, start, limit, size, nbytes, max_items)
        assert compiled(get, root, start, limit, size, nbytes, max_items) == want, (start.hex(), limit.hex())
    items, size, done, last = compiled(get, root, ZERO, MAX, 0, 10**9, 10**6)
    assert done and last == keys[-1] and [rlp.decode(i)[0] for i in items] == keys
    assert [rlp.encode(rlp.decode(i)[1]) for i in items] == [slim_account(v) for v in model.values()]
    assert compiled(get, EMPTY_ROOT, ZERO, MAX, 0, 10, 10) == pure(get, EMPTY_ROOT, ZERO, MAX, 0, 10, 10)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.binary(min_size=32, max_size=32),
                       st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**256 - 1), st.booleans()),
                       min_size=1, max_size=60),
       st.binary(min_size=32, max_size=32), st.integers(0, 3000), st.integers(1, 70))
def test_twins_agree_on_random_tries(accounts: dict[bytes, tuple[int, int, bool]], start: bytes, nbytes: int,
                                     max_items: int) -> None:
    compiled, pure = _twins()
    nodes: dict[bytes, bytes] = {}
    items = [(k, rlp.encode([n, b, keccak256(k) if c else EMPTY_ROOT, keccak256(k[::-1]) if c else EMPTY_CODE_HASH]))
             for k, (n, b, c) in accounts.items()]
    root = trie_root(items, nodes)
    for limit in (MAX, start):
        assert compiled(nodes.get, root, start, limit, 0, nbytes, max_items) == \
            pure(nodes.get, root, start, limit, 0, nbytes, max_items)


def test_twins_fail_alike(chain: BlockChain) -> None:
    compiled, pure = _twins()
    root = chain.current_block.state_root
    store = chain.state_db.get
    first_child = rlp.decode(store(root))[0]

    def pruned(key: bytes) -> bytes | None:  # a store that lost one node below the root
        return None if key == first_child else store(key)

    for twin in (compiled, pure):
        with pytest.raises(MissingNodeError) as missing:
            twin(pruned, root, ZERO, MAX, 0, 10**9, 10**6)
        assert missing.value.node_hash == first_child
        # three items, trailing bytes, a non-canonical byte string, a truncated list
        for blob in (b"\xc3\x01\x02\x03", b"\xc2\x10\x80\x00", b"\xc3\x81\x05\x80", b"\xc5\x10"):
            with pytest.raises(ValueError, match="malformed trie node"):
                twin(lambda key, blob=blob: blob, root, ZERO, MAX, 0, 10**9, 10)
        with pytest.raises(ValueError, match="32 bytes"):
            twin(store, root[:31], ZERO, MAX, 0, 10**9, 10)
