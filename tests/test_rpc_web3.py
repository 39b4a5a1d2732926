"""web3.py against ethnode's HTTP JSON-RPC, the way a user's script talks to geth.

The node runs on its own event loop in a thread (``ThreadedNode``: web3's HTTPProvider is synchronous); the
chain is the hand-built dev chain of ``rpc_support`` with a fake StateReader. Sending a tx
and waiting for its receipt needs a chain that seals blocks: that test runs against
``ethnode-fast run --dev`` (the miner seals a block per tx with ``--dev.period 0``).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from rpc_support import (
    CHAIN_ID,
    DEV_ADDR,
    DEV_BALANCE,
    DEV_KEY,
    GWEI,
    OTHER_ADDR,
    FakeState,
    RPCNode,
    ThreadedNode,
    dev_chain,
    transfer,
)

web3 = pytest.importorskip("web3", reason="web3.py is a test extra (pip install 'ethnode[test]')")
eth_account = pytest.importorskip("eth_account")

from web3 import Web3  # noqa: E402
from web3.exceptions import Web3RPCError  # noqa: E402

TIMEOUT = 10.0


@pytest.fixture
def node() -> Iterator[ThreadedNode]:
    chain = dev_chain([[transfer(0)], []])
    state = FakeState(chain, {DEV_ADDR: (1, DEV_BALANCE - 10**18)})
    state.history[1] = {DEV_ADDR: (1, DEV_BALANCE - 10**17)}
    with ThreadedNode(RPCNode(chain, modules=["eth", "net", "web3", "txpool"], state=state)) as running:
        yield running


def connect(node: ThreadedNode) -> Web3:
    return Web3(Web3.HTTPProvider(f"http://127.0.0.1:{node.node.rpc_port}", request_kwargs={"timeout": TIMEOUT}))


def test_connect_chain_blocks_and_state(node: ThreadedNode) -> None:
    w3 = connect(node)
    assert w3.is_connected()
    assert w3.client_version.startswith("ethnode/")
    assert w3.eth.chain_id == CHAIN_ID and w3.net.version == str(CHAIN_ID)
    assert w3.eth.block_number == 2
    latest = w3.eth.get_block("latest")
    assert latest["number"] == 2 and latest["transactions"] == []
    first = w3.eth.get_block(1, full_transactions=True)
    (tx,) = first["transactions"]
    assert tx["from"] == Web3.to_checksum_address(DEV_ADDR) and tx["blockNumber"] == 1
    assert w3.eth.get_block(first["hash"])["number"] == 1
    receipt = w3.eth.get_transaction_receipt(tx["hash"])
    assert receipt["status"] == 1 and receipt["gasUsed"] == 21000 and receipt["blockHash"] == first["hash"]
    dev = Web3.to_checksum_address(DEV_ADDR)
    assert w3.eth.get_balance(dev) == DEV_BALANCE - 10**18
    assert w3.eth.get_balance(dev, block_identifier=1) == DEV_BALANCE - 10**17
    assert w3.eth.get_transaction_count(dev) == 1
    assert w3.eth.gas_price > 0 and w3.eth.max_priority_fee > 0
    history = w3.eth.fee_history(2, "latest", [50])
    assert history["oldestBlock"] == 1 and len(history["baseFeePerGas"]) == 3
    assert w3.eth.syncing is False


def test_send_raw_transaction_into_the_pool(node: ThreadedNode) -> None:
    w3 = connect(node)
    account = eth_account.Account.from_key(DEV_KEY.to_hex())
    assert account.address == Web3.to_checksum_address(DEV_ADDR)
    tx = {"chainId": CHAIN_ID, "nonce": 1, "to": Web3.to_checksum_address(OTHER_ADDR), "value": 12345,
          "gas": 21000, "maxFeePerGas": 3 * GWEI, "maxPriorityFeePerGas": GWEI, "type": 2}
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    assert tx_hash == signed.hash
    status = w3.provider.make_request("txpool_status", [])["result"]
    assert status == {"pending": "0x1", "queued": "0x0"}
    pending = w3.eth.get_transaction(tx_hash)
    assert pending["blockHash"] is None and pending["value"] == 12345 and pending["nonce"] == 1
    assert w3.eth.get_transaction_count(account.address, "pending") == 2
    with pytest.raises(Web3RPCError, match="already known"):
        w3.eth.send_raw_transaction(signed.raw_transaction)


@pytest.mark.subprocess
def test_send_signed_tx_and_wait_for_its_receipt(tmp_path: Path) -> None:
    """`run --dev`: the dev account pays, the miner seals, web3 waits for the receipt."""
    from cli_support import HOST, RunProcess

    run = RunProcess(["--dev", "--dev.period", "0", "--dev.key", DEV_KEY.to_hex(), "--datadir", str(tmp_path),
                      "--port", "0", "--listenaddr", HOST, "--nodiscover", "--authrpc.port", "0",
                      "--eth.versions", "69,68", "--http", "--http.port", "0"])
    try:
        port = int(run.wait_for_line(r"HTTP server started +endpoint=127\.0\.0\.1:(\d+) +auth=false").group(1))
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": TIMEOUT}))
        account = eth_account.Account.from_key(DEV_KEY.to_hex())
        chain_id = w3.eth.chain_id
        to = Web3.to_checksum_address(OTHER_ADDR)
        before = w3.eth.get_balance(to)
        tx = {"chainId": chain_id, "nonce": w3.eth.get_transaction_count(account.address, "pending"), "to": to,
              "value": 10**15, "gas": 21000, "maxFeePerGas": w3.eth.gas_price * 2,
              "maxPriorityFeePerGas": w3.eth.max_priority_fee, "type": 2}
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.2)
        assert receipt["status"] == 1 and receipt["transactionHash"] == tx_hash
        assert w3.eth.get_balance(to) == before + 10**15
        assert w3.eth.get_transaction(tx_hash)["blockNumber"] == receipt["blockNumber"]
    finally:
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0, run.output
