"""Ethereum Node Records (EIP-778) with the "v4" identity scheme.

A record is ``rlp([signature, seq, k1, v1, k2, v2, ...])`` with keys sorted and unique,
at most 300 bytes. Under "v4" the signature is a 64-byte secp256k1 ``r || s`` over
``keccak256(rlp([seq, k1, v1, ...]))`` and the node id is ``keccak256`` of the signer's
uncompressed public key (x || y), which the record carries compressed under "secp256k1".

Values are kept as their raw RLP encodings: a record may hold entries this code does not
understand (the "eth" fork id, "snap", ...), and the signature covers their exact bytes,
so they must round-trip untouched. Decoding walks the record with ``rlp.item_header``
instead of decoding it, which keeps those raw slices without re-encoding anything.

The text form is ``enr:`` + base64url of the RLP, without padding (geth RawURLEncoding).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from ethnode import rlp
from ethnode.crypto import keccak256
from ethnode.crypto.errors import InvalidKeyError
from ethnode.crypto.keys import PrivateKey, PublicKey
from ethnode.errors import EthnodeError

SIZE_LIMIT = 300  # geth enr.SizeLimit: maximum encoded size of a record in bytes
SIGNATURE_LENGTH = 64  # "v4" scheme: r || s without the recovery id
TEXT_PREFIX = "enr:"
SEQ_MAX = 2**64 - 1  # geth stores seq as uint64

ID_V4 = b"v4"
KEY_ID = b"id"
KEY_SECP256K1 = b"secp256k1"
KEY_IP = b"ip"
KEY_IP6 = b"ip6"
KEY_TCP = b"tcp"
KEY_TCP6 = b"tcp6"
KEY_UDP = b"udp"
KEY_UDP6 = b"udp6"


class ENRError(EthnodeError, ValueError):
    """A node record that is malformed, too big, unsigned or carries a bad signature."""


def _list_header(length: int) -> bytes:
    if length < 56:
        return bytes([0xC0 + length])
    n = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0xF7 + len(n)]) + n


def _decode_uint(raw_item: bytes, bits: int = 64) -> int:
    """A canonical RLP unsigned integer from its full encoding (header included)."""
    value = rlp.decode(raw_item)
    if not isinstance(value, bytes):
        raise ENRError("expected an integer, got a list")
    if len(value) > bits // 8 or (value and value[0] == 0):
        raise ENRError("integer is non-canonical or too large")
    return int.from_bytes(value, "big")


def _encode_value(value: Any) -> bytes:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        value = value.packed
    if isinstance(value, str):
        value = value.encode()
    try:
        return rlp.encode(value)
    except rlp.EncodingError as exc:
        raise ENRError(f"cannot encode record value {value!r}: {exc}") from None


def _as_key(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


class ENR:
    """A signed, immutable node record; build one with ``ENR.create`` or ``ENR.decode``."""

    __slots__ = ("seq", "signature", "_pairs", "_raw", "_public_key", "_node_id")

    seq: int
    signature: bytes

    def __init__(self) -> None:
        raise TypeError("use ENR.create, ENR.decode or ENR.from_text")

    @classmethod
    def _build(cls, seq: int, signature: bytes, pairs: dict[bytes, bytes], raw: bytes) -> ENR:
        self = object.__new__(cls)
        self.seq = seq
        self.signature = signature
        self._pairs = pairs
        self._raw = raw
        self._public_key: PublicKey | None = None
        self._node_id: bytes | None = None
        return self

    # -- construction -------------------------------------------------------------------

    @classmethod
    def create(cls, key: PrivateKey, seq: int, entries: Mapping[str | bytes, Any] | None = None) -> ENR:
        """Sign a record for ``key``; "id" and "secp256k1" are set from the key.

        Values are Python values as ``rlp.encode`` takes them (ints, bytes, nested lists);
        IP addresses may be given as ``ipaddress`` objects. ``None`` omits the entry.
        """
        if not 0 <= seq <= SEQ_MAX:
            raise ENRError(f"sequence number {seq} out of range")
        pairs: dict[bytes, bytes] = {}
        for k, v in (entries or {}).items():
            if v is not None:
                pairs[_as_key(k)] = _encode_value(v)
        pairs[KEY_ID] = rlp.encode(ID_V4)
        pairs[KEY_SECP256K1] = rlp.encode(key.public_key.to_compressed())
        ordered = dict(sorted(pairs.items()))
        body = rlp.encode(seq) + b"".join(rlp.encode(k) + v for k, v in ordered.items())
        content = _list_header(len(body)) + body
        signature = key.sign(keccak256(content))[:SIGNATURE_LENGTH]
        payload = rlp.encode(signature) + body
        raw = _list_header(len(payload)) + payload
        if len(raw) > SIZE_LIMIT:
            raise ENRError(f"record of {len(raw)} bytes exceeds the {SIZE_LIMIT}-byte limit")
        self = cls._build(seq, signature, ordered, raw)
        self._public_key = key.public_key
        return self

    @classmethod
    def decode(cls, raw: bytes | bytearray | memoryview, *, verify: bool = True) -> ENR:
        """Parse the RLP form; with ``verify`` (the default) check the "v4" signature too.

        ``verify=False`` is for records this node already verified (its own database).
        """
        raw = bytes(raw)
        if len(raw) > SIZE_LIMIT:
            raise ENRError(f"record of {len(raw)} bytes exceeds the {SIZE_LIMIT}-byte limit")
        try:
            is_list, start, end = rlp.item_header(raw, 0, len(raw))
            if not is_list:
                raise ENRError("record is not an RLP list")
            if end != len(raw):
                raise ENRError("trailing bytes after the record")
            items: list[tuple[bool, int, int]] = []  # (is_list, item start, item end)
            pos = start
            while pos < end:
                item_is_list, _, item_end = rlp.item_header(raw, pos, end)
                items.append((item_is_list, pos, item_end))
                pos = item_end
        except rlp.DecodingError as exc:
            raise ENRError(f"malformed record: {exc}") from None
        if len(items) < 2:
            raise ENRError("record has fewer than two elements")
        if (len(items) - 2) % 2:
            raise ENRError("record has an incomplete key/value pair")
        sig_is_list, s0, s1 = items[0]
        if sig_is_list:
            raise ENRError("record signature is a list")
        signature = rlp.decode(raw[s0:s1])
        seq_is_list, q0, q1 = items[1]
        if seq_is_list:
            raise ENRError("record sequence number is a list")
        seq = _decode_uint(raw[q0:q1])
        pairs: dict[bytes, bytes] = {}
        previous: bytes | None = None
        for i in range(2, len(items), 2):
            key_is_list, k0, k1 = items[i]
            if key_is_list:
                raise ENRError("record key is a list")
            key = rlp.decode(raw[k0:k1])
            if previous is not None:
                if key == previous:
                    raise ENRError(f"duplicate record key {key!r}")
                if key < previous:
                    raise ENRError("record keys are not sorted")
            _, v0, v1 = items[i + 1]
            pairs[key] = raw[v0:v1]
            previous = key
        self = cls._build(seq, signature, pairs, raw)
        if verify:
            self._verify(raw[q0:end])
        return self

    @classmethod
    def from_text(cls, text: str) -> ENR:
        """Parse ``enr:<base64url>``; padding and characters outside base64url are rejected."""
        text = text.strip()
        if not text.startswith(TEXT_PREFIX):
            raise ENRError("missing 'enr:' prefix for base64-encoded record")
        body = text[len(TEXT_PREFIX):]
        if "=" in body or "+" in body or "/" in body:
            raise ENRError("record text is not unpadded base64url")
        try:
            data = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ENRError("record text is not valid base64url") from None
        return cls.decode(data)

    def _verify(self, content_body: bytes) -> None:
        if self.identity_scheme != ID_V4:
            raise ENRError(f"unsupported identity scheme {self.identity_scheme!r}")
        if len(self.signature) != SIGNATURE_LENGTH:
            raise ENRError("invalid signature on node record")
        key = self.public_key
        content = _list_header(len(content_body)) + content_body
        if not key.verify(keccak256(content), self.signature):
            raise ENRError("invalid signature on node record")

    # -- output ---------------------------------------------------------------------------

    def encode(self) -> bytes:
        return self._raw

    def to_text(self) -> str:
        return TEXT_PREFIX + base64.urlsafe_b64encode(self._raw).rstrip(b"=").decode("ascii")

    def signing_content(self) -> bytes:
        """``rlp([seq, k, v, ...])``, what the signature covers."""
        body = rlp.encode(self.seq) + b"".join(rlp.encode(k) + v for k, v in self._pairs.items())
        return _list_header(len(body)) + body

    # -- entries --------------------------------------------------------------------------

    def get(self, key: str | bytes) -> bytes | None:
        """The raw RLP encoding of an entry's value, or None."""
        return self._pairs.get(_as_key(key))

    def keys(self) -> Iterable[bytes]:
        return self._pairs.keys()

    def entries(self) -> dict[bytes, bytes]:
        """Key -> raw RLP value, in key order."""
        return dict(self._pairs)

    def _bytes_entry(self, key: bytes, lengths: tuple[int, ...]) -> bytes | None:
        raw = self._pairs.get(key)
        if raw is None:
            return None
        try:
            value = rlp.decode(raw)
        except rlp.DecodingError:
            return None
        if not isinstance(value, bytes) or len(value) not in lengths:
            return None
        return value

    def _port_entry(self, key: bytes) -> int | None:
        raw = self._pairs.get(key)
        if raw is None:
            return None
        try:
            return _decode_uint(raw, 16)
        except (ENRError, rlp.DecodingError):
            return None  # a malformed entry counts as absent, as in geth's newNodeWithID

    @property
    def identity_scheme(self) -> bytes | None:
        raw = self._pairs.get(KEY_ID)
        if raw is None:
            return None
        try:
            value = rlp.decode(raw)
        except rlp.DecodingError:
            return None
        return value if isinstance(value, bytes) else None

    @property
    def public_key(self) -> PublicKey:
        if self._public_key is None:
            compressed = self._bytes_entry(KEY_SECP256K1, (33,))
            if compressed is None:
                raise ENRError("record has no valid secp256k1 entry")
            try:
                self._public_key = PublicKey.from_bytes(compressed)
            except InvalidKeyError as exc:
                raise ENRError(f"record secp256k1 entry: {exc}") from None
        return self._public_key

    @property
    def node_id(self) -> bytes:
        """The 32-byte discovery id: keccak256 of the 64-byte public key."""
        if self._node_id is None:
            self._node_id = keccak256(self.public_key.node_id)
        return self._node_id

    @property
    def ip(self) -> ipaddress.IPv4Address | None:
        value = self._bytes_entry(KEY_IP, (4,))
        return ipaddress.IPv4Address(value) if value is not None else None

    @property
    def ip6(self) -> ipaddress.IPv6Address | None:
        value = self._bytes_entry(KEY_IP6, (16,))
        return ipaddress.IPv6Address(value) if value is not None else None

    @property
    def udp(self) -> int | None:
        return self._port_entry(KEY_UDP)

    @property
    def tcp(self) -> int | None:
        return self._port_entry(KEY_TCP)

    @property
    def udp6(self) -> int | None:
        return self._port_entry(KEY_UDP6)

    @property
    def tcp6(self) -> int | None:
        return self._port_entry(KEY_TCP6)

    # -- value semantics -------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ENR) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        shown = []
        for k in self._pairs:
            if k in (KEY_ID, KEY_SECP256K1):
                continue
            shown.append(k.decode("ascii", "replace"))
        return f"ENR(seq={self.seq}, keys=[{', '.join(shown)}])"


__all__ = ["ENR", "ENRError", "SIZE_LIMIT", "TEXT_PREFIX"]
