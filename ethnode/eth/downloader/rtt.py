"""How long to wait for a sync request before calling the peer a staller (geth msgrate, simplified).

One round-trip estimate for the whole sync, moved a quarter of the way toward each
measured response time and kept within 2..20 s; a request may take three estimates, at
most a minute. A fresh estimate starts at the 20 s maximum, so a slow first answer is
not punished; it settles within a few responses.
"""

from __future__ import annotations

RTT_MIN_ESTIMATE = 2.0  # seconds; geth rttMinEstimate
RTT_MAX_ESTIMATE = 20.0  # seconds; geth rttMaxEstimate
TTL_SCALING = 3  # request timeout = this many round trips; geth ttlScaling
TTL_LIMIT = 60.0  # seconds; geth ttlLimit
TUNING_IMPACT = 0.25  # weight of a new measurement; geth qosTuningImpact


class RoundTrip:
    """The round-trip estimate; ``fixed`` pins the timeout (tests, tools)."""

    def __init__(self, fixed: float | None = None) -> None:
        self.estimate = RTT_MAX_ESTIMATE
        self.fixed = fixed

    def update(self, elapsed: float) -> None:
        value = (1 - TUNING_IMPACT) * self.estimate + TUNING_IMPACT * elapsed
        self.estimate = min(max(value, RTT_MIN_ESTIMATE), RTT_MAX_ESTIMATE)

    def timeout(self) -> float:
        if self.fixed is not None:
            return self.fixed
        return min(TTL_LIMIT, TTL_SCALING * self.estimate)


__all__ = ["RoundTrip", "RTT_MIN_ESTIMATE", "RTT_MAX_ESTIMATE", "TTL_SCALING", "TTL_LIMIT", "TUNING_IMPACT"]
