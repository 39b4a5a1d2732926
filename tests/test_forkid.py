"""EIP-2124 fork IDs: every row of ../shared/vectors/forkid/eip2124.json, plus the built-in schedules."""

from __future__ import annotations

import zlib

import pytest
from shared_support import load_vector

from ethnode.core.chainconfig import (
    BLOCK_FORKS,
    MAINNET,
    MAINNET_CONFIG,
    NETWORKS,
    TIME_FORKS,
    ChainConfig,
)
from ethnode.core.forkid import (
    ErrLocalIncompatibleOrStale,
    ErrRemoteStale,
    ForkID,
    ForkIDError,
    LocalIncompatibleOrStaleError,
    RemoteStaleError,
    gather_forks,
    new_filter,
    new_id,
    new_static_filter,
)
from ethnode.errors import EthnodeError
from ethnode.rlp import DecodingError

ERRORS = {
    None: None,
    "ErrRemoteStale": RemoteStaleError,
    "ErrLocalIncompatibleOrStale": LocalIncompatibleOrStaleError,
}

# The schedules the EIP's own tables were written against (mainnet as known at Petersburg, and
# three retired testnets), transcribed from geth params/config.go of that era as facts.
_PETERSBURG_MAINNET = ChainConfig(
    chain_id=1, homestead_block=1_150_000, dao_fork_block=1_920_000, dao_fork_support=True,
    eip150_block=2_463_000, eip155_block=2_675_000, eip158_block=2_675_000, byzantium_block=4_370_000,
    constantinople_block=7_280_000, petersburg_block=7_280_000,
)
EIP_NETWORKS = {
    "mainnet": (MAINNET.genesis_hash, _PETERSBURG_MAINNET),
    "ropsten": (
        bytes.fromhex("41941023680923e0fe4d74a34bdac8141f2540e3ae90623718e47d66d1ca4a2d"),
        ChainConfig(chain_id=3, homestead_block=0, eip150_block=0, eip155_block=10, eip158_block=10,
                    byzantium_block=1_700_000, constantinople_block=4_230_000, petersburg_block=4_939_394,
                    istanbul_block=6_485_846),
    ),
    "rinkeby": (
        bytes.fromhex("6341fd3daf94b748c72ced5a5b26028f2474f5f00d824504e4fa37a75767e177"),
        ChainConfig(chain_id=4, homestead_block=1, eip150_block=2, eip155_block=3, eip158_block=3,
                    byzantium_block=1_035_301, constantinople_block=3_660_663, petersburg_block=4_321_234,
                    istanbul_block=5_435_345),
    ),
    "goerli": (
        bytes.fromhex("bf7e331f7f7c1dd2e05159666b3bf8bc7a8a3a9eb1d518969eab529dd9b88c1a"),
        ChainConfig(chain_id=5, homestead_block=0, eip150_block=0, eip155_block=0, eip158_block=0,
                    byzantium_block=0, constantinople_block=0, petersburg_block=0, istanbul_block=1_561_651),
    ),
}


def _hash(text: str) -> bytes:
    return bytes.fromhex(text[2:])


def _check(validate, case: dict) -> str | None:  # type: ignore[no-untyped-def]
    """None when the filter's verdict matches the row, else a description of the mismatch."""
    remote = ForkID(_hash(case["remote_hash"]), case["remote_next"])
    expected = ERRORS[case["expected_error"]]
    try:
        validate(remote)
    except ForkIDError as exc:
        if expected is not None and type(exc) is expected:
            return None
        return f"{case}: raised {type(exc).__name__}"
    return None if expected is None else f"{case}: accepted"


def test_builtin_schedules_match_the_vector_file() -> None:
    data = load_vector("forkid", "eip2124.json")
    nets = {"mainnet": data["mainnet"], **data["other_networks"]}
    assert set(nets) == set(NETWORKS)
    geth_name = {attr: attr.replace("_", "").lower() for attr, _ in BLOCK_FORKS + TIME_FORKS}
    for name, net in nets.items():
        ours = NETWORKS[name]
        assert ours.genesis_hash == _hash(net["genesis_hash"]), name
        assert ours.genesis_time == net["genesis_timestamp"], name
        assert ours.config.chain_id == net["chain_id"], name
        params = {k.lower(): v for k, v in net["fork_schedule_geth_params"].items()}
        for attr, key in geth_name.items():
            if key in params:
                assert getattr(ours.config, attr) == params[key], (name, attr)
        assert ours.config.terminal_total_difficulty == params["terminaltotaldifficulty"], name
        assert ours.config.deposit_contract_address == _hash(params["depositcontractaddress"].lower())
        blocks, times = gather_forks(ours.config, ours.genesis_time)
        assert blocks == net["forks_used_for_forkid"]["by_block"], name
        assert times == net["forks_used_for_forkid"]["by_time"], name


def test_creation_geth() -> None:
    cases = load_vector("forkid", "eip2124.json")["creation_geth"]["cases"]
    count = 0
    for name, rows in cases.items():
        net = NETWORKS[name]
        for row in rows:
            got = new_id(net.config, net.genesis_hash, net.genesis_time, row["head"], row["time"])
            assert got == ForkID(_hash(row["hash"]), row["next"]), (name, row)
            count += 1
    assert count == 78


def test_creation_eip2124() -> None:
    cases = load_vector("forkid", "eip2124.json")["creation_eip2124"]["cases"]
    count = 0
    for name, rows in cases.items():
        genesis_hash, config = EIP_NETWORKS[name]
        for row in rows:
            got = new_id(config, genesis_hash, 0, row["head"], 0)
            assert got == ForkID(_hash(row["hash"]), row["next"]), (name, row)
            count += 1
    assert count == 43


def test_spec_examples() -> None:
    examples = load_vector("forkid", "eip2124.json")["spec_examples"]
    heads = [0, 1_150_000, 1_920_000]  # genesis, Homestead, DAO fork
    assert [e["hash"] for e in examples] == [
        "0x" + new_id(MAINNET_CONFIG, MAINNET.genesis_hash, 0, h, 0).hash.hex() for h in heads
    ]


def test_validation_geth() -> None:
    cases = load_vector("forkid", "eip2124.json")["validation_geth"]["cases"]
    configs = {"mainnet": MAINNET_CONFIG, "mainnet_without_time_forks": MAINNET_CONFIG.without_time_forks()}
    failures = []
    for case in cases:
        if "remote_hash_expression" in case:
            # e.g. "checksumUpdate(0xf0afd0e3, math.MaxUint64)": the row's hash really is that.
            base = case["remote_hash_expression"].split("(")[1].split(",")[0]
            crc = zlib.crc32((2**64 - 1).to_bytes(8, "big"), int(base, 16))
            assert crc.to_bytes(4, "big") == _hash(case["remote_hash"])
        head = (case["head"], case["time"])
        filt = new_filter(configs[case["local_config"]], MAINNET.genesis_hash, 0, lambda head=head: head)
        failure = _check(filt, case)
        if failure:
            failures.append(failure)
    assert not failures
    assert len(cases) == 45


def test_validation_eip2124() -> None:
    cases = load_vector("forkid", "eip2124.json")["validation_eip2124"]["cases"]
    failures = []
    for case in cases:
        filt = new_filter(_PETERSBURG_MAINNET, MAINNET.genesis_hash, 0, lambda head=case["head"]: (head, 0))
        failure = _check(filt.validate, case)
        if failure:
            failures.append(failure)
    assert not failures
    assert len(cases) == 15


def test_encoding() -> None:
    cases = load_vector("forkid", "eip2124.json")["encoding_eip2124"]["cases"]
    assert len(cases) == 3
    for case in cases:
        fid = ForkID(_hash(case["hash"]), case["next"])
        assert fid.encode().hex() == case["rlp"]
        assert ForkID.decode(bytes.fromhex(case["rlp"])) == fid


@pytest.mark.parametrize(
    "wire",
    [
        "c5830000000080",  # 3-byte hash
        "c68400000000",  # list shorter than its header says
        "c88400000000820001",  # next with a leading zero byte (non-canonical)
        "cf8400000000890100000000000000",  # truncated inside the next field
        "cf840000000089010000000000000000",  # next = 2**64, above uint64
        "c7840000000080c0",  # an extra element
        "84deadbeef",  # not a list
    ],
)
def test_bad_encodings_are_ethnode_errors(wire: str) -> None:
    with pytest.raises(DecodingError):
        ForkID.decode(bytes.fromhex(wire))


def test_error_classes() -> None:
    assert issubclass(ForkIDError, EthnodeError)
    assert ErrRemoteStale is RemoteStaleError and ErrLocalIncompatibleOrStale is LocalIncompatibleOrStaleError
    assert str(RemoteStaleError()) == "remote needs update"
    assert str(LocalIncompatibleOrStaleError()) == "local incompatible or needs update"


def test_gather_forks_rules() -> None:
    cfg = ChainConfig(
        chain_id=9, homestead_block=0, eip150_block=5, eip155_block=5, london_block=7,
        shanghai_time=100, cancun_time=100, prague_time=50, osaka_time=300,
    )
    # Block 0 dropped, duplicates collapsed; times at or before genesis (100) dropped.
    assert gather_forks(cfg, 100) == ([5, 7], [300])
    assert gather_forks(cfg, 0) == ([5, 7], [50, 100, 300])


def test_filter_follows_a_moving_head() -> None:
    head = [0, 0]
    filt = new_filter(MAINNET_CONFIG, MAINNET.genesis_hash, 0, lambda: (head[0], head[1]))
    frontier = new_id(MAINNET_CONFIG, MAINNET.genesis_hash, 0, 0, 0)
    filt.validate(frontier)
    head[0] = 1_150_000  # we passed Homestead; a frontier peer that knows it is fine
    filt.validate(frontier)
    with pytest.raises(RemoteStaleError):
        filt.validate(ForkID(frontier.hash, 0))  # ... one that does not know it is stale


def test_static_filter_accepts_synced_peers() -> None:
    filt = new_static_filter(MAINNET_CONFIG, MAINNET.genesis_hash, 0)
    filt.validate(new_id(MAINNET_CONFIG, MAINNET.genesis_hash, 0, 20_000_000, 1_800_000_000))
    with pytest.raises(LocalIncompatibleOrStaleError):
        filt.validate(ForkID(b"\x12\x34\x56\x78", 0))
