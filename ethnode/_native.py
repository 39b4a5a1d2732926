"""The backend seam: which implementation each hot path runs on, decided once at import.

Every hot path has a compiled implementation (Cython in ``pyext/`` or Rust in ``rust/``)
and a pure-Python twin with the same API, bytes and errors. The compiled one is used when
it imports; ``ETHNODE_NO_EXTENSIONS=1`` forces the twins everywhere (the compiled modules
are then not even imported). ``backends()`` reports the outcome, with the import error
when a compiled module was wanted but failed, so a slow node can be diagnosed from
``ethnode-fast version`` alone.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

FORCE_PURE = os.environ.get("ETHNODE_NO_EXTENSIONS", "").strip().lower() not in ("", "0", "false", "no")

COMPILED = "compiled"
PURE = "pure"

# The Rust extension; hot paths that live in it name it as their compiled module.
RUST_MODULE = "ethnode._rust"


class Backend(str):
    """``"compiled"`` or ``"pure"``; ``error`` holds why the compiled one was not used."""

    error: str | None

    def __new__(cls, kind: str, error: str | None = None) -> Backend:
        self = super().__new__(cls, kind)
        self.error = error
        return self

    def describe(self) -> str:
        if self.error:
            return f"{self} ({self.error})"
        return str(self)


_selected: dict[str, Backend] = {}


def _import_compiled(module: str) -> tuple[ModuleType | None, str | None]:
    if FORCE_PURE:
        return None, "ETHNODE_NO_EXTENSIONS is set"
    try:
        return importlib.import_module(module), None
    except ImportError as exc:
        return None, f"{type(exc).__name__}: {exc}"


def select(hot_path: str, compiled: str, pure: str) -> ModuleType:
    """Import the implementation of ``hot_path`` and record which one it is."""
    mod, error = _import_compiled(compiled)
    if mod is None:
        mod = importlib.import_module(pure)
        _selected[hot_path] = Backend(PURE, error)
    else:
        _selected[hot_path] = Backend(COMPILED)
    return mod


def record(hot_path: str, backend: Backend) -> None:
    """Record the backend of a hot path chosen outside ``select`` (the execution engine)."""
    _selected[hot_path] = backend


def backends() -> dict[str, Backend]:
    """Hot path -> backend, for every hot path imported so far (importing ethnode loads all)."""
    return dict(_selected)


def slow_paths_warning() -> str | None:
    """One log line when hot paths run on their pure twins without being asked to, else None.

    An install without a C compiler or cargo still works, pure; a user should hear that it is
    slower (several times on the RLPx and RLP paths) and why, not find out from a profiler.
    """
    pure = {path: b for path, b in _selected.items() if b == PURE}
    if not pure or FORCE_PURE:
        return None
    reasons = sorted({b.error for b in pure.values() if b.error})
    reason = reasons[0] if reasons else "not built"
    return (f"Hot paths run on pure Python, several times slower paths={','.join(sorted(pure))} "
            f"reason={reason!r} hint=\"ethnode-fast version; reinstall with a C compiler and cargo\"")


def implementation(kind: str, compiled: str, pure: str) -> ModuleType:
    """The ``"compiled"`` or ``"pure"`` module of a hot path, whatever was selected (tests, benchmarks).

    Raises ImportError when the compiled one is unavailable or forced off.
    """
    if kind == PURE:
        return importlib.import_module(pure)
    if kind == COMPILED:
        if FORCE_PURE:
            raise ImportError("ETHNODE_NO_EXTENSIONS is set")
        return importlib.import_module(compiled)
    raise ValueError(f"unknown implementation {kind!r}")


def rust_module() -> tuple[ModuleType | None, str | None]:
    """The Rust extension if it loads, else None and the reason."""
    return _import_compiled(RUST_MODULE)
