"""Keep the interpreter's recursion limit where the C stack can honour it.

py-evm raises the process-wide limit to 12288 (``EVM_RECURSION_LIMIT``: 1024 call frames
of about 12 Python frames each) and py_ecc, which it imports, to 100000. On CPython 3.11
the same limit also bounds C-level recursion (the JSON decoder, ``repr``, pickling), and
at 100000 levels those overflow the 8 MiB stack and kill the process. ``cap`` puts the
limit back to what py-evm needs plus headroom for the frames below the EVM (asyncio, RPC,
executor): measured here, every C-recursive builtin then ends in ``RecursionError`` on the
main thread and on threads alike, and a 1024-deep EVM call stack still executes.
"""

from __future__ import annotations

import sys

EVM_RECURSION_LIMIT = 1024 * 12  # py-evm's own figure (eth/__init__.py)
CALLER_HEADROOM = 1024  # frames below the EVM: event loop, RPC dispatch, executor
SAFE_RECURSION_LIMIT = EVM_RECURSION_LIMIT + CALLER_HEADROOM


def cap(limit: int = SAFE_RECURSION_LIMIT) -> int:
    """Lower the recursion limit to ``limit`` if something raised it above; returns the limit now."""
    if sys.getrecursionlimit() > limit:
        sys.setrecursionlimit(limit)
    return sys.getrecursionlimit()


__all__ = ["EVM_RECURSION_LIMIT", "SAFE_RECURSION_LIMIT", "cap"]
