"""The compiled execution engine: revm in ``ethnode._rust``, with py-evm as its pure twin."""

from ethnode.core.execution.revm.executor import RevmBlockBuilder, RevmExecutor

__all__ = ["RevmExecutor", "RevmBlockBuilder"]
