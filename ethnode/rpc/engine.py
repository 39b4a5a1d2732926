"""The Engine API, minimal: forkchoiceUpdated moves the head (geth eth/catalyst, node auth server).

Served on its own HTTP endpoint (``--authrpc.addr``/``--authrpc.port``, default
127.0.0.1:8551) behind HS256 JWT auth. Implemented: ``engine_forkchoiceUpdatedV1..V3``
(make a stored block the head, record safe and finalized) and
``engine_exchangeCapabilities``. Not implemented: payload building (payload attributes are
ignored and no payload id is returned), ``engine_newPayload*``, ``engine_getPayload*``:
ethnode does not execute blocks yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ethnode.core.errors import UnknownBlockError
from ethnode.rpc.http import HTTPEndpoint, HTTPServer, Request, Response
from ethnode.rpc.jsonrpc import INVALID_PARAMS, Dispatcher, RPCError
from ethnode.rpc.jwt import JWTError, verify_authorization

log = logging.getLogger("ethnode.rpc")

DEFAULT_AUTHRPC_ADDR = "127.0.0.1"  # geth --authrpc.addr default
DEFAULT_AUTHRPC_PORT = 8551  # geth --authrpc.port default
INVALID_FORKCHOICE_STATE = -38002  # Engine API spec error code
ZERO_HASH = bytes(32)

VALID = "VALID"
INVALID = "INVALID"
SYNCING = "SYNCING"

_JSON_TYPES = ("application/json", "application/json-rpc", "application/jsonrequest")  # geth acceptedContentTypes


def _hash_param(obj: Any, field: str) -> bytes:
    value = obj.get(field) if isinstance(obj, dict) else None
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise RPCError(INVALID_PARAMS, f"invalid argument 0: {field}: want a 0x-prefixed 32-byte hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise RPCError(INVALID_PARAMS, f"invalid argument 0: {field}: not hex") from None


def _status(status: str, latest_valid: bytes | None) -> dict[str, Any]:
    return {
        "payloadStatus": {
            "status": status,
            "latestValidHash": None if latest_valid is None else "0x" + latest_valid.hex(),
            "validationError": None,
        },
        "payloadId": None,
    }


class EngineAPI:
    """The methods, over a ``BlockChain``; the chain posts the head moves (``ChainHeadEvent``)."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self.on_unknown_head: Callable[[bytes], None] | None = None  # the downloader's sync_to

    def methods(self) -> dict[str, Any]:
        return {
            "engine_forkchoiceUpdatedV1": self.forkchoice_updated,
            "engine_forkchoiceUpdatedV2": self.forkchoice_updated,
            "engine_forkchoiceUpdatedV3": self.forkchoice_updated,
            "engine_exchangeCapabilities": self.exchange_capabilities,
        }

    def exchange_capabilities(self, capabilities: Any) -> list[str]:
        return sorted(m for m in self.methods() if m != "engine_exchangeCapabilities")

    def forkchoice_updated(self, state: Any, attributes: Any = None) -> dict[str, Any]:
        """geth ConsensusAPI.forkchoiceUpdated, minus payload building."""
        head = _hash_param(state, "headBlockHash")
        safe = _hash_param(state, "safeBlockHash")
        finalized = _hash_param(state, "finalizedBlockHash")
        if head == ZERO_HASH:
            log.warning("Forkchoice requested update to zero hash")
            return _status(INVALID, None)
        chain = self.chain
        old_head = chain.current_block.hash
        try:
            header = chain.set_canonical(head)
        except UnknownBlockError:
            log.info("Forkchoice requested unknown head hash=0x%s", head.hex())
            if self.on_unknown_head is not None:
                self.on_unknown_head(head)
            return _status(SYNCING, None)
        for name, block_hash in (("finalized", finalized), ("safe", safe)):
            if block_hash == ZERO_HASH:
                continue
            known = chain.get_header_by_hash(block_hash)
            if known is None or chain.get_canonical_hash(known.number) != block_hash:
                raise RPCError(
                    INVALID_FORKCHOICE_STATE, f"Invalid forkchoice state: {name} block not in canonical chain"
                )
        if finalized != ZERO_HASH:
            chain.set_finalized(finalized)
        if safe != ZERO_HASH:
            chain.set_safe(safe)
        if attributes is not None:
            log.warning("Forkchoice with payload attributes: payload building is not implemented")
        if header.hash != old_head:
            log.info("Forkchoice moved head number=%d hash=0x%s", header.number, header.hash.hex())
        return _status(VALID, header.hash)


class AuthRPCServer(HTTPEndpoint):
    """The JWT-authenticated HTTP endpoint for the Engine API (geth's auth server)."""

    def __init__(self, api: EngineAPI, secret: bytes, host: str = DEFAULT_AUTHRPC_ADDR,
                 port: int = DEFAULT_AUTHRPC_PORT) -> None:
        self.api = api
        self.secret = secret
        self.dispatcher = Dispatcher(api.methods())
        self.http = HTTPServer(self._handle, host, port, name="authrpc")

    def started(self) -> None:
        log.info("HTTP server started endpoint=%s:%d auth=true prefix= cors= vhosts=localhost",
                 self.http.host, self.http.port)

    async def _handle(self, request: Request) -> Response:
        try:
            verify_authorization(request.headers.get("authorization"), self.secret)
        except JWTError as exc:
            return Response.text(401, str(exc))
        if request.method == "GET" and not request.body:
            return Response(200)  # geth answers an empty GET with 200 (health checks)
        if request.method != "POST":
            return Response.text(405, "method not allowed")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in _JSON_TYPES:
            return Response.text(415, f"invalid content type, only {_JSON_TYPES[0]} is supported")
        reply = await self.dispatcher.handle(request.body)
        return Response(200, reply or b"", {"Content-Type": "application/json"})


__all__ = ["EngineAPI", "AuthRPCServer", "DEFAULT_AUTHRPC_ADDR", "DEFAULT_AUTHRPC_PORT", "INVALID_FORKCHOICE_STATE"]
