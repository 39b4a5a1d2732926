"""What a Clique seal signs and who made it (geth ``SealHash``, ``CliqueRLP``, ``ecrecover``).

The signer is not in the header: it is recovered from the 65-byte signature at the end of
extra-data, over the header with that signature cut off. Recovery costs ~45 µs, and the
same header is judged several times (verify, snapshot apply, author), so signers are
cached by block hash.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from ethnode.consensus.clique.errors import MissingSignatureError
from ethnode.consensus.engine import ConsensusError
from ethnode.core.types.header import Header
from ethnode.crypto.errors import CryptoError
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import recover

EXTRA_VANITY = 32  # geth extraVanity: bytes of extra-data the signer may fill freely
EXTRA_SEAL = 65  # geth extraSeal = crypto.SignatureLength: r || s || v
ADDRESS_LENGTH = 20  # geth common.AddressLength
INMEMORY_SIGNATURES = 4096  # geth inmemorySignatures: recovered signers kept by block hash

# A signing callback: the 32-byte seal hash in, a 65-byte r || s || v signature out.
# ``PrivateKey.sign`` is one; a keystore or an external signer can be another.
SignFn = Callable[[bytes], bytes]

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small least-recently-used map (geth uses hashicorp's ARC cache here)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            try:
                self._items.move_to_end(key)
            except KeyError:  # evicted by another thread in between: the value is still right
                pass
        return value

    def add(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


def _unsealed(header: Header) -> Header:
    """The header as signed: extra-data without the seal, no post-London fields.

    Clique predates Shanghai; geth's encodeSigHeader panics on the later fields, so a
    header carrying them has no seal hash (verification rejects it before it gets here).
    """
    if len(header.extra) < EXTRA_SEAL:
        raise MissingSignatureError()
    if header.withdrawals_root is not None:
        raise ConsensusError("unexpected withdrawal hash value in clique")
    if header.blob_gas_used is not None or header.excess_blob_gas is not None:
        raise ConsensusError("unexpected blob gas fields in clique")
    if header.parent_beacon_root is not None:
        raise ConsensusError("unexpected parent beacon root value in clique")
    return header.replace(extra=header.extra[: len(header.extra) - EXTRA_SEAL])  # type: ignore[no-any-return]


def clique_rlp(header: Header) -> bytes:
    """The RLP bytes a signer signs (geth CliqueRLP): base fee included when present."""
    return _unsealed(header).encode()


def seal_hash(header: Header) -> bytes:
    """keccak256 of ``clique_rlp``: what the seal signature is over (geth SealHash)."""
    return keccak256(clique_rlp(header))


def pubkey_to_address(node_id: bytes) -> bytes:
    """An account address from a 64-byte public key (geth crypto.PubkeyToAddress)."""
    return keccak256(node_id)[12:]


def ecrecover(header: Header, cache: LRU[bytes, bytes] | None = None) -> bytes:
    """The address that sealed ``header``; cached by block hash when ``cache`` is given."""
    block_hash = header.hash
    if cache is not None:
        known = cache.get(block_hash)
        if known is not None:
            return known
    if len(header.extra) < EXTRA_SEAL:
        raise MissingSignatureError()
    signature = bytes(header.extra[len(header.extra) - EXTRA_SEAL :])
    try:
        signer = pubkey_to_address(recover(seal_hash(header), signature))
    except CryptoError as exc:
        raise ConsensusError(f"invalid seal: {exc}") from None
    if cache is not None:
        cache.add(block_hash, signer)
    return signer


def with_seal(header: Header, signature: bytes) -> Header:
    """``header`` with ``signature`` written over the last 65 bytes of its extra-data."""
    if len(signature) != EXTRA_SEAL:
        raise ConsensusError(f"a seal is {EXTRA_SEAL} bytes, got {len(signature)}")
    extra = bytes(header.extra)
    if len(extra) < EXTRA_SEAL:
        raise MissingSignatureError()
    return header.replace(extra=extra[: len(extra) - EXTRA_SEAL] + bytes(signature))  # type: ignore[no-any-return]


__all__ = [
    "EXTRA_VANITY",
    "EXTRA_SEAL",
    "ADDRESS_LENGTH",
    "INMEMORY_SIGNATURES",
    "SignFn",
    "LRU",
    "clique_rlp",
    "seal_hash",
    "pubkey_to_address",
    "ecrecover",
    "with_seal",
]
