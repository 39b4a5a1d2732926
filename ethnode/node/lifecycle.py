"""Services and the context they are built with (geth's ServiceContext/Lifecycle).

A service is registered as a constructor; Node.start calls the constructors in order,
each with a ServiceContext holding the config, datadir paths, the shared event bus and
the services already built, so a later service can find an earlier one by its type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from ethnode.errors import EthnodeError
from ethnode.event import EventBus
from ethnode.node.config import NodeConfig

if TYPE_CHECKING:
    from ethnode.crypto.keys import PrivateKey

T = TypeVar("T")


class DuplicateServiceError(EthnodeError):
    """Two services of the same kind (type) were registered, as geth's ErrDuplicateService."""


class ServiceNotFoundError(EthnodeError):
    """A service asked for another kind that was not built before it."""


@runtime_checkable
class Service(Protocol):
    """What a service provides. ``protocols`` and ``apis`` may return empty lists."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def protocols(self) -> list[Any]: ...

    def apis(self) -> list[Any]: ...


ServiceConstructor = Callable[["ServiceContext"], Service]


class ServiceContext:
    """Handed to each service constructor."""

    def __init__(self, config: NodeConfig, bus: EventBus, services: Mapping[type, Service],
                 node_key: PrivateKey) -> None:
        self.config = config
        self.bus = bus
        self.node_key = node_key
        self._services = services

    @property
    def services(self) -> Mapping[type, Service]:
        """The services built so far, by type (read-only)."""
        return MappingProxyType(dict(self._services))

    def service(self, kind: type[T]) -> T:
        for svc_type, svc in self._services.items():
            if issubclass(svc_type, kind):
                return svc  # type: ignore[return-value]
        raise ServiceNotFoundError(f"no {kind.__name__} service registered before this one")

    def resolve_path(self, path: str) -> Path | None:
        """A path under the instance directory, or None for an ephemeral node."""
        return self.config.resolve_path(path)
