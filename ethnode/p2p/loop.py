"""The event loop ethnode runs on: uvloop when it is installed, else asyncio's own.

uvloop roughly sextuples loopback message round trips with an asyncio Protocol (see
DESIGN.md), so it is preferred everywhere; ``ETHNODE_NO_UVLOOP=1`` opts out, e.g. to
compare the two or to debug with asyncio's slow-callback warnings.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_NO_UVLOOP = os.environ.get("ETHNODE_NO_UVLOOP", "").strip().lower() not in ("", "0", "false", "no")


def _uvloop() -> Any:
    if _NO_UVLOOP:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def loop_implementation() -> str:
    """``"uvloop"`` or ``"asyncio"``: what ``new_event_loop`` builds."""
    return "uvloop" if _uvloop() is not None else "asyncio"


def new_event_loop() -> asyncio.AbstractEventLoop:
    uvloop = _uvloop()
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """``asyncio.run`` on the preferred loop."""
    with asyncio.Runner(loop_factory=new_event_loop, debug=debug) as runner:
        return runner.run(main)


__all__ = ["new_event_loop", "run", "loop_implementation"]
