"""The block header, field for field as geth v1.17.8's ``types.Header`` through Amsterdam.

Fork-specific fields are trailing RLP optionals: a header carries base_fee from London,
withdrawals_root from Shanghai, the blob fields and parent_beacon_root from Cancun,
requests_hash from Prague, and block_access_list_hash and slot_number from Amsterdam; an
optional field may be present only if every one before it is (geth's ``rlp:"optional"``
rule, enforced by the codec). A header of an older shape re-encodes to its exact bytes,
because absent trailing optionals are simply not written.
"""

from __future__ import annotations

from functools import cached_property

from ethnode.crypto.keccak import keccak256
from ethnode.errors import EthnodeError
from ethnode.rlp.sedes import (
    FixedBytes,
    Optional,
    Record,
    address,
    big_endian_int,
    binary,
    hash32,
    uint64,
    uint256,
)

# keccak256(rlp([])): the uncle hash of a block without uncles (geth types.EmptyUncleHash).
EMPTY_UNCLE_HASH = bytes.fromhex("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")

# Bounds geth's Header.SanityCheck applies after decoding, against headers stuffed with junk.
MAX_DIFFICULTY_BITS = 80  # geth: difficulty bit length > 80 is "too large block difficulty"
MAX_EXTRA_DATA = 100 * 1024  # geth: extra data > 100 KiB is "too large block extradata"
MAX_NUMBER_BITS = 64  # geth: the number must fit a uint64

bloom256 = FixedBytes(256)
block_nonce = FixedBytes(8)


class HeaderError(EthnodeError):
    """A header that decodes but fails geth's sanity bounds."""


class Header(Record):
    """A block header. ``hash`` is keccak256 of the RLP encoding, computed once per object.

    ``difficulty`` and ``number`` are unbounded integers on the wire, as geth's ``*big.Int``;
    ``sanity_check`` applies the bounds geth checks before doing any work on a header.
    """

    fields = (
        ("parent_hash", hash32),
        ("uncle_hash", hash32),
        ("coinbase", address),
        ("state_root", hash32),
        ("tx_root", hash32),
        ("receipt_root", hash32),
        ("bloom", bloom256),
        ("difficulty", big_endian_int),
        ("number", big_endian_int),
        ("gas_limit", uint64),
        ("gas_used", uint64),
        ("time", uint64),
        ("extra", binary),
        ("mix_digest", hash32),
        ("nonce", block_nonce),
        ("base_fee", Optional(uint256)),  # London, EIP-1559
        ("withdrawals_root", Optional(hash32)),  # Shanghai, EIP-4895
        ("blob_gas_used", Optional(uint64)),  # Cancun, EIP-4844
        ("excess_blob_gas", Optional(uint64)),  # Cancun, EIP-4844
        ("parent_beacon_root", Optional(hash32)),  # Cancun, EIP-4788
        ("requests_hash", Optional(hash32)),  # Prague, EIP-7685
        ("block_access_list_hash", Optional(hash32)),  # Amsterdam, EIP-7928
        ("slot_number", Optional(uint64)),  # Amsterdam, EIP-7843
    )

    @cached_property
    def hash(self) -> bytes:
        """The block hash. Cached: headers are immutable and hashed over and over in sync."""
        return keccak256(self.encode())

    def sanity_check(self) -> None:
        """Raise ``HeaderError`` if a field exceeds the bounds geth's Header.SanityCheck sets."""
        if self.number.bit_length() > MAX_NUMBER_BITS:
            raise HeaderError(f"too large block number: bitlen {self.number.bit_length()}")
        if self.difficulty.bit_length() > MAX_DIFFICULTY_BITS:
            raise HeaderError(f"too large block difficulty: bitlen {self.difficulty.bit_length()}")
        if len(self.extra) > MAX_EXTRA_DATA:
            raise HeaderError(f"too large block extradata: size {len(self.extra)}")
