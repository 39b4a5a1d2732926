"""Pure-Python RLP: the twin of the Cython codec in ``pyext/rlp/_crlp.pyx``.

It is the reference the compiled codec is tested against and the codec every install
without a C compiler runs on, so it mirrors the compiled one's API, bytes and error
classes exactly. Speed matters less than being obviously right, but the hot loops still
avoid needless copies.
"""

from __future__ import annotations

from typing import Any

from ethnode.rlp.errors import DecodingError, EncodingError
from ethnode.rlp.framing import header as _prefix
from ethnode.rlp.framing import wrap_bytes as _encode_bytes
from ethnode.rlp.limits import MAX_DEPTH

BACKEND = "pure"

_BYTES_TYPES = (bytes, bytearray, memoryview)




def _encode_uint(v: int) -> bytes:
    if v < 0:
        raise EncodingError(f"cannot encode negative integer {v}")
    if v == 0:
        return b"\x80"
    if v < 0x80:
        return bytes((v,))
    b = v.to_bytes((v.bit_length() + 7) // 8, "big")
    return _prefix(len(b), 0x80) + b


def _encode(obj: Any, depth: int) -> bytes:
    t = type(obj)
    if t is bytes:
        return _encode_bytes(obj)
    if t is int:
        return _encode_uint(obj)
    if t is list or t is tuple or isinstance(obj, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise EncodingError(f"lists nested deeper than {MAX_DEPTH}")
        payload = b"".join([_encode(x, depth + 1) for x in obj])
        return _prefix(len(payload), 0xC0) + payload
    if isinstance(obj, _BYTES_TYPES):
        return _encode_bytes(bytes(obj))
    if isinstance(obj, int):  # bool and other int subclasses encode as their value
        return _encode_uint(int(obj))
    raise EncodingError(f"cannot RLP-encode object of type {t.__name__}")


def encode(obj: Any) -> bytes:
    """Canonical RLP of bytes-like values, non-negative ints and nested lists/tuples."""
    return _encode(obj, 0)


def item_header(data: bytes, pos: int, end: int) -> tuple[bool, int, int]:
    """Parse the item starting at ``pos``: (is_list, payload_start, payload_end).

    Every non-canonical header is rejected here, so all decoders share one set of rules:
    a lone byte < 0x80 wrapped in 0x81, long form for a length < 56, length-of-length with
    a leading zero, and lengths that run past ``end``.
    """
    if pos < 0 or end > len(data) or pos > end:
        raise ValueError("pos/end outside the data")
    return _header(data, pos, end)


def _header(data: bytes, pos: int, end: int) -> tuple[bool, int, int]:
    if pos >= end:
        raise DecodingError("unexpected end of data")
    b0 = data[pos]
    if b0 < 0x80:
        return False, pos, pos + 1
    if b0 < 0xB8:
        n = b0 - 0x80
        start = pos + 1
        if n == 1 and start < end and data[start] < 0x80:
            raise DecodingError("single byte below 0x80 must not have a string prefix")
        is_list = False
    elif b0 < 0xC0:
        start, n = _long_length(data, pos, end, b0 - 0xB7)
        is_list = False
    elif b0 < 0xF8:
        n = b0 - 0xC0
        start = pos + 1
        is_list = True
    else:
        start, n = _long_length(data, pos, end, b0 - 0xF7)
        is_list = True
    stop = start + n
    if stop > end:
        raise DecodingError("item length runs past the end of its container")
    return is_list, start, stop


def _long_length(data: bytes, pos: int, end: int, ll: int) -> tuple[int, int]:
    start = pos + 1 + ll
    if start > end:
        raise DecodingError("length of length runs past the end of data")
    if data[pos + 1] == 0:
        raise DecodingError("length has leading zero bytes")
    n = int.from_bytes(data[pos + 1 : start], "big")
    if n < 56:
        raise DecodingError("long-form length used for a length below 56")
    return start, n


def _decode(data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    is_list, start, stop = _header(data, pos, end)
    if not is_list:
        return data[start:stop], stop
    if depth >= MAX_DEPTH:
        raise DecodingError(f"lists nested deeper than {MAX_DEPTH}")
    items = []
    p = start
    while p < stop:
        item, p = _decode(data, p, stop, depth + 1)
        items.append(item)
    return items, stop


def as_bytes(data: Any) -> bytes:
    """Accept any bytes-like input; anything else is the caller's type error."""
    if type(data) is bytes:
        return data
    if isinstance(data, _BYTES_TYPES):
        return bytes(data)
    raise TypeError(f"RLP input must be bytes-like, not {type(data).__name__}")


def decode(data: Any) -> Any:
    """Decode exactly one canonical item spanning all of ``data``: bytes or nested lists."""
    data = as_bytes(data)
    item, end = _decode(data, 0, len(data), 0)
    if end != len(data):
        raise DecodingError(f"{len(data) - end} trailing bytes after the RLP item")
    return item


# ---------------------------------------------------------------------------------------
# Typed layer: codec nodes built from the schemas in ``ethnode.rlp.sedes``. The compiled
# module defines classes of the same names with the same constructor arguments.
# ---------------------------------------------------------------------------------------


class _Node:
    """Shared entry points; subclasses implement ``_read`` and ``_enc``."""

    __slots__ = ()

    def decode(self, data: Any) -> Any:
        data = as_bytes(data)
        value, end = self._read(data, 0, len(data), 0)
        if end != len(data):
            raise DecodingError(f"{len(data) - end} trailing bytes after the RLP item")
        return value

    def encode(self, value: Any) -> bytes:
        return self._enc(value, 0)

    def _read(self, data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        raise NotImplementedError

    def _enc(self, value: Any, depth: int) -> bytes:
        raise NotImplementedError


def _string(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    is_list, start, stop = _header(data, pos, end)
    if is_list:
        raise DecodingError(f"expected {what}, got a list")
    return start, stop


def _bytes_value(value: Any, what: str) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, _BYTES_TYPES):
        return bytes(value)
    raise EncodingError(f"{what} must be bytes-like, not {type(value).__name__}")


class BytesNode(_Node):
    __slots__ = ("min_length", "max_length")

    def __init__(self, min_length: int, max_length: int) -> None:
        self.min_length = min_length
        self.max_length = max_length

    def _check(self, n: int, error: type[Exception]) -> None:
        if n < self.min_length or (self.max_length >= 0 and n > self.max_length):
            raise error(f"byte string of length {n} outside [{self.min_length}, {self.max_length}]")

    def _read(self, data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        start, stop = _string(data, pos, end, "a byte string")
        self._check(stop - start, DecodingError)
        return data[start:stop], stop

    def _enc(self, value: Any, depth: int) -> bytes:
        b = _bytes_value(value, "value")
        self._check(len(b), EncodingError)
        return _encode_bytes(b)


class FixedBytesNode(_Node):
    __slots__ = ("length", "nullable", "what", "value_what")

    def __init__(self, length: int, nullable: bool) -> None:
        self.length = length
        self.nullable = nullable
        self.what = f"{length} bytes"
        self.value_what = f"{length}-byte value"

    def _read(self, data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        start, stop = _string(data, pos, end, self.what)
        n = stop - start
        if n != self.length:
            if n == 0 and self.nullable:
                return None, stop
            raise DecodingError(f"expected {self.length} bytes, got {n}")
        return data[start:stop], stop

    def _enc(self, value: Any, depth: int) -> bytes:
        if value is None and self.nullable:
            return b"\x80"
        b = _bytes_value(value, self.value_what)
        if len(b) != self.length:
            raise EncodingError(f"expected {self.length} bytes, got {len(b)}")
        return _encode_bytes(b)


class UIntNode(_Node):
    __slots__ = ("max_bytes",)

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def _read(self, data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        start, stop = _string(data, pos, end, "an integer")
        n = stop - start
        if n == 0:
            return 0, stop
        if data[start] == 0:
            raise DecodingError("integer has leading zero bytes")
        if 0 <= self.max_bytes < n:
            raise DecodingError(f"integer of {n} bytes exceeds {self.max_bytes} bytes")
        return int.from_bytes(data[start:stop], "big"), stop

    def _enc(self, value: Any, depth: int) -> bytes:
        if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
            raise EncodingError(f"integer expected, not {type(value).__name__}")
        if value < 0:
            raise EncodingError(f"cannot encode negative integer {value}")
        if self.max_bytes >= 0 and value.bit_length() > 8 * self.max_bytes:
            raise EncodingError(f"integer {value} exceeds {8 * self.max_bytes} bits")
        return _encode_uint(int(value))


class BooleanNode(_Node):
    __slots__ = ()

    def _read(self, data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        start, stop = _string(data, pos, end, "a boolean")
        if stop == start:
            return False, stop
        if stop - start == 1 and data[start] == 1:
            return True, stop
        raise DecodingError("invalid boolean encoding")

    def _enc(self, value: Any, depth: int) -> bytes:
        if value is True:
            return b"\x01"
        if value is False:
            return b"\x80"
        raise EncodingError(f"bool expected, not {type(value).__name__}")


class RawNode(_Node):
    __slots__ = ()

    def _read(self, data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        _, stop = _decode(data, pos, end, depth)
        return data[pos:stop], stop

    def _enc(self, value: Any, depth: int) -> bytes:
        b = _bytes_value(value, "raw RLP")
        try:
            _, stop = _decode(b, 0, len(b), depth)
        except DecodingError as exc:
            raise EncodingError(f"raw value is not valid RLP: {exc}") from None
        if stop != len(b):
            raise EncodingError("raw value holds more than one RLP item")
        return b


def _list_payload(data: bytes, pos: int, end: int, depth: int) -> tuple[int, int]:
    is_list, start, stop = _header(data, pos, end)
    if not is_list:
        raise DecodingError("expected a list, got a byte string")
    if depth >= MAX_DEPTH:
        raise DecodingError(f"lists nested deeper than {MAX_DEPTH}")
    return start, stop


def _sequence(value: Any, depth: int) -> Any:
    if not isinstance(value, (list, tuple)):
        raise EncodingError(f"list or tuple expected, not {type(value).__name__}")
    if depth >= MAX_DEPTH:
        raise EncodingError(f"lists nested deeper than {MAX_DEPTH}")
    return value


class ListNode(_Node):
    __slots__ = ("element", "max_length")

    def __init__(self, element: _Node, max_length: int) -> None:
        self.element = element
        self.max_length = max_length

    def _read(self, data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        start, stop = _list_payload(data, pos, end, depth)
        read = self.element._read
        limit = self.max_length
        items = []
        p = start
        while p < stop:
            if len(items) == limit:
                raise DecodingError(f"list longer than {limit} items")
            item, p = read(data, p, stop, depth + 1)
            items.append(item)
        return items, stop

    def _enc(self, value: Any, depth: int) -> bytes:
        seq = _sequence(value, depth)
        if 0 <= self.max_length < len(seq):
            raise EncodingError(f"list longer than {self.max_length} items")
        enc = self.element._enc
        payload = b"".join([enc(x, depth + 1) for x in seq])
        return _prefix(len(payload), 0xC0) + payload


class TupleNode(_Node):
    __slots__ = ("elements", "required", "allow_extra", "record")

    def __init__(self, elements: list[_Node], required: int, allow_extra: bool, record: Any) -> None:
        self.elements = tuple(elements)
        self.required = required
        self.allow_extra = allow_extra
        self.record = record

    def _read(self, data: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        start, stop = _list_payload(data, pos, end, depth)
        values = []
        p = start
        for el in self.elements:
            if p >= stop:
                break
            value, p = el._read(data, p, stop, depth + 1)
            values.append(value)
        if len(values) < self.required:
            raise DecodingError(f"expected at least {self.required} elements, got {len(values)}")
        if p < stop:
            if not self.allow_extra:
                raise DecodingError(f"more than {len(self.elements)} elements")
            while p < stop:
                p = _header(data, p, stop)[2]
        values.extend([None] * (len(self.elements) - len(values)))
        if self.record is None:
            return tuple(values), stop
        return tuple.__new__(self.record, values), stop

    def _enc(self, value: Any, depth: int) -> bytes:
        if self.record is not None and not isinstance(value, self.record):
            raise EncodingError(f"{self.record.__name__} expected, not {type(value).__name__}")
        seq = _sequence(value, depth)
        n = len(seq)
        if n > len(self.elements):
            raise EncodingError(f"more than {len(self.elements)} elements")
        present = n
        while present > self.required and seq[present - 1] is None:
            present -= 1
        if present < self.required:
            raise EncodingError(f"expected at least {self.required} elements, got {present}")
        parts = []
        for i in range(present):
            if i >= self.required and seq[i] is None:
                raise EncodingError("an optional field is absent but a later one is present")
            parts.append(self.elements[i]._enc(seq[i], depth + 1))
        payload = b"".join(parts)
        return _prefix(len(payload), 0xC0) + payload
