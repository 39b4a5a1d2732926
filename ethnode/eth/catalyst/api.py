"""The Engine API, minimal: forkchoiceUpdated moves the head (geth eth/catalyst/api.go).

Served on the JWT-authenticated endpoint (``service``). Implemented:
``engine_forkchoiceUpdatedV1..V3`` (make a stored block the head, record safe and
finalized) and ``engine_exchangeCapabilities``. Not implemented: payload building
(payload attributes are ignored and no payload id is returned), ``engine_newPayload*``,
``engine_getPayload*``: ethnode does not execute blocks yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ethnode.core.blockchain import BlockChain
from ethnode.core.errors import UnknownBlockError
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError

log = logging.getLogger("ethnode.rpc")

INVALID_FORKCHOICE_STATE = -38002  # Engine API spec error code
ZERO_HASH = bytes(32)

VALID = "VALID"
INVALID = "INVALID"
SYNCING = "SYNCING"


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

    def __init__(self, chain: BlockChain) -> None:
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


__all__ = ["EngineAPI", "INVALID_FORKCHOICE_STATE", "VALID", "INVALID", "SYNCING"]
