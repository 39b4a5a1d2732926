"""``debug_traceTransaction``, ``debug_traceBlockByNumber``/``ByHash`` and ``debug_traceCall``,
as geth v1.17.10's ``eth/tracers`` API with its native ``callTracer`` and ``prestateTracer``.

A traced tx is re-executed on its parent's state after the block's earlier txs (geth's
``stateAtTransaction``); the engine reports raw frames and looked-up state
(``ethnode.core.execution.tracing``) and this module shapes them as geth's tracers do: the
call tree with geth's gas figures, error texts and ``revertReason``; the prestate map (or
its ``diffMode`` pre/post) with geth's omissions (empty accounts dropped, unchanged slots
left out, a deleted account kept in ``pre`` only).
"""

from __future__ import annotations

import re
import time
from typing import Any

from ethnode.core.execution import CallTimeoutError, ExecutionError
from ethnode.core.execution.tracing import TraceFrame, TxTrace
from ethnode.core.types.block import Block
from ethnode.crypto.keccak import keccak256
from ethnode.ethapi.call import TransactionArgs, unpack_revert
from ethnode.ethapi.eth import EthAPI, _block_number, _execution_errors
from ethnode.rpc.hexutil import data, hash_arg, quantity
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError, server_error

DEFAULT_TIMEOUT = 5.0  # geth defaultTraceTimeout
EMPTY_CODE_HASH = keccak256(b"")
ZERO_HASH = bytes(32)
_NATIVE = ("callTracer", "prestateTracer")
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (seconds), with its error text."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(body):
        m = _DURATION.match(body, pos)
        if m is None:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body or pos != len(body):
        raise server_error(f'time: invalid duration "{text}"')
    return -total if text.startswith("-") else total


# --- callTracer -----------------------------------------------------------------------------


def _call_frame(f: TraceFrame) -> dict[str, Any]:
    """geth callFrame.processOutput: a failed frame keeps its output only when it reverted (and a
    failed creation loses its address)."""
    out: dict[str, Any] = {"from": data(f.sender), "gas": quantity(f.gas), "gasUsed": quantity(f.gas_used),
                           "to": data(f.to), "input": data(f.input)}
    if f.error and f.reverted:
        out["error"] = f.error
        if f.kind in ("CREATE", "CREATE2"):
            del out["to"]
        if f.error == "execution reverted" and f.output:
            out["output"] = data(f.output)
            reason = unpack_revert(f.output) if len(f.output) >= 4 else None
            if reason:
                out["revertReason"] = reason
    elif f.output:
        out["output"] = data(f.output)
    if f.value is not None:
        out["value"] = quantity(f.value)
    out["type"] = f.kind
    return out


def call_tracer(trace: TxTrace, top: TraceFrame, config: dict[str, Any]) -> dict[str, Any]:
    """geth native ``callTracer`` (``onlyTopCall``, ``withLog``); ``top`` stands for the top call
    when the engine failed the tx before entering it (geth enters it, then fails)."""
    only_top, with_log = bool(config.get("onlyTopCall")), bool(config.get("withLog"))
    frames = trace.frames or [top]
    gas_limit = top.gas
    nodes = [_call_frame(f) for f in frames]
    nodes[0]["gas"] = quantity(gas_limit)
    nodes[0]["gasUsed"] = quantity(trace.gas_used)
    failed = [False] * len(frames)
    for i, f in enumerate(frames):
        failed[i] = bool(f.error and f.reverted) or (f.parent >= 0 and failed[f.parent])
    for i, f in enumerate(frames):
        if with_log and f.logs and not failed[i] and (not only_top or i == 0):
            nodes[i]["logs"] = [{"address": data(lg.address), "topics": [data(t) for t in lg.topics],
                                 "data": data(lg.data), "index": quantity(lg.index),
                                 "position": quantity(0 if only_top else lg.position)} for lg in f.logs]
        if i and not only_top:
            nodes[f.parent].setdefault("calls", []).append(nodes[i])
    return nodes[0]


# --- prestateTracer -------------------------------------------------------------------------


def _account(balance: int | None, nonce: int, code: bytes | None, code_hash: bytes | None,
             storage: dict[bytes, bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if balance is not None:
        out["balance"] = quantity(balance)
    if code is not None:
        out["code"] = data(code)
    if code_hash is not None:
        out["codeHash"] = data(code_hash)
    if nonce:
        out["nonce"] = nonce
    if storage:
        out["storage"] = {data(k): data(v) for k, v in storage.items()}
    return out


def prestate_tracer(trace: TxTrace, config: dict[str, Any], cancun: bool) -> dict[str, Any]:
    """geth native ``prestateTracer`` (``diffMode``, ``disableCode``, ``disableStorage``, ``includeEmpty``)."""
    diff = bool(config.get("diffMode"))
    no_code, no_storage, include_empty = (bool(config.get(k)) for k in ("disableCode", "disableStorage",
                                                                       "includeEmpty"))
    if diff and include_empty:
        raise server_error("cannot use diffMode with includeEmpty")
    storage: dict[bytes, dict[bytes, tuple[bytes, bytes]]] = {}
    if not no_storage:
        for address, slot, pre, post in trace.slots:
            storage.setdefault(address, {})[slot] = (pre, post)
    deleted = {a for a in trace.destructed if not cancun or a in trace.created}
    pre_out: dict[str, Any] = {}
    post_out: dict[str, Any] = {}
    for acc in trace.accounts:
        balance, nonce, code, code_hash = acc.pre
        empty = nonce == 0 and not code and balance == 0
        has_hash = code_hash not in (ZERO_HASH, EMPTY_CODE_HASH) and bool(code)
        slots = storage.get(acc.address, {})
        pre_storage = {k: v[0] for k, v in slots.items()}
        key = data(acc.address)
        if diff and acc.address not in deleted:
            p_balance, p_nonce, p_code, p_hash = acc.post
            exists = p_nonce != 0 or p_balance != 0 or bool(p_code)
            if not exists:
                p_hash = ZERO_HASH  # geth's StateDB: no object, no code hash
            modified = False
            post: dict[str, Any] = {}
            if p_balance != balance:
                modified, post["balance"] = True, quantity(p_balance)
            if p_nonce != nonce:
                modified, post["nonce"] = True, p_nonce
            if p_hash != (code_hash if has_hash else EMPTY_CODE_HASH):
                modified, post["codeHash"] = True, data(p_hash)
            if not no_code and p_code != (code or b""):
                modified, post["code"] = True, data(p_code)
            kept: dict[bytes, bytes] = {}
            post_storage: dict[str, str] = {}
            for slot, (before, after) in slots.items():
                if before == after:
                    continue
                modified = True
                if before != ZERO_HASH:
                    kept[slot] = before
                if after != ZERO_HASH:
                    post_storage[data(slot)] = data(after)
            if post_storage:
                post["storage"] = post_storage
            if not modified:
                continue
            post_out[key] = post
            pre_storage = kept
        if empty and not include_empty:
            continue
        pre_out[key] = _account(balance, nonce, None if no_code or not code else code,
                                code_hash if has_hash else None, pre_storage)
    return {"post": post_out, "pre": pre_out} if diff else pre_out


# --- the API --------------------------------------------------------------------------------


class TraceConfig:
    """geth ``TraceConfig``: the struct logger's options inline, ``tracer``, ``timeout``, ``tracerConfig``."""

    def __init__(self, index: int, raw: Any) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal "
                                           f"{_json_kind(raw)} into Go value of type tracers.TraceConfig")
        self.raw = raw
        self.tracer: str | None = raw.get("tracer")
        self.timeout = DEFAULT_TIMEOUT if raw.get("timeout") is None else parse_duration(str(raw["timeout"]))
        tracer_config = raw.get("tracerConfig")
        self.tracer_config: dict[str, Any] = tracer_config if isinstance(tracer_config, dict) else {}

    def check(self) -> None:
        """geth ``DefaultDirectory.New``: a name that is not native is evaluated as JS code, and a bare
        name that JS does not know fails as a ReferenceError (ethnode runs no JS tracers)."""
        error = self.error()
        if error is not None:
            raise server_error(error)

    def error(self) -> str | None:
        if self.tracer is None:
            return "ethnode does not serve the struct logger yet: give a \"tracer\" (callTracer, prestateTracer)"
        if self.tracer in _NATIVE:
            return None
        if _IDENTIFIER.fullmatch(self.tracer):
            return f"ReferenceError: {self.tracer} is not defined at <eval>:1:2(0)"
        return "ethnode does not run JavaScript tracers"

    @property
    def is_js(self) -> bool:
        """geth ``DefaultDirectory.IsJS``: any name but a native tracer's (a block then reports per tx)."""
        return bool(self.tracer) and self.tracer not in _NATIVE


def _json_kind(value: Any) -> str:
    return {str: "string", bool: "bool", list: "array"}.get(type(value), "number")


class TracerAPI:
    """The ``debug_trace*`` methods over the EthAPI's chain and its executor."""

    def __init__(self, eth: EthAPI) -> None:
        self._eth = eth
        self.chain = eth.chain

    def trace_transaction(self, tx_hash: Any, config: Any = None) -> Any:
        h = hash_arg(0, tx_hash)
        cfg = TraceConfig(1, config)
        found = self.chain.get_transaction(h)
        if found is None:
            raise server_error("transaction not found")
        _, block_hash, number, index = found
        if number == 0:
            raise server_error("genesis is not traceable")
        block = self.chain.get_block(block_hash, number)
        if block is None:
            raise server_error(f"block #{number} not found")
        cfg.check()
        return self._trace(block, [index], cfg)[index]

    def trace_block_by_number(self, number: Any, config: Any = None) -> Any:
        tag = _block_number(0, number)
        cfg = TraceConfig(1, config)
        header = self._eth._header_by_tag(tag)
        if header is None:
            raise server_error(f"block #{_tag_number(tag)} not found")
        block = self.chain.get_block(header.hash, header.number)
        if block is None:
            raise server_error(f"block #{header.number} not found")
        return self._trace_block(block, cfg)

    def trace_block_by_hash(self, block_hash: Any, config: Any = None) -> Any:
        h = hash_arg(0, block_hash)
        cfg = TraceConfig(1, config)
        block = self.chain.get_block_by_hash(h)
        if block is None:
            raise server_error(f"block {data(h)} not found")
        return self._trace_block(block, cfg)

    def trace_call(self, args: Any, block: Any = None, config: Any = None) -> Any:
        """geth ``TraceCall``: the message on the state after ``block``, in its context."""
        eth = self._eth
        tx_args = TransactionArgs.from_json(0, args, method="debug_traceCall")
        cfg = TraceConfig(2, config)
        for key, what in (("stateOverrides", "state overrides"), ("blockOverrides", "block overrides"),
                          ("txIndex", "txIndex")):
            if cfg.raw.get(key) is not None:
                raise RPCError(INVALID_PARAMS, f"invalid argument 2: {what} are not supported by ethnode")
        header = self._call_block(block)
        executor = eth._executor(header)
        if not hasattr(executor, "trace_call"):
            raise server_error(f"tracing is not available on the {executor.name} engine")
        tx_args.call_defaults(eth.gas_cap, header.base_fee, eth._config.chain_id)
        message = tx_args.to_message(header.base_fee)
        cfg.check()
        deadline = time.monotonic() + cfg.timeout if cfg.timeout else None
        with _execution_errors(header, cfg.timeout, lambda text: f"tracing failed: {text}"):
            try:
                trace = executor.trace_call(header, message, fee_recipient=eth._author(header), deadline=deadline)
            except CallTimeoutError:  # geth's tracer.Stop(errors.New("execution timeout"))
                raise server_error("execution timeout") from None
        cancun = self.chain.config.is_cancun(header.number, header.time)
        top = TraceFrame("CALL" if message.to else "CREATE", -1, message.sender, message.to or bytes(20),
                         message.value, message.gas, trace.gas_used, message.data, b"", trace.error, True)
        return self._shape(trace, top, cfg, cancun)

    def _call_block(self, value: Any) -> Any:
        """geth ``rpc.BlockNumberOrHash`` resolved by blockByNumber/blockByHash (their error texts)."""
        if value is None:
            value = "latest"
        if isinstance(value, dict):
            if "blockHash" in value and "blockNumber" not in value:
                value = value["blockHash"]
            elif "blockNumber" in value:
                value = value["blockNumber"]
        if isinstance(value, str) and len(value) == 66:
            h = hash_arg(1, value)
            header = self.chain.get_header_by_hash(h)
            if header is None:
                raise server_error(f"block {data(h)} not found")
            return header
        tag = _block_number(1, value)
        if tag == "pending":
            raise server_error("tracing on top of pending is not supported")
        header = self._eth._header_by_tag(tag)
        if header is None:
            raise server_error(f"block #{_tag_number(tag)} not found")
        return header

    def _shape(self, trace: TxTrace, top: TraceFrame, cfg: TraceConfig, cancun: bool) -> Any:
        if trace.timed_out:
            raise server_error("execution timeout")
        if cfg.tracer == "callTracer":
            return call_tracer(trace, top, cfg.tracer_config)
        return prestate_tracer(trace, cfg.tracer_config, cancun)

    def _trace_block(self, block: Block, cfg: TraceConfig) -> list[dict[str, Any]]:
        if block.header.number == 0:
            raise server_error("genesis is not traceable")
        if not block.transactions:
            self._parent(block)
            return []
        if cfg.is_js:  # geth traceBlockParallel: each tx's failure is reported in its entry
            self._parent(block)
            return [{"txHash": data(tx.hash), "error": cfg.error()} for tx in block.transactions]
        cfg.check()
        indices = list(range(len(block.transactions)))
        traces = self._trace(block, indices, cfg)
        return [{"txHash": data(tx.hash), "result": traces[i]} for i, tx in enumerate(block.transactions)]

    def _parent(self, block: Block) -> Any:
        parent = self.chain.get_header(block.header.parent_hash, block.header.number - 1)
        if parent is None:
            raise server_error(f"block #{block.header.number - 1} not found")
        return parent

    def _trace(self, block: Block, indices: list[int], cfg: TraceConfig) -> dict[int, Any]:
        eth = self._eth
        parent = self._parent(block)
        executor = eth._executor(parent)
        if not hasattr(executor, "trace_block"):
            raise server_error(f"tracing is not available on the {executor.name} engine")
        senders = [tx.sender for tx in block.transactions]
        try:
            traces = executor.trace_block(parent, block, senders, max(indices) + 1, indices,
                                          fee_recipient=eth._author(block.header), timeout=cfg.timeout or None)
        except ExecutionError as exc:
            raise server_error(f"tracing failed: {exc}") from None
        cancun = self.chain.config.is_cancun(block.header.number, block.header.time)
        out = {}
        for i in indices:
            tx, trace = block.transactions[i], traces[i]
            top = TraceFrame("CALL" if tx.to else "CREATE", -1, senders[i], tx.to or bytes(20), tx.value, tx.gas,
                             trace.gas_used, tx.data, b"", trace.error, True)
            out[i] = self._shape(trace, top, cfg, cancun)
        return out


def _tag_number(tag: int | str) -> int:
    """geth rpc.BlockNumber's value for a tag, as ``%d`` prints it."""
    return {"latest": -2, "pending": -1, "earliest": 0, "safe": -4, "finalized": -3}.get(tag, tag)  # type: ignore[arg-type]


__all__ = ["TracerAPI", "TraceConfig", "call_tracer", "prestate_tracer", "parse_duration"]
