"""geth and ethnode holding the same executed chain, asked the same JSON-RPC questions.

``prepare_geth``/``prepare_ethnode`` import one of geth's eth-test chains into a datadir
(geth ``init`` + ``import``; ethnode-fast ``init`` + ``import`` with execution), the
``serve_*`` helpers start each with HTTP on loopback (no discovery, no peers), and
``cases(testdata)`` is the list of requests the differential test sends to both: built
from the chain's own ``txinfo.json``/``accounts.json``/``genesis.json`` so the same list
fits v1.17.5's Prague chain and v1.17.10's Osaka/Amsterdam one.

Replies are compared after JSON parsing: the ``result``, or the error's code, message
and data. ``EXCLUDED`` names the methods whose answers are expected to differ and why.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli_support import RunProcess
from geth_support import free_port
from shared_support import subprocess_env

HOST = "127.0.0.1"
PREPARE_TIMEOUT = 180.0  # init + import of a 600-block chain: a few seconds each, more on a busy machine
START_TIMEOUT = 60.0
API = "eth,net,web3,debug,txpool"
HTTP_LINE = re.compile(r"HTTP server started +endpoint=[\d.]+:(\d+) +auth=false")
UNKNOWN_HASH = "0x" + "ab" * 32
NOBODY = "0x" + "00" * 19 + "99"

# Answers that differ by design, with the reason (the test asserts both sides answer at all).
EXCLUDED = {
    "web3_clientVersion": "names the client (Geth/v1.17.10-... vs ethnode-fast/...)",
}


@dataclass(frozen=True)
class Case:
    """One request: ``name`` tells the report which question it was."""

    name: str
    method: str
    params: list[Any]

    def body(self, rid: int) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": rid, "method": self.method, "params": self.params}


def prepare_geth(geth: Path, testdata: Path, datadir: Path, *, init_flags: tuple[str, ...] = (),
                 import_flags: tuple[str, ...] | None = ()) -> None:
    """``init`` and ``import`` (``import_flags`` None: the genesis only)."""
    steps = [["init", *init_flags, "--datadir", str(datadir), str(testdata / "genesis.json")]]
    if import_flags is not None:
        steps.append(["import", *import_flags, "--datadir", str(datadir), str(testdata / "chain.rlp")])
    for args in steps:
        done = subprocess.run([str(geth), *args], capture_output=True, text=True, timeout=PREPARE_TIMEOUT)
        assert done.returncode == 0, f"geth {args[0]} failed:\n{done.stderr[-3000:]}"


def prepare_ethnode(testdata: Path, datadir: Path, *, import_chain: bool = True) -> str:
    """``init``, then import with execution; the last step's log (its head, whether roots were verified)."""
    env = subprocess_env()
    steps = [["init", str(testdata / "genesis.json")]]
    if import_chain:
        steps.append(["import", str(testdata / "chain.rlp")])
    for args in steps:
        done = subprocess.run([sys.executable, "-m", "ethnode", *args, "--datadir", str(datadir)],
                              capture_output=True, text=True, env=env, timeout=PREPARE_TIMEOUT)
        assert done.returncode == 0, f"ethnode-fast {args[0]} failed:\n{done.stdout}{done.stderr[-3000:]}"
    if import_chain:
        assert "executed=yes" in done.stderr and "roots=verified" in done.stderr, done.stderr[-2000:]
    return done.stderr


class GethHTTP:
    """geth serving HTTP over an imported datadir: no discovery, no peers, no NAT."""

    def __init__(self, geth: Path, datadir: Path, *extra: str) -> None:
        self.port = free_port()
        args = [str(geth), "--datadir", str(datadir), "--http", "--http.addr", HOST, "--http.port", str(self.port),
                "--http.api", API, "--nodiscover", "--nat", "none", "--maxpeers", "0", "--syncmode", "full",
                "--port", str(free_port()), "--authrpc.addr", HOST, "--authrpc.port", str(free_port()),
                "--ipcdisable", "--verbosity", "3", *extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        started = threading.Event()

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line.rstrip())
                if "HTTP server started" in line:
                    started.set()
            started.set()

        threading.Thread(target=pump, daemon=True).start()
        if not started.wait(START_TIMEOUT) or self.proc.poll() is not None:
            self.stop()
            raise AssertionError("geth did not start HTTP:\n" + "\n".join(self.log[-20:]))

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class EthnodeHTTP:
    """``ethnode-fast run`` serving HTTP over an imported datadir, the same flags as geth's."""

    def __init__(self, datadir: Path, *extra: str) -> None:
        self.run = RunProcess(["--datadir", str(datadir), "--http", "--http.addr", HOST, "--http.port", "0",
                               "--http.api", API, "--nodiscover", "--nat", "none", "--maxpeers", "0",
                               "--port", "0", "--listenaddr", HOST, "--authrpc.addr", HOST, "--authrpc.port", "0",
                               "--eth.versions", "69", *extra])
        try:
            self.port = int(self.run.wait_for_line(HTTP_LINE, START_TIMEOUT).group(1))
        except BaseException:
            self.run.stop(signal.SIGKILL)
            raise

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def stop(self) -> None:
        self.run.stop(signal.SIGTERM)


def post(url: str, body: Any, timeout: float = 30.0) -> Any:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def outcome(reply: dict[str, Any]) -> Any:
    """What is compared: the result, or the error's code, message and data."""
    if "error" in reply:
        err = reply["error"]
        return {"error": {k: err[k] for k in ("code", "message", "data") if k in err}}
    return {"result": reply.get("result")}


def ask_all(url: str, cases: list[Case]) -> list[Any]:
    """Each case's outcome, one request per case (a batch would let one slow call hide another's error)."""
    return [outcome(post(url, case.body(i))) for i, case in enumerate(cases)]


def _hexnum(n: int) -> str:
    return hex(n)


def override_cases(sender: str, callenv: str) -> list[Case]:
    """eth_call / eth_estimateGas / eth_createAccessList with geth's state and block overrides."""
    selfbalance, sload0 = "0x4760005260206000f3", "0x60005460005260206000f3"
    bump = "0x6000546001016000556000545f5260205ff3"  # slot0 += 1; return slot 0
    create = "0x600060006000f060005260206000f3"  # CREATE(0, 0, 0); return the address
    blobfee = "0x4a60005260206000f3"  # BLOBBASEFEE
    word = "0x" + "00" * 31
    identity = "0x" + "00" * 19 + "04"
    priced = {"from": sender, "to": callenv, "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1"}
    block = {"number": "0x3039", "feeRecipient": "0x" + "11" * 20, "prevRandao": "0x" + "22" * 32,
             "baseFeePerGas": "0x7", "gasLimit": "0x1c9c380"}
    state: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("code balance", {"to": NOBODY}, {NOBODY: {"code": selfbalance, "balance": "0x1234"}}),
        ("state diff", {"to": NOBODY}, {NOBODY: {"code": sload0, "stateDiff": {word + "00": word + "07"}}}),
        ("state", {"to": NOBODY}, {NOBODY: {"code": sload0, "state": {word + "01": word + "07"}}}),
        ("bump", {"from": sender, "to": NOBODY}, {NOBODY: {"code": bump, "stateDiff": {word + "00": word + "29"}}}),
        ("nonce", {"to": NOBODY}, {NOBODY: {"code": create, "nonce": "0x5"}}),
        ("funded", {"from": NOBODY, "to": sender, "value": "0xde0b6b3a7640000", "maxFeePerGas": "0x3b9aca00"},
         {NOBODY: {"balance": "0x1bc16d674ec800000"}}),
        ("both state kinds", {"to": NOBODY}, {NOBODY: {"state": {}, "stateDiff": {}}}),
        ("move not precompile", {"to": NOBODY}, {NOBODY: {"movePrecompileToAddress": "0x" + "12" * 20}}),
        ("bad balance", {"to": NOBODY}, {NOBODY: {"balance": 1}}),
        ("bad address", {"to": NOBODY}, {"0x12": {}}),
        ("bad slot", {"to": NOBODY}, {NOBODY: {"state": {"0x01": word + "07"}}}),
        ("field case", {"to": NOBODY}, {NOBODY: {"CODE": selfbalance, "balance": "0x1", "Balance": "0x2"}}),
        ("code on precompile", {"to": identity, "data": "0xabcd"}, {identity: {"code": selfbalance, "balance": "0x5"}}),
        ("move precompile", {"to": NOBODY, "data": "0xabcd"}, {identity: {"movePrecompileToAddress": NOBODY}}),
        ("moved precompile source", {"to": identity, "data": "0xabcd"},
         {identity: {"movePrecompileToAddress": NOBODY}}),
        ("move onto override", {"to": NOBODY}, {identity: {"movePrecompileToAddress": NOBODY}, NOBODY: {}}),
        ("call moved precompile", {"to": sender},  # STATICCALLs it, returns the gas left after
         {identity: {"movePrecompileToAddress": NOBODY},
          sender: {"code": "0x5f5f5f5f73" + NOBODY[2:] + "5afa5a5f5260205ff3"}}),
    ]
    out = []
    for name, args, overrides in state:
        out += [Case(f"call override {name}", "eth_call", [args, "latest", overrides]),
                Case(f"estimate override {name}", "eth_estimateGas", [args, "latest", overrides]),
                Case(f"access list override {name}", "eth_createAccessList", [args, "latest", overrides])]
    blocks: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("context", priced, block),
        ("free context", {"to": callenv}, block),
        ("fee under base fee", {"from": sender, "to": callenv, "maxFeePerGas": "0x6"}, {"baseFeePerGas": "0x7"}),
        ("blob base fee", {"to": NOBODY}, {"blobBaseFee": "0x123"}),
        ("beacon root", {"to": callenv}, {"beaconRoot": "0x" + "22" * 32}),
        ("withdrawals", {"to": callenv}, {"withdrawals": []}),
        ("bad time", {"to": callenv}, {"time": 5}),
        ("huge number", {"to": callenv}, {"number": hex(2**64)}),
        ("huge base fee", {"from": sender, "to": callenv, "gasPrice": "0x0"}, {"baseFeePerGas": hex(2**64)}),
        ("huge blob base fee", {"to": NOBODY}, {"blobBaseFee": hex(2**128)}),
        ("large blob base fee", {"to": NOBODY}, {"blobBaseFee": hex(2**128 - 1)}),
        ("large base fee", {"from": sender, "to": callenv, "gasPrice": "0x0"}, {"baseFeePerGas": hex(2**64 - 1)}),
        ("time back", {"to": callenv}, {"time": "0x1", "number": "0x1"}),
        ("difficulty", {"to": callenv}, {"difficulty": "0x5"}),
        ("field case", {"from": sender, "to": callenv, "gasPrice": "0x9"}, {"NUMBER": "0x99", "basefeepergas": "0x3"}),
    ]
    blob_code = {NOBODY: {"code": blobfee}}
    for name, args, overrides in blocks:
        accounts = blob_code if "blob base fee" in name else None
        out += [Case(f"call block override {name}", "eth_call", [args, "latest", accounts, overrides]),
                Case(f"estimate block override {name}", "eth_estimateGas", [args, "latest", accounts, overrides])]
    return out


def cases(testdata: Path, geth_url: str) -> list[Case]:
    """The questions: every method both nodes serve, at several blocks, and the error cases.

    ``geth_url`` is asked for the few facts the chain files do not hold (block hashes)."""
    info = json.loads((testdata / "txinfo.json").read_text())
    accounts = sorted(json.loads((testdata / "accounts.json").read_text()))
    genesis = json.loads((testdata / "genesis.json").read_text())
    system = sorted("0x" + a.removeprefix("0x") for a, v in genesis["alloc"].items() if v.get("code"))
    head = int(post(geth_url, Case("", "eth_blockNumber", []).body(0))["result"], 16)

    def block_hash(number: int) -> str:
        got = post(geth_url, Case("", "eth_getBlockByNumber", [hex(number), False]).body(0))["result"]
        return str(got["hash"])

    txs = {k: v[0] for k, v in info.items()
           if isinstance(v, list) and v and isinstance(v[0], dict) and "txhash" in v[0]}
    emit = info["tx-emit-eip1559"][0]
    blob = info["tx-emit-eip4844"][0]
    callme = info["deploy-callme"]["contract"]
    callrevert = info["deploy-callrevert"]["contract"]
    callenv = info["deploy-callenv"]["contract"]
    sender = emit["sender"]
    out: list[Case] = [
        Case("head number", "eth_blockNumber", []),
        Case("chain id", "eth_chainId", []),
        Case("network id", "net_version", []),
        Case("net listening", "net_listening", []),
        Case("peer count", "net_peerCount", []),
        Case("syncing", "eth_syncing", []),
        Case("client version", "web3_clientVersion", []),
        Case("sha3", "web3_sha3", ["0x68656c6c6f"]),
    ]
    tags = ["0x0", "0x1", emit["block"], blob["block"], hex(head // 2), "latest", "earliest", "safe", "finalized",
            "pending"]
    for tag in tags:
        for full in (False, True):
            out.append(Case(f"block {tag} full={full}", "eth_getBlockByNumber", [tag, full]))
    out += [
        Case("block beyond head", "eth_getBlockByNumber", [hex(head + 1000), False]),
        Case("block by hash", "eth_getBlockByHash", [block_hash(int(blob["block"], 16)), True]),
        Case("block by hash, hashes", "eth_getBlockByHash", [block_hash(head), False]),
        Case("block by unknown hash", "eth_getBlockByHash", [UNKNOWN_HASH, False]),
        Case("header by number", "eth_getHeaderByNumber", [emit["block"]]),
        Case("header latest", "eth_getHeaderByNumber", ["latest"]),
        Case("header by hash", "eth_getHeaderByHash", [block_hash(1)]),
        Case("header unknown hash", "eth_getHeaderByHash", [UNKNOWN_HASH]),
        Case("block tx count by number", "eth_getBlockTransactionCountByNumber", [emit["block"]]),
        Case("block tx count latest", "eth_getBlockTransactionCountByNumber", ["latest"]),
        Case("block tx count by hash", "eth_getBlockTransactionCountByHash", [block_hash(int(emit["block"], 16))]),
        Case("block tx count unknown", "eth_getBlockTransactionCountByHash", [UNKNOWN_HASH]),
        Case("block tx count beyond", "eth_getBlockTransactionCountByNumber", [hex(head + 1)]),
        Case("uncle count by number", "eth_getUncleCountByBlockNumber", ["0x5"]),
        Case("uncle count by hash", "eth_getUncleCountByBlockHash", [block_hash(5)]),
        Case("uncle count unknown", "eth_getUncleCountByBlockHash", [UNKNOWN_HASH]),
        Case("uncle by number", "eth_getUncleByBlockNumberAndIndex", ["0x5", "0x0"]),
        Case("uncle by hash", "eth_getUncleByBlockHashAndIndex", [block_hash(5), "0x0"]),
    ]
    for tag in ("0x1", emit["block"], blob["block"], "latest", "earliest"):
        out.append(Case(f"block receipts {tag}", "eth_getBlockReceipts", [tag]))
    out += [
        Case("block receipts by hash", "eth_getBlockReceipts", [block_hash(int(emit["block"], 16))]),
        Case("block receipts by hash object", "eth_getBlockReceipts",
             [{"blockHash": block_hash(int(emit["block"], 16))}]),
        Case("block receipts unknown", "eth_getBlockReceipts", [UNKNOWN_HASH]),
        Case("block receipts beyond", "eth_getBlockReceipts", [hex(head + 1)]),
    ]
    for kind, tx in sorted(txs.items()):
        out += [
            Case(f"tx {kind}", "eth_getTransactionByHash", [tx["txhash"]]),
            Case(f"receipt {kind}", "eth_getTransactionReceipt", [tx["txhash"]]),
            Case(f"raw tx {kind}", "eth_getRawTransactionByHash", [tx["txhash"]]),
            Case(f"tx by number+index {kind}", "eth_getTransactionByBlockNumberAndIndex",
                 [tx["block"], hex(tx.get("indexInBlock", 0))]),
        ]
    out += [
        Case("tx unknown", "eth_getTransactionByHash", [UNKNOWN_HASH]),
        Case("receipt unknown", "eth_getTransactionReceipt", [UNKNOWN_HASH]),
        Case("raw tx unknown", "eth_getRawTransactionByHash", [UNKNOWN_HASH]),
        Case("tx by hash+index", "eth_getTransactionByBlockHashAndIndex", [block_hash(int(emit["block"], 16)), "0x0"]),
        Case("tx by hash+index out of range", "eth_getTransactionByBlockHashAndIndex",
             [block_hash(int(emit["block"], 16)), "0x63"]),
        Case("tx by number+index out of range", "eth_getTransactionByBlockNumberAndIndex", [emit["block"], "0x63"]),
        Case("raw tx by number+index", "eth_getRawTransactionByBlockNumberAndIndex", [emit["block"], "0x0"]),
        Case("raw tx by hash+index", "eth_getRawTransactionByBlockHashAndIndex",
             [block_hash(int(emit["block"], 16)), "0x0"]),
    ]
    if isinstance(info.get("tx-eip7702"), dict) and "authorizeTx" in info["tx-eip7702"]:
        out += [Case("tx eip7702", "eth_getTransactionByHash", [info["tx-eip7702"]["authorizeTx"]]),
                Case("receipt eip7702", "eth_getTransactionReceipt", [info["tx-eip7702"]["authorizeTx"]])]
    # Account state at several blocks, by number, by tag and by EIP-1898 object.
    at_blocks: list[Any] = ["0x0", "0x1", hex(head // 2), "latest", "earliest", "pending",
                            {"blockHash": block_hash(head // 3)}, {"blockNumber": hex(head // 4)},
                            {"blockHash": block_hash(head // 3), "requireCanonical": True}]
    who = [accounts[0], sender, callme, system[0], NOBODY]
    for addr in who:
        for at in at_blocks:
            label = json.dumps(at)
            out += [
                Case(f"balance {addr[:8]} at {label}", "eth_getBalance", [addr, at]),
                Case(f"nonce {addr[:8]} at {label}", "eth_getTransactionCount", [addr, at]),
            ]
        out.append(Case(f"code {addr[:8]}", "eth_getCode", [addr, "latest"]))
    for contract in [callme, callenv, *system]:
        for slot in ("0x0", "0x1", "0x2", "0x" + "0" * 63 + "1"):
            out.append(Case(f"storage {contract[:8]}[{slot[:6]}]", "eth_getStorageAt", [contract, slot, "latest"]))
        out.append(Case(f"code {contract[:8]} at 0x1", "eth_getCode", [contract, "0x1"]))
    out += [
        Case("storage at old block", "eth_getStorageAt", [system[-1], "0x1", hex(head // 2)]),
        Case("balance beyond head", "eth_getBalance", [sender, hex(head + 1)]),
        Case("balance unknown hash", "eth_getBalance", [sender, {"blockHash": UNKNOWN_HASH}]),
        Case("code beyond head", "eth_getCode", [callme, hex(head + 5)]),
        Case("storage short key", "eth_getStorageAt", [callme, "0x", "latest"]),
        Case("storage long key", "eth_getStorageAt", [callme, "0x" + "1" * 66, "latest"]),
        Case("balance default block", "eth_getBalance", [sender]),
    ]
    # Execution.
    history = next(a for a in system if a.startswith("0x0000f908"))  # EIP-2935's contract
    calls: list[tuple[str, dict[str, Any], Any]] = [
        ("call callme", {"to": callme, "data": "0x"}, "latest"),
        ("call callme from", {"from": sender, "to": callme, "data": "0x12345678"}, "latest"),
        ("call callrevert", {"from": sender, "to": callrevert, "data": "0x"}, "latest"),
        ("call callenv", {"from": sender, "to": callenv, "data": "0x"}, "latest"),
        ("call transfer", {"from": sender, "to": NOBODY, "value": "0x1"}, "latest"),
        ("call at 0x5", {"from": sender, "to": callme}, "0x5"),
        ("call no to", {"from": sender, "data": "0x6001600055"}, "latest"),
        ("call too poor", {"from": NOBODY, "to": sender, "value": "0xffffffffffffffffffff"}, "latest"),
        ("call gas too low", {"from": sender, "to": NOBODY, "gas": "0x100"}, "latest"),
        ("call fee too low", {"from": sender, "to": NOBODY, "maxFeePerGas": "0x1"}, "latest"),
        ("call invalid opcode", {"from": sender, "data": "0xfe"}, "latest"),
        ("call revert with data", {"from": sender, "data": "0x60aa60005260206000fd"}, "latest"),
        ("call both fee kinds", {"from": sender, "to": NOBODY, "gasPrice": "0x1", "maxFeePerGas": "0x1"}, "latest"),
        ("call input and data differ", {"to": callme, "data": "0x01", "input": "0x02"}, "latest"),
    ]
    history_input = "0x" + (head - 2).to_bytes(32, "big").hex()  # EIP-2935: a recent block's hash, by SLOAD
    calls += [
        ("call history contract", {"from": sender, "to": history, "data": history_input}, "latest"),
        ("call with access list", {"from": sender, "to": history, "data": history_input,
                                   "accessList": [{"address": callme, "storageKeys": ["0x" + "00" * 31 + "07"]},
                                                  {"address": sender, "storageKeys": []}]}, "latest"),
    ]
    for name, args, at in calls:
        out.append(Case(name, "eth_call", [args, at]))
        out.append(Case(name.replace("call", "estimate", 1), "eth_estimateGas", [args, at]))
        out.append(Case(name.replace("call", "access list", 1), "eth_createAccessList", [args, at]))
    out += [
        Case("call default block", "eth_call", [{"to": callme}]),
        Case("estimate default block", "eth_estimateGas", [{"from": sender, "to": NOBODY}]),
        Case("call unknown block", "eth_call", [{"to": callme}, hex(head + 10)]),
    ]
    out += override_cases(sender, callenv)
    # Logs.
    topic0 = emit["logtopic0"]
    out += [
        Case("logs all", "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest"}]),
        Case("logs by address", "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": callme}]),
        Case("logs by topic", "eth_getLogs", [{"fromBlock": "0x1", "toBlock": hex(head // 2), "topics": [topic0]}]),
        Case("logs by two topics", "eth_getLogs", [{"fromBlock": "0x0", "topics": [topic0, emit["logtopic1"]]}]),
        Case("logs or topics", "eth_getLogs",
             [{"fromBlock": "0x0", "topics": [None, [emit["logtopic1"], blob["logtopic1"]]]}]),
        Case("logs block hash", "eth_getLogs", [{"blockHash": block_hash(int(emit["block"], 16))}]),
        Case("logs unknown block hash", "eth_getLogs", [{"blockHash": UNKNOWN_HASH}]),
        Case("logs default range", "eth_getLogs", [{}]),
        Case("logs reversed range", "eth_getLogs", [{"fromBlock": "0x10", "toBlock": "0x5"}]),
        Case("logs beyond head", "eth_getLogs", [{"fromBlock": hex(head + 1), "toBlock": hex(head + 2)}]),
        Case("logs hash and range", "eth_getLogs", [{"blockHash": UNKNOWN_HASH, "fromBlock": "0x1"}]),
        Case("logs address list", "eth_getLogs", [{"fromBlock": "0x0", "address": [callme, NOBODY]}]),
        Case("logs bad topic", "eth_getLogs", [{"topics": ["0x12"]}]),
    ]
    # Fees.
    out += [
        Case("fee history", "eth_feeHistory", ["0x4", "latest", [25, 75]]),
        Case("fee history old", "eth_feeHistory", [10, hex(head // 2), [0, 50, 100]]),
        Case("fee history no rewards", "eth_feeHistory", ["0x5", hex(head // 3)]),
        Case("fee history zero", "eth_feeHistory", ["0x0", "latest", []]),
        Case("fee history beyond", "eth_feeHistory", ["0x2", hex(head + 10), []]),
        Case("fee history bad percentiles", "eth_feeHistory", ["0x2", "latest", [75, 25]]),
        Case("fee history decimal", "eth_feeHistory", ["3", "latest", []]),
        Case("fee history pending", "eth_feeHistory", ["0x3", "pending", [50]]),
        Case("gas price", "eth_gasPrice", []),
        Case("max priority fee", "eth_maxPriorityFeePerGas", []),
        Case("blob base fee", "eth_blobBaseFee", []),
        Case("base fee", "eth_baseFee", []),
    ]
    # The pool is empty on both.
    out += [
        Case("txpool status", "txpool_status", []),
        Case("txpool content", "txpool_content", []),
        Case("txpool inspect", "txpool_inspect", []),
        Case("txpool contentFrom", "txpool_contentFrom", [sender]),
    ]
    # EIP-7910, EIP-1186 and the raw debug methods.
    out.append(Case("config", "eth_config", []))
    for addr in (sender, callme, history, NOBODY):
        for at in ("latest", "0x1", hex(head // 2), {"blockHash": block_hash(head // 3)}):
            out.append(Case(f"proof {addr[:8]} at {json.dumps(at)}", "eth_getProof",
                            [addr, ["0x0", "0x1", "0x" + "0" * 63 + "2", "0xab", "0x" + "ff" * 32], at]))
    out += [
        Case("proof no keys", "eth_getProof", [history, []]),
        Case("proof null keys", "eth_getProof", [sender, None, "latest"]),
        Case("proof keys missing", "eth_getProof", [sender]),
        Case("proof many slots", "eth_getProof", [history, [hex(i) for i in range(40)], "latest"]),
        Case("proof too many keys", "eth_getProof", [sender, ["0x0"] * 1025, "latest"]),
        Case("proof bad key", "eth_getProof", [sender, ["0xzz"], "latest"]),
        Case("proof long key", "eth_getProof", [sender, ["0x" + "1" * 65], "latest"]),
        Case("proof key not string", "eth_getProof", [sender, [1], "latest"]),
        Case("proof keys not list", "eth_getProof", [sender, "0x0", "latest"]),
        Case("proof beyond head", "eth_getProof", [sender, [], hex(head + 1)]),
        Case("proof unknown hash", "eth_getProof", [sender, [], {"blockHash": UNKNOWN_HASH}]),
        Case("storage values", "eth_getStorageValues",
             [{history: ["0x" + (head - 3).to_bytes(32, "big").hex(), "0x" + "00" * 32], NOBODY: ["0x" + "11" * 32],
               callme: []}, "latest"]),
        Case("storage values old", "eth_getStorageValues", [{history: ["0x" + "00" * 31 + "05"]}, hex(head // 2)]),
        Case("storage values default block", "eth_getStorageValues", [{history: ["0x" + "00" * 31 + "05"]}]),
        Case("storage values empty", "eth_getStorageValues", [{callme: []}, "latest"]),
        Case("storage values too many", "eth_getStorageValues", [{callme: ["0x" + "00" * 32] * 1025}, "latest"]),
        Case("storage values not object", "eth_getStorageValues", [[history], "latest"]),
        Case("storage values beyond", "eth_getStorageValues", [{history: ["0x" + "00" * 32]}, hex(head + 1)]),
    ]
    for tag in ("0x0", "0x1", emit["block"], blob["block"], "latest", "earliest", hex(head + 1)):
        out += [Case(f"raw header {tag}", "debug_getRawHeader", [tag]),
                Case(f"raw block {tag}", "debug_getRawBlock", [tag]),
                Case(f"raw receipts {tag}", "debug_getRawReceipts", [tag])]
    for label, ref in (("hash", block_hash(int(emit["block"], 16))), ("unknown hash", UNKNOWN_HASH),
                       ("hash object", {"blockHash": block_hash(5)})):
        out += [Case(f"raw header {label}", "debug_getRawHeader", [ref]),
                Case(f"raw block {label}", "debug_getRawBlock", [ref]),
                Case(f"raw receipts {label}", "debug_getRawReceipts", [ref])]
    for kind, tx in sorted(txs.items()):
        out.append(Case(f"raw tx debug {kind}", "debug_getRawTransaction", [tx["txhash"]]))
    out += [
        Case("raw tx debug unknown", "debug_getRawTransaction", [UNKNOWN_HASH]),
        Case("raw tx debug bad", "debug_getRawTransaction", ["0x12"]),
        Case("raw header no params", "debug_getRawHeader", []),
        Case("raw block bad", "debug_getRawBlock", ["0xzz"]),
    ]
    # Errors: bad params, wrong types, missing params, unknown methods.
    out += [
        Case("unknown method", "eth_noSuchMethod", []),
        Case("unknown namespace", "foo_bar", []),
        Case("block no params", "eth_getBlockByNumber", []),
        Case("block too many params", "eth_getBlockByNumber", ["latest", False, 1]),
        Case("block number not hex", "eth_getBlockByNumber", ["0xzz", False]),
        Case("block number as int", "eth_getBlockByNumber", [1, False]),
        Case("block number leading zero", "eth_getBlockByNumber", ["0x01", False]),
        Case("block number no prefix", "eth_getBlockByNumber", ["12", False]),
        Case("block full not bool", "eth_getBlockByNumber", ["latest", "yes"]),
        Case("block bad tag", "eth_getBlockByNumber", ["newest", False]),
        Case("block hash short", "eth_getBlockByHash", ["0x1234", False]),
        Case("block hash not hex", "eth_getBlockByHash", ["0x" + "zz" * 32, False]),
        Case("block hash as number", "eth_getBlockByHash", [5, False]),
        Case("balance no params", "eth_getBalance", []),
        Case("balance bad address", "eth_getBalance", ["0x1234", "latest"]),
        Case("balance address not hex", "eth_getBalance", ["0x" + "zz" * 20, "latest"]),
        Case("balance address number", "eth_getBalance", [12, "latest"]),
        Case("balance block object empty", "eth_getBalance", [sender, {}]),
        Case("balance block object both", "eth_getBalance",
             [sender, {"blockHash": block_hash(1), "blockNumber": "0x1"}]),
        Case("storage bad slot", "eth_getStorageAt", [callme, "0xzz", "latest"]),
        Case("tx hash bad", "eth_getTransactionByHash", ["0x12"]),
        Case("tx hash missing", "eth_getTransactionByHash", []),
        Case("receipt hash number", "eth_getTransactionReceipt", [7]),
        Case("tx index bad", "eth_getTransactionByBlockNumberAndIndex", ["0x1", "zz"]),
        Case("call no args", "eth_call", []),
        Case("call args not object", "eth_call", ["0x1", "latest"]),
        Case("call bad value", "eth_call", [{"to": callme, "value": "1"}, "latest"]),
        Case("call bad to", "eth_call", [{"to": "0x12"}, "latest"]),
        Case("logs not object", "eth_getLogs", ["latest"]),
        Case("logs bad address", "eth_getLogs", [{"address": "0x12"}]),
        Case("logs bad from", "eth_getLogs", [{"fromBlock": "0xzz"}]),
        Case("fee history no params", "eth_feeHistory", []),
        Case("fee history bad count", "eth_feeHistory", ["zz", "latest", []]),
        Case("chain id with params", "eth_chainId", [1]),
        Case("block number with params", "eth_blockNumber", ["latest"]),
        Case("uncle count bad", "eth_getUncleCountByBlockNumber", ["0xzz"]),
        Case("block receipts bad", "eth_getBlockReceipts", ["0xzz"]),
        Case("contentFrom bad address", "txpool_contentFrom", ["0x12"]),
        Case("send raw garbage", "eth_sendRawTransaction", ["0x1234"]),
        Case("send raw not hex", "eth_sendRawTransaction", ["zz"]),
        Case("send raw empty", "eth_sendRawTransaction", ["0x"]),
        Case("sha3 bad", "web3_sha3", ["zz"]),
    ]
    return out


def differences(cases_: list[Case], geth: list[Any], ours: list[Any]) -> list[str]:
    """One line per case whose outcomes differ (excluded methods only checked for an answer)."""
    out = []
    for case, want, got in zip(cases_, geth, ours, strict=True):
        if case.method in EXCLUDED:
            if "result" not in want or "result" not in got:
                out.append(f"{case.name}: {case.method} answered an error: geth {want} ethnode {got}")
            continue
        if want != got:
            out.append(f"{case.name}: {case.method}{json.dumps(case.params)[:200]}\n"
                       f"    geth    {json.dumps(want)[:600]}\n    ethnode {json.dumps(got)[:600]}")
    return out
