"""Pool limits (geth ``legacypool.Config`` and ``blobpool.Config``) with geth's defaults."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace

log = logging.getLogger("ethnode.core.txpool")

TX_SLOT_SIZE = 32 * 1024  # geth legacypool txSlotSize: a tx takes ceil(size / 32 KiB) slots
TX_MAX_SIZE = 4 * TX_SLOT_SIZE  # geth legacypool txMaxSize: 128 KiB
BLOB_TX_MAX_SIZE = 1024 * 1024  # geth blobpool txMaxSize: 1 MiB, sidecar included
MAX_BLOBS_PER_TX = 6  # geth params.BlobTxMaxBlobs (blobpool maxBlobsPerTx)
MAX_BLOB_TXS_PER_ACCOUNT = 16  # geth blobpool maxTxsPerAccount
# geth keeps blobs on disk with a 2.5 GiB cap (blobpool Datacap); ours are held in memory.
BLOB_DATACAP = 256 * 1024 * 1024


@dataclass(frozen=True)
class TxPoolConfig:
    """geth's ``--txpool.*`` knobs. Counts are txs except ``global_slots`` (32 KiB slots)."""

    price_limit: int = 1  # geth PriceLimit: min tip (wei) for remote txs
    price_bump: int = 10  # geth PriceBump: % both fee cap and tip must rise to replace a tx
    account_slots: int = 16  # geth AccountSlots: pending txs guaranteed per account
    global_slots: int = 4096 + 1024  # geth GlobalSlots: pending + floating, 4:1
    account_queue: int = 64  # geth AccountQueue: queued (gapped) txs per account
    global_queue: int = 1024  # geth GlobalQueue: queued txs overall
    lifetime: float = 3 * 3600.0  # geth Lifetime: seconds a queued-only account may stay idle
    locals: tuple[bytes, ...] = ()  # geth Locals: addresses whose txs are always local
    no_locals: bool = False  # geth NoLocals: treat every tx as remote
    blob_price_bump: int = 100  # geth blobpool PriceBump: 100% on tip, fee cap and blob fee cap
    blob_datacap: int = BLOB_DATACAP

    def sanitized(self) -> TxPoolConfig:
        """Unworkable values (< 1) replaced by the defaults, with a warning, as geth's sanitize."""
        default = TxPoolConfig()
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 1:
                log.warning("sanitizing invalid txpool %s: provided %s, updated %s", f.name, value,
                            getattr(default, f.name))
                changes[f.name] = getattr(default, f.name)
        return replace(self, **changes) if changes else self


__all__ = [
    "TxPoolConfig",
    "TX_SLOT_SIZE",
    "TX_MAX_SIZE",
    "BLOB_TX_MAX_SIZE",
    "MAX_BLOBS_PER_TX",
    "MAX_BLOB_TXS_PER_ACCOUNT",
    "BLOB_DATACAP",
]
