"""geth's names for why a tx cannot be applied, whichever engine said it.

revm and py-evm word their refusals differently ("nonce 3 too low, expected 5" against
"Invalid transaction nonce: Expected 5, but got 3"); geth's ``core/error.go`` names each
case once ("nonce too low"). ``geth_reason`` puts geth's name first and keeps the engine's
detail after it, so logs, RPC errors and the differential tests compare the same words.
"""

from __future__ import annotations

import re

# (pattern over the engine's text, geth's error text). First match wins; order matters where
# one engine's text contains another's words.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), geth)
    for p, geth in (
        # the block's gas pool (geth ErrGasLimitReached); py-evm's wording is ethnode's own
        (r"^gas limit reached|is more than blocks available gas|Transaction exceeds gas limit", "gas limit reached"),
        (r"^blob gas limit reached", "blob gas limit reached"),
        (r"nonce \d+ too low|Invalid transaction nonce: Expected (\d+), but got", "nonce"),  # resolved below
        (r"nonce \d+ too high", "nonce too high"),
        (r"nonce overflow|Nonce must be less than 2(\*\*|\^)64", "nonce has max value"),
        (r"lack of funds|cannot afford txn gas|enough balance to cover|insufficient funds for blob fee",
         "insufficient funds for gas * price + value"),
        (r"call gas cost .* exceeds the gas limit|intrinsic gas|Message.gas cannot be negative",
         "intrinsic gas too low"),
        (r"gas floor .* exceeds the gas limit|floor data gas", "insufficient gas for floor data gas cost"),
        (r"gas price is less than basefee|lower than block's base fee", "max fee per gas less than block base fee"),
        (r"priority fee is greater than max fee", "max priority fee per gas higher than max fee per gas"),
        (r"reject transactions from senders with deployed code", "sender not an eoa"),
        (r"create initcode size limit|initcode size", "max initcode size exceeded"),
        (r"blob gas price .*is greater than max fee per blob gas|at least the current blob base fee",
         "max fee per blob gas less than block blob gas fee"),
        (r"too many blobs", "blob transaction has too many blobs"),
        (r"empty blobs|must contain at least one blob", "blob transaction missing blob hashes"),
        (r"blob create transaction", "blob transaction of type create"),
        (r"empty authorization list|authorization_list cannot (be )?empty",
         "EIP-7702 transaction with empty auth list"),
        (r"tx gas limit .* is greater than the cap|gas limit .* greater than .*cap", "transaction gas limit too high"),
        (r"not supported", "transaction type not supported"),
        (r"invalid chain id for signer", "invalid chain id for signer"),
        (r"invalid chain id|missing chain id", "invalid chain id for signer"),
    )
)
_PYEVM_NONCE = re.compile(r"Invalid transaction nonce: Expected (\d+), but got (\d+)")


def geth_reason(text: str) -> str:
    """``"<geth's error>: <engine's text>"``, or the text alone when no rule knows it."""
    for pattern, geth in _RULES:
        if pattern.search(text):
            if geth == "nonce":
                m = _PYEVM_NONCE.search(text)
                low = "too low" in text if m is None else int(m.group(2)) < int(m.group(1))
                geth = "nonce too low" if low else "nonce too high"
            if text.startswith(geth):
                return text
            return f"{geth}: {text}"
    return text


__all__ = ["geth_reason"]
