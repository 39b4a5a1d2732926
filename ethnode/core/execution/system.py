"""System contracts and EIP-7685 requests: the engine-independent half of the Prague block rules.

The block-level calls themselves (EIP-4788 beacon root, EIP-2935 parent hash, EIP-7002
withdrawal and EIP-7251 consolidation queues) are made by the engine with these
addresses; how their outputs and the deposit logs become requests and the header's
``requests_hash`` is fixed here, as geth's ``core/state_processor.go`` and
``core/types/deposit.go`` do it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from ethnode.core.errors import BlockValidationError
from ethnode.core.types.receipt import Log
from ethnode.crypto.keccak import keccak256

SYSTEM_ADDRESS = bytes.fromhex("fffffffffffffffffffffffffffffffffffffffe")  # geth params.SystemAddress
SYSTEM_CALL_GAS = 30_000_000  # gas given to every system call (EIP-4788 / EIP-2935 / EIP-7002 / EIP-7251)
BEACON_ROOTS_ADDRESS = bytes.fromhex("000f3df6d732807ef1319fb7b8bb8522d0beac02")  # EIP-4788
HISTORY_STORAGE_ADDRESS = bytes.fromhex("0000f90827f1c53a10cb7a02335b175320002935")  # EIP-2935
WITHDRAWAL_QUEUE_ADDRESS = bytes.fromhex("00000961ef480eb55e80d19ad83579a64c007002")  # EIP-7002
CONSOLIDATION_QUEUE_ADDRESS = bytes.fromhex("0000bbddc7ce488642fb579f8b00f3a590007251")  # EIP-7251

DEPOSIT_REQUEST_TYPE = 0x00  # EIP-6110
WITHDRAWAL_REQUEST_TYPE = 0x01  # EIP-7002
CONSOLIDATION_REQUEST_TYPE = 0x02  # EIP-7251

# keccak256("DepositEvent(bytes,bytes,bytes,bytes,bytes)"): the deposit contract's only event.
DEPOSIT_EVENT_TOPIC = keccak256(b"DepositEvent(bytes,bytes,bytes,bytes,bytes)")
DEPOSIT_LOG_SIZE = 576  # five ABI-encoded dynamic byte strings
# (offset word value, length word position, length) of pubkey, withdrawal credentials, amount,
# signature, index in the ABI layout; geth DepositLogToRequest refuses any other layout.
_DEPOSIT_FIELDS = ((160, 48), (256, 32), (320, 8), (384, 96), (512, 8))


def deposit_log_to_request(data: bytes) -> bytes:
    """The 192-byte deposit request of one DepositEvent log (EIP-6110); raises on a bad layout."""
    if len(data) != DEPOSIT_LOG_SIZE:
        raise BlockValidationError(f"unable to parse deposit data: deposit wrong length: want 576, have {len(data)}")
    out = bytearray()
    for i, (offset, size) in enumerate(_DEPOSIT_FIELDS):
        if int.from_bytes(data[32 * i : 32 * i + 32], "big") != offset:
            raise BlockValidationError(f"unable to parse deposit data: invalid offset of field {i}")
        if int.from_bytes(data[offset : offset + 32], "big") != size:
            raise BlockValidationError(f"unable to parse deposit data: invalid size of field {i}")
        out += data[offset + 32 : offset + 32 + size]
    return bytes(out)


def deposit_requests(logs: Iterable[Log], deposit_contract: bytes | None) -> bytes:
    """The type-0 request: the deposit requests of the block's logs, in order (geth ParseDepositLogs)."""
    out = bytearray((DEPOSIT_REQUEST_TYPE,))
    if deposit_contract is None:
        return bytes(out)
    for log in logs:
        if log.address == deposit_contract and log.topics and log.topics[0] == DEPOSIT_EVENT_TOPIC:
            out += deposit_log_to_request(log.data)
    return bytes(out)


def requests_hash(requests: Sequence[bytes]) -> bytes:
    """EIP-7685 commitment: sha256 over the sha256 of each request that carries data."""
    outer = hashlib.sha256()
    for item in requests:
        if len(item) > 1:
            outer.update(hashlib.sha256(item).digest())
    return outer.digest()


__all__ = [
    "SYSTEM_ADDRESS",
    "SYSTEM_CALL_GAS",
    "BEACON_ROOTS_ADDRESS",
    "HISTORY_STORAGE_ADDRESS",
    "WITHDRAWAL_QUEUE_ADDRESS",
    "CONSOLIDATION_QUEUE_ADDRESS",
    "DEPOSIT_REQUEST_TYPE",
    "WITHDRAWAL_REQUEST_TYPE",
    "CONSOLIDATION_REQUEST_TYPE",
    "DEPOSIT_EVENT_TOPIC",
    "deposit_log_to_request",
    "deposit_requests",
    "requests_hash",
]
