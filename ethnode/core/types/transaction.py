"""Transactions of types 0-4 (geth ``core/types/tx_*.go``): codecs, hashes, signatures.

Three byte forms matter and are easy to mix up:

- the *canonical* (consensus) encoding, hashed for the tx hash and put in the tx trie:
  an RLP list for a legacy tx, ``type || rlp(fields)`` for a typed one;
- the *item* form inside a block body or a Transactions message: the legacy list as is,
  a typed tx wrapped in an RLP byte string;
- the *network* form of a blob tx in PooledTransactions, which carries its sidecar
  (blobs, commitments, proofs) next to the tx fields: see ``BlobTxWithSidecar``.

A tx object is an immutable ``Record``; its canonical bytes, hash and sender are computed
once and cached on the object, because sync and the tx pool ask for them many times.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from ethnode import rlp
from ethnode.crypto.errors import InvalidSignatureError
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey, recover
from ethnode.errors import EthnodeError
from ethnode.rlp.framing import wrap_bytes, wrap_list
from ethnode.rlp.sedes import (
    Bytes,
    FixedBytes,
    List,
    Record,
    Tuple,
    address,
    binary,
    hash32,
    uint8,
    uint64,
    uint256,
)

LEGACY_TX_TYPE = 0
ACCESS_LIST_TX_TYPE = 1  # EIP-2930, Berlin
DYNAMIC_FEE_TX_TYPE = 2  # EIP-1559, London
BLOB_TX_TYPE = 3  # EIP-4844, Cancun
SET_CODE_TX_TYPE = 4  # EIP-7702, Prague

# secp256k1 group order; signatures need 0 < r, s < N and, from Homestead (EIP-2), s <= N/2.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2

BLOB_TX_HASH_VERSION = 0x01  # geth params.BlobTxHashVersion: first byte of a versioned hash
BLOB_SIZE = 131072  # 4096 field elements x 32 bytes (geth kzg4844.Blob)
KZG_COMMITMENT_SIZE = 48
KZG_PROOF_SIZE = 48
CELL_PROOFS_PER_BLOB = 128  # EIP-7594 (Osaka): sidecar version 1 carries one proof per cell
SET_CODE_AUTH_MAGIC = b"\x05"  # EIP-7702: prefix of the authorization signing payload


class TransactionError(EthnodeError):
    """A transaction that does not decode or is not valid by itself (no state involved)."""


class InvalidTxSignatureError(TransactionError):
    """geth ErrInvalidSig: the v, r, s values cannot come from a valid signature."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("invalid transaction v, r, s values" + (f": {detail}" if detail else ""))


class TxTypeNotSupportedError(TransactionError):
    """geth ErrTxTypeNotSupported: the type is unknown or not yet active at this block."""

    def __init__(self, tx_type: int) -> None:
        super().__init__("transaction type not supported")  # geth's text: the type is not named
        self.tx_type = tx_type


class InvalidChainIdError(TransactionError):
    """geth ErrInvalidChainId: signed for another chain."""

    def __init__(self, have: int | None, want: int) -> None:
        super().__init__(f"invalid chain id for signer: have {have} want {want}")


def address_of(public_key: bytes) -> bytes:
    """The 20-byte account address of a 64-byte public key (keccak, last 20 bytes)."""
    return keccak256(public_key)[12:]


def recover_address(sighash: bytes, y_parity: int, r: int, s: int, *, homestead: bool = True) -> bytes:
    """The signer's address; raises ``InvalidTxSignatureError`` like geth's recoverPlain.

    ``homestead`` enforces EIP-2's low-s rule; only Frontier-era legacy txs may have a high s.
    """
    if y_parity not in (0, 1):
        raise InvalidTxSignatureError(f"recovery id {y_parity}")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise InvalidTxSignatureError("r or s out of range")
    if homestead and s > SECP256K1_HALF_N:
        raise InvalidTxSignatureError("s above secp256k1n/2 (EIP-2)")
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y_parity,))
    try:
        return address_of(recover(sighash, sig))
    except InvalidSignatureError as exc:
        raise InvalidTxSignatureError(str(exc)) from None


class AccessTuple(Record):
    """One EIP-2930 access-list entry: an address and the storage slots it will touch."""

    fields = (("address", address), ("storage_keys", List(hash32)))


access_list_sedes = List(AccessTuple)


class SetCodeAuthorization(Record):
    """An EIP-7702 authorization: the authority delegates its code to ``address``."""

    fields = (
        ("chain_id", uint256),
        ("address", address),
        ("nonce", uint64),
        ("y_parity", uint8),
        ("r", uint256),
        ("s", uint256),
    )

    @cached_property
    def signing_hash(self) -> bytes:
        return keccak256(SET_CODE_AUTH_MAGIC + rlp.encode([self.chain_id, self.address, self.nonce]))

    @cached_property
    def authority(self) -> bytes:
        """The signer's address. An invalid signature raises; EIP-7702 then skips the entry."""
        return recover_address(self.signing_hash, self.y_parity, self.r, self.s)

    def sign(self, key: PrivateKey) -> SetCodeAuthorization:
        sig = key.sign(self.replace(y_parity=0, r=0, s=0).signing_hash)
        return self.replace(
            y_parity=sig[64], r=int.from_bytes(sig[:32], "big"), s=int.from_bytes(sig[32:64], "big")
        )


nullable_address = FixedBytes(20, nullable=True)


class Transaction(Record):
    """Behaviour shared by every tx type; concrete types list their ``fields``.

    Subclasses omit ``__slots__`` so the cached canonical bytes, hash and sender live in
    the instance dict.
    """

    type: ClassVar[int]
    # How many leading fields are signed (all but the signature values), and their schema.
    _unsigned: ClassVar[int] = 0
    _unsigned_sedes: ClassVar[Tuple]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._unsigned_sedes = Tuple(*(sedes for _, sedes in cls.fields[: cls._unsigned]))

    # --- byte forms ------------------------------------------------------------------

    @cached_property
    def canonical(self) -> bytes:
        """The consensus encoding: hashed for the tx hash and stored in the tx trie."""
        return bytes((self.type,)) + self.encode()

    def item(self) -> bytes:
        """The encoding as an element of a block body or Transactions message list (built once)."""
        item = self.__dict__.get("_item")
        if item is None:
            item = self.__dict__["_item"] = wrap_bytes(self.canonical)
        return item

    @cached_property
    def hash(self) -> bytes:
        return keccak256(self.canonical)

    @property
    def size(self) -> int:
        return len(self.canonical)

    # --- signatures ------------------------------------------------------------------

    def signing_hash(self, chain_id: int | None = None) -> bytes:
        """The hash the sender signs: type byte and every field but the signature."""
        return keccak256(bytes((self.type,)) + self._unsigned_sedes.encode(tuple(self)[: self._unsigned]))

    @property
    def y_parity(self) -> int:
        return self[self._unsigned]

    @cached_property
    def sender(self) -> bytes:
        """The 20-byte sender address recovered from the signature (homestead rules).

        Fork-dependent checks (is this type active, does the chain id match) live in
        ``Signer``; this is the part that depends on the tx alone, so it is cached.
        """
        return recover_address(self.signing_hash(), self.y_parity, self.r, self.s, homestead=True)

    def sign(self, key: PrivateKey, chain_id: int | None = None) -> Transaction:
        """A copy signed by ``key`` (typed txs sign over their own ``chain_id``)."""
        sig = key.sign(self.signing_hash())
        return self.replace(
            y_parity=sig[64], r=int.from_bytes(sig[:32], "big"), s=int.from_bytes(sig[32:64], "big")
        )

    # --- uniform accessors (geth's Transaction getters) ---------------------------------

    @property
    def gas_tip_cap(self) -> int:
        return self.gas_price  # type: ignore[attr-defined,no-any-return]

    @property
    def gas_fee_cap(self) -> int:
        return self.gas_price  # type: ignore[attr-defined,no-any-return]

    @property
    def blob_hashes(self) -> tuple[bytes, ...]:
        return ()

    @property
    def blob_gas(self) -> int:
        return len(self.blob_hashes) * 2**17  # geth params.BlobTxBlobGasPerBlob

    def validate(self) -> None:
        """Checks geth applies to every tx before any state is read (txpool/state transition).

        Raises ``TransactionError`` on fee caps whose product with gas overflows 256 bits, a
        tip above the fee cap, a blob tx without blobs or with a bad versioned hash, and a
        set-code tx without authorizations.
        """
        if self.gas_tip_cap > self.gas_fee_cap:
            raise TransactionError(
                f"max priority fee per gas higher than max fee per gas: tip {self.gas_tip_cap}, "
                f"fee cap {self.gas_fee_cap}"
            )
        if (self.gas * self.gas_fee_cap).bit_length() > 256:  # type: ignore[attr-defined]
            raise TransactionError("gas * maxFeePerGas overflows 256 bits")


class LegacyTx(Transaction):
    """Type 0. ``v`` carries the recovery id and, from EIP-155, the chain id (v = 35 + 2*id + parity)."""

    type = LEGACY_TX_TYPE
    _unsigned = 6
    fields = (
        ("nonce", uint64),
        ("gas_price", uint256),
        ("gas", uint64),
        ("to", nullable_address),
        ("value", uint256),
        ("data", binary),
        ("v", uint256),
        ("r", uint256),
        ("s", uint256),
    )

    @cached_property
    def canonical(self) -> bytes:
        return self.encode()

    def item(self) -> bytes:
        return self.canonical

    @property
    def protected(self) -> bool:
        """Whether the signature commits to a chain id (EIP-155); v = 27/28 does not."""
        return self.v not in (27, 28)

    @property
    def chain_id(self) -> int | None:
        """The chain id encoded in v, None for an unprotected tx (geth deriveChainId)."""
        if not self.protected:
            return None
        return max(self.v - 35, 0) // 2

    @property
    def y_parity(self) -> int:
        if not self.protected:
            return self.v - 27
        return (self.v - 35) % 2 if self.v >= 35 else -1

    def signing_hash(self, chain_id: int | None = None) -> bytes:
        """Unprotected: rlp of the six fields. EIP-155: plus ``chain_id, 0, 0``."""
        if chain_id is None:
            return keccak256(self._unsigned_sedes.encode(tuple(self[:6])))
        return keccak256(_eip155_sedes.encode((*self[:6], chain_id, 0, 0)))

    def recover_sender(self, *, homestead: bool = True) -> bytes:
        """The sender, with or without EIP-2's low-s rule (only Frontier allows high s)."""
        if self.protected and self.v < 35:
            raise InvalidTxSignatureError(f"v {self.v}")
        sighash = self.signing_hash(self.chain_id)
        return recover_address(sighash, self.y_parity, self.r, self.s, homestead=homestead)

    @cached_property
    def sender(self) -> bytes:
        return self.recover_sender(homestead=True)

    def sign(self, key: PrivateKey, chain_id: int | None = None) -> LegacyTx:
        """EIP-155 signature when ``chain_id`` is given, else the pre-EIP-155 form (v = 27/28)."""
        sig = key.sign(self.signing_hash(chain_id))
        v = sig[64] + (35 + 2 * chain_id if chain_id is not None else 27)
        return self.replace(v=v, r=int.from_bytes(sig[:32], "big"), s=int.from_bytes(sig[32:64], "big"))


_eip155_sedes = Tuple(*(sedes for _, sedes in LegacyTx.fields[:6]), uint256, uint256, uint256)


class AccessListTx(Transaction):
    """Type 1 (EIP-2930): a legacy gas price plus an access list, chain id explicit."""

    type = ACCESS_LIST_TX_TYPE
    _unsigned = 8
    fields = (
        ("chain_id", uint256),
        ("nonce", uint64),
        ("gas_price", uint256),
        ("gas", uint64),
        ("to", nullable_address),
        ("value", uint256),
        ("data", binary),
        ("access_list", access_list_sedes),
        ("y_parity", uint256),
        ("r", uint256),
        ("s", uint256),
    )


class DynamicFeeTx(Transaction):
    """Type 2 (EIP-1559): a fee cap and a priority tip instead of a gas price."""

    type = DYNAMIC_FEE_TX_TYPE
    _unsigned = 9
    fields = (
        ("chain_id", uint256),
        ("nonce", uint64),
        ("gas_tip_cap", uint256),
        ("gas_fee_cap", uint256),
        ("gas", uint64),
        ("to", nullable_address),
        ("value", uint256),
        ("data", binary),
        ("access_list", access_list_sedes),
        ("y_parity", uint256),
        ("r", uint256),
        ("s", uint256),
    )


class BlobTx(Transaction):
    """Type 3 (EIP-4844): carries versioned hashes of blobs; ``to`` may not be empty."""

    type = BLOB_TX_TYPE
    _unsigned = 11
    fields = (
        ("chain_id", uint256),
        ("nonce", uint64),
        ("gas_tip_cap", uint256),
        ("gas_fee_cap", uint256),
        ("gas", uint64),
        ("to", address),
        ("value", uint256),
        ("data", binary),
        ("access_list", access_list_sedes),
        ("blob_fee_cap", uint256),
        ("blob_hashes", List(hash32)),
        ("y_parity", uint256),
        ("r", uint256),
        ("s", uint256),
    )

    def validate(self) -> None:
        super().validate()
        if not self.blob_hashes:
            raise TransactionError("blobless blob transaction")
        for i, h in enumerate(self.blob_hashes):
            if h[0] != BLOB_TX_HASH_VERSION:
                raise TransactionError(f"blob {i} has invalid hash version {h[0]}")


class SetCodeTx(Transaction):
    """Type 4 (EIP-7702): lets EOAs delegate to code via a list of signed authorizations."""

    type = SET_CODE_TX_TYPE
    _unsigned = 10
    fields = (
        ("chain_id", uint256),
        ("nonce", uint64),
        ("gas_tip_cap", uint256),
        ("gas_fee_cap", uint256),
        ("gas", uint64),
        ("to", address),
        ("value", uint256),
        ("data", binary),
        ("access_list", access_list_sedes),
        ("auth_list", List(SetCodeAuthorization)),
        ("y_parity", uint256),
        ("r", uint256),
        ("s", uint256),
    )

    def validate(self) -> None:
        super().validate()
        if not self.auth_list:
            raise TransactionError("EIP-7702 transaction with empty auth list")


TX_CLASSES: dict[int, type[Transaction]] = {
    cls.type: cls for cls in (AccessListTx, DynamicFeeTx, BlobTx, SetCodeTx)
}


# --- the blob sidecar (network form of a type-3 tx) -----------------------------------

blob_sedes = Bytes(BLOB_SIZE, BLOB_SIZE)
_sidecar_lists = (List(blob_sedes), List(FixedBytes(KZG_COMMITMENT_SIZE)), List(FixedBytes(KZG_PROOF_SIZE)))


def kzg_to_versioned_hash(commitment: bytes) -> bytes:
    """EIP-4844: 0x01 || sha256(commitment)[1:]."""
    return bytes((BLOB_TX_HASH_VERSION,)) + hashlib.sha256(commitment).digest()[1:]


@dataclass(frozen=True)
class BlobTxSidecar:
    """Blobs with their KZG commitments and proofs; version 1 (Osaka) has cell proofs.

    Only the shape and the commitment -> versioned-hash link are checked here; KZG proof
    verification needs a KZG library and is not implemented yet.
    """

    blobs: tuple[bytes, ...]
    commitments: tuple[bytes, ...]
    proofs: tuple[bytes, ...]
    version: int = 0

    def validate(self, blob_hashes: tuple[bytes, ...] | list[bytes]) -> None:
        n = len(blob_hashes)
        if len(self.blobs) != n or len(self.commitments) != n:
            raise TransactionError(
                f"invalid number of {len(self.blobs)} blobs / {len(self.commitments)} commitments "
                f"compared to {n} blob hashes"
            )
        want_proofs = n if self.version == 0 else n * CELL_PROOFS_PER_BLOB
        if len(self.proofs) != want_proofs:
            raise TransactionError(f"invalid number of {len(self.proofs)} blob proofs, want {want_proofs}")
        for i, (commitment, vhash) in enumerate(zip(self.commitments, blob_hashes, strict=True)):
            if kzg_to_versioned_hash(commitment) != vhash:
                raise TransactionError(f"blob {i}: computed hash does not match versioned hash")


@dataclass(frozen=True)
class BlobTxWithSidecar:
    """A blob tx as PooledTransactions carries it: the tx plus its sidecar.

    Its identity (hash, sender) is the inner tx's; only the network bytes differ.
    """

    tx: BlobTx
    sidecar: BlobTxSidecar

    @property
    def hash(self) -> bytes:
        return self.tx.hash

    @property
    def type(self) -> int:
        return BLOB_TX_TYPE

    def network_encoding(self) -> bytes:
        """``0x03 || rlp([tx_fields, (version,) blobs, commitments, proofs])``."""
        sc = self.sidecar
        head = [rlp.encode(self.tx)]
        if sc.version != 0:
            head.append(rlp.encode(sc.version))
        parts = head + [
            s.encode(list(v))
            for s, v in zip(_sidecar_lists, (sc.blobs, sc.commitments, sc.proofs), strict=True)
        ]
        return bytes((BLOB_TX_TYPE,)) + wrap_list(b"".join(parts))

    def item(self) -> bytes:
        return wrap_bytes(self.network_encoding())


# --- decoding ----------------------------------------------------------------------


def decode_tx(data: bytes, *, allow_sidecar: bool = False) -> Transaction | BlobTxWithSidecar:
    """Decode a tx from its canonical encoding (``allow_sidecar``: also the blob network form).

    The canonical bytes are kept on the object, so its hash costs one keccak and no encode.
    """
    data = bytes(data)
    if not data:
        raise TransactionError("typed transaction too short")
    first = data[0]
    try:
        if first >= 0xC0:
            tx: Transaction = LegacyTx.decode(data)
        elif first > 0x7F:
            raise TransactionError("typed transaction expected, got an RLP string")
        else:
            cls = TX_CLASSES.get(first)
            if cls is None:
                raise TxTypeNotSupportedError(first)
            body = memoryview(data)[1:]
            if cls is BlobTx and _first_element_is_list(body):
                if not allow_sidecar:
                    raise TransactionError(
                        "blob transaction with sidecar where the canonical form is required"
                    )
                return _decode_blob_network(body)
            tx = cls.decode(body)
    except rlp.DecodingError as exc:
        raise TransactionError(f"cannot decode transaction: {exc}") from None
    tx.__dict__["canonical"] = data
    return tx


def decode_tx_item(item: bytes, *, allow_sidecar: bool = False) -> Transaction | BlobTxWithSidecar:
    """Decode one element of a body's tx list: a legacy RLP list or a typed tx in a byte string."""
    item = bytes(item)
    try:
        is_list, start, stop = rlp.item_header(item, 0, len(item))
    except rlp.DecodingError as exc:
        raise TransactionError(f"cannot decode transaction: {exc}") from None
    if stop != len(item):
        raise TransactionError("cannot decode transaction: trailing bytes after the item")
    if is_list:
        return decode_tx(item)
    payload = item[start:stop]
    if len(payload) <= 1:
        raise TransactionError("typed transaction too short")
    if payload[0] > 0x7F:  # a byte string must hold a typed tx, never a wrapped legacy list
        raise TxTypeNotSupportedError(payload[0])
    return decode_tx(payload, allow_sidecar=allow_sidecar)


def canonical_from_item(item: bytes) -> bytes:
    """The canonical bytes of a body tx item without decoding the tx: what the tx trie holds."""
    if item[0] >= 0xC0:
        return item
    _, start, stop = rlp.item_header(item, 0, len(item))
    return item[start:stop]


def _first_element_is_list(payload: memoryview) -> bool:
    is_list, start, stop = rlp.item_header(payload, 0, len(payload))
    if not is_list or start >= stop:
        return False
    return payload[start] >= 0xC0


def _decode_blob_network(payload: memoryview) -> BlobTxWithSidecar:
    _, start, stop = rlp.item_header(payload, 0, len(payload))
    if stop != len(payload):
        raise TransactionError("cannot decode transaction: trailing bytes after the blob tx")
    items = []
    pos = start
    while pos < stop:
        _, s, e = rlp.item_header(payload, pos, stop)
        items.append(bytes(payload[pos:e]))
        pos = e
    if len(items) == 4:
        version = 0
    elif len(items) == 5:
        version = rlp.decode(items[1])
        if version != b"\x01":
            raise TransactionError(f"unsupported blob sidecar version {version!r}")
        version = 1
        del items[1]
    else:
        raise TransactionError(f"blob network form has {len(items)} elements, want 4 or 5")
    tx = BlobTx.decode(items[0])
    tx.__dict__["canonical"] = bytes((BLOB_TX_TYPE,)) + items[0]
    blobs, commitments, proofs = (tuple(s.decode(v)) for s, v in zip(_sidecar_lists, items[1:], strict=True))
    return BlobTxWithSidecar(tx, BlobTxSidecar(blobs, commitments, proofs, version))


__all__ = [
    "LEGACY_TX_TYPE",
    "ACCESS_LIST_TX_TYPE",
    "DYNAMIC_FEE_TX_TYPE",
    "BLOB_TX_TYPE",
    "SET_CODE_TX_TYPE",
    "Transaction",
    "LegacyTx",
    "AccessListTx",
    "DynamicFeeTx",
    "BlobTx",
    "SetCodeTx",
    "TX_CLASSES",
    "AccessTuple",
    "SetCodeAuthorization",
    "BlobTxSidecar",
    "BlobTxWithSidecar",
    "TransactionError",
    "InvalidTxSignatureError",
    "TxTypeNotSupportedError",
    "InvalidChainIdError",
    "decode_tx",
    "decode_tx_item",
    "canonical_from_item",
    "recover_address",
    "address_of",
    "kzg_to_versioned_hash",
]
