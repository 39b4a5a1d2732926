"""The fork schedule of a chain (geth ``params.ChainConfig``) and the built-in networks.

A config is read from the ``"config"`` object of a geth-format genesis.json. Block forks
activate at a block number, the post-merge forks at a timestamp; an absent entry means
the fork is not scheduled. The fork-ID (EIP-2124) is computed from every scheduled
``*Block`` and ``*Time`` entry, so the tables below list them in geth's field order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ethnode.errors import EthnodeError


class ChainConfigError(EthnodeError):
    """A chain configuration (genesis ``config``) with a missing or malformed field."""


# (attribute, geth JSON key) of every fork activated by block number, in geth's struct order.
# DAOForkBlock and MergeNetsplitBlock are "forks" for the fork ID even without rule changes.
BLOCK_FORKS: tuple[tuple[str, str], ...] = (
    ("homestead_block", "homesteadBlock"),
    ("dao_fork_block", "daoForkBlock"),
    ("eip150_block", "eip150Block"),
    ("eip155_block", "eip155Block"),
    ("eip158_block", "eip158Block"),
    ("byzantium_block", "byzantiumBlock"),
    ("constantinople_block", "constantinopleBlock"),
    ("petersburg_block", "petersburgBlock"),
    ("istanbul_block", "istanbulBlock"),
    ("muir_glacier_block", "muirGlacierBlock"),
    ("berlin_block", "berlinBlock"),
    ("london_block", "londonBlock"),
    ("arrow_glacier_block", "arrowGlacierBlock"),
    ("gray_glacier_block", "grayGlacierBlock"),
    ("merge_netsplit_block", "mergeNetsplitBlock"),
)

# (attribute, geth JSON key) of every fork activated by timestamp, in geth's struct order.
TIME_FORKS: tuple[tuple[str, str], ...] = (
    ("shanghai_time", "shanghaiTime"),
    ("cancun_time", "cancunTime"),
    ("prague_time", "pragueTime"),
    ("osaka_time", "osakaTime"),
    ("bpo1_time", "bpo1Time"),
    ("bpo2_time", "bpo2Time"),
    ("bpo3_time", "bpo3Time"),
    ("bpo4_time", "bpo4Time"),
    ("bpo5_time", "bpo5Time"),
    ("amsterdam_time", "amsterdamTime"),
    ("bogota_time", "bogotaTime"),
    ("verkle_time", "verkleTime"),
)

_INT_TEXT = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")  # decimal or 0x-hex, no sign


@dataclass(frozen=True)
class BlobConfig:
    """Per-fork blob parameters (EIP-7840 ``blobSchedule`` entry)."""

    target: int
    max: int
    update_fraction: int


@dataclass(frozen=True)
class CliqueConfig:
    """Clique (EIP-225) parameters, geth ``params.CliqueConfig``: ``{"period", "epoch"}``.

    0 means "unset" as in geth: the engine turns epoch 0 into its 30000 default, and period
    0 is a valid choice (seal only when there are transactions).
    """

    period: int = 0  # seconds between blocks
    epoch: int = 0  # blocks between checkpoints that reset votes and list the signers

    @classmethod
    def from_json(cls, obj: Any) -> CliqueConfig:
        if not isinstance(obj, Mapping):
            raise ChainConfigError("config.clique: expected a JSON object")
        period = obj.get("period")
        epoch = obj.get("epoch")
        return cls(
            period=0 if period is None else _uint(period, "clique.period", 64),
            epoch=0 if epoch is None else _uint(epoch, "clique.epoch", 64),
        )


@dataclass(frozen=True)
class ChainConfig:
    """A chain's identity and fork schedule; None means "not scheduled"."""

    chain_id: int
    homestead_block: int | None = None
    dao_fork_block: int | None = None
    dao_fork_support: bool = False
    eip150_block: int | None = None
    eip155_block: int | None = None
    eip158_block: int | None = None
    byzantium_block: int | None = None
    constantinople_block: int | None = None
    petersburg_block: int | None = None
    istanbul_block: int | None = None
    muir_glacier_block: int | None = None
    berlin_block: int | None = None
    london_block: int | None = None
    arrow_glacier_block: int | None = None
    gray_glacier_block: int | None = None
    merge_netsplit_block: int | None = None
    shanghai_time: int | None = None
    cancun_time: int | None = None
    prague_time: int | None = None
    osaka_time: int | None = None
    bpo1_time: int | None = None
    bpo2_time: int | None = None
    bpo3_time: int | None = None
    bpo4_time: int | None = None
    bpo5_time: int | None = None
    amsterdam_time: int | None = None
    bogota_time: int | None = None
    verkle_time: int | None = None
    terminal_total_difficulty: int | None = None
    deposit_contract_address: bytes | None = None
    ethash: bool = False
    clique: Mapping[str, Any] | None = field(default=None, hash=False)
    blob_schedule: Mapping[str, BlobConfig] = field(default_factory=dict, hash=False)

    # --- fork predicates (geth's IsLondon / IsShanghai ...): post-London time forks also
    # --- require London, exactly as geth, so a misordered config cannot enable them alone.

    def is_london(self, number: int) -> bool:
        return _block_active(self.london_block, number)

    def is_shanghai(self, number: int, time: int) -> bool:
        return self.is_london(number) and _time_active(self.shanghai_time, time)

    def is_cancun(self, number: int, time: int) -> bool:
        return self.is_london(number) and _time_active(self.cancun_time, time)

    def is_prague(self, number: int, time: int) -> bool:
        return self.is_london(number) and _time_active(self.prague_time, time)

    def is_osaka(self, number: int, time: int) -> bool:
        return self.is_london(number) and _time_active(self.osaka_time, time)

    def is_amsterdam(self, number: int, time: int) -> bool:
        return self.is_london(number) and _time_active(self.amsterdam_time, time)

    @property
    def clique_config(self) -> CliqueConfig | None:
        """The typed Clique parameters (``clique`` keeps the JSON object as given)."""
        return None if self.clique is None else CliqueConfig.from_json(self.clique)

    def block_forks(self) -> list[int]:
        """Every scheduled block-number activation, in field order (may repeat, may be 0)."""
        return [v for attr, _ in BLOCK_FORKS if (v := getattr(self, attr)) is not None]

    def time_forks(self) -> list[int]:
        """Every scheduled timestamp activation, in field order (may repeat, may be 0)."""
        return [v for attr, _ in TIME_FORKS if (v := getattr(self, attr)) is not None]

    def without_time_forks(self) -> ChainConfig:
        """This schedule with every timestamp fork removed (geth's legacy, pre-Shanghai view)."""
        return replace(self, **{attr: None for attr, _ in TIME_FORKS})

    @classmethod
    def from_json(cls, obj: Any) -> ChainConfig:
        """Parse a geth genesis ``config`` object. Unknown keys are ignored, as geth does."""
        if not isinstance(obj, Mapping):
            raise ChainConfigError("config: expected a JSON object")
        if "chainId" not in obj or obj["chainId"] is None:
            raise ChainConfigError("config.chainId: missing")
        kwargs: dict[str, Any] = {"chain_id": _uint(obj["chainId"], "chainId", None)}
        for attr, key in BLOCK_FORKS:
            if obj.get(key) is not None:
                kwargs[attr] = _uint(obj[key], key, 64)
        for attr, key in TIME_FORKS:
            if obj.get(key) is not None:
                kwargs[attr] = _uint(obj[key], key, 64)
        if obj.get("daoForkSupport") is not None:
            if not isinstance(obj["daoForkSupport"], bool):
                raise ChainConfigError("config.daoForkSupport: expected true or false")
            kwargs["dao_fork_support"] = obj["daoForkSupport"]
        if obj.get("terminalTotalDifficulty") is not None:
            ttd = obj["terminalTotalDifficulty"]
            kwargs["terminal_total_difficulty"] = _uint(ttd, "terminalTotalDifficulty", None)
        if obj.get("depositContractAddress") is not None:
            kwargs["deposit_contract_address"] = _address(obj["depositContractAddress"])
        if obj.get("ethash") is not None:
            kwargs["ethash"] = True
        if obj.get("clique") is not None:
            CliqueConfig.from_json(obj["clique"])  # refuse a malformed period/epoch now, not at use
            kwargs["clique"] = dict(obj["clique"])
        if obj.get("blobSchedule") is not None:
            kwargs["blob_schedule"] = _blob_schedule(obj["blobSchedule"])
        return cls(**kwargs)


def _block_active(fork: int | None, number: int) -> bool:
    return fork is not None and fork <= number


def _time_active(fork: int | None, time: int) -> bool:
    return fork is not None and fork <= time


def _uint(value: Any, key: str, bits: int | None) -> int:
    """A non-negative integer from a JSON number or a decimal / 0x-hex string."""
    if isinstance(value, bool):
        raise ChainConfigError(f"config.{key}: expected an integer, got {value!r}")
    if isinstance(value, str):
        if not _INT_TEXT.fullmatch(value):
            raise ChainConfigError(f"config.{key}: not an integer: {value!r}")
        value = int(value, 0) if value[:2] in ("0x", "0X") else int(value, 10)
    if not isinstance(value, int) or value < 0:
        raise ChainConfigError(f"config.{key}: expected a non-negative integer, got {value!r}")
    if bits is not None and value >> bits:
        raise ChainConfigError(f"config.{key}: {value} does not fit in {bits} bits")
    return value


def _address(value: Any) -> bytes:
    if isinstance(value, str) and value[:2] in ("0x", "0X") and len(value) == 42:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise ChainConfigError(f"config.depositContractAddress: not a 0x-prefixed 20-byte address: {value!r}")


def _blob_schedule(obj: Any) -> dict[str, BlobConfig]:
    if not isinstance(obj, Mapping):
        raise ChainConfigError("config.blobSchedule: expected a JSON object")
    schedule = {}
    for fork, entry in obj.items():
        where = f"blobSchedule.{fork}"
        if not isinstance(entry, Mapping):
            raise ChainConfigError(f"config.{where}: expected a JSON object")
        try:
            schedule[fork] = BlobConfig(
                target=_uint(entry["target"], f"{where}.target", 64),
                max=_uint(entry["max"], f"{where}.max", 64),
                update_fraction=_uint(entry["baseFeeUpdateFraction"], f"{where}.baseFeeUpdateFraction", 64),
            )
        except KeyError as exc:
            raise ChainConfigError(f"config.{where}.{exc.args[0]}: missing") from None
    return schedule


# ---------------------------------------------------------------------------------------
# Built-in networks (facts from geth params/config.go and core/genesis.go).


@dataclass(frozen=True)
class Network:
    """A public network: what a node needs to compute and check fork IDs without a genesis file."""

    name: str
    genesis_hash: bytes
    genesis_time: int
    config: ChainConfig


# geth params.DefaultCancunBlobConfig, DefaultPragueBlobConfig, DefaultOsakaBlobConfig,
# DefaultBPO1BlobConfig, DefaultBPO2BlobConfig (shared by mainnet and the public testnets).
_DEFAULT_BLOB_SCHEDULE = {
    "cancun": BlobConfig(target=3, max=6, update_fraction=3338477),
    "prague": BlobConfig(target=6, max=9, update_fraction=5007716),
    "osaka": BlobConfig(target=6, max=9, update_fraction=5007716),
    "bpo1": BlobConfig(target=10, max=15, update_fraction=8346193),
    "bpo2": BlobConfig(target=14, max=21, update_fraction=11684671),
}

MAINNET_CONFIG = ChainConfig(
    chain_id=1,
    homestead_block=1_150_000,
    dao_fork_block=1_920_000,
    dao_fork_support=True,
    eip150_block=2_463_000,
    eip155_block=2_675_000,
    eip158_block=2_675_000,
    byzantium_block=4_370_000,
    constantinople_block=7_280_000,
    petersburg_block=7_280_000,
    istanbul_block=9_069_000,
    muir_glacier_block=9_200_000,
    berlin_block=12_244_000,
    london_block=12_965_000,
    arrow_glacier_block=13_773_000,
    gray_glacier_block=15_050_000,
    terminal_total_difficulty=58_750_000_000_000_000_000_000,
    shanghai_time=1681338455,
    cancun_time=1710338135,
    prague_time=1746612311,
    osaka_time=1764798551,
    bpo1_time=1765290071,
    bpo2_time=1767747671,
    deposit_contract_address=bytes.fromhex("00000000219ab540356cbb839cbe05303d7705fa"),
    ethash=True,
    blob_schedule=_DEFAULT_BLOB_SCHEDULE,
)

SEPOLIA_CONFIG = ChainConfig(
    chain_id=11155111,
    homestead_block=0,
    dao_fork_support=True,
    eip150_block=0,
    eip155_block=0,
    eip158_block=0,
    byzantium_block=0,
    constantinople_block=0,
    petersburg_block=0,
    istanbul_block=0,
    muir_glacier_block=0,
    berlin_block=0,
    london_block=0,
    terminal_total_difficulty=17_000_000_000_000_000,
    merge_netsplit_block=1_735_371,
    shanghai_time=1677557088,
    cancun_time=1706655072,
    prague_time=1741159776,
    osaka_time=1760427360,
    bpo1_time=1761017184,
    bpo2_time=1761607008,
    deposit_contract_address=bytes.fromhex("7f02c3e3c98b133055b8b348b2ac625669ed295d"),
    ethash=True,
    blob_schedule=_DEFAULT_BLOB_SCHEDULE,
)

HOLESKY_CONFIG = ChainConfig(
    chain_id=17000,
    homestead_block=0,
    dao_fork_support=True,
    eip150_block=0,
    eip155_block=0,
    eip158_block=0,
    byzantium_block=0,
    constantinople_block=0,
    petersburg_block=0,
    istanbul_block=0,
    berlin_block=0,
    london_block=0,
    terminal_total_difficulty=0,
    shanghai_time=1696000704,
    cancun_time=1707305664,
    prague_time=1740434112,
    osaka_time=1759308480,
    bpo1_time=1759800000,
    bpo2_time=1760389824,
    deposit_contract_address=bytes.fromhex("4242424242424242424242424242424242424242"),
    ethash=True,
    blob_schedule=_DEFAULT_BLOB_SCHEDULE,
)

HOODI_CONFIG = ChainConfig(
    chain_id=560048,
    homestead_block=0,
    dao_fork_support=True,
    eip150_block=0,
    eip155_block=0,
    eip158_block=0,
    byzantium_block=0,
    constantinople_block=0,
    petersburg_block=0,
    istanbul_block=0,
    muir_glacier_block=0,
    berlin_block=0,
    london_block=0,
    terminal_total_difficulty=0,
    merge_netsplit_block=0,
    shanghai_time=0,
    cancun_time=0,
    prague_time=1742999832,
    osaka_time=1761677592,
    bpo1_time=1762365720,
    bpo2_time=1762955544,
    deposit_contract_address=bytes.fromhex("00000000219ab540356cbb839cbe05303d7705fa"),
    ethash=True,
    blob_schedule=_DEFAULT_BLOB_SCHEDULE,
)

MAINNET = Network(
    "mainnet",
    bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"),
    0,
    MAINNET_CONFIG,
)
SEPOLIA = Network(
    "sepolia",
    bytes.fromhex("25a5cc106eea7138acab33231d7160d69cb777ee0c2c553fcddf5138993e6dd9"),
    1633267481,
    SEPOLIA_CONFIG,
)
HOLESKY = Network(
    "holesky",
    bytes.fromhex("b5f7f912443c940f21fd611f12828d75b534364ed9e95ca4e307729a4661bde4"),
    1695902100,
    HOLESKY_CONFIG,
)
HOODI = Network(
    "hoodi",
    bytes.fromhex("bbe312868b376a3001692a646dd2d7d1e4406380dfd86b98aa8a34d1557c971b"),
    1742212800,
    HOODI_CONFIG,
)

NETWORKS: Mapping[str, Network] = {n.name: n for n in (MAINNET, SEPOLIA, HOLESKY, HOODI)}

__all__ = [
    "ChainConfig", "ChainConfigError", "BlobConfig", "CliqueConfig", "Network", "BLOCK_FORKS", "TIME_FORKS",
    "MAINNET", "SEPOLIA", "HOLESKY", "HOODI", "NETWORKS",
    "MAINNET_CONFIG", "SEPOLIA_CONFIG", "HOLESKY_CONFIG", "HOODI_CONFIG",
]
