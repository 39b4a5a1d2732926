"""Crypto error classes.

coincurve and ``cryptography`` signal bad input with bare ``ValueError``/``TypeError``;
callers that handle untrusted peer data should not have to know which library sits
underneath, so every such failure is re-raised as one of these.
"""

from ethnode.errors import EthnodeError


class CryptoError(EthnodeError):
    """Base of every crypto failure caused by bad input."""


class InvalidKeyError(CryptoError):
    """A private key, public key or key file that is not a valid secp256k1 key."""


class InvalidSignatureError(CryptoError):
    """A signature with the wrong length, an invalid recovery id or no recoverable key."""


class ECIESDecryptError(CryptoError):
    """An ECIES message that cannot be opened: malformed, wrong key or a bad MAC."""


__all__ = ["CryptoError", "InvalidKeyError", "InvalidSignatureError", "ECIESDecryptError"]
