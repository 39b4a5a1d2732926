"""Untrusted JSON: nesting bounded before parsing, NaN/Infinity refused, the recursion limit capped.

The regression these guard: importing py-evm (py_ecc) raised the process's recursion limit to
100000, and a 160 KB request of nested ``[`` made ``json.loads`` overflow the C stack: a
``--dev`` node (HTTP on by default) died with a segfault, ``init`` printed a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cli_support import HOST, RunProcess, child_env, cli_command

from ethnode import recursionlimit, strictjson
from ethnode.rpc.jsonrpc import Dispatcher

DEEP = 100_000  # the reported crash: python3 -c "print('['*100000+']'*100000)"
HTTP_LINE = r"HTTP server started +endpoint=127\.0\.0\.1:(\d+) +auth=false"


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_depth_is_measured_outside_strings() -> None:
    assert strictjson.nesting_depth(b'{"a": [1, {"b": []}]}') == 4
    assert strictjson.nesting_depth('["[[[[", "\\"[[[", {}]') == 2  # brackets in strings, escaped quotes
    assert strictjson.nesting_depth(b"1") == 0
    assert strictjson.nesting_depth(deep(DEEP)) == DEEP


def test_loads_refuses_deep_input_before_parsing() -> None:
    assert strictjson.loads(deep(3)) == [[[]]]
    strictjson.check_depth(deep(strictjson.MAX_DEPTH))  # exactly at the bound: not refused
    with pytest.raises(strictjson.JSONDepthError, match="max depth"):
        strictjson.loads(deep(strictjson.MAX_DEPTH + 1))
    with pytest.raises(ValueError):
        strictjson.loads(deep(DEEP).decode())
    # Many brackets, shallow nesting: a big batch is fine.
    batch = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "m", "params": [[1], {}]} for i in range(5000)])
    assert len(strictjson.loads(batch)) == 5000


def test_loads_refuses_non_json_numbers() -> None:
    for text in ("NaN", '{"iat": NaN}', "[Infinity]", "-Infinity"):
        with pytest.raises(ValueError):
            strictjson.loads(text)
    assert strictjson.loads('{"a": 1.5e3}') == {"a": 1500.0}


@pytest.mark.subprocess
def test_dispatcher_answers_deep_input_with_a_parse_error_at_a_raised_limit() -> None:
    """In a child: py-evm's import raised the limit; the dispatcher still answers, no crash."""
    code = (
        "import asyncio, sys, json\n"
        "sys.setrecursionlimit(100000)  # what importing py_ecc does\n"
        "from ethnode.rpc.jsonrpc import Dispatcher\n"
        f"reply = asyncio.run(Dispatcher({{}}).handle(b'[' * {DEEP} + b']' * {DEEP}))\n"
        "print(json.loads(reply)['error']['code'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "-32700"


@pytest.mark.subprocess
def test_importing_the_evm_leaves_a_safe_recursion_limit() -> None:
    pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")
    code = (
        "import sys\n"
        "import ethnode.core.execution.pyevm\n"
        "import py_ecc, eth\n"
        "print(sys.getrecursionlimit(), eth.EVM_RECURSION_LIMIT)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    limit, evm_needs = map(int, out.stdout.split())
    assert evm_needs <= limit == recursionlimit.SAFE_RECURSION_LIMIT < 100_000


@pytest.mark.subprocess
def test_deep_request_to_a_dev_node_gets_an_error_and_the_node_lives(tmp_path: Path) -> None:
    """The reported crash, end to end: ``run --dev`` (py-evm loaded), a 200 KB nested body over HTTP."""
    pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")
    proc = RunProcess(["--dev", "--datadir", str(tmp_path / "d"), "--port", "0", "--listenaddr", HOST,
                       "--nodiscover", "--authrpc.port", "0", "--http.port", "0", "--eth.versions", "68,69"])
    try:
        port = int(proc.wait_for_line(HTTP_LINE).group(1))

        def post(body: bytes) -> dict[str, object]:
            request = urllib.request.Request(f"http://{HOST}:{port}", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]

        assert post(deep(DEEP))["error"] == {"code": -32700, "message": "parse error"}
        assert post(b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[NaN]}')["error"]["code"] == -32700
        reply = post(b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}')
        assert reply["result"] == hex(1337)
        assert proc.proc.poll() is None
    finally:
        proc.stop()


@pytest.mark.subprocess
def test_init_with_a_deep_genesis_file_is_one_fatal_line(tmp_path: Path) -> None:
    genesis = tmp_path / "deep.json"
    genesis.write_bytes(deep(DEEP))
    out = subprocess.run(cli_command("init", str(genesis), "--datadir", str(tmp_path / "d")), capture_output=True,
                         text=True, env=child_env(), timeout=60)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    fatal = [line for line in out.stderr.splitlines() if line.startswith("Fatal:")]
    assert len(fatal) == 1 and "invalid genesis file" in fatal[0] and "depth" in fatal[0], out.stderr


def test_dispatcher_in_process_keeps_serving_after_deep_input() -> None:
    import asyncio

    async def main() -> None:
        dispatcher = Dispatcher({"ping": lambda: "pong"})
        reply = json.loads(await dispatcher.handle(deep(DEEP)) or b"null")
        assert reply["error"]["code"] == -32700
        ok = json.loads(await dispatcher.handle(b'{"jsonrpc":"2.0","id":7,"method":"ping"}') or b"null")
        assert ok == {"jsonrpc": "2.0", "id": 7, "result": "pong"}

    asyncio.run(main())


def test_the_capped_limit_still_runs_a_1024_deep_call_stack() -> None:
    """Initcode that CREATEs a child running itself recurses until the EVM's 1024 depth limit."""
    pytest.importorskip("eth", reason="py-evm (the EVM engine) is not installed")
    from chain_support import open_chain
    from rpc_support import dev_genesis_json

    from ethnode.core.blockchain import setup_genesis
    from ethnode.core.execution import CallMessage
    from ethnode.core.genesis import Genesis
    from ethnode.core.rawdb import MemoryDB

    obj = dev_genesis_json()
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db, execute=True, evm="py-evm")  # the recursion limit is py-evm's concern
    assert chain.executor is not None
    assert recursionlimit.EVM_RECURSION_LIMIT <= sys.getrecursionlimit() <= recursionlimit.SAFE_RECURSION_LIMIT
    # CODESIZE PUSH1 0 PUSH1 0 CODECOPY; CODESIZE PUSH1 0 PUSH1 0 CREATE; STOP
    recurse = CallMessage(gas=10**13, to=None, data=bytes.fromhex("386000600039" + "3860006000f0" + "00"))
    result = chain.executor.call(chain.current_block, recurse)
    assert result.error is None and result.gas_used > 1000 * 30_000  # about 1024 CREATEs of 32000 gas
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(3000)  # the same call needs far more frames than this
    try:
        with pytest.raises(RecursionError):
            chain.executor.call(chain.current_block, recurse)
    finally:
        sys.setrecursionlimit(saved)
