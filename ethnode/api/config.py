"""``NodeConfig``: everything ``ethnode.api.EthNode`` needs, as one dataclass with safe defaults.

The defaults make a private observer: in memory, listening on loopback only, no discovery,
no NAT, no sync. A node on a public network says so (``network="mainnet"``, discovery on,
a public ``listen_addr``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ethnode.api.subprotocol import SubProtocol
from ethnode.core.networks import NETWORKS
from ethnode.errors import EthnodeError
from ethnode.eth.protocols.eth.protocol import SUPPORTED_VERSIONS


class ConfigError(EthnodeError, ValueError):
    """A NodeConfig that cannot describe a node (one line naming the field)."""


@dataclass
class NodeConfig:
    """How to build an ``EthNode``.

    Chain: ``network`` (a preset: "mainnet", "sepolia", "hoodi") or ``genesis`` (a genesis
    file path or its decoded JSON); neither is fine for ``eth_versions=()`` (p2p only).
    Storage: ``datadir`` None keeps the chain in memory (the genesis state is built at
    start: seconds for mainnet's allocation).
    """

    datadir: Path | str | None = None
    network: str | None = None
    genesis: Path | str | Mapping[str, Any] | None = None
    network_id: int | None = None  # None: the chain id (geth's default for custom chains)
    listen_addr: str = "127.0.0.1:0"  # TCP host:port; port 0 picks a free one; "" does not listen
    bootnodes: Sequence[str] = ()  # enode:// URLs or enr: records for discovery (a network preset's by default)
    static_nodes: Sequence[str] = ()  # dialed at start and redialed when they drop
    max_peers: int = 50
    discovery: bool = False  # discv4 and discv5 on the listening port (UDP), as geth's defaults
    eth_versions: Sequence[int] = SUPPORTED_VERSIONS  # () for a node without eth
    sync: bool = False  # follow the best peer's chain (False: an observer that never downloads)
    execute: bool = False  # execute blocks it imports (needs the genesis state; off for an observer)
    nodekey_hex: str | None = None  # None: a key in <datadir>/ethnode/nodekey, or a fresh one in memory
    identity: str | None = None  # appended to the client id in Hello
    protocols: Sequence[SubProtocol] = field(default_factory=tuple)  # extra sub-protocols offered in Hello

    def __post_init__(self) -> None:
        if self.network is not None and self.network not in NETWORKS:
            raise ConfigError(f"unknown network {self.network!r} (known: {', '.join(sorted(NETWORKS))})")
        if self.network is not None and self.genesis is not None:
            raise ConfigError("give network or genesis, not both")
        if self.max_peers < 0:
            raise ConfigError("max_peers must be >= 0")
        if self.eth_versions:
            unknown = sorted(set(self.eth_versions) - set(SUPPORTED_VERSIONS))
            if unknown:
                raise ConfigError(f"unsupported eth versions {unknown} (supported: {sorted(SUPPORTED_VERSIONS)})")
            if self.network is None and self.genesis is None and self.datadir is None:
                raise ConfigError("eth needs a chain: give network, genesis or a datadir holding one")

    def discovery_bootnodes(self) -> Sequence[str]:
        """The bootnodes discovery starts from: the given ones, else a preset's (as geth's ``--sepolia``)."""
        if not self.bootnodes and self.discovery and self.network is not None:
            return NETWORKS[self.network].bootnodes
        return self.bootnodes

    def genesis_json(self) -> dict[str, Any] | None:
        """The genesis as decoded JSON (None: whatever the datadir holds)."""
        if self.network is not None:
            return NETWORKS[self.network].genesis_json()
        if self.genesis is None:
            return None
        if isinstance(self.genesis, Mapping):
            return dict(self.genesis)
        path = Path(self.genesis).expanduser()
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"genesis file {path}: {exc.strerror or exc}") from None
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"genesis file {path}: invalid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ConfigError(f"genesis file {path}: not a JSON object")
        return obj


__all__ = ["NodeConfig", "ConfigError"]
