"""Stateless admission rules (geth ``core/txpool/validation.go`` ValidateTransaction).

Everything here depends on the tx, the pool's head header and the chain config only;
nonce and balance rules need state and live in the pool (see ``state.py``). The order of
the checks is geth's, so the same bad tx gets the same error as from geth.
"""

from __future__ import annotations

from dataclasses import dataclass

from ethnode.core.chainconfig import ChainConfig
from ethnode.core.txpool import errors
from ethnode.core.txpool.config import MAX_BLOBS_PER_TX
from ethnode.core.txpool.intrinsic import MAX_INIT_CODE_SIZE, MAX_TX_GAS, floor_data_gas, intrinsic_gas
from ethnode.core.txpool.kzg import KzgVerifier
from ethnode.core.types.cells import CellSidecar
from ethnode.core.types.header import Header
from ethnode.core.types.signer import Signer
from ethnode.core.types.transaction import (
    ACCESS_LIST_TX_TYPE,
    BLOB_TX_TYPE,
    CELL_PROOFS_PER_BLOB,
    DYNAMIC_FEE_TX_TYPE,
    LEGACY_TX_TYPE,
    SET_CODE_TX_TYPE,
    BlobTxSidecar,
    Transaction,
    TransactionError,
    kzg_to_versioned_hash,
)

MIN_BLOB_GAS_PRICE = 1  # geth params.BlobTxMinBlobGasprice: a blob fee cap below this never pays
_UINT256_BITS = 256
_UINT64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class ValidationOptions:
    """What differs between the sub-pools (geth ``ValidationOptions``)."""

    accept: frozenset[int]  # tx types this pool takes
    max_size: int  # bytes, as encoded on the wire (blob txs: with their sidecar)
    max_blob_count: int
    min_tip: int  # 0 for local txs
    kzg: KzgVerifier | None = None  # None: proofs unchecked


def _active(fork_block: int | None, number: int) -> bool:
    return fork_block is not None and fork_block <= number


def validate_transaction(
    tx: Transaction,
    size: int,
    head: Header,
    config: ChainConfig,
    signer: Signer,
    opts: ValidationOptions,
    *,
    sidecar: BlobTxSidecar | CellSidecar | None = None,
    blobless: bool = False,
) -> bytes:
    """Raise a ``TxPoolError`` if ``tx`` breaks a rule at ``head``; return its sender."""
    tx_type = tx.type
    if tx_type not in opts.accept:
        raise errors.TxTypeNotSupportedError(f"tx type {tx_type} not supported by this pool")
    blob_count = len(tx.blob_hashes)
    if blob_count > opts.max_blob_count:
        raise errors.TxBlobLimitExceededError(f"blob count {blob_count}, limit {opts.max_blob_count}")
    if size > opts.max_size:
        raise errors.OversizedDataError(f"transaction size {size}, limit {opts.max_size}")

    number, time = head.number, head.time
    if tx_type != LEGACY_TX_TYPE and not _active(config.berlin_block, number):
        raise errors.TxTypeNotSupportedError(f"type {tx_type} rejected, pool not yet in Berlin")
    for fork_type, active, fork in (
        (DYNAMIC_FEE_TX_TYPE, config.is_london(number), "London"),
        (BLOB_TX_TYPE, config.is_cancun(number, time), "Cancun"),
        (SET_CODE_TX_TYPE, config.is_prague(number, time), "Prague"),
    ):
        if tx_type == fork_type and not active:
            raise errors.TxTypeNotSupportedError(f"type {tx_type} rejected, pool not yet in {fork}")
    shanghai = config.is_shanghai(number, time)
    prague = config.is_prague(number, time)
    creation = tx.to is None  # type: ignore[attr-defined]
    data: bytes = tx.data  # type: ignore[attr-defined]
    if creation and shanghai and len(data) > MAX_INIT_CODE_SIZE:
        raise errors.MaxInitCodeSizeExceededError(f"code size {len(data)}, limit {MAX_INIT_CODE_SIZE}")
    gas: int = tx.gas  # type: ignore[attr-defined]
    if config.is_osaka(number, time) and gas > MAX_TX_GAS:
        raise errors.GasLimitTooHighError(f"cap: {MAX_TX_GAS}, tx: {gas}")
    if head.gas_limit < gas:
        raise errors.GasLimitError()
    fee_cap, tip_cap = tx.gas_fee_cap, tx.gas_tip_cap
    if fee_cap.bit_length() > _UINT256_BITS:
        raise errors.FeeCapVeryHighError()
    if tip_cap.bit_length() > _UINT256_BITS:
        raise errors.TipVeryHighError()
    if fee_cap < tip_cap:
        raise errors.TipAboveFeeCapError(f"tip {tip_cap}, fee cap {fee_cap}")
    if (gas * fee_cap).bit_length() > _UINT256_BITS:
        raise errors.InvalidTransactionError("gas * maxFeePerGas overflows 256 bits")
    try:
        sender = signer.sender(tx)
    except TransactionError as exc:
        raise errors.InvalidSenderError(str(exc)) from None
    if tx.nonce >= _UINT64_MAX:  # type: ignore[attr-defined]
        raise errors.NonceMaxError()

    access_list = getattr(tx, "access_list", ())
    auths = getattr(tx, "auth_list", ())
    need = intrinsic_gas(
        data,
        access_list,
        len(auths),
        creation=creation,
        homestead=True,  # geth's pool passes true: it never validates against Frontier
        istanbul=_active(config.istanbul_block, number),
        shanghai=shanghai,
    )
    if gas < need:
        raise errors.IntrinsicGasError(f"gas {gas}, minimum needed {need}")
    if prague:
        floor = floor_data_gas(data)
        if gas < floor:
            raise errors.FloorDataGasError(f"gas {gas}, minimum needed {floor}")
    if tip_cap < opts.min_tip:
        raise errors.TxGasPriceTooLowError(f"gas tip cap {tip_cap}, minimum needed {opts.min_tip}")
    if tx_type == BLOB_TX_TYPE:
        validate_blob_tx(tx, sidecar, osaka=config.is_osaka(number, time), kzg=opts.kzg, blobless=blobless)
    elif tx_type == SET_CODE_TX_TYPE and not auths:
        raise errors.InvalidTransactionError("set code tx must have at least one authorization tuple")
    return sender


def validate_blob_tx(
    tx: Transaction,
    sidecar: BlobTxSidecar | CellSidecar | None,
    *,
    osaka: bool,
    kzg: KzgVerifier | None,
    blobless: bool = False,
) -> None:
    """geth validateBlobSidecar: sidecar present and of an accepted version, counts, hashes, proofs.

    ``blobless``: an eth/72 tx without its blobs (geth ValidateTxBasics): everything but
    the blobs and the proofs, which are checked once its cells arrive.

    geth 1.17 takes only cell-proof sidecars (version 1, EIP-7594) whatever the fork, and
    its peers send nothing else. We take version 1 at every fork too, and additionally the
    legacy blob-proof form (version 0) before Osaka, for pre-Osaka private chains whose
    tools still produce it; from Osaka on, version 0 is refused as geth does.
    """
    if sidecar is None:
        raise errors.BlobSidecarError("missing sidecar in blob transaction")
    if sidecar.version != 1 and (osaka or sidecar.version != 0):
        raise errors.BlobSidecarError(f"unexpected sidecar version, want: 1, got: {sidecar.version}")
    blob_fee_cap: int = tx.blob_fee_cap  # type: ignore[attr-defined]
    if blob_fee_cap < MIN_BLOB_GAS_PRICE:
        raise errors.TxGasPriceTooLowError(f"blob fee cap {blob_fee_cap}, minimum needed {MIN_BLOB_GAS_PRICE}")
    hashes = tx.blob_hashes
    if not hashes:
        raise errors.BlobSidecarError("blobless blob transaction")
    if len(hashes) > MAX_BLOBS_PER_TX:
        raise errors.BlobSidecarError(
            f"too many blobs in transaction: have {len(hashes)}, permitted {MAX_BLOBS_PER_TX}"
        )
    cell_form = isinstance(sidecar, CellSidecar)
    if cell_form and sidecar.version != 1:
        raise errors.BlobSidecarError(f"unexpected sidecar version, want: 1, got: {sidecar.version}")
    per_blob = sidecar.custody.bit_count() if cell_form else 0
    if cell_form:
        blob_count = len(sidecar.cells) // per_blob if per_blob else 0
    else:
        blob_count = len(hashes) if blobless else len(sidecar.blobs)
    if cell_form and (blob_count == 0 or blob_count * per_blob != len(sidecar.cells)):
        raise errors.BlobSidecarError("blobless blob transaction")
    if blob_count != len(hashes):
        raise errors.BlobSidecarError(
            f"invalid number of {blob_count} blobs compared to {len(hashes)} blob hashes"
        )
    if len(sidecar.commitments) != len(hashes):
        raise errors.BlobSidecarError(
            f"invalid number of {len(sidecar.commitments)} blob commitments compared to {len(hashes)} blob hashes"
        )
    for i, (commitment, vhash) in enumerate(zip(sidecar.commitments, hashes, strict=True)):
        computed = kzg_to_versioned_hash(commitment)
        if computed != vhash:
            raise errors.BlobSidecarError(
                f"blob {i}: computed hash 0x{computed.hex()} mismatches transaction one 0x{vhash.hex()}"
            )
    want_proofs = len(hashes) * (CELL_PROOFS_PER_BLOB if sidecar.version == 1 else 1)
    if len(sidecar.proofs) != want_proofs:
        raise errors.BlobSidecarError(f"invalid number of {len(sidecar.proofs)} blob proofs expected {want_proofs}")
    if kzg is None or blobless:
        return
    if cell_form:
        kzg.verify_cells(sidecar.cells, sidecar.commitments, sidecar.proofs, sidecar.indices)
    elif sidecar.version == 1:
        kzg.verify_cell_proofs(sidecar.blobs, sidecar.commitments, sidecar.proofs)
    else:
        kzg.verify_blob_proofs(sidecar.blobs, sidecar.commitments, sidecar.proofs)


POOL_TX_TYPES = frozenset({LEGACY_TX_TYPE, ACCESS_LIST_TX_TYPE, DYNAMIC_FEE_TX_TYPE, SET_CODE_TX_TYPE})
BLOB_POOL_TX_TYPES = frozenset({BLOB_TX_TYPE})

__all__ = [
    "ValidationOptions",
    "validate_transaction",
    "validate_blob_tx",
    "POOL_TX_TYPES",
    "BLOB_POOL_TX_TYPES",
    "MIN_BLOB_GAS_PRICE",
]
