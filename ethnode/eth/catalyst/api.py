"""The Engine API as geth v1.17.10 serves it (``eth/catalyst/api.go``).

A consensus client drives the chain with three calls: ``newPayload`` hands over a block
(executed, stored, not made head), ``forkchoiceUpdated`` makes a stored block the head,
records safe and finalized, and with payload attributes starts building the next block,
whose result ``getPayload`` returns. Every versioned method checks what geth checks
(fields present for its fork, the fork of the timestamp) and answers with geth's error
codes and texts, so a consensus client sees the same node it sees in geth.

Errors: a malformed request is -32602 "Invalid parameters" with ``data.err`` saying why; a
well-formed payload that is not a valid block is a status INVALID with a
``validationError``, not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ethnode.core.blockchain import BlockChain
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.errors import ChainError, InvalidBlockError, UnknownBlockError
from ethnode.core.execution import ExecutionError
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.types.block import Block
from ethnode.core.types.custody import CUSTODY_BITMAP_SIZE, custody_from_bytes
from ethnode.core.types.header import Header
from ethnode.eth.catalyst.forks import latest_fork
from ethnode.eth.catalyst.getpayload import GetPayloadMixin, required
from ethnode.eth.catalyst.payload import ExecutionPayload, PayloadError, decode_withdrawals, payload_to_block
from ethnode.logctx import kv
from ethnode.miner.payload_building import BuildPayloadArgs, PayloadBuilder, PayloadBuildError
from ethnode.rpc.hexutil import HexError, data, decode_data, decode_fixed, decode_quantity
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError
from ethnode.version import __version__

log = logging.getLogger("ethnode.rpc")

# Engine API error codes (execution-apis src/engine/common.md)
UNKNOWN_PAYLOAD = -38001
INVALID_FORKCHOICE_STATE = -38002
INVALID_PAYLOAD_ATTRIBUTES = -38003
TOO_LARGE_REQUEST = -38004
UNSUPPORTED_FORK = -38005
ZERO_HASH = bytes(32)

VALID = "VALID"
INVALID = "INVALID"
SYNCING = "SYNCING"
ACCEPTED = "ACCEPTED"

INVALID_BLOCK_HIT_EVICTION = 128  # geth invalidBlockHitEviction
INVALID_TIPSETS_CAP = 512  # geth invalidTipsetsCap


def params_error(text: str) -> RPCError:
    return RPCError(INVALID_PARAMS, "Invalid parameters", {"err": text})


def attributes_error(text: str) -> RPCError:
    return RPCError(INVALID_PAYLOAD_ATTRIBUTES, "Invalid payload attributes", {"err": text})


def unsupported_fork(text: str | None = None) -> RPCError:
    return RPCError(UNSUPPORTED_FORK, "Unsupported fork", None if text is None else {"err": text})


def forkchoice_state_error(text: str) -> RPCError:
    return RPCError(INVALID_FORKCHOICE_STATE, "Invalid forkchoice state", {"err": text})


def payload_status(status: str, latest_valid: bytes | None = None, error: str | None = None) -> dict[str, Any]:
    return {
        "status": status,
        "latestValidHash": None if latest_valid is None else data(latest_valid),
        "validationError": error,
    }


def _fcu_response(status: dict[str, Any], payload_id: bytes | None = None) -> dict[str, Any]:
    return {"payloadStatus": status, "payloadId": None if payload_id is None else data(payload_id)}


def _arg(index: int, decode: Callable[..., Any], *args: Any) -> Any:
    try:
        return decode(*args)
    except HexError as exc:
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: {exc}") from None


def _hash(index: int, value: Any) -> bytes:
    return _arg(index, decode_fixed, value, 32, "common.Hash")  # type: ignore[no-any-return]


def _hashes(index: int, value: Any) -> list[bytes] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: want an array of hashes")
    return [_hash(index, v) for v in value]


def _forkchoice_state(obj: Any) -> tuple[bytes, bytes, bytes]:
    if not isinstance(obj, dict):
        raise RPCError(INVALID_PARAMS, "invalid argument 0: want a forkchoice state object")
    out = []
    for name in ("headBlockHash", "safeBlockHash", "finalizedBlockHash"):
        if obj.get(name) is None:
            raise RPCError(INVALID_PARAMS, f"invalid argument 0: missing required field '{name}' for ForkchoiceStateV1")
        out.append(_hash(0, obj[name]))
    return out[0], out[1], out[2]


class PayloadAttributes:
    """geth ``engine.PayloadAttributes``, decoded (absent optional fields stay None)."""

    def __init__(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise RPCError(INVALID_PARAMS, "invalid argument 1: want a payload attributes object")
        for name in ("timestamp", "prevRandao", "suggestedFeeRecipient"):
            if obj.get(name) is None:
                raise RPCError(INVALID_PARAMS,
                               f"invalid argument 1: missing required field '{name}' for PayloadAttributes")
        self.timestamp: int = _arg(1, decode_quantity, obj["timestamp"], 64)
        self.random: bytes = _hash(1, obj["prevRandao"])
        self.fee_recipient: bytes = _arg(1, decode_fixed, obj["suggestedFeeRecipient"], 20, "common.Address")
        self.withdrawals = decode_withdrawals(obj.get("withdrawals"), "1")
        root = obj.get("parentBeaconBlockRoot")
        self.beacon_root: bytes | None = None if root is None else _hash(1, root)
        slot = obj.get("slotNumber")
        self.slot_number: int | None = None if slot is None else _arg(1, decode_quantity, slot, 64)
        target = obj.get("targetGasLimit")
        self.target_gas_limit: int | None = None if target is None else _arg(1, decode_quantity, target, 64)


def _custody_arg(value: Any) -> int:
    """fcuV4's third argument, a 16-byte custody bitmap as hex (geth CustodyBitmap.UnmarshalText)."""
    raw = _arg(2, decode_data, value)
    if len(raw) != CUSTODY_BITMAP_SIZE:
        raise RPCError(INVALID_PARAMS, f"invalid argument 2: custody bitmap: invalid length {len(raw)}, "
                                       f"want {CUSTODY_BITMAP_SIZE}")
    return custody_from_bytes(raw)


class EngineAPI(GetPayloadMixin):
    """The methods, over a ``BlockChain`` (and a pool for payload building and getBlobs)."""

    def __init__(self, chain: BlockChain, txpool: Any = None, builder: PayloadBuilder | None = None) -> None:
        self.chain = chain
        self.txpool = txpool
        self.builder = builder or PayloadBuilder(chain, txpool)
        self.on_unknown_head: Callable[[bytes], None] | None = None  # the downloader's sync_to
        self.on_custody: Callable[[int], None] | None = None  # the eth handler's update_custody
        self._remote: dict[bytes, Header] = {}  # payloads seen but not imported (parent or state missing)
        self._invalid_tipsets: dict[bytes, Header] = {}  # descendant hash -> first bad ancestor
        self._invalid_hits: dict[bytes, int] = {}

    @property
    def config(self) -> ChainConfig:
        return self.chain.config

    def methods(self) -> dict[str, Any]:
        return {
            "engine_newPayloadV1": self.new_payload_v1,
            "engine_newPayloadV2": self.new_payload_v2,
            "engine_newPayloadV3": self.new_payload_v3,
            "engine_newPayloadV4": self.new_payload_v4,
            "engine_newPayloadV5": self.new_payload_v5,
            "engine_forkchoiceUpdatedV1": self.forkchoice_updated_v1,
            "engine_forkchoiceUpdatedV2": self.forkchoice_updated_v2,
            "engine_forkchoiceUpdatedV3": self.forkchoice_updated_v3,
            "engine_forkchoiceUpdatedV4": self.forkchoice_updated_v4,
            "engine_getPayloadV1": self.get_payload_v1,
            "engine_getPayloadV2": self.get_payload_v2,
            "engine_getPayloadV3": self.get_payload_v3,
            "engine_getPayloadV4": self.get_payload_v4,
            "engine_getPayloadV5": self.get_payload_v5,
            "engine_getPayloadV6": self.get_payload_v6,
            "engine_getPayloadBodiesByHashV1": self.get_payload_bodies_by_hash_v1,
            "engine_getPayloadBodiesByHashV2": self.get_payload_bodies_by_hash_v2,
            "engine_getPayloadBodiesByRangeV1": self.get_payload_bodies_by_range_v1,
            "engine_getPayloadBodiesByRangeV2": self.get_payload_bodies_by_range_v2,
            "engine_getBlobsV1": self.get_blobs_v1,
            "engine_getBlobsV2": self.get_blobs_v2,
            "engine_getBlobsV3": self.get_blobs_v3,
            "engine_exchangeCapabilities": self.exchange_capabilities,
            "engine_getClientVersionV1": self.get_client_version_v1,
        }

    def check_fork(self, timestamp: int, *forks: str) -> bool:
        """geth ``checkFork``: whether the newest fork at ``timestamp`` is one of ``forks``."""
        return latest_fork(self.config, timestamp) in forks

    # --- small methods ----------------------------------------------------------------------

    def exchange_capabilities(self, capabilities: Any = None) -> list[str]:
        return sorted(m for m in self.methods() if m != "engine_exchangeCapabilities")

    def get_client_version_v1(self, info: Any = None) -> list[dict[str, str]]:
        """geth ``GetClientVersionV1``: one entry naming this client (code "EN", unregistered)."""
        return [{"code": "EN", "name": "ethnode", "version": __version__, "commit": "0x00000000"}]

    # --- newPayload ---------------------------------------------------------------------------

    def new_payload_v1(self, params: Any) -> dict[str, Any]:
        payload = ExecutionPayload.from_json(required(0, params))
        if payload.withdrawals is not None:
            raise params_error("withdrawals not supported in V1")
        return self._new_payload(payload, None, None, None)

    def new_payload_v2(self, params: Any) -> dict[str, Any]:
        payload = ExecutionPayload.from_json(required(0, params))
        cfg = self.config
        london = cfg.london_block or 0
        cancun = cfg.is_cancun(london, payload.timestamp)
        shanghai = cfg.is_shanghai(london, payload.timestamp)
        if cancun:
            raise params_error("can't use newPayloadV2 post-cancun")
        if shanghai and payload.withdrawals is None:
            raise params_error("nil withdrawals post-shanghai")
        if not shanghai and payload.withdrawals is not None:
            raise params_error("non-nil withdrawals pre-shanghai")
        if payload.excess_blob_gas is not None:
            raise params_error("non-nil excessBlobGas pre-cancun")
        if payload.blob_gas_used is not None:
            raise params_error("non-nil blobGasUsed pre-cancun")
        return self._new_payload(payload, None, None, None)

    def _cancun_checks(self, payload: ExecutionPayload, hashes: Any, root: Any) -> None:
        if payload.withdrawals is None:
            raise params_error("nil withdrawals post-shanghai")
        if payload.excess_blob_gas is None:
            raise params_error("nil excessBlobGas post-cancun")
        if payload.blob_gas_used is None:
            raise params_error("nil blobGasUsed post-cancun")
        if hashes is None:
            raise params_error("nil versionedHashes post-cancun")
        if root is None:
            raise params_error("nil beaconRoot post-cancun")

    def new_payload_v3(self, params: Any, versioned_hashes: Any = None, beacon_root: Any = None) -> dict[str, Any]:
        payload = ExecutionPayload.from_json(required(0, params))
        hashes = _hashes(1, required(1, versioned_hashes))
        root = None if beacon_root is None else _hash(2, beacon_root)
        self._cancun_checks(payload, hashes, root)
        if not self.check_fork(payload.timestamp, "cancun"):
            raise unsupported_fork("newPayloadV3 must only be called for cancun payloads")
        return self._new_payload(payload, hashes, root, None)

    def new_payload_v4(self, params: Any, versioned_hashes: Any = None, beacon_root: Any = None,
                       execution_requests: Any = None) -> dict[str, Any]:
        payload = ExecutionPayload.from_json(required(0, params))
        hashes = _hashes(1, required(1, versioned_hashes))
        root = None if beacon_root is None else _hash(2, beacon_root)
        required(3, execution_requests)
        self._cancun_checks(payload, hashes, root)
        if execution_requests is None:
            raise params_error("nil executionRequests post-prague")
        if payload.slot_number is not None:
            raise params_error("slotNumber not supported pre-amsterdam")
        if payload.block_access_list is not None:
            raise params_error("block access list not supported pre-amsterdam")
        if not self.check_fork(payload.timestamp, "prague", "osaka", "bpo1", "bpo2"):
            raise unsupported_fork("newPayloadV4 must only be called for prague/osaka payloads")
        return self._new_payload(payload, hashes, root, _requests(execution_requests))

    def new_payload_v5(self, params: Any, versioned_hashes: Any = None, beacon_root: Any = None,
                       execution_requests: Any = None) -> dict[str, Any]:
        payload = ExecutionPayload.from_json(required(0, params))
        hashes = _hashes(1, required(1, versioned_hashes))
        root = None if beacon_root is None else _hash(2, beacon_root)
        required(3, execution_requests)
        self._cancun_checks(payload, hashes, root)
        if execution_requests is None:
            raise params_error("nil executionRequests post-prague")
        if payload.slot_number is None:
            raise params_error("nil slotnumber post-amsterdam")
        if payload.block_access_list is None:
            raise params_error("missing block access list post-amsterdam")
        if not self.check_fork(payload.timestamp, "amsterdam", "bpo3", "bpo4", "bpo5", "bogota"):
            raise unsupported_fork("newPayloadV5 must only be called for amsterdam payloads")
        return self._new_payload(payload, hashes, root, _requests(execution_requests))

    def _new_payload(self, payload: ExecutionPayload, hashes: Sequence[bytes] | None, beacon_root: bytes | None,
                     requests: list[bytes] | None) -> dict[str, Any]:
        """geth ``newPayload``: rebuild the block, then execute and store it without making it head."""
        chain = self.chain
        try:
            block = payload_to_block(payload, hashes, beacon_root, requests)
        except PayloadError as exc:
            log.warning("Invalid NewPayload params", extra=kv(number=payload.number, hash=payload.block_hash,
                                                              error=exc))
            return payload_status(INVALID, None, str(exc))
        known = chain.get_block_by_hash(block.hash)
        if known is not None:
            return payload_status(VALID, block.hash)
        bad = self._check_invalid_ancestor(block.hash, block.hash)
        if bad is not None:
            return bad
        # By hash alone: geth's GetBlock(parent hash, number - 1) answers from its hash-keyed cache
        # first, so a recent parent is found whatever number the payload claims, and a wrong number
        # is INVALID ("invalid block number") instead of SYNCING on a parent both clients hold.
        parent = chain.get_block_by_hash(block.parent_hash) if block.number else None
        if parent is None:
            return self._delay(block)
        if block.header.time <= parent.header.time:
            log.warning("Invalid timestamp parent=%d block=%d", parent.header.time, block.header.time)
            return payload_status(INVALID, self._latest_valid(parent.header), "invalid timestamp")
        if not chain.state_db.has_state(parent.header.state_root):
            self._remote[block.hash] = block.header
            log.warning("State not available, ignoring new payload")
            return payload_status(ACCEPTED)
        try:
            chain.insert_chain([block], set_head=False)
        except InvalidBlockError as exc:
            reason = str(exc.cause)
            log.warning("NewPayload: inserting block failed", extra=kv(error=reason))
            self._invalid_hits[block.hash] = 1
            self._invalid_tipsets[block.hash] = block.header
            return payload_status(INVALID, self._latest_valid(parent.header), _validation_error(exc))
        except ExecutionError as exc:  # our state is incomplete: not the payload's fault
            self._remote[block.hash] = block.header
            log.warning("NewPayload: cannot execute", extra=kv(error=exc))
            return payload_status(ACCEPTED)
        return payload_status(VALID, block.hash)

    def _delay(self, block: Block) -> dict[str, Any]:
        """geth ``delayPayloadImport``: remember the header; a forkchoice naming it starts the sync."""
        bad = self._check_invalid_ancestor(block.parent_hash, block.hash)
        if bad is not None:
            return bad
        self._remote[block.hash] = block.header
        log.warning("Ignoring payload with missing parent number=%d hash=0x%s parent=0x%s",
                    block.number, block.hash.hex(), block.parent_hash.hex())
        return payload_status(SYNCING)

    def _latest_valid(self, parent: Header) -> bytes:
        return ZERO_HASH if parent.difficulty else parent.hash

    def _check_invalid_ancestor(self, check: bytes, head: bytes) -> dict[str, Any] | None:
        """geth ``checkInvalidAncestor``: a chain built on a rejected block is rejected too."""
        invalid = self._invalid_tipsets.get(check)
        if invalid is None:
            return None
        bad = invalid.hash
        self._invalid_hits[bad] = self._invalid_hits.get(bad, 0) + 1
        if self._invalid_hits[bad] >= INVALID_BLOCK_HIT_EVICTION:
            log.error("Too many bad block import attempt, trying number=%d hash=0x%s", invalid.number, bad.hex())
            del self._invalid_hits[bad]
            for descendant in [d for d, h in self._invalid_tipsets.items() if h.hash == bad]:
                del self._invalid_tipsets[descendant]
            return None
        if check != head:
            while len(self._invalid_tipsets) >= INVALID_TIPSETS_CAP:
                self._invalid_tipsets.pop(next(iter(self._invalid_tipsets)))
            self._invalid_tipsets[head] = invalid
        latest = invalid.parent_hash
        parent = self.chain.get_header(invalid.parent_hash, invalid.number - 1)
        if parent is not None and parent.difficulty:
            latest = ZERO_HASH
        return payload_status(INVALID, latest, "links to previously rejected block")

    # --- forkchoiceUpdated ----------------------------------------------------------------------

    def forkchoice_updated_v1(self, state: Any, attributes: Any = None) -> dict[str, Any]:
        required(0, state)
        attrs = None if attributes is None else PayloadAttributes(attributes)
        if attrs is not None:
            if attrs.withdrawals is not None or attrs.beacon_root is not None:
                raise params_error("withdrawals and beacon root not supported in V1")
            if not self.check_fork(attrs.timestamp, "paris", "shanghai"):
                raise params_error("fcuV1 called post-shanghai")
        return self._forkchoice_updated(state, attrs, 1)

    def forkchoice_updated_v2(self, state: Any, attributes: Any = None) -> dict[str, Any]:
        required(0, state)
        attrs = None if attributes is None else PayloadAttributes(attributes)
        if attrs is not None:
            if attrs.beacon_root is not None:
                raise attributes_error("unexpected beacon root")
            if self.check_fork(attrs.timestamp, "paris") and attrs.withdrawals is not None:
                raise attributes_error("withdrawals before shanghai")
            if self.check_fork(attrs.timestamp, "shanghai") and attrs.withdrawals is None:
                raise attributes_error("missing withdrawals")
            if not self.check_fork(attrs.timestamp, "paris", "shanghai"):
                raise unsupported_fork("fcuV2 must only be called with paris or shanghai payloads")
        return self._forkchoice_updated(state, attrs, 2)

    def forkchoice_updated_v3(self, state: Any, attributes: Any = None) -> dict[str, Any]:
        required(0, state)
        attrs = None if attributes is None else PayloadAttributes(attributes)
        if attrs is not None:
            if attrs.withdrawals is None:
                raise attributes_error("missing withdrawals")
            if attrs.beacon_root is None:
                raise attributes_error("missing beacon root")
            if not self.check_fork(attrs.timestamp, "cancun", "prague", "osaka", "bpo1", "bpo2"):
                raise unsupported_fork("fcuV3 must only be called for cancun/prague/osaka payloads")
        return self._forkchoice_updated(state, attrs, 3)

    def forkchoice_updated_v4(self, state: Any, attributes: Any = None, custody_columns: Any = None) -> dict[str, Any]:
        required(0, state)
        attrs = None if attributes is None else PayloadAttributes(attributes)
        if attrs is not None:
            if attrs.withdrawals is None:
                raise attributes_error("missing withdrawals")
            if attrs.beacon_root is None:
                raise attributes_error("missing beacon root")
            if attrs.slot_number is None:
                raise attributes_error("missing slot number")
            if not self.check_fork(attrs.timestamp, "amsterdam", "bpo3", "bpo4", "bpo5", "bogota"):
                raise unsupported_fork("fcuV4 must only be called for amsterdam payloads")
        if custody_columns is not None:
            custody = _custody_arg(custody_columns)
            if self.on_custody is not None:
                self.on_custody(custody)  # the cells eth/72 fetches of blob txs (geth BlobFetcher.UpdateCustody)
        return self._forkchoice_updated(state, attrs, 4)

    def _forkchoice_updated(self, state: Any, attrs: PayloadAttributes | None, version: int) -> dict[str, Any]:
        head, safe, finalized = _forkchoice_state(state)
        chain = self.chain
        if head == ZERO_HASH:
            log.warning("Forkchoice requested update to zero hash")
            return _fcu_response(payload_status(INVALID))
        block = chain.get_block_by_hash(head)
        if block is None:
            bad = self._check_invalid_ancestor(head, head)
            if bad is not None:
                return _fcu_response(bad)
            header = self._remote.get(head)
            log.info("Forkchoice requested sync to new head number=%s hash=0x%s",
                     "unknown" if header is None else header.number, head.hex())
            if self.on_unknown_head is not None:
                self.on_unknown_head(head)
            return _fcu_response(payload_status(SYNCING))
        valid = payload_status(VALID, head)
        old_head = chain.current_block.hash
        if chain.get_canonical_hash(block.number) != head or chain.current_block.number != block.number:
            try:
                chain.set_canonical(head)
            except (UnknownBlockError, ChainError) as exc:
                return _fcu_response(payload_status(INVALID, old_head, str(exc)))
        for name, block_hash in (("final", finalized), ("safe", safe)):
            if block_hash == ZERO_HASH:
                continue
            known = chain.get_block_by_hash(block_hash)
            if known is None:
                log.warning("%s block not available in database hash=0x%s", name.capitalize(), block_hash.hex())
                raise forkchoice_state_error(f"{name} block not available in database")
            if chain.get_canonical_hash(known.number) != block_hash:
                log.warning("%s block not in canonical chain number=%d", name.capitalize(), known.number)
                raise forkchoice_state_error(f"{name} block not in canonical chain")
        if finalized != ZERO_HASH:
            chain.set_finalized(finalized)
        if safe != ZERO_HASH:
            chain.set_safe(safe)
        if head != old_head:
            log.info("Forkchoice moved head number=%d hash=0x%s", block.number, head.hex())
        if attrs is None:
            return _fcu_response(valid)
        args = BuildPayloadArgs(
            parent=head, timestamp=attrs.timestamp, fee_recipient=attrs.fee_recipient, random=attrs.random,
            withdrawals=None if attrs.withdrawals is None else tuple(attrs.withdrawals),
            beacon_root=attrs.beacon_root, slot_number=attrs.slot_number, target_gas_limit=attrs.target_gas_limit,
            version=version,
        )
        try:
            payload = self.builder.build(args)
        except (PayloadBuildError, ExecutionError, ChainError) as exc:
            log.error("Failed to build payload", extra=kv(err=exc))
            raise attributes_error(str(exc)) from None
        return _fcu_response(valid, payload.id)


def _requests(value: Any) -> list[bytes]:
    """geth ``convertRequests`` + ``validateRequests``: typed, non-empty, strictly ascending types."""
    if not isinstance(value, list):
        raise RPCError(INVALID_PARAMS, "invalid argument 3: want an array of requests")
    out = [_arg(3, decode_data, r) for r in value]
    last = -1
    for r in out:
        if len(r) <= 1:
            raise params_error("empty request: " + data(r))
        if r[0] <= last:
            raise params_error(f"requests not in strictly ascending order lastType {last} reqType {r[0]}")
        last = r[0]
    return out


def _validation_error(exc: InvalidBlockError) -> str:
    return str(exc.cause)


def read_block_access_list(chain: BlockChain, block: Block) -> bytes | None:
    return rawdb.read_block_access_list(chain.db, block.hash, block.number)


__all__ = [
    "EngineAPI", "PayloadAttributes", "INVALID_FORKCHOICE_STATE", "UNSUPPORTED_FORK", "UNKNOWN_PAYLOAD",
    "VALID", "INVALID", "SYNCING", "ACCEPTED", "payload_status",
]
