"""snap AccountRange serving from the stored trie: responses per second on a 10k-account state.

The state is built here (a genesis allocation of 10,000 accounts, every 20th with code and
storage, written to an in-memory store the way ``init`` writes it). Two query shapes:

- a whole-state reply: origin zero, 512 KiB (geth's snap syncer asks for at most 512 KiB;
  here that covers all 10k accounts), with its two edge proofs;
- a small reply: 4 KiB (~80 accounts) from a random origin, what one slice of a sync asks.

Backends: ``compiled`` (the Rust walk, ``snapwalk.rs``, with the Cython RLP codec for the
proofs), ``pure`` (what an install without extensions runs: the Python walk on the pure RLP
codec) and ``python-walk`` (the Python walk on the Cython codec: what Rust buys over it).
``extra_info["items"]`` carries accounts per reply, so the report prints the time per
account; responses per second is 1 / the median.
"""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

import ethnode.core.state.ranges as ranges_module
import ethnode.eth.protocols.snap._walk_pure as walk_pure_module
import ethnode.eth.protocols.snap.serve as serve_module
from ethnode import rlp
from ethnode.core.blockchain import BlockChain, read_chain_config, setup_genesis
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.crypto.keccak import keccak256
from ethnode.eth.protocols.snap import walk
from ethnode.eth.protocols.snap.serve import SnapServer, run

N_ACCOUNTS = 10_000
WHOLE_BYTES = 512 * 1024  # geth snap syncer maxRequestSize
SMALL_BYTES = 4 * 1024


def _genesis_json() -> dict[str, Any]:
    alloc: dict[str, Any] = {}
    for i in range(N_ACCOUNTS):
        entry: dict[str, Any] = {"balance": hex(10**18 + i), "nonce": hex(i % 7)}
        if i % 20 == 0:
            entry["code"] = "0x6001600055" + "00" * (i % 50)
            entry["storage"] = {"0x" + (s + 1).to_bytes(32, "big").hex(): "0x" + (i + s).to_bytes(32, "big").hex()
                                for s in range(4)}
        alloc["0x" + keccak256(i.to_bytes(4, "big"))[:20].hex()] = entry
    return {
        "config": {"chainId": 1337, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0,
                   "byzantiumBlock": 0, "constantinopleBlock": 0, "petersburgBlock": 0, "istanbulBlock": 0,
                   "berlinBlock": 0, "londonBlock": 0, "terminalTotalDifficulty": 0, "shanghaiTime": 0},
        "gasLimit": "0x1c9c380", "difficulty": "0x0", "alloc": alloc,
    }


_STATE: list[tuple[SnapServer, bytes]] = []


def _state() -> tuple[SnapServer, bytes]:
    if not _STATE:
        from ethnode.consensus import create_engine

        obj = _genesis_json()
        db = MemoryDB()
        setup_genesis(db, Genesis.from_json(obj), obj)
        config = read_chain_config(db)
        chain = BlockChain(db, create_engine(config, db), config=config)
        _STATE.append((SnapServer(chain, chain.state_db), chain.current_block.state_root))
    return _STATE[0]


KINDS = ["compiled", "pure", "python-walk"]


@pytest.fixture
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the server at the ``compiled`` or ``pure`` walk, and the walk at that RLP codec."""
    kind: str = request.param
    walk_kind, codec_kind = {"compiled": ("compiled", "compiled"), "pure": ("pure", "pure"),
                             "python-walk": ("pure", "compiled")}[kind]
    try:
        codec = rlp.implementation(codec_kind)
        chunk = walk.implementation(walk_kind).snap_account_chunk
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"{kind} backend unavailable: {exc}")
    shim = SimpleNamespace(encode=codec.encode, decode=codec.decode)
    for module in (ranges_module, serve_module, walk_pure_module):
        monkeypatch.setattr(module, "rlp", shim)
    monkeypatch.setattr(serve_module, "account_chunk", chunk)
    return kind


@pytest.mark.parametrize("codec", KINDS, indirect=True)
def test_account_range_whole_state(benchmark: Any, codec: str) -> None:
    server, root = _state()
    benchmark.group = "snap AccountRange whole 10k-account state (512 KiB)"
    reply = run(server.account_range(root, bytes(32), b"\xff" * 32, WHOLE_BYTES))
    assert len(reply.accounts) == N_ACCOUNTS and reply.proof
    benchmark.extra_info.update(impl=codec, items=len(reply.accounts))
    benchmark(lambda: run(server.account_range(root, bytes(32), b"\xff" * 32, WHOLE_BYTES)))


@pytest.mark.parametrize("codec", KINDS, indirect=True)
def test_account_range_small_from_random_origin(benchmark: Any, codec: str) -> None:
    server, root = _state()
    benchmark.group = "snap AccountRange 4 KiB from a random origin"
    rng = random.Random(8189)
    origins = [rng.randbytes(32) for _ in range(64)]
    counts = [len(run(server.account_range(root, o, b"\xff" * 32, SMALL_BYTES)).accounts) for o in origins]
    assert min(counts) >= 1
    benchmark.extra_info.update(impl=codec, items=max(1, sum(counts) // len(counts)))
    turn = iter(range(10**12))

    def one() -> Any:
        return run(server.account_range(root, origins[next(turn) % len(origins)], b"\xff" * 32, SMALL_BYTES))

    benchmark(one)
