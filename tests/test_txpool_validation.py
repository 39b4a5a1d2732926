"""TxPool admission rules one by one (geth core/txpool/validation.go), and intrinsic gas.

Gas constants are geth's params/protocol_params.go; each rule is hit through the pool so
the error class and geth's message are what a peer's or a user's tx would get.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from txpool_support import (
    ADDRS,
    ALL_BLOCK_FORKS,
    CHAIN_ID,
    FEE_CAP,
    GAS_LIMIT,
    GWEI,
    KEYS,
    TO,
    blob_sidecar,
    blob_tx,
    dyn,
    legacy,
    make_chain,
    make_pool,
    set_code,
)

from ethnode.core.txpool import TxPool, TxPoolConfig, UnknownState, errors
from ethnode.core.txpool.config import BLOB_TX_MAX_SIZE, TX_MAX_SIZE
from ethnode.core.txpool.intrinsic import MAX_INIT_CODE_SIZE, MAX_TX_GAS, floor_data_gas, intrinsic_gas
from ethnode.core.txpool.kzg import (
    BUNDLED_SETUP,
    TRUSTED_SETUP_ENV,
    KzgVerifier,
    _json_setup_to_text,
    default_verifier,
    find_trusted_setup,
)
from ethnode.core.txpool.state import BALANCE_UNCHECKED, NONCE_UNCHECKED
from ethnode.core.types import AccessListTx, AccessTuple, BlobTxSidecar
from ethnode.core.types.transaction import BLOB_SIZE, kzg_to_versioned_hash
from ethnode.errors import EthnodeError


def _forks_but(*gone: str) -> tuple[str, ...]:
    return tuple(f for f in ALL_BLOCK_FORKS if f not in gone)


def _one(pool: TxPool, tx: object, *, local: bool = False, source: str = "pooled") -> Exception | None:
    return pool.add([tx], local=local, source=source)[0]  # type: ignore[list-item,arg-type]


def _rejects(pool: TxPool, tx: object, cls: type[Exception], text: str, **kwargs: object) -> None:
    err = _one(pool, tx, **kwargs)  # type: ignore[arg-type]
    assert isinstance(err, cls), f"want {cls.__name__}, got {err!r}"
    assert text in str(err), str(err)
    assert isinstance(err, EthnodeError)
    assert len(pool) == 0 or not pool.has(tx.hash)  # type: ignore[attr-defined]


# --- intrinsic gas (geth core.IntrinsicGas / FloorDataGas) ---------------------------------------


def test_intrinsic_gas_components() -> None:
    assert intrinsic_gas(b"") == 21000
    assert intrinsic_gas(b"", creation=True) == 53000
    assert intrinsic_gas(b"", creation=True, homestead=False) == 21000
    assert intrinsic_gas(b"\x00\x01") == 21000 + 4 + 16
    assert intrinsic_gas(b"\x00\x01", istanbul=False) == 21000 + 4 + 68
    # EIP-3860: 2 gas per 32-byte word of init code, from Shanghai only.
    assert intrinsic_gas(b"\x01" * 33, creation=True) == 53000 + 33 * 16 + 2 * 2
    assert intrinsic_gas(b"\x01" * 33, creation=True, shanghai=False) == 53000 + 33 * 16
    access = [AccessTuple(TO, [b"\x00" * 32, b"\x01" * 32]), AccessTuple(b"\x22" * 20, [])]
    assert intrinsic_gas(b"", access) == 21000 + 2 * 2400 + 2 * 1900
    assert intrinsic_gas(b"", (), 2) == 21000 + 2 * 25000  # EIP-7702 PER_EMPTY_ACCOUNT_COST
    # EIP-7623: 10 gas per token, a non-zero byte is 4 tokens.
    assert floor_data_gas(b"") == 21000
    assert floor_data_gas(b"\x01" * 10) == 21000 + 10 * 4 * 10
    assert floor_data_gas(b"\x00" * 10) == 21000 + 10 * 10


def test_intrinsic_gas_too_low() -> None:
    pool = make_pool()
    _rejects(pool, dyn(0, 0, gas=20999), errors.IntrinsicGasError,
             "intrinsic gas too low: gas 20999, minimum needed 21000")
    _rejects(pool, dyn(0, 0, gas=53000 + 1, to=None, data=b"\x01"), errors.IntrinsicGasError, "minimum needed 53018")
    access = [AccessTuple(TO, [b"\x00" * 32])]
    _rejects(pool, dyn(0, 0, gas=25000, access_list=access), errors.IntrinsicGasError, "minimum needed 25300")
    _rejects(pool, set_code(0, 0, auths=2, gas=70999), errors.IntrinsicGasError, "minimum needed 71000")
    assert _one(pool, dyn(0, 0, gas=25300, access_list=access)) is None
    assert _one(pool, set_code(1, 0, auths=2, gas=71000)) is None


def test_floor_data_gas_only_from_prague() -> None:
    data = b"\x01" * 1000  # intrinsic 37000, floor 61000
    _rejects(make_pool(), dyn(0, 0, gas=50000, data=data), errors.FloorDataGasError,
             "insufficient gas for floor data gas cost: gas 50000, minimum needed 61000")
    pre_prague = make_pool(make_chain(time_forks=("shanghaiTime", "cancunTime")))
    assert _one(pre_prague, dyn(0, 0, gas=50000, data=data)) is None


# --- size, gas limit, fees --------------------------------------------------------------------------


def test_size_limit_128_kib() -> None:
    pool = make_pool()
    big = dyn(0, 0, gas=2_000_000, data=bytes(TX_MAX_SIZE))
    _rejects(pool, big, errors.OversizedDataError, f"oversized data: transaction size {big.size}, limit 131072")
    fits = dyn(0, 0, gas=2_000_000, data=bytes(TX_MAX_SIZE - 200))
    assert fits.size <= TX_MAX_SIZE and _one(pool, fits) is None
    assert pool.get_metadata(fits.hash) == (2, fits.size)


def test_gas_limit_and_fee_rules() -> None:
    pool = make_pool()
    _rejects(pool, dyn(0, 0, gas=GAS_LIMIT + 1), errors.GasLimitError, "exceeds block gas limit")
    _rejects(pool, dyn(0, 0, tip=2 * GWEI, fee_cap=GWEI), errors.TipAboveFeeCapError,
             "max priority fee per gas higher than max fee per gas")
    _rejects(pool, dyn(0, 0, tip=0), errors.TxGasPriceTooLowError,
             "transaction gas price below minimum: gas tip cap 0, minimum needed 1")
    assert _one(pool, dyn(0, 0, gas=GAS_LIMIT)) is None


def test_price_limit_applies_to_remote_txs_only() -> None:
    pool = make_pool(price_limit=2 * GWEI)
    _rejects(pool, dyn(0, 0, tip=GWEI), errors.TxGasPriceTooLowError, "minimum needed 2000000000")
    assert _one(pool, dyn(0, 0, tip=GWEI), local=True) is None
    # The sender is local now: its next remote-delivered tx is exempt too (geth locals set).
    assert _one(pool, dyn(0, 1, tip=0)) is None
    assert pool.add_locals([dyn(1, 0, tip=0)]) == [None]


def test_fee_cap_below_base_fee_is_kept_as_geth_does() -> None:
    pool = make_pool()
    base = pool.pending_base_fee
    assert base == 875_000_000  # genesis 1 gwei, empty block: -12.5%
    cheap = dyn(0, 0, tip=1, fee_cap=base - 1)
    assert _one(pool, cheap) is None and pool.status(cheap.hash) == "pending"
    assert pool.pending() == {ADDRS[0]: [cheap]}
    assert pool.pending(base_fee=base) == {}  # what a block producer would be offered


def test_nonce_max() -> None:
    _rejects(make_pool(), dyn(0, 2**64 - 1), errors.NonceMaxError, "nonce has max value")


# --- senders, chain id, types ---------------------------------------------------------------------


def test_signature_and_chain_id() -> None:
    pool = make_pool()
    _rejects(pool, dyn(0, 0).replace(r=0), errors.InvalidSenderError, "invalid sender: invalid transaction v, r, s")
    _rejects(pool, dyn(0, 0, chain_id=1), errors.InvalidSenderError,
             f"invalid sender: invalid chain id for signer: have 1 want {CHAIN_ID}")
    _rejects(pool, legacy(0, 0, chain_id=1), errors.InvalidSenderError, "invalid chain id")
    assert _one(pool, legacy(0, 0)) is None
    assert _one(pool, legacy(1, 0, chain_id=None)) is None  # geth's pool takes unprotected txs (RPC refuses them)


def test_types_must_be_active_at_head() -> None:
    no_berlin = make_pool(make_chain(time_forks=(), block_forks=_forks_but("berlinBlock", "londonBlock")))
    access = AccessListTx(CHAIN_ID, 0, GWEI, 21000, TO, 0, b"", [], 0, 0, 0).sign(KEYS[0])
    _rejects(no_berlin, access, errors.TxTypeNotSupportedError, "type 1 rejected, pool not yet in Berlin")
    no_london = make_pool(make_chain(time_forks=(), block_forks=_forks_but("londonBlock")))
    assert _one(no_london, access) is None
    _rejects(no_london, dyn(0, 0), errors.TxTypeNotSupportedError, "type 2 rejected, pool not yet in London")
    no_cancun = make_pool(make_chain(time_forks=("shanghaiTime",)))
    _rejects(no_cancun, blob_tx(0, 0), errors.TxTypeNotSupportedError, "type 3 rejected, pool not yet in Cancun")
    no_prague = make_pool(make_chain(time_forks=("shanghaiTime", "cancunTime")))
    _rejects(no_prague, set_code(0, 0), errors.TxTypeNotSupportedError, "type 4 rejected, pool not yet in Prague")
    _rejects(make_pool(), set_code(0, 0, auths=0), errors.InvalidTransactionError,
             "set code tx must have at least one authorization tuple")


def test_initcode_size_and_osaka_gas_cap() -> None:
    pool = make_pool()
    big_init = dyn(0, 0, to=None, gas=5_000_000, data=b"\x01" * (MAX_INIT_CODE_SIZE + 1))
    _rejects(pool, big_init, errors.MaxInitCodeSizeExceededError, "max initcode size exceeded: code size 49153")
    assert _one(pool, dyn(0, 0, to=None, gas=5_000_000, data=b"\x01" * MAX_INIT_CODE_SIZE)) is None
    osaka = make_pool(make_chain(time_forks=("shanghaiTime", "cancunTime", "pragueTime", "osakaTime")))
    _rejects(osaka, dyn(0, 0, gas=MAX_TX_GAS + 1), errors.GasLimitTooHighError,
             f"transaction gas limit too high: cap: {MAX_TX_GAS}, tx: {MAX_TX_GAS + 1}")
    assert _one(make_pool(), dyn(0, 0, gas=MAX_TX_GAS + 1)) is None  # no cap before Osaka


# --- blob txs -----------------------------------------------------------------------------------------


def test_blob_txs_only_pooled_and_with_sidecar() -> None:
    pool = make_pool()
    btx = blob_tx(0, 0)
    _rejects(pool, btx, errors.BlobTxViaBroadcastError, "blob transaction delivered by broadcast", source="broadcast")
    _rejects(pool, btx.tx, errors.BlobTxViaBroadcastError, "by broadcast", source="broadcast")
    _rejects(pool, btx.tx, errors.BlobSidecarError, "missing sidecar in blob transaction")
    assert _one(pool, btx) is None
    assert pool.get(btx.hash) is btx  # served with its sidecar
    assert pool.get_metadata(btx.hash) == (3, len(btx.network_encoding()))
    assert _one(pool, dyn(1, 0), source="broadcast") is None


def test_blob_sidecar_consistency() -> None:
    pool = make_pool()
    # Before Osaka both forms pass: cell proofs (all geth 1.17 sends) and legacy blob proofs.
    assert _one(make_pool(), blob_tx(0, 0, sidecar=blob_sidecar(version=1))) is None
    assert _one(make_pool(), blob_tx(0, 0, sidecar=blob_sidecar(version=0))) is None
    _rejects(pool, blob_tx(0, 0, sidecar=blob_sidecar(version=2)), errors.BlobSidecarError,
             "unexpected sidecar version, want: 1, got: 2")
    _rejects(pool, blob_tx(0, 0, blob_fee_cap=0), errors.TxGasPriceTooLowError, "blob fee cap 0, minimum needed 1")
    other = kzg_to_versioned_hash(b"\x01" * 48)
    _rejects(pool, blob_tx(0, 0, hashes=[other]), errors.BlobSidecarError, "blob 0: computed hash")
    two = blob_sidecar(2)
    _rejects(pool, blob_tx(0, 0, sidecar=two, hashes=[kzg_to_versioned_hash(two.commitments[0])]),
             errors.BlobSidecarError, "invalid number of 2 blobs compared to 1 blob hashes")
    no_proofs = BlobTxSidecar(two.blobs, two.commitments, (), 0)
    _rejects(pool, blob_tx(0, 0, sidecar=no_proofs), errors.BlobSidecarError,
             "invalid number of 0 blob proofs expected 2")
    _rejects(pool, blob_tx(0, 0, sidecar=BlobTxSidecar((), (), ())), errors.BlobSidecarError,
             "blobless blob transaction")
    _rejects(pool, blob_tx(0, 0, sidecar=blob_sidecar(7)), errors.TxBlobLimitExceededError,
             "transaction blob limit exceeded: blob count 7, limit 6")
    oversized = blob_tx(0, 0, sidecar=blob_sidecar(6), data=bytes(300_000))
    _rejects(pool, oversized, errors.OversizedDataError, f"limit {BLOB_TX_MAX_SIZE}")
    assert _one(pool, blob_tx(0, 0, sidecar=blob_sidecar(6))) is None


def test_osaka_wants_cell_proofs() -> None:
    pool = make_pool(make_chain(time_forks=("shanghaiTime", "cancunTime", "pragueTime", "osakaTime")))
    _rejects(pool, blob_tx(0, 0), errors.BlobSidecarError, "unexpected sidecar version, want: 1, got: 0")
    assert _one(pool, blob_tx(0, 0, sidecar=blob_sidecar(version=1))) is None


@pytest.fixture(scope="module")
def kzg() -> KzgVerifier:
    verifier = default_verifier()
    if verifier is None:
        pytest.skip("KZG proofs unchecked here: ckzg or a trusted setup (Go module cache / "
                    "ETHNODE_KZG_TRUSTED_SETUP) is missing")
    return verifier


def _real_sidecar(kzg: KzgVerifier, *, cells: bool) -> BlobTxSidecar:
    ckzg, setup = kzg._ckzg, kzg._setup
    blob = bytearray(BLOB_SIZE)
    for i in range(0, BLOB_SIZE, 32):
        blob[i + 1 : i + 4] = (i // 32 + 7).to_bytes(3, "big")  # field elements below the modulus
    commitment = ckzg.blob_to_kzg_commitment(bytes(blob), setup)
    if cells:
        _, proofs = ckzg.compute_cells_and_kzg_proofs(bytes(blob), setup)
        return BlobTxSidecar((bytes(blob),), (commitment,), tuple(proofs), 1)
    proof = ckzg.compute_blob_kzg_proof(bytes(blob), commitment, setup)
    return BlobTxSidecar((bytes(blob),), (commitment,), (proof,), 0)


def test_kzg_blob_proofs(kzg: KzgVerifier) -> None:
    pool = TxPool(make_chain(), TxPoolConfig(), kzg=kzg)
    good = _real_sidecar(kzg, cells=False)
    bad = BlobTxSidecar(good.blobs, good.commitments, (good.commitments[0],), 0)  # a point, not the proof
    _rejects(pool, blob_tx(0, 0, sidecar=bad), errors.KZGVerificationError, "KZG verification error")
    assert _one(pool, blob_tx(0, 0, sidecar=good)) is None
    assert not any("KZG" in item for item in pool.unchecked)


def test_kzg_cell_proofs(kzg: KzgVerifier) -> None:
    chain = make_chain(time_forks=("shanghaiTime", "cancunTime", "pragueTime", "osakaTime"))
    pool = TxPool(chain, TxPoolConfig(), kzg=kzg)
    good = _real_sidecar(kzg, cells=True)
    bad = BlobTxSidecar(good.blobs, good.commitments, (good.proofs[1], good.proofs[0], *good.proofs[2:]), 1)
    _rejects(pool, blob_tx(0, 0, sidecar=bad), errors.KZGVerificationError, "KZG verification error")
    assert _one(pool, blob_tx(0, 0, sidecar=good)) is None


# --- what is not checked ----------------------------------------------------------------------------


def test_unchecked_lists_what_needs_state_or_kzg() -> None:
    pool = make_pool()
    assert isinstance(pool.state, UnknownState)
    assert NONCE_UNCHECKED in pool.unchecked and BALANCE_UNCHECKED in pool.unchecked
    assert any("KZG" in item for item in pool.unchecked)  # kzg=None in these tests

    class State:
        def nonce(self, address: bytes) -> int | None:
            return 0

        def balance(self, address: bytes) -> int | None:
            return 10**18

    with_state = TxPool(make_chain(), TxPoolConfig(), state=State(), kzg=None)
    assert NONCE_UNCHECKED not in with_state.unchecked and BALANCE_UNCHECKED not in with_state.unchecked


def test_errors_carry_geth_messages() -> None:
    assert str(errors.AlreadyKnownError()) == "already known"
    assert str(errors.ReplaceUnderpricedError()) == "replacement transaction underpriced"
    assert str(errors.UnderpricedError()) == "transaction underpriced"
    assert str(errors.TxPoolOverflowError()) == "txpool is full"
    assert str(errors.NonceTooLowError("next nonce 3, tx nonce 1")) == "nonce too low: next nonce 3, tx nonce 1"
    assert errors.NonceTooLowError.message == "nonce too low"
    assert issubclass(errors.TxPoolError, EthnodeError)


def test_config_sanitize_and_defaults() -> None:
    cfg = TxPoolConfig()
    assert (cfg.price_limit, cfg.price_bump, cfg.account_slots, cfg.global_slots, cfg.account_queue,
            cfg.global_queue, cfg.lifetime) == (1, 10, 16, 5120, 64, 1024, 10800.0)
    fixed = TxPoolConfig(price_bump=0, global_queue=0).sanitized()
    assert fixed.price_bump == 10 and fixed.global_queue == 1024
    assert FEE_CAP > GWEI  # the helpers' default fee cap clears the base fee



def test_trusted_setup_is_found_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(TRUSTED_SETUP_ENV, str(tmp_path / "missing.json"))
    assert find_trusted_setup() is None
    setup = tmp_path / "trusted_setup.json"
    setup.write_text("{}")
    monkeypatch.setenv(TRUSTED_SETUP_ENV, str(setup))
    assert find_trusted_setup() == setup
    monkeypatch.delenv(TRUSTED_SETUP_ENV)
    assert find_trusted_setup() == BUNDLED_SETUP


def test_bundled_trusted_setup_is_geths() -> None:
    """The shipped setup is geth v1.17.10's, converted: compared with the module's file where Go fetched it."""
    import gzip

    geth = Path.home() / "go/pkg/mod/github.com/ethereum/go-ethereum@v1.17.10/crypto/kzg4844/trusted_setup.json"
    text = gzip.decompress(BUNDLED_SETUP.read_bytes()).decode()
    assert text.startswith("4096\n65\n") and len(text.splitlines()) == 2 + 4096 + 65 + 4096
    if not geth.is_file():
        pytest.skip("no go-ethereum v1.17.10 module in the Go module cache to compare with")
    assert text == _json_setup_to_text(geth)
