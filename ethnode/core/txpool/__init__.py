"""The transaction pool (geth ``core/txpool``): see ``pool.py`` for what it does and ``state.py``
for what it cannot check until execution provides account state.
"""

from ethnode.core.txpool.config import TxPoolConfig
from ethnode.core.txpool.errors import (
    AccountLimitExceededError,
    AlreadyKnownError,
    AlreadyReservedError,
    BlobSidecarError,
    BlobTxViaBroadcastError,
    FloorDataGasError,
    FutureReplacePendingError,
    GasLimitError,
    InsufficientFundsError,
    IntrinsicGasError,
    InvalidSenderError,
    KZGVerificationError,
    NonceTooHighError,
    NonceTooLowError,
    OversizedDataError,
    ReplaceUnderpricedError,
    TipAboveFeeCapError,
    TxGasPriceTooLowError,
    TxPoolError,
    TxPoolOverflowError,
    TxTypeNotSupportedError,
    UnderpricedError,
)
from ethnode.core.txpool.intrinsic import floor_data_gas, intrinsic_gas
from ethnode.core.txpool.pool import NewTxsEvent, TxPool
from ethnode.core.txpool.state import StateReader, UnknownState

__all__ = [
    "TxPool",
    "TxPoolConfig",
    "NewTxsEvent",
    "StateReader",
    "UnknownState",
    "intrinsic_gas",
    "floor_data_gas",
    "TxPoolError",
    "AlreadyKnownError",
    "AlreadyReservedError",
    "AccountLimitExceededError",
    "BlobSidecarError",
    "BlobTxViaBroadcastError",
    "FloorDataGasError",
    "FutureReplacePendingError",
    "GasLimitError",
    "InsufficientFundsError",
    "IntrinsicGasError",
    "InvalidSenderError",
    "KZGVerificationError",
    "NonceTooHighError",
    "NonceTooLowError",
    "OversizedDataError",
    "ReplaceUnderpricedError",
    "TipAboveFeeCapError",
    "TxGasPriceTooLowError",
    "TxPoolOverflowError",
    "TxTypeNotSupportedError",
    "UnderpricedError",
]
