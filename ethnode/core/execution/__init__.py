"""Block execution: the ``Executor`` interface, its two engines, and state checks.

``create_executor`` is the one place that names the engine; everything else talks to
``Executor`` (see ``api``). The compiled engine is revm in the Rust extension; py-evm is
its pure twin (through Prague), chosen when the extension is absent or
``ETHNODE_NO_EXTENSIONS`` is set. Engines are imported only when an executor is created, so
``--noexec`` nodes and the chain-file commands that do not execute never load them.
"""

from __future__ import annotations

from collections.abc import Callable

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.execution.api import (
    BlockBuilder,
    BlockEnv,
    BlockResult,
    CallMessage,
    CallPreconditionError,
    CallResult,
    CallTimeoutError,
    ExecutionError,
    Executor,
    IntrinsicGasError,
    MissingParentStateError,
    TxExecutionError,
    UnsupportedForkError,
    VMErrorKind,
)
from ethnode.core.execution.validate import validate_state
from ethnode.core.state.database import StateDatabase
from ethnode.core.types.header import Header

_ENGINE_MODULES = ("eth", "eth_utils", "eth_keys", "eth_typing", "trie", "rlp", "py_ecc", "lru", "cached_property")


REVM = "revm"
PYEVM = "py-evm"


def compiled_engine_error() -> str | None:
    """Why revm cannot be used here (None when it can)."""
    from ethnode._native import rust_module

    mod, error = rust_module()
    if mod is None:
        return error
    if not hasattr(mod, "RevmBlock"):
        return "the Rust extension was built without the revm engine"
    return None


def default_engine() -> str:
    """revm when the Rust extension has it, else py-evm (recorded as the execution backend)."""
    from ethnode._native import COMPILED, PURE, Backend, record

    error = compiled_engine_error()
    record("execution", Backend(PURE, error) if error else Backend(COMPILED))
    return PYEVM if error else REVM


def engine_description() -> str:
    """The default engine with its release, for ``ethnode-fast version`` ("revm 43.0.3, ...")."""
    if default_engine() == REVM:
        from ethnode.core.execution.revm.spec import engine_version

        return engine_version()
    try:
        from ethnode.core.execution.pyevm.forks import engine_version as pyevm_version
    except ModuleNotFoundError as exc:
        return f"py-evm not installed (missing module {exc.name}): only --noexec works"
    return f"{pyevm_version()} (runs up to prague)"


def create_executor(
    config: ChainConfig,
    state_db: StateDatabase,
    get_header: Callable[[bytes, int], Header | None],
    engine: str | None = None,
) -> Executor:
    """The engine for a chain (``engine`` or the default); ``ExecutionError`` if it is not installed."""
    engine = engine or default_engine()
    if engine == REVM:
        error = compiled_engine_error()
        if error:
            raise ExecutionError(f"the revm engine is not available: {error}")
        from ethnode.core.execution.revm import RevmExecutor

        return RevmExecutor(config, state_db, get_header)
    if engine != PYEVM:
        raise ExecutionError(f"unknown execution engine {engine!r} (revm or py-evm)")
    try:
        from ethnode.core.execution.pyevm import PyEVMExecutor
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in _ENGINE_MODULES:
            raise
        raise ExecutionError(
            f"block execution needs py-evm (pip install 'py-evm>=0.12.1b1'; missing module {exc.name}), "
            "or run with --noexec"
        ) from None
    return PyEVMExecutor(config, state_db, get_header)


__all__ = [
    "Executor",
    "BlockBuilder",
    "BlockEnv",
    "BlockResult",
    "ExecutionError",
    "UnsupportedForkError",
    "MissingParentStateError",
    "TxExecutionError",
    "CallMessage",
    "CallResult",
    "VMErrorKind",
    "CallPreconditionError",
    "IntrinsicGasError",
    "CallTimeoutError",
    "create_executor",
    "default_engine",
    "engine_description",
    "compiled_engine_error",
    "REVM",
    "PYEVM",
    "validate_state",
]
