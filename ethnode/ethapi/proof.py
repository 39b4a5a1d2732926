"""``eth_getProof`` (EIP-1186): an account and some of its storage slots, with the trie nodes
that prove them against the block's state root, read from the stored tries.

A light client or bridge checks these nodes itself, so the answer follows geth v1.17.10
``BlockChainAPI.GetProof`` in every detail: keys are decoded (geth's lenient rules) before
any state is read; at most ``MAX_PROOF_KEYS``; an absent account has zero code and storage
hashes; a slot of an account with empty storage gets an empty proof; a key given as 32 bytes
comes back as 32 bytes, any other as a quantity.
"""

from __future__ import annotations

from typing import Any

from ethnode.core.state import MissingNodeError, MissingStateError
from ethnode.ethapi.eth import EthAPI, go_quote
from ethnode.rpc.hexutil import address_arg, data, hash_arg, json_type, quantity
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError, server_error
from ethnode.trie import EMPTY_ROOT

MAX_PROOF_KEYS = 1024  # geth maxGetProofKeys
MAX_STORAGE_SLOTS = 1024  # slots per eth_getStorageValues call; geth maxGetStorageSlots
CLIENT_LIMIT_EXCEEDED = -38026  # geth errCodeClientLimitExceeded
ZERO_HASH = bytes(32)


def decode_storage_key(text: str) -> tuple[bytes, int]:
    """geth decodeStorageKey: (the key left-padded to 32 bytes, how many bytes were given)."""
    body = text[2:] if text[:2] in ("0x", "0X") else text
    body = body if len(body) % 2 == 0 else "0" + body
    if len(body) > 64:
        raise RPCError(INVALID_PARAMS, f"storage key too long (want at most 32 bytes): {go_quote(text)}")
    try:
        if not body.isascii():
            raise ValueError(body)
        raw = bytes.fromhex(body)
    except ValueError:
        raise RPCError(INVALID_PARAMS, f"invalid hex in storage key: {go_quote(text)}") from None
    return raw.rjust(32, b"\0"), len(raw)


def _keys_arg(keys: Any) -> list[str]:
    """A Go ``[]string`` argument (null is empty)."""
    if keys is None:
        return []
    if not isinstance(keys, list):
        raise RPCError(INVALID_PARAMS, f"invalid argument 1: json: cannot unmarshal {json_type(keys)} into Go value "
                                       "of type []string")
    for key in keys:
        if not isinstance(key, str):
            raise RPCError(INVALID_PARAMS, f"invalid argument 1: json: cannot unmarshal {json_type(key)} into Go "
                                           "value of type string")
    return keys


class ProofAPI:
    """``eth_getProof`` and ``eth_getStorageValues`` over the EthAPI's block resolution and the
    chain's stored tries."""

    def __init__(self, eth: EthAPI) -> None:
        self._eth = eth

    def get_proof(self, address: Any, storage_keys: Any, block: Any = None) -> dict[str, Any]:
        addr = address_arg(0, address)
        keys = _keys_arg(storage_keys)
        if len(keys) > MAX_PROOF_KEYS:
            raise RPCError(INVALID_PARAMS, f"too many storage keys requested (max {MAX_PROOF_KEYS}, got {len(keys)})")
        decoded = [decode_storage_key(k) for k in keys]  # geth: every key checked before any state is read
        header = self._eth._header_for_state(2, block)
        try:
            view = self._eth.chain.state_at(header)
            account = view.account(addr)
            storage_root = ZERO_HASH if account is None else account.storage_root
            storage = []
            for key, given in decoded:
                out_key = data(key) if given == 32 else quantity(int.from_bytes(key, "big"))
                if storage_root in (EMPTY_ROOT, ZERO_HASH):
                    storage.append({"key": out_key, "value": "0x0", "proof": []})
                    continue
                proof = view.storage_proof(storage_root, key)
                storage.append({"key": out_key, "value": quantity(view.storage(addr, key)),
                                "proof": [data(node) for node in proof]})
            account_proof = view.account_proof(addr)
        except (MissingStateError, MissingNodeError):
            raise server_error(f"state 0x{header.state_root.hex()} is not available") from None
        return {
            "address": data(addr),
            "accountProof": [data(node) for node in account_proof],
            "balance": quantity(0 if account is None else account.balance),
            "codeHash": data(ZERO_HASH if account is None else account.code_hash),
            "nonce": quantity(0 if account is None else account.nonce),
            "storageHash": data(storage_root),
            "storageProof": storage,
        }

    def get_storage_values(self, requests: Any, block: Any = None) -> dict[str, list[str]]:
        """geth GetStorageValues (v1.17.10): many accounts' slots in one call, at one block."""
        if not isinstance(requests, dict):
            raise RPCError(INVALID_PARAMS, f"invalid argument 0: json: cannot unmarshal {json_type(requests)} into "
                                           "Go value of type map[common.Address][]common.Hash")
        wanted: list[tuple[str, bytes, list[bytes]]] = []
        total = 0
        for key, slots in requests.items():
            addr = address_arg(0, key)
            if slots is None:
                slots = []
            if not isinstance(slots, list):
                raise RPCError(INVALID_PARAMS, f"invalid argument 0: json: cannot unmarshal {json_type(slots)} "
                                               "into Go value of type []common.Hash")
            decoded = [hash_arg(0, s) for s in slots]
            total += len(decoded)
            if total > MAX_STORAGE_SLOTS:
                raise RPCError(CLIENT_LIMIT_EXCEEDED, f"too many slots (max {MAX_STORAGE_SLOTS})")
            wanted.append((data(addr), addr, decoded))
        if total == 0:
            raise RPCError(INVALID_PARAMS, "empty request")
        header = self._eth._header_for_state(1, block)
        try:
            view = self._eth.chain.state_at(header)
            return {key: [data(view.storage(addr, slot).to_bytes(32, "big")) for slot in slots]
                    for key, addr, slots in wanted}
        except (MissingStateError, MissingNodeError):
            raise server_error(f"state 0x{header.state_root.hex()} is not available") from None


__all__ = ["ProofAPI", "MAX_PROOF_KEYS", "MAX_STORAGE_SLOTS", "decode_storage_key"]
