"""Node: geth's node.Node. Owns the datadir lock, the node key and the services.

Start order, as geth: lock the datadir, load or create the node key, build every
registered service, start the p2p server with all their protocols, then start the
services in registration order. If anything fails, what already started is stopped in
reverse order and the lock released, so a failed start leaves nothing running. Stop
runs in reverse order too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from ethnode.crypto.errors import CryptoError
from ethnode.crypto.keys import PrivateKey, load_private_key, save_private_key
from ethnode.errors import EthnodeError
from ethnode.event import EventBus
from ethnode.logctx import kv
from ethnode.node.config import NODEKEY_FILE, NodeConfig
from ethnode.node.datadir import DatadirLock
from ethnode.node.lifecycle import DuplicateServiceError, Service, ServiceConstructor, ServiceContext
from ethnode.privatefs import make_private_dirs

log = logging.getLogger("ethnode.node")


class NodeError(EthnodeError):
    """The node cannot start or was used in the wrong state."""


class Server(Protocol):
    """What the node needs of the p2p server (``ethnode.p2p.server.Server``)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ServerFactory = Callable[[NodeConfig, PrivateKey, list[Any]], Server]


class Node:
    """A node: services registered before start, run until stop."""

    def __init__(self, config: NodeConfig, server_factory: ServerFactory | None = None,
                 bus: EventBus | None = None, lock: DatadirLock | None = None) -> None:
        """``lock``: the datadir lock, already held by a caller that had to open the datadir's
        database before the node was built (``run --dev``); the node releases it at stop."""
        self.config = config
        self.bus = bus if bus is not None else EventBus()  # given when the server factory must post on it too
        self._constructors: list[ServiceConstructor] = []
        self._services: dict[type, Service] = {}
        self._started: list[Service] = []
        self._server_factory = server_factory
        self.server: Server | None = None
        self._lock: DatadirLock | None = lock
        self.node_key: PrivateKey | None = None
        self.running = False

    def register(self, constructor: ServiceConstructor) -> None:
        """Add a service constructor; called in registration order by start()."""
        if self.running:
            raise NodeError("cannot register a service on a running node")
        self._constructors.append(constructor)

    @property
    def services(self) -> dict[type, Service]:
        return dict(self._services)

    def load_node_key(self) -> PrivateKey:
        """geth's Config.NodeKey: --nodekeyhex, --nodekey FILE, ``<instance>/nodekey``, or new."""
        cfg = self.config
        try:
            if cfg.nodekey_hex is not None:
                return PrivateKey.from_hex(cfg.nodekey_hex)
            if cfg.nodekey_file is not None:
                return load_private_key(cfg.nodekey_file)
        except (CryptoError, ValueError, OSError) as exc:
            raise NodeError(f"invalid node key: {exc}") from None
        instance = cfg.instance_dir
        if instance is None:
            return PrivateKey.generate()
        path = instance / NODEKEY_FILE
        if path.exists():
            try:
                return load_private_key(path)
            except (CryptoError, ValueError, OSError) as exc:
                raise NodeError(f"invalid node key in {path}: {exc}") from None
        key = PrivateKey.generate()
        make_private_dirs(instance)
        save_private_key(key, path)
        log.info("Generated new node key path=%s", path)
        return key

    async def start(self) -> None:
        if self.running:
            raise NodeError("node already running")
        if self.config.datadir is not None:
            make_private_dirs(self.config.datadir)
            if self._lock is None or not self._lock.held:
                self._lock = DatadirLock(self.config.datadir)
                self._lock.acquire()
        try:
            self.node_key = self.load_node_key()
            self._build_services()
            protocols = [p for svc in self._services.values() for p in svc.protocols()]
            if self._server_factory is not None:
                self.server = self._server_factory(self.config, self.node_key, protocols)
                await self.server.start()
            for svc in self._services.values():
                await svc.start()
                self._started.append(svc)
        except BaseException:
            await self._teardown()
            raise
        self.running = True

    def _build_services(self) -> None:
        assert self.node_key is not None
        self._services = {}
        for constructor in self._constructors:
            ctx = ServiceContext(self.config, self.bus, self._services, self.node_key)
            svc = constructor(ctx)
            kind = type(svc)
            if kind in self._services:
                raise DuplicateServiceError(f"duplicate service: {kind.__name__}")
            self._services[kind] = svc

    async def _teardown(self) -> None:
        errors: list[BaseException] = []
        for svc in reversed(self._started):
            try:
                await svc.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                log.error("Service failed to stop", extra=kv(service=type(svc).__name__, err=exc))
                errors.append(exc)
        self._started.clear()
        if self.server is not None:
            try:
                await self.server.stop()
            except Exception as exc:  # noqa: BLE001
                log.error("P2P server failed to stop", extra=kv(err=exc))
                errors.append(exc)
            self.server = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if errors:
            raise NodeError(f"{len(errors)} component(s) failed to stop: {errors[0]}")

    async def stop(self) -> None:
        """Stop services in reverse order, then the server; release the datadir."""
        if not self.running:
            return
        self.running = False
        await self._teardown()
