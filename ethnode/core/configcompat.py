"""Whether a new chain config may replace the stored one (geth ``params.ChainConfig.CheckCompatible``).

``init`` with an edited genesis on an existing datadir is how a private network schedules
its next fork. Moving a fork the stored head has not reached is safe; moving one it has
already passed would rewrite history, so geth refuses it naming the field and the block
or timestamp the chain would have to be rewound to. The names and message are geth's,
so operators can search for them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ethnode.core.chainconfig import ChainConfig, ChainConfigError
from ethnode.core.errors import ChainError
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.rawdb.store import KeyValueStore
from ethnode.logctx import kv

log = logging.getLogger("ethnode.core.blockchain")

# (attribute, geth's name in the error) in geth's checkCompatible order.
_BLOCK_CHECKS = (
    ("homestead_block", "Homestead fork block"),
    ("dao_fork_block", "DAO fork block"),
    ("eip150_block", "EIP150 fork block"),
    ("eip155_block", "EIP155 fork block"),
    ("eip158_block", "EIP158 fork block"),
    ("byzantium_block", "Byzantium fork block"),
    ("constantinople_block", "Constantinople fork block"),
    ("petersburg_block", "Petersburg fork block"),
    ("istanbul_block", "Istanbul fork block"),
    ("muir_glacier_block", "Muir Glacier fork block"),
    ("berlin_block", "Berlin fork block"),
    ("london_block", "London fork block"),
    ("arrow_glacier_block", "Arrow Glacier fork block"),
    ("gray_glacier_block", "Gray Glacier fork block"),
    ("merge_netsplit_block", "Merge netsplit fork block"),
)
_TIME_CHECKS = (
    ("shanghai_time", "Shanghai fork timestamp"),
    ("cancun_time", "Cancun fork timestamp"),
    ("prague_time", "Prague fork timestamp"),
    ("osaka_time", "Osaka fork timestamp"),
    ("bpo1_time", "BPO1 fork timestamp"),
    ("bpo2_time", "BPO2 fork timestamp"),
    ("bpo3_time", "BPO3 fork timestamp"),
    ("bpo4_time", "BPO4 fork timestamp"),
    ("bpo5_time", "BPO5 fork timestamp"),
    ("amsterdam_time", "Amsterdam fork timestamp"),
    ("bogota_time", "Bogota fork timestamp"),
)


@dataclass(eq=False)
class ConfigCompatError(ChainError):
    """The new config would alter blocks already stored (geth ``params.ConfigCompatError``)."""

    what: str
    stored_block: int | None = None
    new_block: int | None = None
    stored_time: int | None = None
    new_time: int | None = None
    rewind_to_block: int = 0
    rewind_to_time: int = 0
    by_time: bool = False

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        def show(value: int | None) -> str:
            return "nil" if value is None else str(value)

        if not self.by_time:  # geth prints a nil *big.Int as <nil>
            return (f"mismatching {self.what} in database (have block "
                    f"{'<nil>' if self.stored_block is None else self.stored_block}, want block "
                    f"{'<nil>' if self.new_block is None else self.new_block}, rewindto block {self.rewind_to_block})")
        return (f"mismatching {self.what} in database (have timestamp {show(self.stored_time)}, "
                f"want timestamp {show(self.new_time)}, rewindto timestamp {self.rewind_to_time})")


def _rewind_point(stored: int | None, new: int | None) -> int:
    if stored is None:
        rew = new
    elif new is None or stored < new:
        rew = stored
    else:
        rew = new
    return rew - 1 if rew else 0


def _block_error(what: str, stored: int | None, new: int | None) -> ConfigCompatError:
    return ConfigCompatError(what, stored_block=stored, new_block=new, rewind_to_block=_rewind_point(stored, new))


def _time_error(what: str, stored: int | None, new: int | None) -> ConfigCompatError:
    return ConfigCompatError(what, stored_time=stored, new_time=new, rewind_to_time=_rewind_point(stored, new),
                             by_time=True)


def _forked(fork: int | None, head: int) -> bool:
    return fork is not None and fork <= head


def _incompatible(stored: int | None, new: int | None, head: int) -> bool:
    return (_forked(stored, head) or _forked(new, head)) and stored != new


def _check_once(old: ChainConfig, new: ChainConfig, number: int, time: int) -> ConfigCompatError | None:
    for attr, what in _BLOCK_CHECKS:
        a, b = getattr(old, attr), getattr(new, attr)
        if attr == "petersburg_block" and _incompatible(a, b, number):
            # geth allows Petersburg in the past only when it equals Constantinople
            if _incompatible(old.constantinople_block, b, number):
                return _block_error(what, a, b)
            continue
        if _incompatible(a, b, number):
            return _block_error(what, a, b)
        if attr == "dao_fork_block" and _forked(a, number) and old.dao_fork_support != new.dao_fork_support:
            return _block_error("DAO fork support flag", a, b)
        if attr == "eip158_block" and _forked(a, number) and old.chain_id != new.chain_id:
            return _block_error("EIP158 chain ID", a, b)
    for attr, what in _TIME_CHECKS:
        a, b = getattr(old, attr), getattr(new, attr)
        if _incompatible(a, b, time):
            return _time_error(what, a, b)
    return None


def check_compatible(old: ChainConfig, new: ChainConfig, head_number: int, head_time: int) -> ConfigCompatError | None:
    """The lowest conflict between ``old`` (stored) and ``new`` at the stored head, or None.

    As geth, the check repeats from each rewind point until the point stops moving, so the
    error names the earliest block or time the chain would have to go back to.
    """
    number, time = head_number, head_time
    last: ConfigCompatError | None = None
    while True:
        err = _check_once(old, new, number, time)
        if err is None or (last is not None and err.rewind_to_block == last.rewind_to_block
                           and err.rewind_to_time == last.rewind_to_time):
            break
        last = err
        if err.rewind_to_time > 0:
            time = err.rewind_to_time
        else:
            number = err.rewind_to_block
    return last


# geth CheckConfigForkOrder's list: (attribute, geth's name, by timestamp, optional)
_FORK_ORDER = (
    ("homestead_block", "homesteadBlock", False, False), ("dao_fork_block", "daoForkBlock", False, True),
    ("eip150_block", "eip150Block", False, False), ("eip155_block", "eip155Block", False, False),
    ("eip158_block", "eip158Block", False, False), ("byzantium_block", "byzantiumBlock", False, False),
    ("constantinople_block", "constantinopleBlock", False, False),
    ("petersburg_block", "petersburgBlock", False, False), ("istanbul_block", "istanbulBlock", False, False),
    ("muir_glacier_block", "muirGlacierBlock", False, True), ("berlin_block", "berlinBlock", False, False),
    ("london_block", "londonBlock", False, False), ("arrow_glacier_block", "arrowGlacierBlock", False, True),
    ("gray_glacier_block", "grayGlacierBlock", False, True),
    ("merge_netsplit_block", "mergeNetsplitBlock", False, True), ("shanghai_time", "shanghaiTime", True, False),
    ("cancun_time", "cancunTime", True, True), ("prague_time", "pragueTime", True, True),
    ("osaka_time", "osakaTime", True, True), ("bpo1_time", "bpo1", True, True), ("bpo2_time", "bpo2", True, True),
    ("amsterdam_time", "amsterdam", True, True), ("bogota_time", "bogota", True, True),
    ("bpo3_time", "bpo3", True, True), ("bpo4_time", "bpo4", True, True), ("bpo5_time", "bpo5", True, True),
)
_BLOB_FORKS = (("cancun", "cancun_time"), ("prague", "prague_time"), ("bpo1", "bpo1_time"), ("bpo2", "bpo2_time"),
               ("bpo3", "bpo3_time"), ("bpo4", "bpo4_time"), ("bpo5", "bpo5_time"))


def check_fork_order(config: ChainConfig) -> str | None:
    """geth ``CheckConfigForkOrder``: no fork skipped or scheduled before its predecessor; its words, or None."""
    last: tuple[str, int | None, bool] | None = None  # (name, activation, by timestamp)
    for attr, name, by_time, optional in _FORK_ORDER:
        at = getattr(config, attr)
        unit = "timestamp" if by_time else "block"
        if last is not None:
            last_name, last_at, last_by_time = last
            if last_at is None and at is not None:
                return f"unsupported fork ordering: {last_name} not enabled, but {name} enabled at {unit} {at}"
            if last_at is not None and at is not None:
                if last_by_time == by_time and last_at > at:
                    return (f"unsupported fork ordering: {last_name} enabled at {unit} {last_at}, "
                            f"but {name} enabled at {unit} {at}")
                if last_by_time and not by_time:
                    return (f"unsupported fork ordering: {last_name} used timestamp ordering, "
                            f"but {name} reverted to block ordering")
        if not optional or at is not None:
            last = (name, at, by_time)
    for fork, attr in _BLOB_FORKS:
        if getattr(config, attr) is not None and fork not in config.blob_schedule:
            return f'invalid chain configuration: missing entry for fork "{fork}" in blobSchedule'
    return None


def update_stored_config(db: KeyValueStore, genesis_hash: bytes, genesis_json: Mapping[str, Any]) -> None:
    """Store the genesis file's config over the stored one when the stored head allows it.

    geth ``SetupGenesisBlockWithOverride``: a fork the head has not reached may move; one it
    passed raises ``ConfigCompatError`` (only while the head is past block 0 / time 0: a
    chain still at genesis may take any schedule).
    """
    stored_json = rawdb.read_chain_config_json(db, genesis_hash)
    new_json = genesis_json.get("config")
    if stored_json is None or not isinstance(new_json, Mapping) or stored_json == new_json:
        return
    try:
        stored_config = ChainConfig.from_json(stored_json)
    except ChainConfigError as exc:
        raise ChainError(f"stored chain config is invalid: {exc}") from None
    new_config = ChainConfig.from_json(new_json)
    order = check_fork_order(new_config)  # geth sanity-checks the new schedule before comparing
    if order is not None:
        raise ChainError(order)
    head_hash = rawdb.read_head_header_hash(db)
    number = None if head_hash is None else rawdb.read_header_number(db, head_hash)
    head = None if number is None or head_hash is None else rawdb.read_header(db, head_hash, number)
    if head is None:
        raise ChainError("missing head header")
    err = check_compatible(stored_config, new_config, head.number, head.time)
    if err is not None and ((head.number != 0 and err.rewind_to_block != 0)
                            or (head.time != 0 and err.rewind_to_time != 0)):
        raise err
    batch = db.new_batch()
    rawdb.write_genesis_json(batch, genesis_hash, dict(genesis_json))
    batch.write()
    log.info("Stored chain config updated", extra=kv(genesis=genesis_hash))


__all__ = ["ConfigCompatError", "check_compatible", "check_fork_order", "update_stored_config"]
