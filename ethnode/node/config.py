"""Node configuration: where the node keeps its files and which key it uses.

Layout as geth's, with ``ethnode`` where geth says ``geth``: ``<datadir>/LOCK``,
``<datadir>/ethnode/nodekey``, ``<datadir>/ethnode/chaindata``. No datadir means an
ephemeral node: a fresh key in memory and nothing written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_NAME = "ethnode"  # geth: "geth", the instance directory under the datadir
NODEKEY_FILE = "nodekey"  # geth datadirPrivateKey


@dataclass
class NodeConfig:
    """What Node.start needs; services read their own sections from ``extra``."""

    datadir: Path | None = None
    name: str = DEFAULT_NAME
    identity: str | None = None  # appended to the client id, geth --identity
    nodekey_file: Path | None = None  # geth --nodekey
    nodekey_hex: str | None = None  # geth --nodekeyhex
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.datadir is not None:
            self.datadir = Path(self.datadir).expanduser().absolute()
        if self.nodekey_file is not None and self.nodekey_hex is not None:
            raise ValueError("--nodekey and --nodekeyhex are mutually exclusive")

    @property
    def instance_dir(self) -> Path | None:
        """``<datadir>/<name>``: where this node's own files live (None when ephemeral)."""
        return None if self.datadir is None else self.datadir / self.name

    def resolve_path(self, path: str) -> Path | None:
        """An instance-relative path made absolute; absolute paths pass through."""
        p = Path(path)
        if p.is_absolute():
            return p
        instance = self.instance_dir
        return None if instance is None else instance / p
