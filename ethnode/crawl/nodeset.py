"""geth's nodes.json (``cmd/devp2p/nodeset.go``): ``{"<id hex>": {"seq", "record", "score", ...}}``.

The file is geth's so that either tool can resume the other's crawl. Times are Go's
``time.Time`` JSON (RFC 3339, UTC, whole seconds as the crawler truncates them); a zero
time is Go's zero (``0001-01-01T00:00:00Z``) because ``omitempty`` never omits a struct.
``score`` is omitted when 0, as ``omitempty`` does for an int.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ethnode.errors import EthnodeError
from ethnode.p2p.enode import Node, NodeURLError, parse_node

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
JSON_INDENT = 4  # geth jsonIndent: four spaces


class NodeSetError(EthnodeError):
    """A nodes.json that cannot be read; one line for the user."""


def format_time(t: datetime | None) -> str:
    if t is None:
        return GO_ZERO_TIME
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        raise ValueError(f"time must be a string, not {type(text).__name__}")
    if text.startswith("0001-01-01T00:00:00"):
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


def now() -> datetime:
    """geth truncNow: UTC, whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


def record_text(node: Node) -> str:
    """geth Node.MarshalText: the ``enr:`` text of a signed record, else the enode URL."""
    return node.record.to_text() if node.record is not None else node.enode_url()


@dataclass
class NodeEntry:
    """One node of the set: its record and its liveness history (geth nodeJSON)."""

    node: Node
    score: int = 0  # +1 per answered check, halved per missed one; dropped at 0
    first_response: datetime | None = None
    last_response: datetime | None = None
    last_check: datetime | None = None

    @property
    def seq(self) -> int:
        return self.node.seq

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "record": record_text(self.node)}
        if self.score:
            out["score"] = self.score
        out["firstResponse"] = format_time(self.first_response)
        out["lastResponse"] = format_time(self.last_response)
        out["lastCheck"] = format_time(self.last_check)
        return out


class NodeSet(dict[bytes, NodeEntry]):
    """Entries by node id (32 bytes, keccak of the public key)."""

    def add(self, *nodes: Node) -> None:
        """geth nodeSet.add: make sure each node is present, its record replaced by this one."""
        for n in nodes:
            entry = self.get(n.id)
            if entry is None:
                self[n.id] = NodeEntry(n)
            else:
                entry.node = n

    def nodes(self) -> list[Node]:
        """The records, sorted by id (geth nodeSet.nodes)."""
        return [self[i].node for i in sorted(self)]

    def to_json(self) -> dict[str, Any]:
        return {i.hex(): self[i].to_json() for i in sorted(self)}

    @classmethod
    def from_json(cls, obj: Any) -> NodeSet:
        if not isinstance(obj, dict):
            raise NodeSetError("nodes file must hold a JSON object")
        out = cls()
        for key, value in obj.items():
            try:
                node_id = bytes.fromhex(key.removeprefix("0x"))
                if len(node_id) != 32:
                    raise ValueError("node id must be 32 bytes of hex")
                if not isinstance(value, dict) or not isinstance(value.get("record"), str):
                    raise ValueError("entry needs a 'record' string")
                node = parse_node(value["record"])
                score = value.get("score", 0)
                seq = value.get("seq", 0)
                if not isinstance(score, int) or not isinstance(seq, int):
                    raise ValueError("'score' and 'seq' must be integers")
                entry = NodeEntry(
                    node, score,
                    *(parse_time(value.get(k, GO_ZERO_TIME)) for k in ("firstResponse", "lastResponse", "lastCheck")),
                )
            except (ValueError, NodeURLError) as exc:
                raise NodeSetError(f"invalid node {key[:16]}: {exc}") from None
            # geth nodeSet.verify
            if node.id != node_id:
                raise NodeSetError(f"invalid node {key}: ID does not match ID {node.id.hex()} in record")
            if node.seq != seq:
                raise NodeSetError(f"invalid node {key}: 'seq' does not match seq {node.seq} from record")
            out[node_id] = entry
        return out


def load_nodes(path: str | os.PathLike[str]) -> NodeSet:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NodeSetError(f"{path}: {exc.strerror or exc}") from None
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise NodeSetError(f"{path}: invalid JSON: {exc}") from None
    return NodeSet.from_json(obj)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write through a temporary file and rename, so an interrupted crawl never leaves half a file."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=JSON_INDENT) + "\n", encoding="utf-8")
    os.replace(tmp, target)


__all__ = ["NodeEntry", "NodeSet", "NodeSetError", "load_nodes", "write_json", "format_time", "parse_time", "now",
           "GO_ZERO_TIME"]
