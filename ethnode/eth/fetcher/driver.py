"""The asyncio side both fetch schedulers share: one timer, the request tasks, stopping.

The tx and blob schedulers are sans-IO (geth's fetchers' state machines, driven by a clock
they are handed); their drivers differ in what they do with the scheduler's actions, not in
how they keep time. One ``loop.call_at`` timer follows the scheduler's next deadline, each
request runs as a task the driver cancels on ``stop``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol


class ClockedScheduler(Protocol):
    def next_deadline(self) -> float | None: ...

    def tick(self, now: float) -> Sequence[Any]: ...


class SchedulerDriver:
    """Base of ``TxFetcher`` and ``BlobFetcher``: subclasses set ``scheduler`` and ``_apply``."""

    scheduler: ClockedScheduler

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def _apply(self, actions: Sequence[Any]) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Cancel the timer and the requests in flight; later hook calls do nothing."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _now(self) -> float:
        return self._loop_().time()

    def _loop_(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _start(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run one request as a task that ``stop`` cancels."""
        task = self._loop_().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm(self) -> None:
        """Keep one timer at the scheduler's next deadline."""
        deadline = self.scheduler.next_deadline()
        if deadline == self._timer_at or self.closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self._loop_().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if not self.closed:
            self._apply(self.scheduler.tick(self._now()))
