"""KZG proof checks for blob sidecars, through the optional ``ckzg`` package (c-kzg-4844).

Without proof checks a peer could fill our pool (and, relayed, other pools) with blobs
that do not match their commitments; geth verifies every proof before pooling. ckzg
needs the Ethereum KZG ceremony's trusted setup, which its wheel does not ship, so ethnode
ships it as geth embeds it: ``trusted_setup.txt.gz`` beside this module is geth v1.17.10's
``crypto/kzg4844/trusted_setup.json`` in c-kzg's text format. ``$ETHNODE_KZG_TRUSTED_SETUP``
(geth's JSON or c-kzg's text format) replaces it. Without ckzg, ``default_verifier`` returns
None and the pool reports KZG proofs as unchecked (see ``TxPool.unchecked``).

Loading the setup takes about 2 s: a service may call ``default_verifier()`` at start-up
(in a thread) so the first blob tx does not stall the event loop.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ethnode.core.txpool.errors import KZGVerificationError

log = logging.getLogger("ethnode.core.txpool")

TRUSTED_SETUP_ENV = "ETHNODE_KZG_TRUSTED_SETUP"
BUNDLED_SETUP = Path(__file__).with_name("trusted_setup.txt.gz")
CELLS_PER_EXT_BLOB = 128  # EIP-7594: a blob extends to 128 cells, each with its own proof

_lock = threading.Lock()
_default: KzgVerifier | None = None
_default_loaded = False


class KzgVerifier:
    """Verifies blob proofs (sidecar version 0) and cell proofs (version 1, EIP-7594)."""

    def __init__(self, setup_path: str | os.PathLike[str]) -> None:
        import ckzg  # noqa: PLC0415 - optional dependency

        self._ckzg: Any = ckzg
        path = Path(setup_path)
        if path.suffix in (".json", ".gz"):  # ckzg reads only its text format, from a file
            with tempfile.TemporaryDirectory() as tmp:
                text = Path(tmp) / "trusted_setup.txt"
                if path.suffix == ".gz":
                    text.write_bytes(gzip.decompress(path.read_bytes()))
                else:
                    text.write_text(_json_setup_to_text(path))
                self._setup = ckzg.load_trusted_setup(str(text), 0)
        else:
            self._setup = ckzg.load_trusted_setup(str(path), 0)
        self.source = str(path)

    def verify_blob_proofs(self, blobs: Sequence[bytes], commitments: Sequence[bytes], proofs: Sequence[bytes]) -> None:
        """One proof per blob (geth ``kzg4844.VerifyBlobProof``); raises ``KZGVerificationError``."""
        for i, (blob, commitment, proof) in enumerate(zip(blobs, commitments, proofs, strict=True)):
            try:
                ok = self._ckzg.verify_blob_kzg_proof(blob, commitment, proof, self._setup)
            except (RuntimeError, ValueError) as exc:
                raise KZGVerificationError(f"invalid blob proof: blob {i}: {exc}") from None
            if not ok:
                raise KZGVerificationError(f"invalid blob proof: blob {i}")

    def verify_cell_proofs(self, blobs: Sequence[bytes], commitments: Sequence[bytes], proofs: Sequence[bytes]) -> None:
        """128 cell proofs per blob (geth ``kzg4844.VerifyCellProofs``)."""
        cells: list[bytes] = []
        cell_commitments: list[bytes] = []
        indices: list[int] = []
        try:
            for blob, commitment in zip(blobs, commitments, strict=True):
                cells.extend(self._ckzg.compute_cells(blob, self._setup))
                cell_commitments.extend([commitment] * CELLS_PER_EXT_BLOB)
                indices.extend(range(CELLS_PER_EXT_BLOB))
            ok = self._ckzg.verify_cell_kzg_proof_batch(cell_commitments, indices, cells, list(proofs), self._setup)
        except (RuntimeError, ValueError) as exc:
            raise KZGVerificationError(str(exc)) from None
        if not ok:
            raise KZGVerificationError("invalid cell proofs")


    def verify_cells(
        self, cells: Sequence[bytes], commitments: Sequence[bytes], proofs: Sequence[bytes], indices: Sequence[int]
    ) -> None:
        """Cells of ``indices`` of every blob, blob-major, against all of the tx's cell proofs
        (geth ``validateCellsOsaka``: the proofs of the indices picked out, one batch check)."""
        per_blob = len(indices)
        if per_blob == 0 or len(cells) != per_blob * len(commitments):
            raise KZGVerificationError(f"{len(cells)} cells for {len(commitments)} blobs of {per_blob} indices")
        if len(proofs) != CELLS_PER_EXT_BLOB * len(commitments):
            raise KZGVerificationError(f"{len(proofs)} cell proofs for {len(commitments)} blobs")
        cell_commitments: list[bytes] = []
        cell_indices: list[int] = []
        cell_proofs: list[bytes] = []
        for b, commitment in enumerate(commitments):
            cell_commitments.extend([commitment] * per_blob)
            cell_indices.extend(indices)
            cell_proofs.extend(proofs[b * CELLS_PER_EXT_BLOB + i] for i in indices)
        try:
            ok = self._ckzg.verify_cell_kzg_proof_batch(cell_commitments, cell_indices, list(cells), cell_proofs,
                                                        self._setup)
        except (RuntimeError, ValueError) as exc:
            raise KZGVerificationError(f"invalid cells: {exc}") from None
        if not ok:
            raise KZGVerificationError("invalid cell proofs")

    def compute_cells(self, blob: bytes) -> list[bytes]:
        """The blob's 128 extended cells (what GetCells serves from a whole blob)."""
        return list(self._ckzg.compute_cells(blob, self._setup))

    def recover_blob(self, cells: Sequence[bytes], indices: Sequence[int]) -> bytes:
        """The blob from at least 64 of its cells (geth ``kzg4844.RecoverBlobs``): the first 64
        extended cells are the blob itself, anything else is recovered first."""
        if list(indices[:64]) == list(range(64)):
            return b"".join(cells[:64])
        try:
            full, _ = self._ckzg.recover_cells_and_kzg_proofs(list(indices), list(cells), self._setup)
        except (RuntimeError, ValueError) as exc:
            raise KZGVerificationError(f"cannot recover blob: {exc}") from None
        return b"".join(full[:64])


def _json_setup_to_text(path: Path) -> str:
    """geth's JSON setup in c-kzg's text layout: counts, G1 Lagrange, G2 monomial, G1 monomial."""
    data = json.loads(path.read_text())
    g1_lagrange, g2, g1_monomial = data["g1_lagrange"], data["g2_monomial"], data["g1_monomial"]
    lines = [str(len(g1_lagrange)), str(len(g2))]
    lines += [p.removeprefix("0x") for p in (*g1_lagrange, *g2, *g1_monomial)]
    return "\n".join(lines) + "\n"


def find_trusted_setup() -> Path | None:
    """The setup named by the environment (None if that file is missing), else the bundled one."""
    env = os.environ.get(TRUSTED_SETUP_ENV)
    if env:
        return Path(env) if Path(env).is_file() else None
    return BUNDLED_SETUP if BUNDLED_SETUP.is_file() else None


def default_verifier() -> KzgVerifier | None:
    """The shared verifier, loaded once; None when ckzg or a trusted setup is missing."""
    global _default, _default_loaded
    with _lock:
        if not _default_loaded:
            _default_loaded = True
            try:
                import ckzg  # noqa: F401, PLC0415
            except ImportError:
                log.warning("KZG proofs of blob transactions are not checked: the ckzg package is not installed")
                return None
            path = find_trusted_setup()
            if path is None:
                log.warning("KZG proofs of blob transactions are not checked: no trusted setup found "
                            "(set %s)", TRUSTED_SETUP_ENV)
                return None
            try:
                _default = KzgVerifier(path)
            except (OSError, RuntimeError, ValueError, KeyError) as exc:
                log.warning("KZG proofs of blob transactions are not checked: cannot load %s: %s", path, exc)
        return _default


__all__ = ["BUNDLED_SETUP", "KzgVerifier", "default_verifier", "find_trusted_setup", "TRUSTED_SETUP_ENV"]
