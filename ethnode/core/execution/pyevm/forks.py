"""Which py-evm fork executes a block, from the chain config (geth ``params.Rules`` order).

Block-number forks through Gray Glacier, then the merge (a pre-Shanghai block with
difficulty 0 runs under Paris rules, as geth derives ``IsMerge`` from the header), then
the timestamp forks. py-evm 0.12 stops at Prague: a block under Osaka, a BPO fork,
Amsterdam or later raises ``UnsupportedForkError`` naming the fork; so does the DAO
block of a chain that supports the DAO fork (py-evm has no irregular state change).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from eth.vm import forks as f

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip4844 import blob_base_fee, latest_blob_config
from ethnode.core.execution.api import UnsupportedForkError

# Time forks py-evm cannot run, in activation order; the first one active names the error.
_UNSUPPORTED_TIME_FORKS = (
    ("osaka", "osaka_time"),
    ("bpo1", "bpo1_time"),
    ("bpo2", "bpo2_time"),
    ("bpo3", "bpo3_time"),
    ("bpo4", "bpo4_time"),
    ("bpo5", "bpo5_time"),
    ("amsterdam", "amsterdam_time"),
    ("bogota", "bogota_time"),
    ("verkle", "verkle_time"),
)
_TIME_FORKS = (("prague", "prague_time", f.PragueVM), ("cancun", "cancun_time", f.CancunVM),
               ("shanghai", "shanghai_time", f.ShanghaiVM))
_BLOCK_FORKS = (
    ("gray_glacier", "gray_glacier_block", f.GrayGlacierVM),
    ("arrow_glacier", "arrow_glacier_block", f.ArrowGlacierVM),
    ("london", "london_block", f.LondonVM),
    ("berlin", "berlin_block", f.BerlinVM),
    ("muir_glacier", "muir_glacier_block", f.MuirGlacierVM),
    ("istanbul", "istanbul_block", f.IstanbulVM),
    ("petersburg", "petersburg_block", f.PetersburgVM),
    ("constantinople", "constantinople_block", f.ConstantinopleVM),
    ("byzantium", "byzantium_block", f.ByzantiumVM),
    ("spurious_dragon", "eip158_block", f.SpuriousDragonVM),
    ("tangerine_whistle", "eip150_block", f.TangerineWhistleVM),
    ("homestead", "homestead_block", f.HomesteadVM),
)
SUPPORTED_FORKS = ("frontier",) + tuple(n for n, _, _ in reversed(_BLOCK_FORKS)) + ("paris",) + tuple(
    n for n, _, _ in reversed(_TIME_FORKS)
)
ETH_WEI_PER_GWEI = 10**9


def engine_version() -> str:
    try:
        return f"py-evm {version('py-evm')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source checkout
        return "py-evm"


@dataclass(frozen=True)
class Fork:
    """A py-evm fork as one block needs it."""

    name: str
    vm: Any  # the py-evm VM class: rewards, gas refund rules, tx decoding
    state_class: Any  # its State class, with the chain's blob fee schedule when it has one
    byzantium: bool  # receipts carry a status instead of an intermediate state root
    spurious_dragon: bool  # EIP-158: touched empty accounts are removed
    shanghai: bool
    cancun: bool
    prague: bool


def fork_for(config: ChainConfig, number: int, time: int, difficulty: int) -> Fork:
    """The fork ``config`` applies to a block; ``UnsupportedForkError`` if py-evm lacks it."""
    for name, attr in _UNSUPPORTED_TIME_FORKS:
        t = getattr(config, attr)
        if t is not None and t <= time and config.is_london(number):
            raise UnsupportedForkError(
                f"block #{number} is under the {name} fork, which {engine_version()} cannot execute "
                f"(it runs up to prague): install ethnode with its Rust extension (the revm engine; "
                f"`ethnode-fast version` shows it), or import with --noexec to skip execution"
            )
    if config.dao_fork_support and config.dao_fork_block == number:
        raise UnsupportedForkError(
            f"block #{number} is the DAO fork block, whose irregular state change {engine_version()} lacks"
        )
    return _fork(config, _fork_name(config, number, time, difficulty))


def _fork_name(config: ChainConfig, number: int, time: int, difficulty: int) -> str:
    if config.is_london(number):
        for name, attr, _ in _TIME_FORKS:
            t = getattr(config, attr)
            if t is not None and t <= time:
                return name
        if difficulty == 0 and config.terminal_total_difficulty is not None:
            return "paris"
    for name, attr, _ in _BLOCK_FORKS:
        n = getattr(config, attr)
        if n is not None and n <= number:
            return name
    return "frontier"


_VMS: dict[str, Any] = {n: vm for n, _, vm in _TIME_FORKS + _BLOCK_FORKS}
_VMS.update(frontier=f.FrontierVM, paris=f.ParisVM)


@lru_cache(maxsize=64)
def _fork(config: ChainConfig, name: str) -> Fork:
    vm = _VMS[name]
    order = SUPPORTED_FORKS.index(name)
    state_class = vm.get_state_class()
    if order >= SUPPORTED_FORKS.index("cancun"):
        state_class = _with_blob_schedule(state_class, config)
    return Fork(
        name=name,
        vm=vm,
        state_class=state_class,
        byzantium=order >= SUPPORTED_FORKS.index("byzantium"),
        spurious_dragon=order >= SUPPORTED_FORKS.index("spurious_dragon"),
        shanghai=order >= SUPPORTED_FORKS.index("shanghai"),
        cancun=order >= SUPPORTED_FORKS.index("cancun"),
        prague=order >= SUPPORTED_FORKS.index("prague"),
    )


def _with_blob_schedule(state_class: Any, config: ChainConfig) -> Any:
    """``state_class`` charging the blob base fee of the chain's ``blobSchedule`` (py-evm hard-codes mainnet's)."""

    class ScheduledBlobState(state_class):  # type: ignore[misc,valid-type]
        @property
        def blob_base_fee(self) -> int:
            ctx = self.execution_context
            bcfg = latest_blob_config(config, ctx.timestamp)
            if bcfg is None:
                return super().blob_base_fee  # type: ignore[no-any-return]
            return blob_base_fee(bcfg, ctx.excess_blob_gas or 0)

    ScheduledBlobState.__name__ = ScheduledBlobState.__qualname__ = f"{state_class.__name__}WithBlobSchedule"
    return ScheduledBlobState


__all__ = ["Fork", "fork_for", "SUPPORTED_FORKS", "engine_version", "ETH_WEI_PER_GWEI"]
