"""``eth_createAccessList`` (EIP-2930): the accounts and slots a transaction would touch, found by
running it on the block's state until the list it is given is the list it touches.

geth v1.17.10 ``ethapi.AccessList``: fee defaults only when a fee field is given (else the
run is free); the nonce defaults to the sender's; the sender, the recipient (or the created
address) and the precompiles are never listed as plain accesses (their slots are); each run
records what geth's ``AccessListTracer`` records before each opcode (the engines'
``trace_access``: ``rust/src/evm/access_list.rs`` on revm, opcode hooks on py-evm); the
answer is the list and gas of the first run whose trace adds nothing. A message that cannot
be applied at all is "failed to apply transaction: <hash> err: <why>", naming the hash of
the unsigned transaction the arguments make; a run that fails inside the EVM is a result
with ``error``.
"""

from __future__ import annotations

import time
from typing import Any

from ethnode.core.types.transaction import AccessListTx, AccessTuple, DynamicFeeTx
from ethnode.ethapi.accounts import AccountAPI
from ethnode.ethapi.call import TransactionArgs
from ethnode.ethapi.config import _precompiles, latest_fork
from ethnode.ethapi.eth import EthAPI, _execution_errors
from ethnode.ethapi.marshal import contract_address
from ethnode.ethapi.overrides import parse_state_override
from ethnode.rpc.hexutil import data, quantity
from ethnode.rpc.jsonrpc import server_error

MAX_ROUNDS = 100  # runs before giving up; each round adds accesses, so real contracts settle in a few

Accesses = dict[bytes, set[bytes]]


def _list_json(accesses: Accesses) -> list[dict[str, Any]]:
    """geth accessList.accessList(): addresses ascending, each one's slots ascending."""
    return [{"address": data(a), "storageKeys": [data(s) for s in sorted(accesses[a])]} for a in sorted(accesses)]


class AccessListAPI:
    """``eth_createAccessList`` over the EthAPI's block resolution and the chain's executor."""

    def __init__(self, eth: EthAPI) -> None:
        self._eth = eth
        self._fees = AccountAPI(eth)  # geth setFeeDefaults, shared with eth_sendTransaction

    def create_access_list(self, args: Any, block: Any = None, overrides: Any = None) -> dict[str, Any]:
        eth = self._eth
        tx_args = TransactionArgs.from_json(0, args, method="eth_createAccessList")
        if tx_args.blob_fee_cap is not None and tx_args.blob_fee_cap == 0 and tx_args.blob_hashes is not None:
            raise server_error("maxFeePerBlobGas, if specified, must be non-zero")
        header = eth._header_for_state(1, block)
        state_override = parse_state_override(2, overrides)
        executor = eth._executor(header)
        eth._check_state_override(header, state_override, None, with_precompiles=False)
        if any(v is not None for v in (tx_args.gas_price, tx_args.max_fee_per_gas, tx_args.max_priority_fee_per_gas,
                                       tx_args.blob_fee_cap)):
            self._fees._set_fee_defaults(tx_args, header)
        sender = tx_args.sender or bytes(20)
        if tx_args.nonce is None:
            account = (state_override or {}).get(sender)
            overridden = account.nonce if account is not None else None
            tx_args.nonce = eth.chain.state_at(header).nonce(sender) if overridden is None else overridden
        tx_args.call_defaults(eth.gas_cap, header.base_fee, eth._config.chain_id)
        if tx_args.chain_id is None:
            tx_args.chain_id = eth._config.chain_id
        to = tx_args.to if tx_args.to is not None else contract_address(sender, tx_args.nonce)
        fork = latest_fork(eth._config, header.time)
        excluded = {sender, to} | {bytes.fromhex(a[2:]) for a in _precompiles(fork).values()}
        previous: Accesses = {}
        for address, keys in tx_args.access_list or []:
            if address not in excluded:
                previous.setdefault(address, set()).update(keys)
        author = eth._author(header)
        deadline = time.monotonic() + eth.evm_timeout if eth.evm_timeout else None
        for _ in range(MAX_ROUNDS):
            tx_args.access_list = [(a, sorted(previous[a])) for a in sorted(previous)]
            message = tx_args.to_message(header.base_fee)
            traced: Accesses = {a: set(keys) for a, keys in previous.items()}
            tx_hash = self._tx_hash(tx_args)
            with _execution_errors(header, eth.evm_timeout,
                                   lambda text, h=tx_hash: f"failed to apply transaction: 0x{h.hex()} err: {text}"):
                result, accesses = executor.trace_access(header, message, fee_recipient=author, deadline=deadline,
                                                         state_override=state_override)
            for address, slot in accesses:
                if slot is not None:
                    traced.setdefault(address, set()).add(slot)
                elif address not in excluded:
                    traced.setdefault(address, set())
            if traced == previous:
                out: dict[str, Any] = {"accessList": _list_json(previous), "gasUsed": quantity(result.gas_used)}
                if result.failed:
                    out["error"] = result.message
                return out
            previous = traced
        raise server_error(f"access list did not settle in {MAX_ROUNDS} runs")

    def _tx_hash(self, tx_args: TransactionArgs) -> bytes:
        """geth ``ToTransaction(LegacyTxType).Hash()`` with the access list set: EIP-1559 when a
        fee cap is given (and no gas price), else EIP-2930; unsigned."""
        payload = tx_args.input if tx_args.input is not None else (tx_args.data or b"")
        access = [AccessTuple(a, list(keys)) for a, keys in tx_args.access_list or []]
        nonce, gas, value, chain_id = tx_args.nonce or 0, tx_args.gas or 0, tx_args.value or 0, tx_args.chain_id or 0
        if tx_args.max_fee_per_gas is not None and tx_args.gas_price is None:
            tx: Any = DynamicFeeTx(chain_id, nonce, tx_args.max_priority_fee_per_gas or 0, tx_args.max_fee_per_gas,
                                   gas, tx_args.to, value, payload, access, 0, 0, 0)
        else:
            tx = AccessListTx(chain_id, nonce, tx_args.gas_price or 0, gas, tx_args.to, value, payload, access,
                              0, 0, 0)
        return tx.hash  # type: ignore[no-any-return]


__all__ = ["AccessListAPI", "MAX_ROUNDS"]
