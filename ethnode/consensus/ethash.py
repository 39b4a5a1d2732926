"""Pre-merge proof-of-work header rules, without the proof of work (geth ``consensus/ethash``).

Every ethash header rule is checked (difficulty per fork including the bomb delays, gas
limit bounds, timestamps, extra-data size, the DAO extra-data, uncles) except the seal:
verifying the ethash mix digest and nonce needs the ~1 GiB DAG, which is not implemented.
``verifies_seal`` is False so the chain can say so.
"""

from __future__ import annotations

import time as _time

from ethnode.consensus.engine import (
    ChainHeaderReader,
    ChainReader,
    ConsensusError,
    Engine,
    FutureBlockError,
    InvalidNumberError,
)
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.eip1559 import MAX_GAS_LIMIT, verify_eip1559_header, verify_gas_limit
from ethnode.core.types.block import Block
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header

MAX_EXTRA_DATA_SIZE = 32  # geth params.MaximumExtraDataSize
ALLOWED_FUTURE_BLOCK_TIME = 15  # seconds; geth ethash allowedFutureBlockTimeSeconds
MAX_UNCLES = 2  # geth ethash maxUncles
UNCLE_DEPTH = 7  # an uncle's parent must be among the block's 7 nearest ancestors
MINIMUM_DIFFICULTY = 131072  # geth params.MinimumDifficulty
DIFFICULTY_BOUND_DIVISOR = 2048  # geth params.DifficultyBoundDivisor
DURATION_LIMIT = 13  # geth params.DurationLimit (Frontier)
EXP_DIFF_PERIOD = 100_000  # the difficulty bomb doubles every 100k blocks
DAO_FORK_EXTRA = b"dao-hard-fork"  # geth params.DAOForkBlockExtra
DAO_FORK_EXTRA_RANGE = 10  # geth params.DAOForkExtraRange

# (fork attribute, bomb delay) newest first: EIPs 5133, 4345, 3554, 2384, 1234, 649.
_BOMB_DELAYS = (
    ("gray_glacier_block", 11_400_000),
    ("arrow_glacier_block", 10_700_000),
    ("london_block", 9_700_000),
    ("muir_glacier_block", 9_000_000),
    ("constantinople_block", 5_000_000),
    ("byzantium_block", 3_000_000),
)


def _active(fork: int | None, number: int) -> bool:
    return fork is not None and fork <= number


def _bomb(period: int) -> int:
    return 2 ** (period - 2) if period > 1 else 0


def calc_difficulty(config: ChainConfig, time: int, parent: Header) -> int:
    """The ethash difficulty of a child of ``parent`` mined at ``time`` (geth CalcDifficulty)."""
    number = parent.number + 1
    for attr, delay in _BOMB_DELAYS:
        if _active(getattr(config, attr), number):
            return _difficulty_byzantium(time, parent, delay)
    if _active(config.homestead_block, number):
        return _difficulty_homestead(time, parent)
    return _difficulty_frontier(time, parent)


def _difficulty_byzantium(time: int, parent: Header, bomb_delay: int) -> int:
    """EIP-100: target 9 s blocks, uncles count; the bomb runs ``bomb_delay`` blocks late."""
    step = 2 if parent.uncle_hash != EMPTY_UNCLE_HASH else 1
    x = max(step - (time - parent.time) // 9, -99)
    diff = max(parent.difficulty + parent.difficulty // DIFFICULTY_BOUND_DIVISOR * x, MINIMUM_DIFFICULTY)
    delay_from_parent = bomb_delay - 1
    fake_number = parent.number - delay_from_parent if parent.number >= delay_from_parent else 0
    return diff + _bomb(fake_number // EXP_DIFF_PERIOD)  # type: ignore[no-any-return]


def _difficulty_homestead(time: int, parent: Header) -> int:
    """EIP-2: target 10-19 s blocks."""
    x = max(1 - (time - parent.time) // 10, -99)
    diff = max(parent.difficulty + parent.difficulty // DIFFICULTY_BOUND_DIVISOR * x, MINIMUM_DIFFICULTY)
    return diff + _bomb((parent.number + 1) // EXP_DIFF_PERIOD)  # type: ignore[no-any-return]


def _difficulty_frontier(time: int, parent: Header) -> int:
    adjust = parent.difficulty // DIFFICULTY_BOUND_DIVISOR
    diff = parent.difficulty + adjust if time - parent.time < DURATION_LIMIT else parent.difficulty - adjust
    diff = max(diff, MINIMUM_DIFFICULTY)
    period = (parent.number + 1) // EXP_DIFF_PERIOD
    if period > 1:
        diff = max(diff + _bomb(period), MINIMUM_DIFFICULTY)
    return diff  # type: ignore[no-any-return]


def verify_dao_extra(config: ChainConfig, header: Header) -> None:
    """The ten blocks from the DAO fork must (or, when opposing it, must not) say "dao-hard-fork"."""
    fork = config.dao_fork_block
    if fork is None or not fork <= header.number < fork + DAO_FORK_EXTRA_RANGE:
        return
    if config.dao_fork_support and header.extra != DAO_FORK_EXTRA:
        raise ConsensusError("bad DAO pro-fork extra-data")
    if not config.dao_fork_support and header.extra == DAO_FORK_EXTRA:
        raise ConsensusError("bad DAO no-fork extra-data")


class EthashNoSeal(Engine):
    """Ethash's header and uncle rules, all but the PoW seal check."""

    name = "ethash (PoW seal not verified)"
    verifies_seal = False

    def __init__(self, clock: object = None) -> None:
        # ``clock`` returns the current unix time; tests pin it to judge "future" blocks.
        self._now = clock if callable(clock) else _time.time

    def calc_difficulty(self, chain: ChainHeaderReader, time: int, parent: Header) -> int:
        return calc_difficulty(chain.config, time, parent)

    def verify_header(
        self, chain: ChainHeaderReader, header: Header, parent: Header, *, uncle: bool = False
    ) -> None:
        config = chain.config
        if len(header.extra) > MAX_EXTRA_DATA_SIZE:
            raise ConsensusError(f"extra-data too long: {len(header.extra)} > {MAX_EXTRA_DATA_SIZE}")
        if not uncle and header.time > self._now() + ALLOWED_FUTURE_BLOCK_TIME:
            raise FutureBlockError()
        if header.time <= parent.time:
            raise ConsensusError("timestamp older than parent")
        want = calc_difficulty(config, header.time, parent)
        if header.difficulty != want:
            raise ConsensusError(f"invalid difficulty: have {header.difficulty}, want {want}")
        if header.gas_limit > MAX_GAS_LIMIT:
            raise ConsensusError(f"invalid gasLimit: have {header.gas_limit}, max {MAX_GAS_LIMIT}")
        if header.gas_used > header.gas_limit:
            raise ConsensusError(f"invalid gasUsed: have {header.gas_used}, gasLimit {header.gas_limit}")
        if config.is_london(header.number):
            verify_eip1559_header(config, parent, header)
        else:
            if header.base_fee is not None:
                raise ConsensusError(f"invalid baseFee before fork: have {header.base_fee}, expected nil")
            verify_gas_limit(parent.gas_limit, header.gas_limit)
        if header.number != parent.number + 1:
            raise InvalidNumberError()
        if config.is_shanghai(header.number, header.time):
            raise ConsensusError("ethash does not support shanghai fork")
        if header.withdrawals_root is not None:
            raise ConsensusError(
                f"invalid withdrawalsHash: have {header.withdrawals_root.hex()}, expected nil"
            )
        if config.is_cancun(header.number, header.time):
            raise ConsensusError("ethash does not support cancun fork")
        if header.excess_blob_gas is not None:
            raise ConsensusError(f"invalid excessBlobGas: have {header.excess_blob_gas}, expected nil")
        verify_dao_extra(config, header)

    def verify_uncles(self, chain: ChainReader, block: Block) -> None:
        uncles = block.uncles
        if len(uncles) > MAX_UNCLES:
            raise ConsensusError("too many uncles")
        if not uncles:
            return
        ancestors: dict[bytes, Header] = {}
        seen: set[bytes] = set()
        number, parent_hash = block.number - 1, block.parent_hash
        for _ in range(UNCLE_DEPTH):
            ancestor = chain.get_header(parent_hash, number)
            if ancestor is None:
                break
            ancestors[parent_hash] = ancestor
            if ancestor.uncle_hash != EMPTY_UNCLE_HASH:
                full = chain.get_block(parent_hash, number)
                if full is None:
                    break
                seen.update(u.hash for u in full.uncles)
            parent_hash, number = ancestor.parent_hash, number - 1
        ancestors[block.hash] = block.header
        seen.add(block.hash)
        for uncle in uncles:
            h = uncle.hash
            if h in seen:
                raise ConsensusError("duplicate uncle")
            seen.add(h)
            if h in ancestors:
                raise ConsensusError("uncle is ancestor")
            uncle_parent = ancestors.get(uncle.parent_hash)
            if uncle_parent is None or uncle.parent_hash == block.parent_hash:
                raise ConsensusError("uncle's parent is not ancestor")
            self.verify_header(chain, uncle, uncle_parent, uncle=True)


__all__ = ["EthashNoSeal", "calc_difficulty", "verify_dao_extra", "MINIMUM_DIFFICULTY"]
