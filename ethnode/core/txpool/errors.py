"""Why the pool refused a transaction, with geth's messages (core/txpool/errors.go, core/error.go).

Callers match on the class (geth matches with ``errors.Is``); the text is geth's message,
optionally followed by ``": detail"``, so a user reading a log or an RPC error sees what
geth would print. ``message`` holds the bare geth message.
"""

from __future__ import annotations

from typing import ClassVar

from ethnode.errors import EthnodeError


class TxPoolError(EthnodeError):
    """Base of every refusal. ``str(err)`` is ``message`` plus the detail, if any."""

    message: ClassVar[str] = "transaction pool error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.message}: {detail}" if detail else self.message)
        self.detail = detail


class AlreadyKnownError(TxPoolError):
    message = "already known"


class InvalidSenderError(TxPoolError):
    """Bad signature, wrong chain id, or a type the signer rejects."""

    message = "invalid sender"


class UnderpricedError(TxPoolError):
    """The pool is full and this tx pays no more than the cheapest one it would evict."""

    message = "transaction underpriced"


class TxGasPriceTooLowError(TxPoolError):
    """Tip below the pool's price limit (geth ``--txpool.pricelimit``)."""

    message = "transaction gas price below minimum"


class ReplaceUnderpricedError(TxPoolError):
    message = "replacement transaction underpriced"


class AccountLimitExceededError(TxPoolError):
    message = "account limit exceeded"


class GasLimitError(TxPoolError):
    message = "exceeds block gas limit"


class GasLimitTooHighError(TxPoolError):
    """EIP-7825 (Osaka): a tx may not ask for more than 2^24 gas."""

    message = "transaction gas limit too high"


class OversizedDataError(TxPoolError):
    message = "oversized data"


class FutureReplacePendingError(TxPoolError):
    message = "future transaction tries to replace pending"


class AlreadyReservedError(TxPoolError):
    """An account's txs live in one sub-pool only: blob txs and other txs never mix."""

    message = "address already reserved"


class TxPoolOverflowError(TxPoolError):
    message = "txpool is full"


class TxTypeNotSupportedError(TxPoolError):
    message = "transaction type not supported"


class TipAboveFeeCapError(TxPoolError):
    message = "max priority fee per gas higher than max fee per gas"


class FeeCapVeryHighError(TxPoolError):
    message = "max fee per gas higher than 2^256-1"


class TipVeryHighError(TxPoolError):
    message = "max priority fee per gas higher than 2^256-1"


class IntrinsicGasError(TxPoolError):
    message = "intrinsic gas too low"


class FloorDataGasError(TxPoolError):
    """EIP-7623 (Prague): the gas limit must cover the calldata floor price."""

    message = "insufficient gas for floor data gas cost"


class GasUintOverflowError(TxPoolError):
    message = "gas uint64 overflow"


class MaxInitCodeSizeExceededError(TxPoolError):
    message = "max initcode size exceeded"


class NonceTooLowError(TxPoolError):
    message = "nonce too low"


class NonceTooHighError(TxPoolError):
    message = "nonce too high"


class NonceMaxError(TxPoolError):
    message = "nonce has max value"


class InsufficientFundsError(TxPoolError):
    message = "insufficient funds for gas * price + value"


class TxBlobLimitExceededError(TxPoolError):
    message = "transaction blob limit exceeded"


class BlobSidecarError(TxPoolError):
    """A blob tx whose sidecar is missing or does not match its blob hashes."""

    message = "invalid blob transaction"


class KZGVerificationError(TxPoolError):
    message = "KZG verification error"


class BlobTxViaBroadcastError(TxPoolError):
    """A blob tx pushed in a Transactions message: a protocol violation (disconnect the peer).

    Blob txs travel only as announcements and PooledTransactions replies (eth/68).
    """

    message = "blob transaction delivered by broadcast"


class InvalidTransactionError(TxPoolError):
    """Any other stateless rule (empty authorization list, malformed values)."""

    message = "invalid transaction"


__all__ = [name for name in dir() if name.endswith("Error")]
