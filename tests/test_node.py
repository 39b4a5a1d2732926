"""Node lifecycle: datadir lock, node key, service order, rollback and stop order."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ethnode.crypto.keys import PrivateKey
from ethnode.node import DatadirInUseError, DuplicateServiceError, Node, NodeConfig, NodeError, ServiceContext
from ethnode.node.lifecycle import ServiceNotFoundError


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


class Recorder:
    """Records start/stop calls, in order, across every service of a test."""

    def __init__(self) -> None:
        self.calls: list[str] = []


def make_service(name: str, rec: Recorder, fail_start: bool = False) -> type:
    class Svc:
        def __init__(self, ctx: ServiceContext) -> None:
            self.ctx = ctx
            rec.calls.append(f"build {name}")

        async def start(self) -> None:
            if fail_start:
                raise RuntimeError(f"{name} failed")
            rec.calls.append(f"start {name}")

        async def stop(self) -> None:
            rec.calls.append(f"stop {name}")

        def protocols(self) -> list[Any]:
            return [f"proto-{name}"]

        def apis(self) -> list[Any]:
            return []

    Svc.__name__ = f"Svc{name}"
    return Svc


def test_start_and_stop_order(tmp_path: Path) -> None:
    rec = Recorder()
    seen_protocols: list[Any] = []

    class FakeServer:
        def __init__(self, cfg: NodeConfig, key: PrivateKey, protocols: list[Any]) -> None:
            seen_protocols.extend(protocols)

        async def start(self) -> None:
            rec.calls.append("start server")

        async def stop(self) -> None:
            rec.calls.append("stop server")

    node = Node(NodeConfig(datadir=tmp_path), server_factory=FakeServer)
    for name in "ABC":
        node.register(make_service(name, rec))

    async def scenario() -> None:
        await node.start()
        assert node.running
        await node.stop()

    run(scenario())
    assert rec.calls == [
        "build A", "build B", "build C", "start server", "start A", "start B", "start C",
        "stop C", "stop B", "stop A", "stop server",
    ]
    assert seen_protocols == ["proto-A", "proto-B", "proto-C"]


def test_failed_start_rolls_back(tmp_path: Path) -> None:
    rec = Recorder()
    node = Node(NodeConfig(datadir=tmp_path))
    node.register(make_service("A", rec))
    node.register(make_service("B", rec))
    node.register(make_service("C", rec, fail_start=True))
    with pytest.raises(RuntimeError, match="C failed"):
        run(node.start())
    assert rec.calls[-2:] == ["stop B", "stop A"]
    assert not node.running
    # the lock was released: a new node on the same datadir starts
    again = Node(NodeConfig(datadir=tmp_path))
    run(again.start())
    run(again.stop())


def test_duplicate_service_kind(tmp_path: Path) -> None:
    rec = Recorder()
    svc = make_service("A", rec)
    node = Node(NodeConfig(datadir=tmp_path))
    node.register(svc)
    node.register(svc)
    with pytest.raises(DuplicateServiceError):
        run(node.start())


def test_context_finds_earlier_services(tmp_path: Path) -> None:
    rec = Recorder()
    first = make_service("A", rec)
    found: list[Any] = []

    def second(ctx: ServiceContext) -> Any:
        found.append(ctx.service(first))
        with pytest.raises(ServiceNotFoundError):
            ctx.service(int)
        assert ctx.resolve_path("chaindata") == tmp_path / "ethnode" / "chaindata"
        return make_service("B", rec)(ctx)

    node = Node(NodeConfig(datadir=tmp_path))
    node.register(first)
    node.register(second)
    run(node.start())
    assert found and type(found[0]) is first
    run(node.stop())


@pytest.mark.subprocess
def test_second_node_on_datadir_is_refused(tmp_path: Path) -> None:
    a = Node(NodeConfig(datadir=tmp_path))
    run(a.start())
    try:
        with pytest.raises(DatadirInUseError, match="datadir already used by another process"):
            run(Node(NodeConfig(datadir=tmp_path)).start())
        code = "import fcntl,os,sys; fd=os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX|fcntl.LOCK_NB)"
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path / "LOCK")], capture_output=True, timeout=30)
        assert other.returncode != 0 and b"BlockingIOError" in other.stderr
    finally:
        run(a.stop())


def test_node_key_created_once_and_stable(tmp_path: Path) -> None:
    node = Node(NodeConfig(datadir=tmp_path / "a" / "b"))
    run(node.start())
    key = node.node_key
    run(node.stop())
    path = tmp_path / "a" / "b" / "ethnode" / "nodekey"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for private in (tmp_path / "a", tmp_path / "a" / "b", path.parent):  # geth: MkdirAll(datadir, 0700)
        assert stat.S_IMODE(private.stat().st_mode) == 0o700, private
    assert stat.S_IMODE((tmp_path / "a" / "b" / "LOCK").stat().st_mode) == 0o600
    tmp_path = tmp_path / "a" / "b"
    again = Node(NodeConfig(datadir=tmp_path))
    run(again.start())
    assert again.node_key is not None and key is not None
    assert again.node_key.node_id == key.node_id
    run(again.stop())


def test_node_key_flags(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    node = Node(NodeConfig(nodekey_hex=key.to_hex()))
    assert node.load_node_key().node_id == key.node_id
    bad = tmp_path / "bad"
    bad.write_text("not hex")
    with pytest.raises(NodeError, match="invalid node key"):
        Node(NodeConfig(nodekey_file=bad)).load_node_key()
    with pytest.raises(NodeError, match="invalid node key"):
        Node(NodeConfig(nodekey_file=tmp_path / "missing")).load_node_key()
    with pytest.raises(ValueError, match="mutually exclusive"):
        NodeConfig(nodekey_file=bad, nodekey_hex=key.to_hex())
    assert Node(NodeConfig()).load_node_key().node_id != Node(NodeConfig()).load_node_key().node_id


def test_event_bus_drops_oldest() -> None:
    from ethnode.event import EventBus

    bus = EventBus()
    sub = bus.subscribe(str, maxsize=2)
    assert bus.post("a") == 1 and bus.post("b") == 1 and bus.post("c") == 1 and bus.post(1) == 0
    assert sub.dropped == 1
    assert run(sub.get()) == "b"
    sub.unsubscribe()
    assert bus.post("d") == 0
