"""secp256k1 keys, signatures, ECDH and ECIES as devp2p uses them; keccak256."""

from ethnode.crypto.errors import CryptoError, ECIESDecryptError, InvalidKeyError, InvalidSignatureError
from ethnode.crypto.keccak import keccak256, keccak256_hasher
from ethnode.crypto.keys import (
    PrivateKey,
    PublicKey,
    load_private_key,
    recover,
    recover_public_key,
    save_private_key,
)

__all__ = [
    "CryptoError", "ECIESDecryptError", "InvalidKeyError", "InvalidSignatureError",
    "keccak256", "keccak256_hasher",
    "PrivateKey", "PublicKey", "load_private_key", "save_private_key", "recover", "recover_public_key",
]
