"""secp256k1 keys as devp2p uses them: node ids, recoverable signatures, raw ECDH.

devp2p identifies a node by its 64-byte uncompressed public key without the 0x04 prefix
(the "node id"), signs 32-byte hashes with geth's 65-byte ``r || s || v`` layout (v in
{0, 1}), and feeds the bare x coordinate of an ECDH point into its KDFs. coincurve's own
``ecdh()`` hashes the point with SHA-256 first, which no devp2p peer would agree with,
so ECDH here is a point multiplication.

Keys are thin wrappers over coincurve objects so that every bad input surfaces as an
``InvalidKeyError``/``InvalidSignatureError`` rather than a library ``ValueError``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import coincurve
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from ethnode.crypto.errors import InvalidKeyError, InvalidSignatureError

PRIVATE_KEY_LENGTH = 32
NODE_ID_LENGTH = 64  # uncompressed public key without its 0x04 prefix (geth enode.ID source)
COMPRESSED_PUBKEY_LENGTH = 33
HASH_LENGTH = 32
SIGNATURE_LENGTH = 65  # r || s || v, geth crypto.SignatureLength
RECOVERY_ID_MAX = 1  # geth crypto.Sign produces v in {0, 1}; 2 and 3 never occur in practice
NODEKEY_FILE_MODE = 0o600  # geth crypto.SaveECDSA writes the nodekey with 0600

_UNCOMPRESSED_PREFIX = b"\x04"


def _check_hash(msg_hash: bytes) -> None:
    if len(msg_hash) != HASH_LENGTH:
        raise InvalidSignatureError(f"can only sign a {HASH_LENGTH}-byte hash, got {len(msg_hash)} bytes")


class PublicKey:
    """A validated secp256k1 point; ``node_id`` is its devp2p identity."""

    __slots__ = ("_key", "node_id")

    def __init__(self, node_id: bytes) -> None:
        node_id = bytes(node_id)
        if len(node_id) != NODE_ID_LENGTH:
            raise InvalidKeyError(f"a node id is {NODE_ID_LENGTH} bytes, got {len(node_id)}")
        try:
            self._key = coincurve.PublicKey(_UNCOMPRESSED_PREFIX + node_id)
        except (ValueError, TypeError) as exc:
            raise InvalidKeyError("public key is not a point on secp256k1") from exc
        self.node_id = node_id

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        """Any of the three encodings peers use: 64-byte node id, 65-byte 0x04 form, 33-byte compressed."""
        data = bytes(data)
        if len(data) == NODE_ID_LENGTH:
            return cls(data)
        if len(data) not in (NODE_ID_LENGTH + 1, COMPRESSED_PUBKEY_LENGTH):
            raise InvalidKeyError(f"public key of unexpected length {len(data)}")
        try:
            key = coincurve.PublicKey(data)
        except (ValueError, TypeError) as exc:
            raise InvalidKeyError("public key is not a point on secp256k1") from exc
        return cls._wrap(key)

    @classmethod
    def _wrap(cls, key: coincurve.PublicKey) -> PublicKey:
        self = cls.__new__(cls)
        self._key = key
        self.node_id = key.format(compressed=False)[1:]
        return self

    def to_compressed(self) -> bytes:
        """The 33-byte form, which ENR's "secp256k1" entry carries."""
        return self._key.format(compressed=True)

    def verify(self, msg_hash: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (64-byte r||s, or 65 with v ignored) signs ``msg_hash``.

        Like geth's crypto.VerifySignature, a high-s (malleable) signature does not verify.
        """
        _check_hash(msg_hash)
        if len(signature) not in (SIGNATURE_LENGTH - 1, SIGNATURE_LENGTH):
            return False
        try:
            der = cdata_to_der(deserialize_compact(bytes(signature[:64])))
            return self._key.verify(der, bytes(msg_hash), hasher=None)
        except (ValueError, TypeError):
            return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.node_id == self.node_id

    def __hash__(self) -> int:
        return hash(self.node_id)

    def __repr__(self) -> str:
        return f"PublicKey({self.node_id.hex()[:16]}…)"


class PrivateKey:
    """A secp256k1 secret scalar; its repr never shows the secret."""

    __slots__ = ("_key", "_public")

    def __init__(self, secret: bytes) -> None:
        secret = bytes(secret)
        # coincurve left-pads short secrets silently; a truncated key file must not pass.
        if len(secret) != PRIVATE_KEY_LENGTH:
            raise InvalidKeyError(f"a private key is {PRIVATE_KEY_LENGTH} bytes, got {len(secret)}")
        try:
            self._key = coincurve.PrivateKey(secret)
        except (ValueError, TypeError) as exc:
            raise InvalidKeyError("private key is zero or not below the secp256k1 group order") from exc
        self._public: PublicKey | None = None

    @classmethod
    def generate(cls) -> PrivateKey:
        """A fresh key from the OS CSPRNG (coincurve draws from os.urandom)."""
        self = cls.__new__(cls)
        self._key = coincurve.PrivateKey()
        self._public = None
        return self

    @classmethod
    def from_hex(cls, text: str) -> PrivateKey:
        """From 64 hex digits (optional 0x and surrounding whitespace), as in geth's nodekey."""
        text = text.strip()
        if text[:2] in ("0x", "0X"):
            text = text[2:]
        if len(text) != 2 * PRIVATE_KEY_LENGTH:
            raise InvalidKeyError(f"a private key is {2 * PRIVATE_KEY_LENGTH} hex digits, got {len(text)}")
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            raise InvalidKeyError("private key is not hexadecimal") from None
        return cls(secret)

    @property
    def secret(self) -> bytes:
        return self._key.secret

    def to_hex(self) -> str:
        return self._key.secret.hex()

    @property
    def public_key(self) -> PublicKey:
        if self._public is None:
            self._public = PublicKey._wrap(self._key.public_key)
        return self._public

    @property
    def node_id(self) -> bytes:
        return self.public_key.node_id

    def sign(self, msg_hash: bytes) -> bytes:
        """geth's crypto.Sign: 65 bytes r || s || v over a 32-byte hash, low-s, v in {0, 1}."""
        _check_hash(msg_hash)
        return self._key.sign_recoverable(bytes(msg_hash), hasher=None)

    def ecdh(self, remote: PublicKey) -> bytes:
        """The 32-byte x coordinate of ``self * remote``, the raw secret devp2p KDFs expect."""
        return remote._key.multiply(self._key.secret).format(compressed=False)[1:33]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrivateKey) and other._key.secret == self._key.secret

    def __hash__(self) -> int:
        return hash(self.node_id)

    def __repr__(self) -> str:
        return f"PrivateKey(node_id={self.node_id.hex()[:16]}…)"


def recover_public_key(msg_hash: bytes, signature: bytes) -> PublicKey:
    """The key that made a 65-byte ``r || s || v`` signature over ``msg_hash`` (geth crypto.SigToPub)."""
    _check_hash(msg_hash)
    if len(signature) != SIGNATURE_LENGTH:
        raise InvalidSignatureError(f"a signature is {SIGNATURE_LENGTH} bytes, got {len(signature)}")
    if signature[64] > RECOVERY_ID_MAX:
        raise InvalidSignatureError(f"invalid recovery id {signature[64]}")
    try:
        key = coincurve.PublicKey.from_signature_and_message(bytes(signature), bytes(msg_hash), hasher=None)
    except (ValueError, TypeError) as exc:
        raise InvalidSignatureError("no public key can be recovered from the signature") from exc
    return PublicKey._wrap(key)


def recover(msg_hash: bytes, signature: bytes) -> bytes:
    """The 64-byte node id of the signer (geth crypto.Ecrecover without the 0x04 prefix)."""
    return recover_public_key(msg_hash, signature).node_id


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Read a geth-style nodekey file: 64 hex digits, a trailing newline tolerated.

    OSError (missing or unreadable file) is left to the caller, which may choose to
    generate a key as geth does on first start.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidKeyError(f"{os.fspath(path)}: key file is not ASCII hex") from None
    try:
        return PrivateKey.from_hex(text)
    except InvalidKeyError as exc:
        raise InvalidKeyError(f"{os.fspath(path)}: {exc}") from None


def save_private_key(key: PrivateKey, path: str | os.PathLike[str]) -> None:
    """Write ``key`` as 64 hex digits with mode 0600, atomically.

    Written to a temporary file in the same directory and renamed, so a crash never
    leaves a truncated key behind and the file is never readable by others, even briefly.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, NODEKEY_FILE_MODE)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.to_hex())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


__all__ = [
    "PrivateKey", "PublicKey", "recover", "recover_public_key", "load_private_key", "save_private_key",
    "PRIVATE_KEY_LENGTH", "NODE_ID_LENGTH", "SIGNATURE_LENGTH", "HASH_LENGTH",
]
