"""The Engine API's read side: getPayload, payload bodies, blobs (geth ``eth/catalyst/api.go``).

Kept apart from ``api`` (newPayload, forkchoiceUpdated) so each file stays one concern;
``EngineAPI`` mixes this in and provides ``chain``, ``txpool``, ``builder``, ``check_fork``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.types.block import Block
from ethnode.eth.catalyst.forks import latest_fork
from ethnode.eth.catalyst.payload import block_to_payload, payload_body
from ethnode.miner.payload_building import blobs_bundle
from ethnode.rpc.hexutil import HexError, data, decode_fixed, decode_quantity, quantity
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError

if TYPE_CHECKING:
    from ethnode.core.blockchain import BlockChain
    from ethnode.miner.payload_building import PayloadBuilder

UNKNOWN_PAYLOAD = -38001
TOO_LARGE_REQUEST = -38004
UNSUPPORTED_FORK = -38005
MAX_BODIES = 1024  # geth: getPayloadBodiesByRange count limit
MAX_BLOBS_REQUEST = 128  # geth: getBlobs hashes limit
_FORK_ORDER = ("paris", "shanghai", "cancun", "prague", "osaka", "bpo1", "bpo2", "amsterdam", "bpo3", "bpo4",
               "bpo5", "bogota")


def _unsupported(text: str | None = None) -> RPCError:
    return RPCError(UNSUPPORTED_FORK, "Unsupported fork", None if text is None else {"err": text})


def _too_large(text: str) -> RPCError:
    return RPCError(TOO_LARGE_REQUEST, "Too large request", {"err": text})


def required(index: int, value: Any) -> Any:
    """geth's RPC layer: JSON null, or no argument, for a parameter that is not a Go pointer (a
    struct, slice, array or number) fails the call before the method runs, with this -32602."""
    if value is None:
        raise RPCError(INVALID_PARAMS, f"missing value for required argument {index}")
    return value


def _payload_id(value: Any) -> bytes:
    required(0, value)
    try:
        return decode_fixed(value, 8, "engine.PayloadID")
    except HexError as exc:
        raise RPCError(INVALID_PARAMS, f"invalid argument 0: {exc}") from None


class GetPayloadMixin:
    chain: BlockChain
    txpool: Any
    builder: PayloadBuilder

    def check_fork(self, timestamp: int, *forks: str) -> bool:  # provided by EngineAPI
        raise NotImplementedError

    @property
    def config(self) -> ChainConfig:
        raise NotImplementedError

    # --- getPayload ---------------------------------------------------------------------------

    def _get_payload(self, value: Any, versions: tuple[int, ...], forks: tuple[str, ...] | None) -> dict[str, Any]:
        payload_id = _payload_id(value)
        if payload_id[0] not in versions:
            raise _unsupported()
        payload = self.builder.get(payload_id)
        if payload is None:
            raise RPCError(UNKNOWN_PAYLOAD, "Unknown payload")
        if forks is not None and not self.check_fork(payload.args.timestamp, *forks):
            raise _unsupported()
        built = payload.resolve()
        block = built.block
        requests = built.result.requests
        bundle = blobs_bundle(built)
        return {
            "executionPayload": block_to_payload(block, built.result.block_access_list),
            "blockValue": quantity(built.fees),
            "blobsBundle": {k: [data(x) for x in v] for k, v in bundle.items()},
            "executionRequests": None if requests is None else [data(r) for r in requests if len(r) > 1],
            "shouldOverrideBuilder": False,
        }

    def get_payload_v1(self, payload_id: Any) -> dict[str, Any]:
        return self._get_payload(payload_id, (1,), None)["executionPayload"]  # type: ignore[no-any-return]

    def get_payload_v2(self, payload_id: Any) -> dict[str, Any]:
        return self._get_payload(payload_id, (1, 2), ("paris", "shanghai"))

    def get_payload_v3(self, payload_id: Any) -> dict[str, Any]:
        return self._get_payload(payload_id, (3,), ("cancun",))

    def get_payload_v4(self, payload_id: Any) -> dict[str, Any]:
        return self._get_payload(payload_id, (3,), ("prague",))

    def get_payload_v5(self, payload_id: Any) -> dict[str, Any]:
        return self._get_payload(payload_id, (3,), ("osaka", "bpo1", "bpo2"))

    def get_payload_v6(self, payload_id: Any) -> dict[str, Any]:
        return self._get_payload(payload_id, (4,), ("amsterdam", "bpo3", "bpo4", "bpo5", "bogota"))

    # --- payload bodies -------------------------------------------------------------------------

    def _bal(self, block: Block | None) -> bytes | None:
        if block is None:
            return None
        return rawdb.read_block_access_list(self.chain.db, block.hash, block.number)

    def _bodies_by_hash(self, hashes: Any, version: int) -> list[dict[str, Any] | None]:
        if not isinstance(required(0, hashes), list):
            raise RPCError(INVALID_PARAMS, "invalid argument 0: want an array of hashes")
        out = []
        for h in hashes:
            try:
                block_hash = decode_fixed(h, 32, "common.Hash")
            except HexError as exc:
                raise RPCError(INVALID_PARAMS, f"invalid argument 0: {exc}") from None
            block = self.chain.get_block_by_hash(block_hash)
            out.append(payload_body(block, version, self._bal(block) if version >= 2 else None))
        return out

    def _bodies_by_range(self, start: Any, count: Any, version: int) -> list[dict[str, Any] | None]:
        required(0, start), required(1, count)
        try:
            first, n = decode_quantity(start, 64), decode_quantity(count, 64)
        except HexError as exc:
            raise RPCError(INVALID_PARAMS, f"invalid argument 0: {exc}") from None
        if first == 0 or n == 0:
            raise RPCError(INVALID_PARAMS, "Invalid parameters",
                           {"err": f"invalid start or count, start: {first} count: {n}"})
        if n > MAX_BODIES:
            raise _too_large(f"requested count too large: {n}")
        last = min(first + n - 1, self.chain.current_block.number)
        out = []
        for number in range(first, last + 1):
            block = self.chain.get_block_by_number(number)
            out.append(payload_body(block, version, self._bal(block) if version >= 2 else None))
        return out

    def get_payload_bodies_by_hash_v1(self, hashes: Any) -> list[dict[str, Any] | None]:
        return self._bodies_by_hash(hashes, 1)

    def get_payload_bodies_by_hash_v2(self, hashes: Any) -> list[dict[str, Any] | None]:
        return self._bodies_by_hash(hashes, 2)

    def get_payload_bodies_by_range_v1(self, start: Any, count: Any) -> list[dict[str, Any] | None]:
        return self._bodies_by_range(start, count, 1)

    def get_payload_bodies_by_range_v2(self, start: Any, count: Any) -> list[dict[str, Any] | None]:
        return self._bodies_by_range(start, count, 2)

    # --- blobs ------------------------------------------------------------------------------------

    def _blob_hashes(self, hashes: Any) -> list[bytes]:
        if not isinstance(required(0, hashes), list):
            raise RPCError(INVALID_PARAMS, "invalid argument 0: want an array of hashes")
        if len(hashes) > MAX_BLOBS_REQUEST:
            raise _too_large(f"requested blob count too large: {len(hashes)}")
        try:
            return [decode_fixed(h, 32, "common.Hash") for h in hashes]
        except HexError as exc:
            raise RPCError(INVALID_PARAMS, f"invalid argument 0: {exc}") from None

    def _pool_blobs(self, hashes: list[bytes]) -> list[tuple[bytes, tuple[bytes, ...], int] | None]:
        if self.txpool is None or not hasattr(self.txpool, "blobs"):
            return [None] * len(hashes)
        return self.txpool.blobs(hashes)  # type: ignore[no-any-return]

    def _head_fork_index(self) -> int:
        return _FORK_ORDER.index(latest_fork(self.config, self.chain.current_header.time))

    def get_blobs_v1(self, hashes: Any) -> list[dict[str, str] | None]:
        required(0, hashes)  # before the fork check: geth refuses the null while parsing
        if not self.check_fork(self.chain.current_header.time, "cancun", "prague"):
            raise _unsupported("engine_getBlobsV1 is only available at Cancun/Prague fork")
        wanted = self._blob_hashes(hashes)
        out: list[dict[str, str] | None] = []
        for found in self._pool_blobs(wanted):
            if found is None or found[2] != 0 or not found[1]:
                out.append(None)
            else:
                out.append({"blob": data(found[0]), "proof": data(found[1][0])})
        return out

    def _get_blobs_cells(self, hashes: Any, all_or_nothing: bool) -> list[dict[str, Any] | None] | None:
        required(0, hashes)
        if self._head_fork_index() < _FORK_ORDER.index("osaka"):
            return None
        wanted = self._blob_hashes(hashes)
        out: list[dict[str, Any] | None] = []
        for found in self._pool_blobs(wanted):
            if found is None or found[2] != 1:
                if all_or_nothing:
                    return None
                out.append(None)
            else:
                out.append({"blob": data(found[0]), "proofs": [data(p) for p in found[1]]})
        return out

    def get_blobs_v2(self, hashes: Any) -> list[dict[str, Any] | None] | None:
        return self._get_blobs_cells(hashes, True)

    def get_blobs_v3(self, hashes: Any) -> list[dict[str, Any] | None] | None:
        return self._get_blobs_cells(hashes, False)


__all__ = ["GetPayloadMixin", "required"]
