"""The ``web3_`` namespace (geth ``node/api.go`` web3API): client version and keccak256."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ethnode.crypto.keccak import keccak256
from ethnode.rpc.hexutil import data, data_arg


class Web3API:
    def __init__(self, client_version: Callable[[], str]) -> None:
        self._client_version = client_version

    def client_version(self) -> str:
        """The name peers see in our Hello, e.g. ``ethnode/v0.1.0/linux-x86_64/python3.11``."""
        return self._client_version()

    def sha3(self, value: Any) -> str:
        return data(keccak256(data_arg(0, value)))


__all__ = ["Web3API"]
