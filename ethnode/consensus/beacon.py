"""Proof-of-stake header rules after the merge (geth ``consensus/beacon``).

``Beacon`` wraps the pre-merge engine: while the parent's total difficulty is below the
terminal total difficulty, headers are the inner engine's business; from then on the
beacon chain drives the chain and the execution header must carry constants where PoW
had a seal (difficulty 0, nonce 0, no uncles). What the beacon chain itself decides
(which block is head, the parent beacon root's value) is checked elsewhere or not at all.
"""

from __future__ import annotations

from ethnode.consensus.engine import (
    ChainHeaderReader,
    ChainReader,
    ConsensusError,
    Engine,
    InvalidNumberError,
    UnknownAncestorError,
)
from ethnode.core.eip1559 import MAX_GAS_LIMIT, verify_eip1559_header
from ethnode.core.eip4844 import verify_eip4844_header
from ethnode.core.types.block import Block
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header

BEACON_DIFFICULTY = 0  # geth beaconDifficulty
BEACON_NONCE = bytes(8)  # geth beaconNonce
MAX_EXTRA_DATA_SIZE = 32  # geth params.MaximumExtraDataSize


def is_ttd_reached(chain: ChainHeaderReader, parent_hash: bytes, parent_number: int) -> bool:
    """Whether the block after ``parent`` is past the merge (geth IsTTDReached)."""
    ttd = chain.config.terminal_total_difficulty
    if ttd is None:
        return False
    td = chain.get_td(parent_hash, parent_number)
    if td is None:
        raise UnknownAncestorError()
    return td >= ttd


class Beacon(Engine):
    """The merged engine: PoS rules past the terminal total difficulty, ``ethone`` before it."""

    def __init__(self, ethone: Engine) -> None:
        if isinstance(ethone, Beacon):
            raise TypeError("nested consensus engine")
        self.ethone = ethone
        self.name = f"beacon (pre-merge: {ethone.name})"
        # PoS blocks have no seal of their own; the pre-merge part is as strong as ethone.
        self.verifies_seal = ethone.verifies_seal

    @staticmethod
    def is_pos_header(header: Header) -> bool:
        return header.difficulty == BEACON_DIFFICULTY  # type: ignore[no-any-return]

    def author(self, header: Header) -> bytes:
        return header.coinbase if self.is_pos_header(header) else self.ethone.author(header)  # type: ignore[no-any-return]

    def calc_difficulty(self, chain: ChainHeaderReader, time: int, parent: Header) -> int:
        if is_ttd_reached(chain, parent.hash, parent.number):
            return BEACON_DIFFICULTY
        return self.ethone.calc_difficulty(chain, time, parent)

    def verify_header(self, chain: ChainHeaderReader, header: Header, parent: Header) -> None:
        if not is_ttd_reached(chain, parent.hash, parent.number):
            self.ethone.verify_header(chain, header, parent)
            return
        self._verify_pos(chain, header, parent)

    def verify_uncles(self, chain: ChainReader, block: Block) -> None:
        if not self.is_pos_header(block.header):
            self.ethone.verify_uncles(chain, block)
            return
        if block.uncles:
            raise ConsensusError("too many uncles")

    def _verify_pos(self, chain: ChainHeaderReader, header: Header, parent: Header) -> None:
        config = chain.config
        if len(header.extra) > MAX_EXTRA_DATA_SIZE:
            raise ConsensusError(f"extra-data longer than 32 bytes ({len(header.extra)})")
        if header.nonce != BEACON_NONCE:
            raise ConsensusError("invalid nonce")
        if header.uncle_hash != EMPTY_UNCLE_HASH:
            raise ConsensusError("invalid uncle hash")
        if header.time <= parent.time:
            raise ConsensusError("invalid timestamp")
        if header.difficulty != BEACON_DIFFICULTY:
            raise ConsensusError(f"invalid difficulty: have {header.difficulty}, want {BEACON_DIFFICULTY}")
        if header.gas_limit > MAX_GAS_LIMIT:
            raise ConsensusError(f"invalid gasLimit: have {header.gas_limit}, max {MAX_GAS_LIMIT}")
        if header.gas_used > header.gas_limit:
            raise ConsensusError(f"invalid gasUsed: have {header.gas_used}, gasLimit {header.gas_limit}")
        if header.number != parent.number + 1:
            raise InvalidNumberError()
        verify_eip1559_header(config, parent, header)
        number, time = header.number, header.time
        shanghai = config.is_shanghai(number, time)
        if shanghai and header.withdrawals_root is None:
            raise ConsensusError("missing withdrawalsHash")
        if not shanghai and header.withdrawals_root is not None:
            raise ConsensusError(
                f"invalid withdrawalsHash: have {header.withdrawals_root.hex()}, expected nil"
            )
        if not config.is_cancun(number, time):
            if header.excess_blob_gas is not None:
                raise ConsensusError(f"invalid excessBlobGas: have {header.excess_blob_gas}, expected nil")
            if header.blob_gas_used is not None:
                raise ConsensusError(f"invalid blobGasUsed: have {header.blob_gas_used}, expected nil")
            if header.parent_beacon_root is not None:
                raise ConsensusError(
                    f"invalid parentBeaconRoot, have 0x{header.parent_beacon_root.hex()}, expected nil"
                )
        else:
            if header.parent_beacon_root is None:
                raise ConsensusError("header is missing beaconRoot")
            verify_eip4844_header(config, parent, header)
        prague = config.is_prague(number, time)
        if prague and header.requests_hash is None:
            raise ConsensusError("missing requestsHash")
        if not prague and header.requests_hash is not None:
            raise ConsensusError(f"invalid requestsHash: have {header.requests_hash.hex()}, expected nil")
        _verify_amsterdam_fields(config.is_amsterdam(number, time), header)


def _verify_amsterdam_fields(amsterdam: bool, header: Header) -> None:
    """EIP-7928 / EIP-7843: the access list hash and slot number exist exactly from Amsterdam.

    Only their presence: the hash's value needs the block access list, which geth checks
    against execution (or an attached list) and ethnode cannot compute yet.
    """
    if amsterdam:
        if header.block_access_list_hash is None:
            raise ConsensusError("header is missing block access list hash")
        if header.slot_number is None:
            raise ConsensusError("header is missing slotNumber")
        return
    if header.block_access_list_hash is not None:
        have = header.block_access_list_hash.hex()
        raise ConsensusError(f"invalid block access list hash: have {have}, expected nil")
    if header.slot_number is not None:
        raise ConsensusError(f"invalid slotNumber: have {header.slot_number}, expected nil")


__all__ = ["Beacon", "is_ttd_reached", "BEACON_DIFFICULTY", "BEACON_NONCE"]
