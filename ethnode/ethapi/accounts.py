"""The unlocked developer accounts of ``run --dev`` and the ``eth_`` methods that sign with them.

geth ``--dev`` keeps its developer key unlocked in a keystore, so ``eth_accounts`` lists it
and ``eth_sendTransaction``, ``eth_signTransaction`` and ``eth_sign`` sign with it (geth
``EthereumAccountAPI``, ``TransactionAPI``). ethnode has no keystore: ``DevAccounts`` holds
the dev chain's keys in memory (geth's ``accounts.Manager`` for this one use) and
``AccountAPI`` serves those methods, plus ``eth_signTypedData_v4``, the EIP-712 method
wallets and libraries call (geth answers typed data only through its clef signer), also
under web3.py's name ``eth_signTypedData``.

A node that is not a dev chain has no accounts: ``eth_accounts`` is [] and every signing
method answers geth's "unknown account", as geth does without unlocked keys.

``eth_sendTransaction`` fills what the caller left out as geth's ``setDefaults`` does
(fees from the gas price oracle, nonce from the pool, gas from eth_estimateGas, chain id),
then hands the signed tx to the same submission path as eth_sendRawTransaction (fee cap,
pool, errors). RPC methods run one at a time on the event loop, so two sends cannot take
the same pool nonce (geth needs its per-address nonce lock for that). Blob transactions
are refused: their sidecar (blobs, KZG commitments and proofs) is not built here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from ethnode.core.types.transaction import (
    AccessListTx,
    AccessTuple,
    DynamicFeeTx,
    LegacyTx,
    Transaction,
    address_of,
)
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey
from ethnode.errors import EthnodeError
from ethnode.ethapi.call import TransactionArgs
from ethnode.ethapi.eth import EthAPI, check_tx_fee
from ethnode.ethapi.marshal import tx_json
from ethnode.ethapi.typeddata import TypedDataError, typed_data_hash
from ethnode.rpc.hexutil import address_arg, data, data_arg, quantity
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError, server_error

UNKNOWN_ACCOUNT = "unknown account"  # geth accounts.ErrUnknownAccount
BLOB_TX_NOT_SUPPORTED = "signing blob transactions not supported"  # geth errBlobTxNotSupported
_SIDECAR_FIELDS = ("blobs", "commitments", "proofs")


class UnknownAccountError(EthnodeError):
    """No key for the address asked to sign."""

    def __init__(self) -> None:
        super().__init__(UNKNOWN_ACCOUNT)


class DevAccounts:
    """Signing keys held in memory, by address, in the order given (``eth_accounts`` order).

    The keys come from the dev chain (``DevChain.key``); nothing here reads or writes them.
    Signing goes through this object, so the RPC layer never handles a key itself.
    """

    def __init__(self, keys: Iterable[PrivateKey] = ()) -> None:
        self._keys: dict[bytes, PrivateKey] = {}
        for key in keys:
            self._keys.setdefault(address_of(key.node_id), key)

    @property
    def addresses(self) -> list[bytes]:
        return list(self._keys)

    def __contains__(self, address: object) -> bool:
        return address in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def _key(self, address: bytes) -> PrivateKey:
        key = self._keys.get(address)
        if key is None:
            raise UnknownAccountError
        return key

    def sign_hash(self, address: bytes, digest: bytes) -> bytes:
        """geth ``crypto.Sign``: 65 bytes ``r || s || v`` over a 32-byte digest, v in {0, 1}."""
        return self._key(address).sign(digest)

    def sign_tx(self, address: bytes, tx: Transaction, chain_id: int) -> Transaction:
        """geth keystore ``SignTx`` with ``LatestSignerForChainID``: a legacy tx gets EIP-155's v."""
        key = self._key(address)
        if isinstance(tx, LegacyTx):
            return tx.sign(key, chain_id)
        return tx.sign(key)


def text_hash(message: bytes) -> bytes:
    """geth ``accounts.TextHash`` (EIP-191 version 0x45): what eth_sign signs."""
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


class AccountAPI:
    """``eth_accounts`` and the signing methods, over ``eth``'s chain, pool, oracle and submission path.

    Its method names are listed (``methods``) rather than reflected, for ``eth_signTypedData_v4``.
    """

    def __init__(self, eth: EthAPI, accounts: DevAccounts | None = None) -> None:
        self.eth = eth
        self.dev = accounts if accounts is not None else DevAccounts()

    def methods(self) -> Mapping[str, Callable[..., Any]]:
        return {
            "eth_accounts": self.accounts,
            "eth_sendTransaction": self.send_transaction,
            "eth_signTransaction": self.sign_transaction,
            "eth_sign": self.sign,
            "eth_signTypedData_v4": self.sign_typed_data_v4,
            # web3.py's sign_typed_data calls the unsuffixed name with the same v4 object (as clef's
            # account_signTypedData takes it); MetaMask's legacy v1 array form is not accepted.
            "eth_signTypedData": self.sign_typed_data_v4,
        }

    # --- methods --------------------------------------------------------------------------

    def accounts(self) -> list[str]:
        """geth EthereumAccountAPI.Accounts: the addresses, lower-case hex as geth's common.Address."""
        return [data(a) for a in self.dev.addresses]

    def send_transaction(self, args: Any) -> str:
        """geth TransactionAPI.SendTransaction: fill the defaults, sign with the sender's key, submit."""
        tx_args = _decode(args, "eth_sendTransaction")
        sender = tx_args.sender or bytes(20)
        if sender not in self.dev:
            raise server_error(UNKNOWN_ACCOUNT)
        if tx_args.blob_hashes is not None or tx_args.blob_fee_cap is not None:
            raise server_error(BLOB_TX_NOT_SUPPORTED)
        if isinstance(args, dict) and args.get("blobs") is not None:
            raise server_error('"blobs" is not supported for this RPC method')  # geth setBlobTxSidecar
        self._set_defaults(tx_args)
        signed = self._sign_tx(sender, _to_transaction(tx_args))
        return data(self.eth._submit(signed))

    def sign_transaction(self, args: Any) -> dict[str, Any]:
        """geth TransactionAPI.SignTransaction: ``{raw, tx}`` of a tx whose gas, fees and nonce are given."""
        tx_args = _decode(args, "eth_signTransaction")
        if tx_args.gas is None:
            raise server_error("gas not specified")
        if tx_args.gas_price is None and (tx_args.max_priority_fee_per_gas is None
                                          or tx_args.max_fee_per_gas is None):
            raise server_error("missing gasPrice or maxFeePerGas/maxPriorityFeePerGas")
        if tx_args.nonce is None:
            raise server_error("nonce not specified")
        if (tx_args.blob_hashes is not None or tx_args.blob_fee_cap is not None
                or (isinstance(args, dict) and any(args.get(k) is not None for k in _SIDECAR_FIELDS))):
            raise server_error(BLOB_TX_NOT_SUPPORTED)  # geth builds the sidecar; ethnode does not
        self._set_defaults(tx_args)
        tx = _to_transaction(tx_args)
        check_tx_fee(tx.gas_fee_cap, tx.gas, self.eth.tx_fee_cap)  # type: ignore[attr-defined]
        signed = self._sign_tx(tx_args.sender or bytes(20), tx)
        return {"raw": data(signed.canonical), "tx": tx_json(signed)}

    def sign(self, address: Any, message: Any) -> str:
        """geth TransactionAPI.Sign: the EIP-191 personal-message signature, v = 27/28."""
        addr = address_arg(0, address)
        payload = data_arg(1, message)
        return data(self._sign_hash(addr, text_hash(payload)))

    def sign_typed_data_v4(self, address: Any, typed: Any) -> str:
        """The EIP-712 signature of ``typed`` (an object, or its JSON text as MetaMask and ethers send it)."""
        addr = address_arg(0, address)
        if isinstance(typed, str):
            try:
                typed = json.loads(typed)
            except ValueError:
                raise RPCError(INVALID_PARAMS, "invalid argument 1: typed data is not valid JSON") from None
        if addr not in self.dev:
            raise server_error(UNKNOWN_ACCOUNT)
        try:
            digest = typed_data_hash(typed)
        except TypedDataError as exc:
            raise server_error(str(exc)) from None
        return data(self._sign_hash(addr, digest))

    # --- geth setDefaults -----------------------------------------------------------------

    def _set_defaults(self, args: TransactionArgs) -> None:
        """geth ``TransactionArgs.setDefaults`` (without blobs), same checks in the same order."""
        eth = self.eth
        head = eth.chain.current_block
        config = eth.chain.config
        self._set_fee_defaults(args, head)
        if args.value is None:
            args.value = 0
        if args.nonce is None:
            args.nonce = self._pool_nonce(args.sender or bytes(20), head)
        if args.data is not None and args.input is not None and args.data != args.input:
            raise server_error('both "data" and "input" are set and not equal. Please use "input" to pass '
                               "transaction call data")
        payload = args.input if args.input is not None else args.data
        if args.to is None and not payload:
            raise server_error("contract creation without any data provided")
        if args.gas is None:
            # geth estimates on a copy holding only what the message needs (no nonce, no chain id)
            call_args = replace(args, gas=None, nonce=None, chain_id=None, data=payload or b"", input=None)
            args.gas = eth._estimate_gas(call_args, head)
        if args.chain_id is not None:
            if args.chain_id != config.chain_id:
                raise server_error(f"chainId does not match node's (have={args.chain_id}, want={config.chain_id})")
        else:
            args.chain_id = config.chain_id

    def _set_fee_defaults(self, args: TransactionArgs, head: Any) -> None:
        """geth ``setFeeDefaults``: keep a complete fee choice, else suggest (1559 from London, else gasPrice)."""
        if args.blob_fee_cap is not None and args.blob_fee_cap == 0:
            raise server_error("maxFeePerBlobGas, if specified, must be non-zero")
        if args.gas_price is not None and (args.max_fee_per_gas is not None
                                           or args.max_priority_fee_per_gas is not None):
            raise server_error("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
        london = self.eth.chain.config.is_london(head.number)
        if args.gas_price is None and args.max_fee_per_gas is not None and args.max_priority_fee_per_gas is not None:
            if args.max_fee_per_gas == 0:
                raise server_error("maxFeePerGas must be non-zero")
            _check_fee_caps(args)
            return
        if args.gas_price is not None:
            if args.gas_price == 0 and london:
                raise server_error("gasPrice must be non-zero after london fork")
            return
        oracle = self.eth.oracle
        if london:
            if args.max_priority_fee_per_gas is None:
                args.max_priority_fee_per_gas = oracle.suggest_tip_cap()
            if args.max_fee_per_gas is None:
                # twice the head's base fee: room for it to rise a few blocks before the tx is included
                args.max_fee_per_gas = args.max_priority_fee_per_gas + 2 * (head.base_fee or 0)
            _check_fee_caps(args)
            return
        if args.max_fee_per_gas is not None or args.max_priority_fee_per_gas is not None:
            raise server_error("maxFeePerGas and maxPriorityFeePerGas are not valid before London is active")
        args.gas_price = oracle.suggest_tip_cap()  # geth: SuggestGasTipCap, which is the price before London

    def _pool_nonce(self, sender: bytes, head: Any) -> int:
        """geth GetPoolNonce: the pool's next nonce (pending txs applied), else the head state's."""
        txpool = self.eth.txpool
        nonce = txpool.nonce(sender) if txpool is not None else None
        if nonce is None:
            nonce = self.eth._state("nonce", sender, head)
        return nonce  # type: ignore[no-any-return]

    # --- signing --------------------------------------------------------------------------

    def _sign_tx(self, sender: bytes, tx: Transaction) -> Transaction:
        try:
            return self.dev.sign_tx(sender, tx, self.eth.chain.config.chain_id)
        except UnknownAccountError:
            raise server_error(UNKNOWN_ACCOUNT) from None

    def _sign_hash(self, address: bytes, digest: bytes) -> bytes:
        """A 65-byte signature with v = 27/28, as geth's eth_sign returns ("for legacy reasons")."""
        try:
            sig = self.dev.sign_hash(address, digest)
        except UnknownAccountError:
            raise server_error(UNKNOWN_ACCOUNT) from None
        return sig[:64] + bytes((sig[64] + 27,))


def _decode(args: Any, method: str) -> TransactionArgs:
    return TransactionArgs.from_json(0, args, method=method)


def _check_fee_caps(args: TransactionArgs) -> None:
    fee_cap, tip = args.max_fee_per_gas or 0, args.max_priority_fee_per_gas or 0
    if fee_cap < tip:
        raise server_error(f"maxFeePerGas ({quantity(fee_cap)}) < maxPriorityFeePerGas ({quantity(tip)})")


def _to_transaction(args: TransactionArgs) -> Transaction:
    """geth ``ToTransaction(DynamicFeeTxType)`` after setDefaults: a gas price makes it legacy (EIP-2930
    with an access list), otherwise EIP-1559. Unsigned (signature fields zero)."""
    payload = args.input if args.input is not None else (args.data or b"")
    access = [AccessTuple(address, list(keys)) for address, keys in args.access_list or []]
    nonce, gas, value, chain_id = args.nonce or 0, args.gas or 0, args.value or 0, args.chain_id or 0
    if args.gas_price is not None:
        if args.access_list is not None:
            return AccessListTx(chain_id, nonce, args.gas_price, gas, args.to, value, payload, access, 0, 0, 0)
        return LegacyTx(nonce, args.gas_price, gas, args.to, value, payload, 0, 0, 0)
    return DynamicFeeTx(chain_id, nonce, args.max_priority_fee_per_gas or 0, args.max_fee_per_gas or 0, gas,
                        args.to, value, payload, access, 0, 0, 0)


__all__ = ["AccountAPI", "DevAccounts", "UnknownAccountError", "text_hash", "UNKNOWN_ACCOUNT"]
