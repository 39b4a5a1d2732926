"""Clique proof-of-authority (EIP-225), shaped like geth ``consensus/clique``.

``Clique`` is the engine (verification, snapshots, prepare/seal for the miner),
``Snapshot`` the signer set and votes at a block, ``CliqueAPI`` the ``clique_`` RPC
namespace, ``errors`` geth's rejections by name.
"""

from ethnode.consensus.clique.api import METHODS, CliqueAPI
from ethnode.consensus.clique.clique import (
    CHECKPOINT_INTERVAL,
    DIFF_IN_TURN,
    DIFF_NO_TURN,
    EPOCH_LENGTH,
    INMEMORY_SNAPSHOTS,
    WIGGLE_TIME,
    Clique,
    CliqueChainReader,
    calc_difficulty,
    checkpoint_signers,
)
from ethnode.consensus.clique.errors import (
    BY_GETH_NAME,
    CliqueError,
    NoSignerError,
    RecentlySignedError,
    SignedRecentlyWaitError,
    UnauthorizedSignerError,
    WaitTransactionsError,
)
from ethnode.consensus.clique.seal import EXTRA_SEAL, EXTRA_VANITY, SignFn, clique_rlp, ecrecover, seal_hash
from ethnode.consensus.clique.snapshot import NONCE_AUTH_VOTE, NONCE_DROP_VOTE, Snapshot, Tally, Vote

__all__ = [
    "Clique",
    "CliqueAPI",
    "CliqueChainReader",
    "METHODS",
    "Snapshot",
    "Vote",
    "Tally",
    "SignFn",
    "calc_difficulty",
    "checkpoint_signers",
    "clique_rlp",
    "seal_hash",
    "ecrecover",
    "CliqueError",
    "UnauthorizedSignerError",
    "RecentlySignedError",
    "SignedRecentlyWaitError",
    "WaitTransactionsError",
    "NoSignerError",
    "BY_GETH_NAME",
    "EPOCH_LENGTH",
    "CHECKPOINT_INTERVAL",
    "INMEMORY_SNAPSHOTS",
    "WIGGLE_TIME",
    "DIFF_IN_TURN",
    "DIFF_NO_TURN",
    "EXTRA_VANITY",
    "EXTRA_SEAL",
    "NONCE_AUTH_VOTE",
    "NONCE_DROP_VOTE",
]
