"""`run --dev` as a dapp developer meets it: a proof-of-stake chain driven by the simulated beacon.

web3.py with no middleware (empty extra-data), bytecode of today's compilers (PUSH0,
TSTORE/TLOAD, MCOPY, BLOBBASEFEE: every solc >= 0.8.24 default build), receipts and logs,
`safe`/`finalized` tags, withdrawals through `dev_addWithdrawal`, and no p2p port open by
default. Against the compiled engine (Osaka) and a pure install (Prague).
"""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

import pytest
from cli_support import RunProcess, child_env

web3 = pytest.importorskip("web3", reason="web3.py is a test extra (pip install 'ethnode[test]')")
eth_account = pytest.importorskip("eth_account")

from web3 import Web3  # noqa: E402

TIMEOUT = 10.0
KEY = "0x" + "5e" * 32
RECEIPT_WAIT = 30


def _runtime() -> bytes:
    """Runtime: TSTORE(0, CALLDATASIZE); MCOPY a word; LOG1(topic=BLOBBASEFEE); return TLOAD(0)."""
    return bytes.fromhex(
        "365f5d"  # CALLDATASIZE PUSH0 TSTORE
        "4a5f52"  # BLOBBASEFEE PUSH0 MSTORE
        "60205f60205e"  # PUSH1 32 PUSH0 PUSH1 32 MCOPY  (memory[32:64] = memory[0:32])
        "4a60205fa1"  # BLOBBASEFEE PUSH1 32 PUSH0 LOG1  (data memory[0:32], topic blob base fee)
        "5f5c5f52"  # PUSH0 TLOAD PUSH0 MSTORE
        "60205ff3"  # PUSH1 32 PUSH0 RETURN
    )


def _creation(runtime: bytes) -> bytes:
    """Init code that copies ``runtime`` out of itself and returns it (PUSH0 for the zeros)."""
    n = len(runtime)
    head_len = 9  # PUSH1 n, DUP1, PUSH1 off, PUSH0, CODECOPY, PUSH0, RETURN
    return bytes.fromhex(f"60{n:02x}8060{head_len:02x}5f395ff3") + runtime


@pytest.mark.subprocess
@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "pure"])
def test_web3_deploys_modern_bytecode_without_middleware(tmp_path: Path, pure: bool) -> None:
    from ethnode.core.execution import compiled_engine_error

    if not pure and compiled_engine_error() is not None:
        pytest.skip(f"the compiled engine is unavailable: {compiled_engine_error()}")
    env = child_env()
    if pure:
        env["ETHNODE_NO_EXTENSIONS"] = "1"
    run = RunProcess(["--dev", "--dev.key", KEY, "--datadir", str(tmp_path), "--http", "--http.port", "0",
                      "--authrpc.port", "0", "--http.api", "eth,net,web3,dev"], env=env)
    try:
        port = int(run.wait_for_line(r"HTTP server started +endpoint=127\.0\.0\.1:(\d+) +auth=false").group(1))
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": TIMEOUT}))
        fork = re.search(r"consensus=proof-of-stake fork=(\w+)", run.output)
        assert fork is not None and fork.group(1) == ("prague" if pure else "osaka"), run.output
        account = eth_account.Account.from_key(KEY)
        genesis = w3.eth.get_block(0)
        assert genesis["extraData"] == b"" and genesis["difficulty"] == 0  # no POA middleware needed
        runtime = _runtime()
        tx = {"chainId": 1337, "nonce": 0, "data": _creation(runtime), "gas": 300_000, "value": 0,
              "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9, "type": 2}
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_WAIT, poll_latency=0.1)
        assert receipt["status"] == 1
        address = receipt["contractAddress"]
        assert w3.eth.get_code(address) == runtime
        block = w3.eth.get_block(receipt["blockNumber"])
        assert block["extraData"] == b"" and block["difficulty"] == 0 and "withdrawalsRoot" in block
        # A call: TSTORE/TLOAD of the calldata size within the call.
        assert int.from_bytes(w3.eth.call({"to": address, "data": b"\x01\x02\x03"}), "big") == 3
        # A tx with a log whose topic is BLOBBASEFEE (1 wei: no blobs on this chain yet).
        call_tx = {"chainId": 1337, "nonce": 1, "to": address, "data": b"\xaa" * 5, "gas": 100_000, "value": 0,
                   "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9, "type": 2}
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(call_tx).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_WAIT, poll_latency=0.1)
        assert receipt["status"] == 1 and len(receipt["logs"]) == 1
        log = receipt["logs"][0]
        assert log["address"] == address and int.from_bytes(log["topics"][0], "big") == 1
        logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": address})
        assert len(logs) == 1
        # safe follows the head; finalized moves by 32-block epochs (geth's simulated beacon).
        head = w3.eth.block_number
        assert w3.eth.get_block("safe")["number"] == head
        assert w3.eth.get_block("finalized")["number"] == 0
        # A withdrawal queued through the dev namespace is paid in the next block.
        to = "0x" + "77" * 20
        w3.provider.make_request("dev_addWithdrawal", [{"index": "0x0", "validatorIndex": "0x1",
                                                        "address": to, "amount": "0x3b9aca00"}])
        run.wait_for_line(rf"Sealed dev block +number={head + 1} .* withdrawals=1", timeout=RECEIPT_WAIT)
        assert w3.eth.get_balance(Web3.to_checksum_address(to)) == 10**18
    finally:
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0, run.output


@pytest.mark.subprocess
def test_dev_opens_no_p2p_port_by_default(tmp_path: Path) -> None:
    run = RunProcess(["--dev", "--datadir", str(tmp_path), "--http", "--http.port", "0", "--authrpc.port", "0"],
                     env=child_env())
    try:
        run.wait_for_line(r"HTTP server started", timeout=20)
        # geth --dev: MaxPeers 0, no listener, no discovery; the local record has no ports.
        assert re.search(r"New local node record .* udp=0 tcp=0", run.output), run.output
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            assert s.connect_ex(("127.0.0.1", 30303)) != 0
    finally:
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0, run.output


@pytest.mark.subprocess
def test_dev_account_sends_without_raw_signing(tmp_path: Path) -> None:
    """geth --dev unlocks its developer account: eth_accounts lists it, eth_sendTransaction signs."""
    run = RunProcess(["--dev", "--dev.key", KEY, "--datadir", str(tmp_path), "--http", "--http.port", "0",
                      "--authrpc.port", "0"], env=child_env())
    try:
        port = int(run.wait_for_line(r"HTTP server started +endpoint=127\.0\.0\.1:(\d+) +auth=false").group(1))
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": TIMEOUT}))
        dev = eth_account.Account.from_key(KEY).address
        assert w3.eth.accounts == [dev]
        tx_hash = w3.eth.send_transaction({"from": dev, "data": _creation(_runtime())})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_WAIT, poll_latency=0.1)
        assert receipt["status"] == 1 and w3.eth.get_code(receipt["contractAddress"]) == _runtime()
        to = Web3.to_checksum_address("0x" + "42" * 20)
        tx_hash = w3.eth.send_transaction({"from": dev, "to": to, "value": 12345})
        assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_WAIT, poll_latency=0.1)["status"] == 1
        assert w3.eth.get_balance(to) == 12345
        signature = w3.eth.sign(dev, text="hello")
        assert eth_account.Account.recover_message(
            eth_account.messages.encode_defunct(text="hello"), signature=signature) == dev
    finally:
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0, run.output
