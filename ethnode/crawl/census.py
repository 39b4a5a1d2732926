"""The census beside nodes.json: what each node said when dialed, and the tallies over them.

Per node (by id) the last probe's result; the summary counts over those: clients (the
name in Hello's client id) and client versions, capabilities, network ids, fork IDs,
genesis hashes, and dial failures by reason. Kept per node rather than as running
totals so a resumed crawl counts each node once, with what it said most recently.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from ethnode.crawl.nodeset import NodeSetError, format_time, now, write_json
from ethnode.crawl.probe import ProbeResult, fork_id_text
from ethnode.p2p.enode import Node


def client_name_version(client_id: str) -> tuple[str, str]:
    """``Geth/v1.17.10-stable-…/linux-amd64/go1.24`` -> (``Geth``, ``v1.17.10-stable-…``).

    The name is the first part; the version is the first later part that looks like one
    (``v`` and a digit), which skips geth's optional ``--identity`` part.
    """
    parts = client_id.split("/")
    name = parts[0] or "(empty)"
    for part in parts[1:]:
        if len(part) > 1 and part[0] in "vV" and part[1].isdigit():
            return name, part
    return name, "(unknown)"


class Census:
    """The last probe of each node, and what they add up to."""

    def __init__(self) -> None:
        self.results: dict[bytes, tuple[str, str, ProbeResult]] = {}  # id -> (enode URL, checked at, result)

    def record(self, node: Node, result: ProbeResult) -> None:
        self.results[node.id] = (node.enode_url(), format_time(now()), result)

    def forget(self, node_id: bytes) -> None:
        self.results.pop(node_id, None)

    def summary(self) -> dict[str, Any]:
        clients: Counter[str] = Counter()
        versions: Counter[str] = Counter()
        caps: Counter[str] = Counter()
        networks: Counter[str] = Counter()
        forks: Counter[str] = Counter()
        genesis: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        ok = 0
        for _, _, r in self.results.values():
            if r.client_id is not None:
                name, version = client_name_version(r.client_id)
                clients[name] += 1
                versions[f"{name}/{version}"] += 1
                caps.update(r.caps)
            if r.network_id is not None:
                assert r.fork_id is not None and r.genesis is not None
                networks[str(r.network_id)] += 1
                forks[fork_id_text(r.fork_id)] += 1
                genesis["0x" + r.genesis.hex()] += 1
            if r.error is None:
                ok += 1
            else:
                errors[r.error] += 1
        return {
            "nodes": len(self.results), "ok": ok, "failed": len(self.results) - ok,
            "clients": dict(clients.most_common()), "clientVersions": dict(versions.most_common()),
            "capabilities": dict(caps.most_common()), "networkIds": dict(networks.most_common()),
            "forkIds": dict(forks.most_common()), "genesis": dict(genesis.most_common()),
            "dialErrors": dict(errors.most_common()),
        }

    def to_json(self) -> dict[str, Any]:
        nodes = {}
        for node_id in sorted(self.results):
            url, checked, result = self.results[node_id]
            nodes[node_id.hex()] = {"enode": url, "checked": checked, **result.to_json()}
        return {"summary": self.summary(), "nodes": nodes}

    @classmethod
    def from_json(cls, obj: Any) -> Census:
        census = cls()
        if not isinstance(obj, dict) or not isinstance(obj.get("nodes", {}), dict):
            raise NodeSetError("census file must hold a JSON object with 'nodes'")
        for key, value in obj.get("nodes", {}).items():
            try:
                census.results[bytes.fromhex(key)] = (str(value["enode"]), str(value["checked"]),
                                                      ProbeResult.from_json(value))
            except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
                raise NodeSetError(f"census: invalid node {key[:16]}: {exc!r}") from None
        return census

    def save(self, path: str | os.PathLike[str]) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Census:
        try:
            obj = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise NodeSetError(f"{path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise NodeSetError(f"{path}: invalid JSON: {exc}") from None
        return cls.from_json(obj)


__all__ = ["Census", "client_name_version"]
