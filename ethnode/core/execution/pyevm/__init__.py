"""The py-evm engine behind ``ethnode.core.execution.Executor``.

Only this package imports ``eth`` (py-evm): it maps the chain config to py-evm's fork
classes, adapts the state database to py-evm's key-value API and drives py-evm's
``State`` tx by tx. Block-level rules (system calls, withdrawals, requests, rewards,
receipts) are done here on ethnode's types rather than through py-evm's ``VM``, whose
header and chain-database classes would duplicate ours.
"""

from ethnode import recursionlimit
from ethnode.core.execution.pyevm.executor import PyEVMExecutor
from ethnode.core.execution.pyevm.forks import SUPPORTED_FORKS, fork_for

# Importing py-evm (and py_ecc through it) raised the process's recursion limit to 100000.
recursionlimit.cap()

__all__ = ["PyEVMExecutor", "SUPPORTED_FORKS", "fork_for"]
