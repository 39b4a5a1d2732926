"""The debug_trace* questions of the differential test (``test_rpc_geth_diff.py``).

``trace_cases`` picks blocks of the chain that hold creations, logs, blob txs, EIP-7702
delegations, failed txs and (on v1.17.10's chain) call trees and reverts, and asks for each
block's traces with geth's ``callTracer`` (plain, ``withLog``, ``onlyTopCall``) and
``prestateTracer`` (plain, ``diffMode``); a few single txs; ``debug_traceCall`` of
``PROBE``, an init code that exercises every kind of frame (CALL with and without value,
STATICCALL into a precompile and into a writer, DELEGATECALL, CREATE2, a reverted CREATE that
logged, a revert with an Error(string) reason and one with a Panic, SELFDESTRUCT), and
the error cases.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from rpcdiff_support import UNKNOWN_HASH, Case

CALL_LOG = {"tracer": "callTracer", "tracerConfig": {"withLog": True}}
CALL = {"tracer": "callTracer"}
CALL_TOP = {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True, "withLog": True}}
PRESTATE = {"tracer": "prestateTracer"}
DIFF = {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}}
TRACERS = (CALL_LOG, PRESTATE, DIFF)
MAX_BLOCKS = 14  # blocks traced with every tracer (each a handful of txs)


def _push(value: int | bytes) -> bytes:
    raw = value if isinstance(value, bytes) else value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return bytes([0x5F + len(raw)]) + raw


def _addr(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _call(op: int, target: bytes, value: int | None, in_off: int, in_len: int) -> bytes:
    """``op``(gas, target, [value,] in_off, in_len, 0, 32), result popped."""
    code = _push(32) + _push(0) + _push(in_len) + _push(in_off)
    if value is not None:
        code += _push(value)
    return code + _push(target) + b"\x5a" + bytes([op]) + b"\x50"


def _mstore(offset: int, word: bytes) -> bytes:
    return _push(word.rjust(32, b"\0")) + _push(offset) + b"\x52"


def probe(callme: str, callrevert: str, callenv: str, *, selfdestruct: bool) -> str:
    """Init code calling the chain's test contracts every way a frame can be entered."""
    writer_init = bytes.fromhex("6460016000556000526005601bf3")  # deploys 6001600055: SSTORE(0, 1)
    logs_then_reverts = bytes.fromhex("60006000a060006000fd")
    code = _push(0x42) + _push(1) + b"\x55" + _push(1) + b"\x54\x50"  # SSTORE(1, 0x42); SLOAD(1)
    code += _mstore(0, b"\x07") + _push(0xAA) + _push(32) + _push(0) + b"\xa1"  # LOG1
    code += _mstore(0, b"\xff\x01".ljust(32, b"\0")) + _call(0xF1, _addr(callme), 0, 0, 2)  # callme's answer
    code += _call(0xF1, _addr(callme), 0, 0, 3)  # wrong size: reverts
    code += _mstore(0, b"\x01") + _call(0xF1, _addr(callrevert), 0, 0, 32)  # Error("user error")
    code += _mstore(0, b"") + _call(0xF1, _addr(callrevert), 0, 0, 32)  # Panic(1)
    code += _call(0xFA, (2).to_bytes(20, "big"), None, 0, 32)  # sha256 precompile
    code += _call(0xF4, _addr(callenv), None, 0, 0)
    code += _call(0xF1, bytes.fromhex("00" * 18 + "de" + "ad"), 1, 0, 0)  # value to a new account
    for op, target in ((0x31, callme), (0x3B, callrevert), (0x3F, callenv)):  # BALANCE, EXTCODESIZE, EXTCODEHASH
        code += _push(_addr(target)) + bytes([op, 0x50])
    # CREATE2 the writer (salt 7), STATICCALL it (write protection), then CALL it.
    code += _mstore(0, writer_init.rjust(32, b"\0")) + _push(7) + _push(len(writer_init)) + _push(32 - len(writer_init))
    code += _push(0) + b"\xf5"  # -> address
    code += _push(32) + _push(0) + _push(0) + _push(0) + b"\x84" + _push(60000) + b"\xfa\x50"  # STATICCALL(dup5)
    code += _push(32) + _push(0) + _push(0) + _push(0) + _push(0) + b"\x85" + b"\x5a\xf1\x50\x50"  # CALL
    code += _mstore(0, logs_then_reverts.rjust(32, b"\0")) + _push(len(logs_then_reverts))
    code += _push(32 - len(logs_then_reverts)) + _push(0) + b"\xf0\x50"  # CREATE: logs, then reverts
    if selfdestruct:
        code += _push(0xBEEF) + b"\xff"
    return "0x" + code.hex() + "00"


def _post(url: str, method: str, params: list[Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read()).get("result")


def _blocks(info: dict[str, Any], geth_url: str, head: int) -> list[int]:
    """The blocks worth tracing: each kind of tx the chain holds, and its first failed txs."""
    picked: list[int] = []
    for key in ("deploy-callenv", "deploy-callme", "deploy-callrevert"):
        picked.append(int(info[key]["block"], 16))
    for key in ("tx-callrevert", "tx-calltree", "tx-emit-eip1559", "tx-emit-eip4844", "tx-transfer-legacy"):
        if isinstance(info.get(key), list):
            picked += [int(info[key][0]["block"], 16), int(info[key][-1]["block"], 16)]
    auth = info.get("tx-eip7702", {}).get("authorizeTx")
    if auth:
        picked.append(int(_post(geth_url, "eth_getTransactionByHash", [auth])["blockNumber"], 16))
    failed = []
    for number in range(1, head + 1):
        receipts = _post(geth_url, "eth_getBlockReceipts", [hex(number)]) or []
        if any(r["status"] == "0x0" for r in receipts):
            failed.append(number)
    picked += failed[:3]
    out: list[int] = []
    for n in picked:
        if n not in out:
            out.append(n)
    return out[:MAX_BLOCKS]


def trace_cases(testdata: Path, geth_url: str) -> list[Case]:
    info = json.loads((testdata / "txinfo.json").read_text())
    accounts = sorted(json.loads((testdata / "accounts.json").read_text()))
    head = int(_post(geth_url, "eth_blockNumber", []), 16)
    blocks = _blocks(info, geth_url, head)
    out: list[Case] = []
    for n in blocks:
        for i, cfg in enumerate(TRACERS):
            out.append(Case(f"trace block {n} {['call', 'prestate', 'diff'][i]}", "debug_traceBlockByNumber",
                            [hex(n), cfg]))
    for n in blocks[:4]:
        out.append(Case(f"trace block {n} call plain", "debug_traceBlockByNumber", [hex(n), CALL]))
        out.append(Case(f"trace block {n} call top", "debug_traceBlockByNumber", [hex(n), CALL_TOP]))
    for n in blocks[:3]:  # the prestate tracer's options
        for opts in ({"disableCode": True, "disableStorage": True}, {"includeEmpty": True},
                     {"diffMode": True, "disableCode": True}):
            out.append(Case(f"trace block {n} prestate {sorted(opts)}", "debug_traceBlockByNumber",
                            [hex(n), {"tracer": "prestateTracer", "tracerConfig": opts}]))
    first = _post(geth_url, "eth_getBlockByNumber", [hex(blocks[0]), False])
    out.append(Case("trace block by hash", "debug_traceBlockByHash", [first["hash"], CALL_LOG]))
    txs = [info[k][0]["txhash"] for k in ("tx-calltree", "tx-callrevert", "tx-emit-eip1559")
           if isinstance(info.get(k), list)]
    for tx in txs:
        for i, cfg in enumerate(TRACERS):
            out.append(Case(f"trace tx {tx[:10]} {['call', 'prestate', 'diff'][i]}", "debug_traceTransaction",
                            [tx, cfg]))
    contracts = [info[k]["contract"] for k in ("deploy-callme", "deploy-callrevert", "deploy-callenv")]
    rich = accounts[0]
    for sd in (False, True):
        init = probe(*contracts, selfdestruct=sd)
        for i, cfg in enumerate(TRACERS):
            name = f"trace call probe{' selfdestruct' if sd else ''} {['call', 'prestate', 'diff'][i]}"
            out.append(Case(name, "debug_traceCall", [{"from": rich, "data": init, "value": "0x5"}, "latest", cfg]))
    callrevert = contracts[1]
    word = "0x" + "00" * 31 + "01"
    out += [
        Case("trace call revert reason", "debug_traceCall", [{"to": callrevert, "data": word}, "latest", CALL]),
        Case("trace call panic", "debug_traceCall", [{"to": callrevert}, hex(head // 2), CALL]),
        Case("trace call callme diff", "debug_traceCall",
             [{"from": rich, "to": contracts[0], "data": "0xff01", "value": "0x1"}, "latest", DIFF]),
        Case("trace call block hash", "debug_traceCall", [{"to": contracts[2]}, first["hash"], PRESTATE]),
        # errors
        Case("trace call timeout", "debug_traceCall",
             [{"data": "0x5b5f56", "gas": hex(50_000_000)}, "latest", {"tracer": "callTracer", "timeout": "2ms"}]),
        Case("trace struct logger", "debug_traceTransaction", [txs[0] if txs else UNKNOWN_HASH, {"limit": 3}]),
        Case("trace tx unknown", "debug_traceTransaction", [UNKNOWN_HASH, CALL]),
        Case("trace block genesis", "debug_traceBlockByNumber", ["0x0", CALL]),
        Case("trace block beyond head", "debug_traceBlockByNumber", [hex(head + 1000), CALL]),
        Case("trace block hash unknown", "debug_traceBlockByHash", [UNKNOWN_HASH, CALL]),
        Case("trace unknown tracer", "debug_traceBlockByNumber", [hex(blocks[0]), {"tracer": "noSuchTracer"}]),
        Case("trace bad timeout", "debug_traceTransaction", [txs[0] if txs else UNKNOWN_HASH,
                                                             {"tracer": "callTracer", "timeout": "soon"}]),
        Case("trace diff with empty", "debug_traceBlockByNumber",
             [hex(blocks[0]), {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True, "includeEmpty": True}}]),
        Case("trace call pending", "debug_traceCall", [{"to": callrevert}, "pending", CALL]),
        Case("trace call unknown block", "debug_traceCall", [{"to": callrevert}, hex(head + 1000), CALL]),
        Case("trace call unknown hash", "debug_traceCall", [{"to": callrevert}, UNKNOWN_HASH, CALL]),
    ]
    return out


__all__ = ["trace_cases", "probe"]
