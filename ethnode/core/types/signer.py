"""Which transactions a block may carry and who sent them (geth ``transaction_signing.go``).

Recovering the sender depends on the tx alone and is cached on it; whether that sender
counts depends on the fork: the tx type must be active, a typed or EIP-155 tx must be
signed for this chain, and before Homestead a high-s signature was still accepted.
"""

from __future__ import annotations

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.types.transaction import (
    ACCESS_LIST_TX_TYPE,
    BLOB_TX_TYPE,
    DYNAMIC_FEE_TX_TYPE,
    LEGACY_TX_TYPE,
    SET_CODE_TX_TYPE,
    InvalidChainIdError,
    InvalidTxSignatureError,
    LegacyTx,
    Transaction,
    TxTypeNotSupportedError,
)


class Signer:
    """The sender rules in force at one block: geth's MakeSigner result."""

    __slots__ = ("chain_id", "eip155", "homestead", "types")

    def __init__(
        self, chain_id: int, *, types: frozenset[int], eip155: bool = True, homestead: bool = True
    ) -> None:
        self.chain_id = chain_id
        self.types = types
        self.eip155 = eip155
        self.homestead = homestead

    def sender(self, tx: Transaction) -> bytes:
        """The sender's address, or ``TransactionError`` if this fork does not accept the tx."""
        if tx.type not in self.types:
            raise TxTypeNotSupportedError(tx.type)
        if isinstance(tx, LegacyTx):
            if not tx.protected:
                return tx.sender if self.homestead else tx.recover_sender(homestead=False)
            if not self.eip155:
                raise InvalidTxSignatureError(f"replay-protected tx (v {tx.v}) before EIP-155")
        if tx.chain_id != self.chain_id:  # type: ignore[attr-defined]
            raise InvalidChainIdError(tx.chain_id, self.chain_id)  # type: ignore[attr-defined]
        return tx.sender

    def __repr__(self) -> str:
        return f"Signer(chain_id={self.chain_id}, types={sorted(self.types)}, eip155={self.eip155})"


def _active(fork_block: int | None, number: int) -> bool:
    return fork_block is not None and fork_block <= number


def make_signer(config: ChainConfig, number: int, time: int) -> Signer:
    """The signer for a block at ``number``/``time`` (geth types.MakeSigner)."""
    types = {LEGACY_TX_TYPE}
    if _active(config.berlin_block, number):
        types.add(ACCESS_LIST_TX_TYPE)
    if config.is_london(number):
        types.add(DYNAMIC_FEE_TX_TYPE)
    if config.is_cancun(number, time):
        types.add(BLOB_TX_TYPE)
    if config.is_prague(number, time):
        types.add(SET_CODE_TX_TYPE)
    return Signer(
        config.chain_id,
        types=frozenset(types),
        eip155=_active(config.eip155_block, number),
        homestead=_active(config.homestead_block, number),
    )


def latest_signer(config: ChainConfig) -> Signer:
    """A signer accepting every type the config ever schedules (geth LatestSigner), for the tx pool."""
    types = {LEGACY_TX_TYPE, ACCESS_LIST_TX_TYPE, DYNAMIC_FEE_TX_TYPE}
    if config.cancun_time is not None:
        types.add(BLOB_TX_TYPE)
    if config.prague_time is not None:
        types.add(SET_CODE_TX_TYPE)
    return Signer(config.chain_id, types=frozenset(types))


__all__ = ["Signer", "make_signer", "latest_signer"]
