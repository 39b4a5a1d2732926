"""HS256 JWT for the Engine API, with geth's rules (node/jwt_handler.go, cmd/utils obtainJWTSecret).

The consensus client and the node share a 32-byte secret in a hex file. Every request
carries ``Authorization: Bearer <jwt>`` signed with it; only HS256 is accepted, the
``iat`` claim is required and must be within 60 s of now (either way: clocks drift), and
an ``exp`` claim, if present, must not have passed. Anything else is a 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from ethnode import strictjson
from ethnode.errors import EthnodeError

log = logging.getLogger("ethnode.rpc")

JWT_EXPIRY_TIMEOUT = 60  # seconds either side of now for ``iat``; geth jwtExpiryTimeout
SECRET_LENGTH = 32  # bytes; geth refuses any other length
JWT_SECRET_FILE = "jwtsecret"  # under the instance dir, geth datadirJWTKey


class JWTError(EthnodeError):
    """A request's token is missing or unacceptable (the reply is 401 with this message)."""


class JWTSecretError(EthnodeError):
    """The secret file cannot be read, or does not hold 32 bytes of hex."""


def parse_secret(text: str) -> bytes:
    """32 bytes from hex text (``0x`` optional, surrounding whitespace ignored), as geth's FromHex."""
    text = text.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise JWTSecretError("invalid JWT secret: not hex") from None
    if len(secret) != SECRET_LENGTH:
        raise JWTSecretError(f"invalid JWT secret: {len(secret)} bytes, want {SECRET_LENGTH}")
    return secret


def load_or_create_secret(path: Path) -> bytes:
    """The secret in ``path``; a new random one written there (mode 0600) if the file is absent."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        secret = os.urandom(SECRET_LENGTH)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("0x" + secret.hex())
        log.info("Generated JWT secret path=%s", path)
        return secret
    except (OSError, UnicodeDecodeError) as exc:
        raise JWTSecretError(f"JWT secret {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return parse_secret(text)
    except JWTSecretError as exc:
        raise JWTSecretError(f"{path}: {exc}") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in _B64URL for c in text):
        raise JWTError("token is malformed: bad base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JWTError("token is malformed: bad base64url") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def make_token(
    secret: bytes, iat: float | None = None, *, alg: str = "HS256", claims: dict[str, Any] | None = None
) -> str:
    """A signed token (for clients and tests); ``alg`` other than HS256 is only for tests of refusal."""
    body = {"iat": int(time.time() if iat is None else iat)}
    if claims:
        body.update(claims)
    head = _b64encode(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
    signing_input = f"{head}.{payload}".encode()
    sig = hmac.new(secret, signing_input, hashlib.sha256).digest() if alg == "HS256" else b"\x00" * 32
    return f"{head}.{payload}.{_b64encode(sig)}"


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        obj = strictjson.loads(_b64decode(part))
    except (ValueError, UnicodeDecodeError):
        raise JWTError(f"token is malformed: {what} is not JSON") from None
    if not isinstance(obj, dict):
        raise JWTError(f"token is malformed: {what} is not a JSON object")
    return obj


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # A float that is not finite (1e400 parses to inf) would compare false both ways in
    # the 60 s window; Go's decoder refuses it, so a token carrying one is malformed.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise JWTError(f"token is malformed: {name} is not a number")
    return float(value)


def verify_authorization(header: str | None, secret: bytes, now: float | None = None) -> None:
    """Check an ``Authorization`` header value; raise ``JWTError`` with geth's message if refused."""
    token = ""
    if header is not None and len(header) >= 7 and header[:7].lower() == "bearer ":
        token = header[7:]
    if not token:
        raise JWTError("missing token")
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError("token contains an invalid number of segments")
    head = _json_object(parts[0], "header")
    alg = head.get("alg")
    if alg != "HS256":  # geth: jwt.WithValidMethods([]string{"HS256"})
        raise JWTError(f"signing method {alg} is invalid")
    expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64decode(parts[2])):
        raise JWTError("signature is invalid")
    claims = _json_object(parts[1], "claims")
    now = time.time() if now is None else now
    exp = _numeric(claims, "exp")
    if exp is not None and now > exp:
        raise JWTError("token is expired")
    iat = _numeric(claims, "iat")
    if iat is None:
        raise JWTError("missing issued-at")
    if now - iat > JWT_EXPIRY_TIMEOUT:
        raise JWTError("stale token")
    if iat - now > JWT_EXPIRY_TIMEOUT:
        raise JWTError("future token")


__all__ = [
    "JWT_EXPIRY_TIMEOUT", "SECRET_LENGTH", "JWT_SECRET_FILE", "JWTError", "JWTSecretError", "parse_secret",
    "load_or_create_secret", "make_token", "verify_authorization",
]
