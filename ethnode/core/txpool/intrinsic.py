"""The gas a tx must pay before any code runs (geth ``core.IntrinsicGas`` and ``FloorDataGas``).

The pool rejects a tx whose gas limit is below these: it could never be included, so
relaying it would only waste peers' bandwidth. The values are geth's
``params/protocol_params.go``; the fork flags are passed in, the pool takes them from its head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ethnode.core.txpool.errors import GasUintOverflowError

TX_GAS = 21000  # geth params.TxGas: every tx that is not a contract creation
TX_GAS_CONTRACT_CREATION = 53000  # geth params.TxGasContractCreation (Homestead)
TX_DATA_ZERO_GAS = 4  # geth params.TxDataZeroGas
TX_DATA_NON_ZERO_GAS_FRONTIER = 68  # geth params.TxDataNonZeroGasFrontier
TX_DATA_NON_ZERO_GAS_EIP2028 = 16  # geth params.TxDataNonZeroGasEIP2028 (Istanbul)
TX_ACCESS_LIST_ADDRESS_GAS = 2400  # geth params.TxAccessListAddressGas (EIP-2930)
TX_ACCESS_LIST_STORAGE_KEY_GAS = 1900  # geth params.TxAccessListStorageKeyGas (EIP-2930)
CALL_NEW_ACCOUNT_GAS = 25000  # geth params.CallNewAccountGas: EIP-7702 PER_EMPTY_ACCOUNT_COST per auth
INIT_CODE_WORD_GAS = 2  # geth params.InitCodeWordGas (EIP-3860, Shanghai)
MAX_CODE_SIZE = 24576  # geth params.MaxCodeSize (EIP-170)
MAX_INIT_CODE_SIZE = 2 * MAX_CODE_SIZE  # geth params.MaxInitCodeSize = 49152 (EIP-3860)
TX_TOKEN_PER_NON_ZERO_BYTE = 4  # geth params.TxTokenPerNonZeroByte (EIP-7623)
TX_COST_FLOOR_PER_TOKEN = 10  # geth params.TxCostFloorPerToken (EIP-7623, Prague)
MAX_TX_GAS = 1 << 24  # geth params.MaxTxGas (EIP-7825, Osaka): 16,777,216

_UINT64_MAX = (1 << 64) - 1


def _zero_bytes(data: bytes) -> int:
    return data.count(0)


def intrinsic_gas(
    data: bytes,
    access_list: Sequence[Any] = (),
    auth_count: int = 0,
    *,
    creation: bool = False,
    homestead: bool = True,
    istanbul: bool = True,
    shanghai: bool = True,
) -> int:
    """Base cost, calldata, access list, authorizations and (Shanghai) init-code words.

    ``access_list`` holds entries with ``storage_keys`` (``AccessTuple``). Raises
    ``GasUintOverflowError`` where geth's uint64 arithmetic would overflow.
    """
    gas = TX_GAS_CONTRACT_CREATION if creation and homestead else TX_GAS
    if data:
        z = _zero_bytes(data)
        nz = len(data) - z
        non_zero_gas = TX_DATA_NON_ZERO_GAS_EIP2028 if istanbul else TX_DATA_NON_ZERO_GAS_FRONTIER
        gas += nz * non_zero_gas + z * TX_DATA_ZERO_GAS
        if creation and shanghai:
            gas += (len(data) + 31) // 32 * INIT_CODE_WORD_GAS
    if access_list:
        keys = sum(len(entry.storage_keys) for entry in access_list)
        gas += len(access_list) * TX_ACCESS_LIST_ADDRESS_GAS + keys * TX_ACCESS_LIST_STORAGE_KEY_GAS
    gas += auth_count * CALL_NEW_ACCOUNT_GAS
    if gas > _UINT64_MAX:
        raise GasUintOverflowError()
    return gas


def floor_data_gas(data: bytes) -> int:
    """EIP-7623: 21000 plus 10 gas per calldata token (a zero byte is 1 token, others 4)."""
    z = _zero_bytes(data)
    tokens = (len(data) - z) * TX_TOKEN_PER_NON_ZERO_BYTE + z
    gas = TX_GAS + tokens * TX_COST_FLOOR_PER_TOKEN
    if gas > _UINT64_MAX:
        raise GasUintOverflowError()
    return gas


__all__ = [
    "intrinsic_gas",
    "floor_data_gas",
    "TX_GAS",
    "TX_GAS_CONTRACT_CREATION",
    "TX_DATA_ZERO_GAS",
    "TX_DATA_NON_ZERO_GAS_FRONTIER",
    "TX_DATA_NON_ZERO_GAS_EIP2028",
    "TX_ACCESS_LIST_ADDRESS_GAS",
    "TX_ACCESS_LIST_STORAGE_KEY_GAS",
    "CALL_NEW_ACCOUNT_GAS",
    "INIT_CODE_WORD_GAS",
    "MAX_CODE_SIZE",
    "MAX_INIT_CODE_SIZE",
    "TX_TOKEN_PER_NON_ZERO_BYTE",
    "TX_COST_FLOOR_PER_TOKEN",
    "MAX_TX_GAS",
]
