"""secp256k1 keys as devp2p uses them: node ids, recoverable signatures, raw ECDH.

devp2p identifies a node by its 64-byte uncompressed public key without the 0x04 prefix
(the "node id"), signs 32-byte hashes with geth's 65-byte ``r || s || v`` layout (v in
{0, 1}), and feeds the bare x coordinate of an ECDH point into its KDFs. coincurve's own
``ecdh()`` hashes the point with SHA-256 first, which no devp2p peer would agree with,
so ECDH here is a point multiplication.

Keys call coincurve's bundled libsecp256k1 through its cffi module directly, so that
every bad input surfaces as an ``InvalidKeyError``/``InvalidSignatureError`` rather than a
library ``ValueError``, and so that no EC work is done that nobody asked for: a
``coincurve.PrivateKey`` derives both its public key and its x-only key on creation (two
fixed-base multiplications, ~30 µs here), while an RLPx handshake never needs the public
key of the initiator's ephemeral key at all. Here a private key is its 32-byte secret and
its public key is derived on first use. The operations are the ones coincurve runs
(``ec_pubkey_tweak_mul`` for ECDH, RFC 6979 ``ecdsa_sign_recoverable``, ``ecdsa_recover``),
so the bytes are the same; only the Python objects around them are gone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from ethnode.crypto.errors import InvalidKeyError, InvalidSignatureError

PRIVATE_KEY_LENGTH = 32
NODE_ID_LENGTH = 64  # uncompressed public key without its 0x04 prefix (geth enode.ID source)
COMPRESSED_PUBKEY_LENGTH = 33
HASH_LENGTH = 32
SIGNATURE_LENGTH = 65  # r || s || v, geth crypto.SignatureLength
RECOVERY_ID_MAX = 1  # geth crypto.Sign produces v in {0, 1}; 2 and 3 never occur in practice
NODEKEY_FILE_MODE = 0o600  # geth crypto.SaveECDSA writes the nodekey with 0600

_UNCOMPRESSED_PREFIX = b"\x04"
_UNCOMPRESSED_LENGTH = 1 + NODE_ID_LENGTH
_CTX = GLOBAL_CONTEXT.ctx  # coincurve's shared, randomized libsecp256k1 context
_EC_UNCOMPRESSED = lib.SECP256K1_EC_UNCOMPRESSED
_EC_COMPRESSED = lib.SECP256K1_EC_COMPRESSED


def _check_hash(msg_hash: bytes) -> None:
    if len(msg_hash) != HASH_LENGTH:
        raise InvalidSignatureError(f"can only sign a {HASH_LENGTH}-byte hash, got {len(msg_hash)} bytes")


def _parse_point(encoded: bytes):  # type: ignore[no-untyped-def]
    """A ``secp256k1_pubkey`` from a 33- or 65-byte SEC1 encoding, or None if not on the curve."""
    point = ffi.new("secp256k1_pubkey *")
    return point if lib.secp256k1_ec_pubkey_parse(_CTX, point, encoded, len(encoded)) else None


def _serialize(point, flags: int, length: int) -> bytes:  # type: ignore[no-untyped-def]
    out = ffi.new(f"unsigned char[{length}]")
    out_len = ffi.new("size_t *", length)
    lib.secp256k1_ec_pubkey_serialize(_CTX, out, out_len, point, flags)
    return bytes(ffi.buffer(out, length))


class PublicKey:
    """A validated secp256k1 point; ``node_id`` is its devp2p identity."""

    __slots__ = ("_encoded", "node_id")

    def __init__(self, node_id: bytes) -> None:
        node_id = bytes(node_id)
        if len(node_id) != NODE_ID_LENGTH:
            raise InvalidKeyError(f"a node id is {NODE_ID_LENGTH} bytes, got {len(node_id)}")
        encoded = _UNCOMPRESSED_PREFIX + node_id
        if _parse_point(encoded) is None:
            raise InvalidKeyError("public key is not a point on secp256k1")
        self._encoded = encoded  # 0x04 || node id, checked to be on the curve
        self.node_id = node_id

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        """Any of the three encodings peers use: 64-byte node id, 65-byte 0x04 form, 33-byte compressed."""
        data = bytes(data)
        if len(data) == NODE_ID_LENGTH:
            return cls(data)
        if len(data) not in (NODE_ID_LENGTH + 1, COMPRESSED_PUBKEY_LENGTH):
            raise InvalidKeyError(f"public key of unexpected length {len(data)}")
        point = _parse_point(data)
        if point is None:
            raise InvalidKeyError("public key is not a point on secp256k1")
        return cls._wrap(point)

    @classmethod
    def _wrap(cls, point) -> PublicKey:  # type: ignore[no-untyped-def]
        """From a ``secp256k1_pubkey`` libsecp256k1 produced or parsed (so a valid point)."""
        self = cls.__new__(cls)
        self._encoded = _serialize(point, _EC_UNCOMPRESSED, _UNCOMPRESSED_LENGTH)
        self.node_id = self._encoded[1:]
        return self

    def _point(self):  # type: ignore[no-untyped-def]
        """A fresh ``secp256k1_pubkey`` (libsecp256k1 operations overwrite theirs in place)."""
        return _parse_point(self._encoded)

    def to_compressed(self) -> bytes:
        """The 33-byte form, which ENR's "secp256k1" entry carries."""
        return _serialize(self._point(), _EC_COMPRESSED, COMPRESSED_PUBKEY_LENGTH)

    def verify(self, msg_hash: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (64-byte r||s, or 65 with v ignored) signs ``msg_hash``.

        Like geth's crypto.VerifySignature, a high-s (malleable) signature does not verify
        (libsecp256k1's ``ecdsa_verify`` accepts lower-s signatures only).
        """
        _check_hash(msg_hash)
        if len(signature) not in (SIGNATURE_LENGTH - 1, SIGNATURE_LENGTH):
            return False
        sig = ffi.new("secp256k1_ecdsa_signature *")
        if not lib.secp256k1_ecdsa_signature_parse_compact(_CTX, sig, bytes(signature[:64])):
            return False  # r or s not below the group order
        return bool(lib.secp256k1_ecdsa_verify(_CTX, sig, bytes(msg_hash), self._point()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.node_id == self.node_id

    def __hash__(self) -> int:
        return hash(self.node_id)

    def __repr__(self) -> str:
        return f"PublicKey({self.node_id.hex()[:16]}…)"


class PrivateKey:
    """A secp256k1 secret scalar; its repr never shows the secret. The public key is derived lazily."""

    __slots__ = ("_secret", "_public")

    def __init__(self, secret: bytes) -> None:
        secret = bytes(secret)
        # coincurve left-pads short secrets silently; a truncated key file must not pass.
        if len(secret) != PRIVATE_KEY_LENGTH:
            raise InvalidKeyError(f"a private key is {PRIVATE_KEY_LENGTH} bytes, got {len(secret)}")
        if not lib.secp256k1_ec_seckey_verify(_CTX, secret):
            raise InvalidKeyError("private key is zero or not below the secp256k1 group order")
        self._secret = secret
        self._public: PublicKey | None = None

    @classmethod
    def generate(cls) -> PrivateKey:
        """A fresh key from the OS CSPRNG (os.urandom, redrawn in the ~2^-128 case it is out of range)."""
        secret = os.urandom(PRIVATE_KEY_LENGTH)
        while not lib.secp256k1_ec_seckey_verify(_CTX, secret):  # pragma: no cover - p ≈ 2^-128
            secret = os.urandom(PRIVATE_KEY_LENGTH)
        self = cls.__new__(cls)
        self._secret = secret
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
        return self._secret

    def to_hex(self) -> str:
        return self._secret.hex()

    @property
    def public_key(self) -> PublicKey:
        if self._public is None:
            point = ffi.new("secp256k1_pubkey *")
            if not lib.secp256k1_ec_pubkey_create(_CTX, point, self._secret):  # pragma: no cover - checked secret
                raise InvalidKeyError("private key is zero or not below the secp256k1 group order")
            self._public = PublicKey._wrap(point)
        return self._public

    @property
    def node_id(self) -> bytes:
        return self.public_key.node_id

    def sign(self, msg_hash: bytes) -> bytes:
        """geth's crypto.Sign: 65 bytes r || s || v over a 32-byte hash, low-s, v in {0, 1}.

        Deterministic (RFC 6979 nonces, libsecp256k1's default), as coincurve and geth sign.
        """
        _check_hash(msg_hash)
        sig = ffi.new("secp256k1_ecdsa_recoverable_signature *")
        if not lib.secp256k1_ecdsa_sign_recoverable(_CTX, sig, bytes(msg_hash), self._secret, ffi.NULL, ffi.NULL):
            raise InvalidSignatureError("signing failed")  # pragma: no cover - only for an invalid secret
        out = ffi.new("unsigned char[64]")
        recid = ffi.new("int *")
        lib.secp256k1_ecdsa_recoverable_signature_serialize_compact(_CTX, out, recid, sig)
        return bytes(ffi.buffer(out, 64)) + bytes((recid[0],))

    def ecdh(self, remote: PublicKey) -> bytes:
        """The 32-byte x coordinate of ``self * remote``, the raw secret devp2p KDFs expect.

        One point multiplication (``ec_pubkey_tweak_mul``, as coincurve's ``multiply``)
        and a serialization; no object is built for the product.
        """
        point = remote._point()
        if not lib.secp256k1_ec_pubkey_tweak_mul(_CTX, point, self._secret):  # pragma: no cover - checked secret
            raise InvalidKeyError("ECDH with an invalid private key")
        return _serialize(point, _EC_UNCOMPRESSED, _UNCOMPRESSED_LENGTH)[1:33]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrivateKey) and other._secret == self._secret

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
    sig = ffi.new("secp256k1_ecdsa_recoverable_signature *")
    point = ffi.new("secp256k1_pubkey *")
    if not (
        lib.secp256k1_ecdsa_recoverable_signature_parse_compact(_CTX, sig, bytes(signature[:64]), signature[64])
        and lib.secp256k1_ecdsa_recover(_CTX, point, sig, bytes(msg_hash))
    ):
        raise InvalidSignatureError("no public key can be recovered from the signature")
    return PublicKey._wrap(point)


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
