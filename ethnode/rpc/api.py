"""Method tables: how a Go-style API object becomes JSON-RPC method names (geth ``rpc.API``).

A service offers ``API(namespace, service)`` objects; a server exposes each public method
of ``service`` as ``<namespace>_<camelCase name>``, the way geth's rpc package reflects Go
methods (``get_block_by_number`` -> ``eth_getBlockByNumber``), so the namespaces
themselves (``ethnode.ethapi``, the Engine API) need no registration code. A service
that needs exact names (the Engine API's ``...V1``/``V2``) provides them from
``methods()`` instead. ``authenticated`` APIs are only served on the JWT endpoint (and on
IPC, which geth trusts with every API). A method marked ``@subscription`` is not a method:
it is filed as ``<namespace>_subscribe/<camelCase name>``, what ``eth_subscribe`` selects.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ethnode.logctx import kv
from ethnode.rpc.subscription import is_subscription, subscription_key

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
        if name.startswith("_"):
            continue
        bound = getattr(service, name)
        key = subscription_key(api.namespace, camel(name)) if is_subscription(bound) else \
            f"{api.namespace}_{camel(name)}"
        out[key] = bound
    return out


def collect_methods(apis: Iterable[API], modules: Sequence[str]) -> dict[str, Callable[..., Any]]:
    """The methods of the public APIs whose namespace is listed (geth node.RegisterApis)."""
    apis = [a for a in apis if not a.authenticated]
    available = sorted({a.namespace for a in apis})
    unavailable = [m for m in modules if m not in available]
    if unavailable:
        log.error("Unavailable modules in HTTP API list", extra=kv(unavailable=unavailable, available=available))
    allowed = set(modules)
    methods: dict[str, Callable[..., Any]] = {}
    for api in apis:
        if api.namespace in allowed:
            methods.update(methods_of(api))
    return methods


def all_methods(apis: Iterable[API]) -> dict[str, Callable[..., Any]]:
    """Every method of every API, authenticated ones included: what geth serves over IPC
    (``rpc.StartIPCEndpoint`` registers ``n.rpcAPIs`` whole; the socket is the owner's only)."""
    methods: dict[str, Callable[..., Any]] = {}
    for api in apis:
        methods.update(methods_of(api))
    return methods


__all__ = ["API", "MethodTable", "camel", "methods_of", "collect_methods", "all_methods"]
