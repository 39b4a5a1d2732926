"""JSON-RPC 2.0 dispatch over a method table (single calls and batches), transport-agnostic.

Error codes are the spec's (-32700 parse error, -32600 invalid request, -32601 method not
found, -32602 invalid params, -32603 internal error); methods raise ``RPCError`` for their
own (the Engine API's -38xxx codes).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ethnode import strictjson
from ethnode.errors import EthnodeError

log = logging.getLogger("ethnode.rpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # geth's code for an error a method returns
MAX_BATCH_ITEMS = 1000  # calls per batch; geth BatchRequestLimit default


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

    def __init__(self, methods: Mapping[str, Callable[..., Any]]) -> None:
        self.methods = dict(methods)

    async def handle(self, body: bytes) -> bytes | None:
        """The reply body for a request body, or None if it held only notifications."""
        try:
            req = strictjson.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _dump(_error(None, RPCError(PARSE_ERROR, "parse error")))
        if isinstance(req, list):
            if not req:
                return _dump(_error(None, RPCError(INVALID_REQUEST, "empty batch")))
            if len(req) > MAX_BATCH_ITEMS:
                return _dump(_error(None, RPCError(INVALID_REQUEST, "batch too large")))
            replies = [r for r in [await self._call(item) for item in req] if r is not None]
            return _dump(replies) if replies else None
        reply = await self._call(req)
        return None if reply is None else _dump(reply)

    async def _call(self, req: Any) -> dict[str, Any] | None:
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
        method = self.methods.get(name)
        if method is None:
            err = RPCError(METHOD_NOT_FOUND, f"the method {name} does not exist/is not available")
            return None if notification else _error(rid, err)
        try:
            inspect.signature(method).bind(*params)
        except TypeError:
            return None if notification else _error(rid, RPCError(INVALID_PARAMS, _arity_error(method, len(params))))
        try:
            result = method(*params)
            if inspect.isawaitable(result):
                result = await result
        except RPCError as exc:
            return None if notification else _error(rid, exc)
        except Exception as exc:
            log.exception("RPC method %s failed", name)
            return None if notification else _error(rid, RPCError(INTERNAL_ERROR, f"internal error: {exc}"))
        return None if notification else {"jsonrpc": "2.0", "id": rid, "result": result}


def _arity_error(method: Callable[..., Any], given: int) -> str:
    """geth's texts for a wrong argument count (rpc/json.go parsePositionalArguments)."""
    positional = [p for p in inspect.signature(method).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in positional if p.default is p.empty)
    if given < required:
        return f"missing value for required argument {given}"
    return f"too many arguments, want at most {len(positional)}"


def _error(rid: Any, err: RPCError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": err.to_json()}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


__all__ = ["Dispatcher", "RPCError", "PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND", "INVALID_PARAMS",
           "INTERNAL_ERROR", "SERVER_ERROR", "server_error"]
