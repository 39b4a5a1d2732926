"""Block execution: the ``Executor`` interface, its py-evm implementation, and state checks.

``create_executor`` is the one place that names the engine; everything else talks to
``Executor`` (see ``api``). py-evm is imported only when an executor is created, so
``--noexec`` nodes and the chain-file commands that do not execute never load it.
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


def create_executor(
    config: ChainConfig, state_db: StateDatabase, get_header: Callable[[bytes, int], Header | None]
) -> Executor:
    """The default engine (py-evm) for a chain; ``ExecutionError`` if it is not installed."""
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
    "validate_state",
]
