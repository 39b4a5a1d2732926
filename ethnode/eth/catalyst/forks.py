"""The newest fork at a timestamp, by geth's names (``params.ChainConfig.LatestFork``).

The Engine API's versioned methods are each valid for a set of forks; geth asks which fork
is the latest at the payload's timestamp and compares names, BPO forks included.
"""

from __future__ import annotations

from ethnode.core.chainconfig import ChainConfig

# Newest first: the first one active at the timestamp names it (geth LatestFork order).
_TIME_FORKS = (
    ("bogota", "bogota_time"), ("bpo5", "bpo5_time"), ("bpo4", "bpo4_time"), ("bpo3", "bpo3_time"),
    ("amsterdam", "amsterdam_time"), ("bpo2", "bpo2_time"), ("bpo1", "bpo1_time"), ("osaka", "osaka_time"),
    ("prague", "prague_time"), ("cancun", "cancun_time"), ("shanghai", "shanghai_time"),
)


def latest_fork(config: ChainConfig, timestamp: int) -> str:
    """"paris" before Shanghai on a merged chain (the Engine API only sees post-merge blocks)."""
    if config.london_block is not None:
        for name, attr in _TIME_FORKS:
            at = getattr(config, attr, None)
            if at is not None and at <= timestamp:
                return name
    return "paris"


__all__ = ["latest_fork"]
