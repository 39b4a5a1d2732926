"""Method tables: how a Go-style API object becomes JSON-RPC method names (geth ``rpc.API``).

A service offers ``API(namespace, service)`` objects; a server exposes each public method
of ``service`` as ``<namespace>_<camelCase name>``, the way geth's rpc package reflects Go
methods (``get_block_by_number`` -> ``eth_getBlockByNumber``), so the namespaces
themselves (``ethnode.ethapi``, the Engine API) need no registration code. A service
that needs exact names (the Engine API's ``...V1``/``V2``) provides them from
``methods()`` instead. ``authenticated`` APIs are only served on the JWT endpoint.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger("ethnode.rpc")


@runtime_checkable
class MethodTable(Protocol):
    """A service that names its methods itself instead of having them reflected."""

    def methods(self) -> Mapping[str, Callable[..., Any]]: ...


@dataclass(frozen=True)
class API:
    namespace: str
    service: object
    authenticated: bool = False  # geth rpc.API.Authenticated: only on the auth (Engine API) endpoint


def camel(name: str) -> str:
    """``get_block_by_number`` -> ``getBlockByNumber``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def methods_of(api: API) -> dict[str, Callable[..., Any]]:
    """The full method names an API answers to, and the callables behind them."""
    service = api.service
    if isinstance(service, MethodTable) and not isinstance(service, type):
        return dict(service.methods())
    out: dict[str, Callable[..., Any]] = {}
    for name, _ in inspect.getmembers(type(service), inspect.isfunction):  # no property is evaluated
        if not name.startswith("_"):
            out[f"{api.namespace}_{camel(name)}"] = getattr(service, name)
    return out


def collect_methods(apis: Iterable[API], modules: Sequence[str]) -> dict[str, Callable[..., Any]]:
    """The methods of the public APIs whose namespace is listed (geth node.RegisterApis)."""
    apis = [a for a in apis if not a.authenticated]
    available = sorted({a.namespace for a in apis})
    unavailable = [m for m in modules if m not in available]
    if unavailable:
        log.error("Unavailable modules in HTTP API list unavailable=%s available=%s", unavailable, available)
    allowed = set(modules)
    methods: dict[str, Callable[..., Any]] = {}
    for api in apis:
        if api.namespace in allowed:
            methods.update(methods_of(api))
    return methods


__all__ = ["API", "MethodTable", "camel", "methods_of", "collect_methods"]
