"""The tx pool tests' world: a small Cancun/Prague chain, funded keys, tx builders, fakes
for chain and state, an event recorder. Shared by the pool and pool-validation tests."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from chain_support import open_chain

from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.eip1559 import calc_base_fee
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.txpool import NewTxsEvent, TxPool, TxPoolConfig
from ethnode.core.types import (
    AccessTuple,
    BlobTx,
    BlobTxSidecar,
    BlobTxWithSidecar,
    Block,
    DynamicFeeTx,
    Header,
    LegacyTx,
    SetCodeAuthorization,
    SetCodeTx,
)
from ethnode.core.types.transaction import BLOB_SIZE, address_of, kzg_to_versioned_hash
from ethnode.crypto.keys import PrivateKey
from ethnode.event import EventBus

CHAIN_ID = 1337
GWEI = 10**9
FEE_CAP = 10 * GWEI  # well above the genesis base fee (1 gwei)
GAS_LIMIT = 30_000_000
TO = b"\x11" * 20
KEYS = [PrivateKey(bytes([i + 1]) * 32) for i in range(48)]
ADDRS = [address_of(k.node_id) for k in KEYS]

BLOB_SCHEDULE = {
    "cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477},
    "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716},
    "osaka": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716},
}
ALL_BLOCK_FORKS = (
    "homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock", "constantinopleBlock",
    "petersburgBlock", "istanbulBlock", "berlinBlock", "londonBlock", "mergeNetsplitBlock",
)


def genesis_json(*, time_forks: Iterable[str] = ("shanghaiTime", "cancunTime", "pragueTime"),
                 block_forks: Iterable[str] = ALL_BLOCK_FORKS) -> dict[str, Any]:
    config: dict[str, Any] = {"chainId": CHAIN_ID, "terminalTotalDifficulty": 0,
                              "blobSchedule": copy.deepcopy(BLOB_SCHEDULE)}
    config.update({fork: 0 for fork in block_forks})
    config.update({fork: 0 for fork in time_forks})
    return {
        "config": config,
        "gasLimit": hex(GAS_LIMIT),
        "difficulty": "0x0",
        "baseFeePerGas": hex(GWEI),
        "alloc": {},
    }


def make_chain(**kwargs: Any) -> BlockChain:
    obj = genesis_json(**kwargs)
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    return open_chain(db)


def make_pool(
    chain: Any = None, bus: EventBus | None = None, *, state: Any = None, clock: Any = None, **config: Any
) -> TxPool:
    extra = {"clock": clock} if clock is not None else {}
    return TxPool(chain or make_chain(), TxPoolConfig(**config), bus, state, kzg=None, **extra)


def dyn(
    key: int,
    nonce: int,
    tip: int = GWEI,
    fee_cap: int = FEE_CAP,
    *,
    gas: int = 21000,
    data: bytes = b"",
    to: bytes | None = TO,
    value: int = 0,
    chain_id: int = CHAIN_ID,
    access_list: list[AccessTuple] | None = None,
) -> DynamicFeeTx:
    tx = DynamicFeeTx(chain_id, nonce, tip, fee_cap, gas, to, value, data, access_list or [], 0, 0, 0)
    return tx.sign(KEYS[key])  # type: ignore[return-value]


def legacy(
    key: int, nonce: int, gas_price: int = GWEI, *, gas: int = 21000, chain_id: int | None = CHAIN_ID
) -> LegacyTx:
    return LegacyTx(nonce, gas_price, gas, TO, 0, b"", 0, 0, 0).sign(KEYS[key], chain_id)


def set_code(key: int, nonce: int, auths: int = 1, *, gas: int = 100_000) -> SetCodeTx:
    auth_list = [
        SetCodeAuthorization(CHAIN_ID, b"\x22" * 20, i, 0, 0, 0).sign(KEYS[-1]) for i in range(auths)
    ]
    tx = SetCodeTx(CHAIN_ID, nonce, GWEI, FEE_CAP, gas, TO, 0, b"", [], auth_list, 0, 0, 0)
    return tx.sign(KEYS[key])  # type: ignore[return-value]


def blob_sidecar(n: int = 1, *, version: int = 0, seed: int = 0) -> BlobTxSidecar:
    """A well-shaped sidecar whose proofs are not real KZG proofs (the pool runs with kzg=None)."""
    commitments = tuple(bytes([0xC0, seed, i]) + bytes(45) for i in range(n))
    proofs_per_blob = 128 if version == 1 else 1
    return BlobTxSidecar(
        blobs=tuple(bytes(BLOB_SIZE) for _ in range(n)),
        commitments=commitments,
        proofs=tuple(bytes(48) for _ in range(n * proofs_per_blob)),
        version=version,
    )


def blob_tx(
    key: int,
    nonce: int,
    tip: int = GWEI,
    fee_cap: int = FEE_CAP,
    blob_fee_cap: int = GWEI,
    *,
    sidecar: BlobTxSidecar | None = None,
    data: bytes = b"",
    hashes: list[bytes] | None = None,
) -> BlobTxWithSidecar:
    sidecar = sidecar or blob_sidecar(seed=nonce)
    vhashes = hashes if hashes is not None else [kzg_to_versioned_hash(c) for c in sidecar.commitments]
    tx = BlobTx(CHAIN_ID, nonce, tip, fee_cap, 21000 + 16 * len(data), TO, 0, data, [], blob_fee_cap, vhashes, 0, 0, 0)
    return BlobTxWithSidecar(tx.sign(KEYS[key]), sidecar)  # type: ignore[arg-type]


def child_header(parent: Header, *, gas_used: int = 0, gas_limit: int | None = None, **changes: Any) -> Header:
    """A header after ``parent`` carrying what the pool reads (number, time, gas, base fee)."""
    return parent.replace(
        parent_hash=parent.hash,
        number=parent.number + 1,
        time=parent.time + 12,
        gas_used=gas_used,
        gas_limit=gas_limit or parent.gas_limit,
        base_fee=calc_base_fee(_CONFIG_FOR_HEADERS, parent),
        **changes,
    )


def block_after(parent: Header, txs: Iterable[Any] = (), **kwargs: Any) -> Block:
    return Block.new(child_header(parent, **kwargs), list(txs), (), [])


_CONFIG_FOR_HEADERS = Genesis.from_json(genesis_json()).config


# --- test doubles ---------------------------------------------------------------------------------


class FakeChain:
    """What the pool reads from a chain, with blocks and included txs set by the test."""

    def __init__(self) -> None:
        base = make_chain()
        self.config = base.config
        self.current_block = base.current_block
        self.blocks: dict[bytes, Block] = {}
        self.included: dict[bytes, tuple[Any, bytes, int, int]] = {}
        self.add_block(Block.new(self.current_block, [], (), []))

    def add_block(self, block: Block) -> Block:
        self.blocks[block.hash] = block
        return block

    def get_block(self, block_hash: bytes, number: int) -> Block | None:
        return self.blocks.get(block_hash)

    def get_transaction(self, tx_hash: bytes) -> tuple[Any, bytes, int, int] | None:
        return self.included.get(tx_hash)


class FakeState:
    def __init__(self, nonces: dict[bytes, int] | None = None, balances: dict[bytes, int] | None = None) -> None:
        self.nonces = nonces or {}
        self.balances = balances or {}

    def nonce(self, address: bytes) -> int | None:
        return self.nonces.get(address, 0)

    def balance(self, address: bytes) -> int | None:
        return self.balances.get(address, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def events(sub: Any) -> list[tuple[Any, ...]]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait().txs)
    return out


def bus_and_sub() -> tuple[EventBus, Any]:
    bus = EventBus()
    return bus, bus.subscribe(NewTxsEvent)


def hashes(txs: Iterable[Any]) -> list[bytes]:
    return [t.hash for t in txs]


# --- pending and queued -----------------------------------------------------------------------------
