"""Genesis: geth-format genesis.json -> state root -> header -> the hash peers expect."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from shared_support import shared_path

from ethnode import rlp
from ethnode.core.chainconfig import MAINNET, MAINNET_CONFIG, ChainConfig, ChainConfigError
from ethnode.core.genesis import (
    EMPTY_CODE_HASH,
    EMPTY_REQUESTS_HASH,
    GENESIS_DIFFICULTY,
    GENESIS_GAS_LIMIT,
    INITIAL_BASE_FEE,
    Genesis,
    GenesisAccount,
    GenesisError,
    StateAccount,
    load_genesis,
    state_root,
)
from ethnode.core.types import Header
from ethnode.crypto.keccak import keccak256
from ethnode.errors import EthnodeError
from ethnode.rlp._pure import item_header
from ethnode.trie import EMPTY_ROOT

ADDR = "0x" + "ab" * 20


def _ethtest_json() -> dict[str, Any]:
    return json.loads(shared_path("chains", "ethtest", "genesis.json").read_text())


def _first_block_parent_hash() -> bytes:
    data = shared_path("chains", "ethtest", "chain.rlp").read_bytes()
    _, _, end = item_header(data, 0, len(data))
    return Header.decode(rlp.encode(rlp.decode(data[:end])[0])).parent_hash


def test_ethtest_genesis_hash_is_block_one_parent() -> None:
    genesis = load_genesis(shared_path("chains", "ethtest", "genesis.json"))
    assert genesis.hash == _first_block_parent_hash()
    header = genesis.header
    # Shanghai at genesis, Cancun at t=60: withdrawals root but no blob or beacon fields.
    assert header.base_fee == INITIAL_BASE_FEE
    assert header.withdrawals_root == EMPTY_ROOT
    assert header.blob_gas_used is None and header.parent_beacon_root is None and header.requests_hash is None
    assert header.difficulty == 0x20000 and header.extra == b"hivechain" and header.gas_limit == 0x11E1A300
    assert genesis.config.chain_id == 3503995874084926
    assert genesis.config.blob_schedule["prague"].update_fraction == 5007716


def test_head_state_root_from_the_state_dump() -> None:
    """All 194 accounts of the block-600 state: storage roots, code hashes and the state root."""
    dump = json.loads(shared_path("chains", "ethtest", "headstate.json").read_text())
    alloc = {}
    for acct in dump["accounts"].values():
        entry = {"balance": acct["balance"], "nonce": acct["nonce"]}
        if "code" in acct:
            entry["code"] = acct["code"]
        if "storage" in acct:
            entry["storage"] = acct["storage"]
        alloc[acct["address"]] = entry
    spec = _ethtest_json()
    spec["alloc"] = alloc
    genesis = Genesis.from_json(spec)
    by_address = {a["address"]: a for a in dump["accounts"].values()}  # dump keys are checksummed
    assert len(genesis.alloc) == len(by_address) == 194
    for addr, acct in genesis.alloc.items():
        dumped = by_address["0x" + addr.hex()]
        assert acct.storage_root().hex() == dumped["root"][2:]
        assert keccak256(acct.code).hex() == dumped["codeHash"][2:]
        assert keccak256(addr).hex() == dumped["key"][2:]
    assert sum(1 for a in genesis.alloc.values() if a.storage) == 60
    assert genesis.state_root.hex() == dump["root"]
    # ... which is block 600's state root.
    data = shared_path("chains", "ethtest", "chain.rlp").read_bytes()
    pos = 0
    while pos < len(data):
        start = pos
        _, _, pos = item_header(data, pos, len(data))
    head = Header.decode(rlp.encode(rlp.decode(data[start:pos])[0]))
    assert head.number == 600 and head.state_root == genesis.state_root


def test_mainnet_genesis_header_with_its_published_state_root() -> None:
    # The mainnet alloc (8893 accounts) is not vendored; its root is a published fact
    # (block 0 stateRoot), and the rest of the header comes from geth DefaultGenesisBlock.
    genesis = Genesis(
        config=MAINNET_CONFIG, alloc={}, nonce=66, gas_limit=5000, difficulty=17179869184,
        extra_data=bytes.fromhex("11bbe8db4e347b4e8c937c1c8370e4b5ed33adb3db69cbdb7a38e1e50b1b82fa"),
    )
    root = bytes.fromhex("d7f8974fb5ac78d9ac099b9ad5018bedc2ce0a72dad1827a1709da30580f0544")
    header = genesis.to_header(state_root=root)
    assert header.hash == MAINNET.genesis_hash
    assert header.base_fee is None  # London is not at genesis on mainnet
    assert genesis.state_root == EMPTY_ROOT


def _spec(config: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "config": {"chainId": 1337, **(config or {})},
        "gasLimit": "0x1c9c380",
        "difficulty": "0x0",
        "alloc": {ADDR[2:]: {"balance": "1000"}},
    }
    spec.update(fields)
    return spec


ALL_AT_ZERO = {
    "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0, "eip158Block": 0, "byzantiumBlock": 0,
    "constantinopleBlock": 0, "petersburgBlock": 0, "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
}


def test_header_fields_by_fork_at_genesis() -> None:
    frontier = Genesis.from_json(_spec()).header
    assert len(rlp.decode(frontier.encode())) == 15
    london = Genesis.from_json(_spec(ALL_AT_ZERO)).header
    assert london.base_fee == INITIAL_BASE_FEE and london.withdrawals_root is None
    prague = Genesis.from_json(
        _spec({**ALL_AT_ZERO, "shanghaiTime": 0, "cancunTime": 0, "pragueTime": 0}, excessBlobGas="0x20000")
    ).header
    assert prague.withdrawals_root == EMPTY_ROOT
    assert prague.blob_gas_used == 0 and prague.excess_blob_gas == 0x20000
    assert prague.parent_beacon_root == bytes(32)
    assert prague.requests_hash == EMPTY_REQUESTS_HASH
    assert EMPTY_REQUESTS_HASH.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert len(rlp.decode(prague.encode())) == 21
    # Shanghai scheduled after the genesis time: not active at genesis.
    later = Genesis.from_json(_spec({**ALL_AT_ZERO, "shanghaiTime": 10}, timestamp="9")).header
    assert later.withdrawals_root is None


def test_geth_defaults_and_quirks() -> None:
    g = Genesis.from_json(_spec(gasLimit=0, baseFeePerGas="7"))
    assert g.header.gas_limit == GENESIS_GAS_LIMIT
    assert g.header.base_fee == 7  # kept even before London, as geth's ToBlock does
    london = Genesis.from_json(_spec(ALL_AT_ZERO, baseFeePerGas="0x10")).header
    assert london.base_fee == 16
    direct = Genesis(config=ChainConfig(chain_id=1), alloc={}, gas_limit=1, difficulty=None)
    assert direct.header.difficulty == GENESIS_DIFFICULTY
    assert direct.to_header().difficulty == GENESIS_DIFFICULTY
    mixed = Genesis(
        config=ChainConfig(chain_id=1), alloc={}, gas_limit=1, difficulty=None, mix_hash=b"\x01" * 32
    )
    assert mixed.header.difficulty == 0


def test_state_account_encoding() -> None:
    acct = GenesisAccount(balance=10**18, nonce=3, code=b"\x60\x00", storage={bytes(32): bytes(31) + b"\x05"})
    sa = acct.state_account()
    assert sa == StateAccount(3, 10**18, acct.storage_root(), keccak256(b"\x60\x00"))
    # storage: keccak(slot) -> rlp(0x05) = 0x05
    assert acct.storage_root() == GenesisAccount(storage={bytes(32): b"\x05".rjust(32, b"\0")}).storage_root()
    assert GenesisAccount().state_account() == StateAccount(0, 0, EMPTY_ROOT, EMPTY_CODE_HASH)
    # Zero-valued slots are absent from the storage trie.
    assert GenesisAccount(storage={bytes(32): bytes(32)}).storage_root() == EMPTY_ROOT
    assert state_root({}) == EMPTY_ROOT


def test_storage_words_are_left_padded() -> None:
    spec = _spec()
    spec["alloc"][ADDR[2:]]["storage"] = {"0x01": "0x0102", "02": "03"}
    acct = Genesis.from_json(spec).alloc[bytes.fromhex(ADDR[2:])]
    assert acct.storage == {
        (1).to_bytes(32, "big"): (0x0102).to_bytes(32, "big"),
        (2).to_bytes(32, "big"): (3).to_bytes(32, "big"),
    }


def _break(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(_spec())
    *parents, last = path.split(".")
    node = spec
    for p in parents:
        node = node[p if p != "ADDR" else ADDR[2:]]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return spec


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("config", _DELETE, "config"),
        ("config.chainId", _DELETE, "config.chainId"),
        ("config.londonBlock", "soon", "config.londonBlock"),
        ("config.shanghaiTime", -1, "config.shanghaiTime"),
        ("config.cancunTime", 2**64, "config.cancunTime"),
        ("config.daoForkSupport", "yes", "config.daoForkSupport"),
        ("config.blobSchedule", {"cancun": {"target": 3, "max": 6}}, "baseFeeUpdateFraction"),
        ("gasLimit", _DELETE, "gasLimit"),
        ("gasLimit", "0x1_0", "gasLimit"),
        ("difficulty", True, "difficulty"),
        ("alloc", [], "alloc"),
        ("alloc.ADDR.balance", "0xzz", "balance"),
        ("alloc.ADDR.balance", _DELETE, "balance"),
        ("alloc.ADDR.code", "6000", "code"),
        ("alloc.ADDR.nonce", "-1", "nonce"),
        ("alloc.ADDR.storage", {"0x" + "00" * 33: "0x01"}, "storage"),
        ("alloc.ADDR.storage", {"0x01": "0xxyz"}, "storage"),
        ("extraData", "hello", "extraData"),
        ("mixHash", "0x1234", "mixHash"),
        ("coinbase", "0x" + "00" * 21, "coinbase"),
        ("baseFeePerGas", 1.5, "baseFeePerGas"),
        ("timestamp", " 5", "timestamp"),
    ],
)
def test_bad_genesis_names_the_field(path: str, value: Any, named: str) -> None:
    with pytest.raises(GenesisError, match=named.replace(".", r"\.")):
        Genesis.from_json(_break(path, value))


def test_bad_address_and_files(tmp_path: Path) -> None:
    spec = _spec()
    spec["alloc"] = {"0x1234": {"balance": "1"}}
    with pytest.raises(GenesisError, match="alloc.0x1234"):
        Genesis.from_json(spec)
    with pytest.raises(GenesisError, match="cannot read"):
        load_genesis(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenesisError, match="not valid JSON"):
        load_genesis(bad)
    with pytest.raises(GenesisError, match="expected a JSON object"):
        Genesis.from_json([1, 2])
    assert issubclass(GenesisError, EthnodeError) and issubclass(ChainConfigError, EthnodeError)


def test_chain_config_parses_geth_keys() -> None:
    cfg = ChainConfig.from_json(
        {"chainId": "0x1", "londonBlock": 5, "pragueTime": "100", "terminalTotalDifficulty": 2**80,
         "clique": {"period": 5, "epoch": 30000}, "unknownFutureKey": 1}
    )
    assert cfg.chain_id == 1 and cfg.london_block == 5 and cfg.prague_time == 100
    assert cfg.terminal_total_difficulty == 2**80 and cfg.clique == {"period": 5, "epoch": 30000}
    assert cfg.is_london(5) and not cfg.is_london(4)
    assert cfg.is_prague(5, 100) and not cfg.is_prague(4, 100) and not cfg.is_prague(5, 99)
