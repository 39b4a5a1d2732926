"""Event-loop lag: how late a timer fires, the one number that says the single loop is overloaded.

Every ``interval`` seconds the probe sleeps and measures how much later than asked it
woke up. Everything in the node shares one loop (DESIGN: one asyncio loop), so a handler
that blocks it (a long import batch, a big decode) shows here before it shows as peers
timing out. The interval is short (50 ms) because a probe only sees a stall that covers
its own wake-up: once a second, a 100 ms stall would be missed nine times in ten. Twenty
timer wake-ups a second cost the loop well under a millisecond.
"""

from __future__ import annotations

import asyncio

from ethnode.metrics.registry import DEFAULT_REGISTRY, Registry

LAG_INTERVAL = 0.05  # seconds between probes
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LoopLagProbe:
    def __init__(self, registry: Registry = DEFAULT_REGISTRY, interval: float = LAG_INTERVAL) -> None:
        self.interval = interval
        self.last = registry.gauge("event_loop_lag_seconds", "how late the last timer of the lag probe fired")
        self.hist = registry.histogram("event_loop_lag_seconds_distribution", "event loop lag per probe",
                                       LAG_BUCKETS)
        self.peak = registry.gauge("event_loop_lag_max_seconds", "the largest lag the probe has seen")
        self._task: asyncio.Task[None] | None = None
        self.probed = asyncio.Event()  # set after each probe (tests await it instead of sleeping)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - started - self.interval)
            self.last.set(lag)
            self.hist.observe(lag)
            if lag > self.peak.value:
                self.peak.set(lag)
            self.probed.set()


__all__ = ["LoopLagProbe", "LAG_INTERVAL"]
