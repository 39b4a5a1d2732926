"""JSON-RPC 2.0 dispatch over a method table (single calls and batches), transport-agnostic.

The one JSON-RPC core: HTTP, WebSocket and IPC all hand it request bodies, so a rule about
requests holds on every transport. Error codes are the spec's (-32700 parse error, -32600
invalid request, -32601 method not found, -32602 invalid params, -32603 internal error);
methods raise ``RPCError`` for their own (the Engine API's -38xxx codes).

Subscriptions (``ethnode.rpc.subscription``): a transport that can carry notifications
passes a ``Subscriber`` with the body; ``<ns>_subscribe`` then calls the ``@subscription``
method its first parameter names, ``<ns>_unsubscribe`` stops one. Without a subscriber
(HTTP) ``_subscribe`` answers -32601 "notifications not supported", as geth.

Limits as geth's defaults: ``MAX_BATCH_ITEMS`` calls per batch; once the replies of a
batch pass ``MAX_BATCH_RESPONSE_SIZE`` bytes, the calls not yet run get -32003 "response
too large" instead of running.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ethnode import strictjson
from ethnode.errors import EthnodeError
from ethnode.rpc.subscription import (
    ERR_NOTIFICATIONS_UNSUPPORTED,
    ERR_SUBSCRIPTION_NOT_FOUND,
    KEY_SEPARATOR,
    NOTIFICATION_SUFFIX,
    SUBSCRIBE_SUFFIX,
    UNSUBSCRIBE_SUFFIX,
    Subscriber,
)

log = logging.getLogger("ethnode.rpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # geth's code for an error a method returns
RESPONSE_TOO_LARGE = -32003  # geth errcodeResponseTooLarge
MAX_BATCH_ITEMS = 1000  # calls per batch; geth BatchRequestLimit default
MAX_BATCH_RESPONSE_SIZE = 25 * 1000 * 1000  # bytes of batch replies; geth BatchResponseMaxSize default


class RPCError(EthnodeError):
    """An error reply: ``code`` and ``message`` go on the wire, ``data`` too when given."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def server_error(message: str) -> RPCError:
    """A method's own failure, as geth replies it: code -32000 and the error's text."""
    return RPCError(SERVER_ERROR, message)


class Dispatcher:
    """Calls ``methods[name](*params)`` (sync or async) for each JSON-RPC request."""

    def __init__(self, methods: Mapping[str, Callable[..., Any]], *, batch_items: int = MAX_BATCH_ITEMS,
                 batch_response_size: int = MAX_BATCH_RESPONSE_SIZE) -> None:
        self.methods = {k: v for k, v in methods.items() if KEY_SEPARATOR not in k}
        # "eth_subscribe/newHeads" -> ("eth", "newHeads")
        self.subscriptions = {(k.split(KEY_SEPARATOR)[0].removesuffix(SUBSCRIBE_SUFFIX), k.split(KEY_SEPARATOR)[1]): v
                              for k, v in methods.items() if KEY_SEPARATOR in k}
        self.batch_items = batch_items
        self.batch_response_size = batch_response_size
        # inspect.signature costs ~13 µs: each method's, with its least and most positional arguments
        self._signatures: dict[Callable[..., Any], tuple[inspect.Signature, int, float]] = {}

    def _bind(self, method: Callable[..., Any], params: list[Any], offset: int = 0) -> None:
        cached = self._signatures.get(method)
        if cached is None:
            signature = inspect.signature(method)
            cached = self._signatures[method] = (signature, _required_count(signature), _most_positional(signature))
        signature, required, most = cached
        if not required <= len(params) <= most:  # what Signature.bind would say, at a tenth of its cost
            raise RPCError(INVALID_PARAMS, _arity_error(signature, len(params), offset))
        if required and None in params[:required]:
            # geth parseArgumentArray: null for a required (non-pointer) argument is a missing one.
            raise RPCError(INVALID_PARAMS, f"missing value for required argument {params.index(None) + offset}")

    async def handle(self, body: bytes | str, subscriber: Subscriber | None = None) -> bytes | None:
        """The reply body for a request body, or None if it held only notifications.

        ``subscriber``: the connection's, on transports that carry notifications."""
        try:
            req = strictjson.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _dump(_error(None, RPCError(PARSE_ERROR, "parse error")))
        if isinstance(req, list):
            return await self._batch(req, subscriber)
        reply = await self._call(req, subscriber)
        return None if reply is None else _dump(reply)

    async def _batch(self, req: list[Any], subscriber: Subscriber | None) -> bytes | None:
        if not req:
            return _dump(_error(None, RPCError(INVALID_REQUEST, "empty batch")))
        if len(req) > self.batch_items:
            return _dump(_error(None, RPCError(INVALID_REQUEST, "batch too large")))
        parts: list[bytes] = []
        size = 0
        for i, item in enumerate(req):
            reply = await self._call(item, subscriber)
            if reply is None:
                continue
            part = _encode(reply)
            parts.append(part)
            size += len(part)
            if size > self.batch_response_size:  # geth: the calls not yet run are answered with an error
                too_large = RPCError(RESPONSE_TOO_LARGE, "response too large")
                parts += [_encode(_error(rest["id"], too_large)) for rest in req[i + 1:]
                          if isinstance(rest, dict) and "id" in rest]
                break
        return b"[" + b",".join(parts) + b"]\n" if parts else None

    async def _call(self, req: Any, subscriber: Subscriber | None = None) -> dict[str, Any] | None:
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            return _error(req.get("id") if isinstance(req, dict) else None,
                          RPCError(INVALID_REQUEST, "invalid request"))
        notification = "id" not in req
        rid = req.get("id")
        name = req["method"]
        params = req.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            return None if notification else _error(rid, RPCError(INVALID_PARAMS, "non-array args"))
        try:
            if name.endswith(SUBSCRIBE_SUFFIX):
                result = self._subscribe(name.removesuffix(SUBSCRIBE_SUFFIX), params, subscriber)
            elif name.endswith(UNSUBSCRIBE_SUFFIX):
                result = self._unsubscribe(params, subscriber)
            else:
                result = await self._run(name, params)
        except RPCError as exc:
            return None if notification else _error(rid, exc)
        except Exception as exc:
            log.exception("RPC method %s failed", name)
            return None if notification else _error(rid, RPCError(INTERNAL_ERROR, f"internal error: {exc}"))
        return None if notification else {"jsonrpc": "2.0", "id": rid, "result": result}

    async def _run(self, name: str, params: list[Any]) -> Any:
        method = self.methods.get(name)
        if method is None:
            raise RPCError(METHOD_NOT_FOUND, f"the method {name} does not exist/is not available")
        self._bind(method, params)
        result = method(*params)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _subscribe(self, namespace: str, params: list[Any], subscriber: Subscriber | None) -> str:
        """geth handler.handleSubscribe: the first parameter names the subscription, the rest are its arguments."""
        if subscriber is None:
            raise RPCError(METHOD_NOT_FOUND, ERR_NOTIFICATIONS_UNSUPPORTED)
        if not params or not isinstance(params[0], str):
            raise RPCError(INVALID_PARAMS, "expected subscription name as first argument")
        method = self.subscriptions.get((namespace, params[0]))
        if method is None:
            raise RPCError(METHOD_NOT_FOUND, f'no "{params[0]}" subscription in {namespace} namespace')
        self._bind(method, params[1:], offset=1)
        return subscriber.subscribe(namespace, method(*params[1:]))

    def _unsubscribe(self, params: list[Any], subscriber: Subscriber | None) -> bool:
        """geth handler.unsubscribe: any ``<ns>_unsubscribe`` stops a subscription of this connection."""
        if not params:
            raise RPCError(INVALID_PARAMS, "missing value for required argument 0")
        if len(params) > 1:
            raise RPCError(INVALID_PARAMS, "too many arguments, want at most 1")
        if not isinstance(params[0], str):
            raise RPCError(INVALID_PARAMS, f"invalid argument 0: json: cannot unmarshal {_json_type(params[0])} "
                           "into Go value of type rpc.ID")
        if subscriber is None or not subscriber.unsubscribe(params[0]):
            raise server_error(ERR_SUBSCRIPTION_NOT_FOUND)
        return True


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {list: "array", dict: "object"}.get(type(value), "string" if isinstance(value, str) else "null")


def _required_count(signature: inspect.Signature) -> int:
    """How many leading positional parameters have no default (geth: the non-pointer arguments)."""
    count = 0
    for p in signature.parameters.values():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or p.default is not p.empty:
            break
        count += 1
    return count


def _most_positional(signature: inspect.Signature) -> float:
    """How many positional arguments the method takes at most (infinite with ``*args``)."""
    params = signature.parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return float("inf")
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _arity_error(signature: inspect.Signature, given: int, offset: int = 0) -> str:
    """geth's texts for a wrong argument count (rpc/json.go parsePositionalArguments); ``offset``
    counts the arguments geth parses before the method's own (a subscription's name)."""
    positional = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in positional if p.default is p.empty)
    if given < required:
        return f"missing value for required argument {given + offset}"
    return f"too many arguments, want at most {len(positional) + offset}"


def _error(rid: Any, err: RPCError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": err.to_json()}


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps builds one per call


def _encode(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()


def _dump(obj: Any) -> bytes:
    return _encode(obj) + b"\n"


def encode_notification(namespace: str, sub_id: str, result: Any) -> bytes:
    """A notification as geth's Notifier.send writes it:
    ``{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x..","result":..}}``."""
    return _dump({"jsonrpc": "2.0", "method": namespace + NOTIFICATION_SUFFIX,
                  "params": {"subscription": sub_id, "result": result}})


__all__ = ["Dispatcher", "RPCError", "PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND", "INVALID_PARAMS",
           "INTERNAL_ERROR", "SERVER_ERROR", "RESPONSE_TOO_LARGE", "MAX_BATCH_ITEMS", "MAX_BATCH_RESPONSE_SIZE",
           "server_error", "encode_notification"]
