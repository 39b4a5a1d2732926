"""Clique's rejections, one class per geth ``consensus/clique`` error, with geth's messages.

Each class carries ``geth_name`` (the Go variable) so a test or a log can match what geth
would have said about the same header; the EIP-225 vectors name failures that way.
"""

from __future__ import annotations

from ethnode.consensus.engine import ConsensusError


class CliqueError(ConsensusError):
    """A header or seal the Clique rules reject."""

    geth_name = ""
    message = ""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class UnknownBlockError(CliqueError):
    """Signers asked for a block the chain does not have (geth errUnknownBlock)."""

    geth_name = "errUnknownBlock"
    message = "unknown block"


class InvalidCheckpointBeneficiaryError(CliqueError):
    """Checkpoint blocks cannot vote, so their coinbase must be zero (geth errInvalidCheckpointBeneficiary)."""

    geth_name = "errInvalidCheckpointBeneficiary"
    message = "beneficiary in checkpoint block non-zero"


class InvalidVoteError(CliqueError):
    """The nonce is a vote: only the two magic values exist (geth errInvalidVote)."""

    geth_name = "errInvalidVote"
    message = "vote nonce not 0x00..0 or 0xff..f"


class InvalidCheckpointVoteError(CliqueError):
    """Checkpoint blocks cannot vote (geth errInvalidCheckpointVote)."""

    geth_name = "errInvalidCheckpointVote"
    message = "vote nonce in checkpoint block non-zero"


class MissingVanityError(CliqueError):
    """Extra-data shorter than the vanity (geth errMissingVanity)."""

    geth_name = "errMissingVanity"
    message = "extra-data 32 byte vanity prefix missing"


class MissingSignatureError(CliqueError):
    """Extra-data too short to hold a seal (geth errMissingSignature)."""

    geth_name = "errMissingSignature"
    message = "extra-data 65 byte signature suffix missing"


class ExtraSignersError(CliqueError):
    """Only checkpoint blocks list signers; elsewhere they would be unauthenticated noise (geth errExtraSigners)."""

    geth_name = "errExtraSigners"
    message = "non-checkpoint block contains extra signer list"


class InvalidCheckpointSignersError(CliqueError):
    """A checkpoint signer list that is not a whole number of addresses (geth errInvalidCheckpointSigners)."""

    geth_name = "errInvalidCheckpointSigners"
    message = "invalid signer list on checkpoint block"


class MismatchingCheckpointSignersError(CliqueError):
    """A checkpoint listing signers other than the ones the votes produced (geth errMismatchingCheckpointSigners)."""

    geth_name = "errMismatchingCheckpointSigners"
    message = "mismatching signer list on checkpoint block"


class InvalidMixDigestError(CliqueError):
    """The mix digest is reserved (zero) (geth errInvalidMixDigest)."""

    geth_name = "errInvalidMixDigest"
    message = "non-zero mix digest"


class InvalidUncleHashError(CliqueError):
    """Uncles mean nothing in PoA (geth errInvalidUncleHash)."""

    geth_name = "errInvalidUncleHash"
    message = "non empty uncle hash"


class InvalidDifficultyError(CliqueError):
    """A difficulty other than 1 or 2 (geth errInvalidDifficulty)."""

    geth_name = "errInvalidDifficulty"
    message = "invalid difficulty"


class WrongDifficultyError(CliqueError):
    """Difficulty 2 claimed out of turn, or 1 in turn (geth errWrongDifficulty)."""

    geth_name = "errWrongDifficulty"
    message = "wrong difficulty"


class InvalidTimestampError(CliqueError):
    """A block sooner than the parent's time plus the period (geth errInvalidTimestamp)."""

    geth_name = "errInvalidTimestamp"
    message = "invalid timestamp"


class InvalidVotingChainError(CliqueError):
    """Headers applied to a snapshot out of order or with gaps (geth errInvalidVotingChain)."""

    geth_name = "errInvalidVotingChain"
    message = "invalid voting chain"


class UnauthorizedSignerError(CliqueError):
    """The seal's signer is not in the signer set (geth errUnauthorizedSigner)."""

    geth_name = "errUnauthorizedSigner"
    message = "unauthorized signer"


class RecentlySignedError(CliqueError):
    """The signer sealed one of the last len(signers)/2+1 blocks (geth errRecentlySigned).

    The rule that keeps a minority of signers from running the chain alone.
    """

    geth_name = "errRecentlySigned"
    message = "recently signed"


class SignedRecentlyWaitError(CliqueError):
    """Our own signer may not seal this block yet; the miner should wait for others' blocks.

    geth's Seal logs "Signed recently, must wait for others" and returns without a block.
    """

    message = "signed recently, must wait for others"


class WaitTransactionsError(CliqueError):
    """A period-0 chain seals only blocks with transactions (geth: empty blocks would spin)."""

    message = "sealing paused while waiting for transactions"


class NoSignerError(CliqueError):
    """``seal`` called before ``authorize`` gave the engine a key."""

    message = "no signer authorized: call authorize(address, sign_fn) first"


ALL_ERRORS: tuple[type[CliqueError], ...] = (
    UnknownBlockError,
    InvalidCheckpointBeneficiaryError,
    InvalidVoteError,
    InvalidCheckpointVoteError,
    MissingVanityError,
    MissingSignatureError,
    ExtraSignersError,
    InvalidCheckpointSignersError,
    MismatchingCheckpointSignersError,
    InvalidMixDigestError,
    InvalidUncleHashError,
    InvalidDifficultyError,
    WrongDifficultyError,
    InvalidTimestampError,
    InvalidVotingChainError,
    UnauthorizedSignerError,
    RecentlySignedError,
)
BY_GETH_NAME: dict[str, type[CliqueError]] = {cls.geth_name: cls for cls in ALL_ERRORS}

__all__ = [cls.__name__ for cls in ALL_ERRORS] + [
    "CliqueError",
    "SignedRecentlyWaitError",
    "WaitTransactionsError",
    "NoSignerError",
    "ALL_ERRORS",
    "BY_GETH_NAME",
]
