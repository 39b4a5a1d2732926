"""The typed RLP layer: schemas that decode straight into Python values and records.

A schema here is only a description. Each backend turns it into a tree of its own codec
nodes once (cached on the schema) and then decodes the wire bytes directly into ints,
bytes, tuples and ``Record`` instances, without building an intermediate list of raw
items. With pyrlp that intermediate step, not the raw codec, dominates the cost.

Schemas compose::

    class LegacyTx(Record):
        fields = (
            ("nonce", uint64), ("gas_price", uint256), ("gas", uint64),
            ("to", FixedBytes(20, nullable=True)), ("value", uint256), ("data", binary),
            ("v", uint256), ("r", uint256), ("s", uint256),
        )

    tx = LegacyTx.decode(wire)          # -> LegacyTx, fields as attributes
    wire == tx.encode()
    List(hash32, max_length=4096).decode(payload)   # -> list of 32-byte bytes

Every mismatch between bytes and schema raises ``DecodingError``; every value that does
not fit its schema raises ``EncodingError``.
"""

from __future__ import annotations

import collections
import operator
from collections.abc import Iterable
from types import ModuleType
from typing import Any, ClassVar

_ACTIVE: ModuleType | None = None


def _active_backend() -> ModuleType:
    """The codec ethnode.rlp selected; looked up once (sedes is imported by ethnode.rlp)."""
    global _ACTIVE
    if _ACTIVE is None:
        from ethnode.rlp import _impl

        _ACTIVE = _impl
    return _ACTIVE


class Sedes:
    """Base of all schemas: ``encode(value) -> bytes`` and ``decode(bytes) -> value``."""

    def __init__(self) -> None:
        self._nodes: dict[str, Any] = {}

    def node(self, backend: ModuleType | None = None) -> Any:
        """This schema compiled for ``backend`` (default: the active one), built once."""
        backend = backend or _ACTIVE or _active_backend()
        node = self._nodes.get(backend.__name__)
        if node is None:
            node = self._build(backend)
            self._nodes[backend.__name__] = node
        return node

    def _build(self, backend: ModuleType) -> Any:
        raise NotImplementedError

    def encode(self, value: Any) -> bytes:
        return self.node().encode(value)

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        return self.node().decode(data)


class Bytes(Sedes):
    """A byte string with optional length bounds."""

    def __init__(self, min_length: int = 0, max_length: int | None = None) -> None:
        super().__init__()
        if min_length < 0 or (max_length is not None and max_length < min_length):
            raise ValueError("invalid length bounds")
        self.min_length = min_length
        self.max_length = max_length

    def _build(self, backend: ModuleType) -> Any:
        return backend.BytesNode(self.min_length, -1 if self.max_length is None else self.max_length)

    def __repr__(self) -> str:
        return f"Bytes({self.min_length}, {self.max_length})"


class FixedBytes(Sedes):
    """Exactly ``length`` bytes (hashes, addresses); ``nullable`` maps the empty string to None."""

    def __init__(self, length: int, nullable: bool = False) -> None:
        super().__init__()
        if length <= 0:
            raise ValueError("length must be positive")
        self.length = length
        self.nullable = nullable

    def _build(self, backend: ModuleType) -> Any:
        return backend.FixedBytesNode(self.length, self.nullable)

    def __repr__(self) -> str:
        return f"FixedBytes({self.length}{', nullable=True' if self.nullable else ''})"


class UInt(Sedes):
    """A non-negative integer below ``2**bits`` (``bits=None``: unbounded), canonical form only.

    Canonical means no leading zero bytes and zero as the empty string, as geth's decoder
    demands; ``0x00`` as an integer is rejected.
    """

    def __init__(self, bits: int | None = 256) -> None:
        super().__init__()
        if bits is not None and (bits <= 0 or bits % 8):
            raise ValueError("bits must be a positive multiple of 8")
        self.bits = bits

    def _build(self, backend: ModuleType) -> Any:
        return backend.UIntNode(-1 if self.bits is None else self.bits // 8)

    def __repr__(self) -> str:
        return f"UInt({self.bits})"


class Boolean(Sedes):
    """geth's bool: 0x80 is False, 0x01 is True, anything else is an error."""

    def _build(self, backend: ModuleType) -> Any:
        return backend.BooleanNode()

    def __repr__(self) -> str:
        return "Boolean()"


class Raw(Sedes):
    """Any one well-formed item, kept as its full encoding (header included).

    For payloads whose shape is decided later, such as typed transactions in a block body.
    Encoding inserts the bytes verbatim after checking they are exactly one canonical item.
    """

    def _build(self, backend: ModuleType) -> Any:
        return backend.RawNode()

    def __repr__(self) -> str:
        return "Raw()"


class List(Sedes):
    """A homogeneous list (pyrlp's CountableList) with an optional maximum count."""

    def __init__(self, element: Any, max_length: int | None = None) -> None:
        super().__init__()
        self.element = as_sedes(element)
        self.max_length = max_length

    def _build(self, backend: ModuleType) -> Any:
        limit = -1 if self.max_length is None else self.max_length
        return backend.ListNode(self.element.node(backend), limit)

    def __repr__(self) -> str:
        return f"List({self.element!r}, {self.max_length})"


class Optional:
    """Marks a trailing field that may be absent (geth's ``rlp:"optional"``); absent is None.

    Only trailing positions may be optional, and a present optional field requires all
    optional fields before it to be present, as in geth.
    """

    def __init__(self, sedes: Any) -> None:
        self.sedes = as_sedes(sedes)

    def __repr__(self) -> str:
        return f"Optional({self.sedes!r})"


def _split_optional(elements: Iterable[Any]) -> tuple[list[Sedes], int]:
    """(schemas, number of required leading elements); enforces optional-only-trailing."""
    schemas: list[Sedes] = []
    required = 0
    seen_optional = False
    for el in elements:
        if isinstance(el, Optional):
            seen_optional = True
            schemas.append(el.sedes)
        else:
            if seen_optional:
                raise ValueError("a required field cannot follow an optional one")
            required += 1
            schemas.append(as_sedes(el))
    return schemas, required


class Tuple(Sedes):
    """A fixed sequence of differently typed elements, decoded to a tuple.

    ``allow_extra`` skips extra trailing elements instead of rejecting them (EIP-8 forward
    compatibility, used by discv4 and Hello).
    """

    def __init__(self, *elements: Any, allow_extra: bool = False) -> None:
        super().__init__()
        self.elements, self.required = _split_optional(elements)
        self.allow_extra = allow_extra

    def _build(self, backend: ModuleType) -> Any:
        nodes = [e.node(backend) for e in self.elements]
        return backend.TupleNode(nodes, self.required, self.allow_extra, None)

    def __repr__(self) -> str:
        return f"Tuple({', '.join(map(repr, self.elements))})"


class RecordSedes(Sedes):
    """The schema of a ``Record`` subclass: a tuple whose decode builds the record."""

    def __init__(self, cls: type[Record]) -> None:
        super().__init__()
        self.cls = cls
        self.elements, self.required = _split_optional(s for _, s in cls.fields)

    def _build(self, backend: ModuleType) -> Any:
        nodes = [e.node(backend) for e in self.elements]
        return backend.TupleNode(nodes, self.required, self.cls.allow_extra, self.cls)

    def __repr__(self) -> str:
        return f"RecordSedes({self.cls.__name__})"


_RESERVED = frozenset(["encode", "decode", "replace", "as_dict", "fields", "count", "index", "allow_extra"])
_tuplegetter = getattr(collections, "_tuplegetter", None)


class Record(tuple):
    """A typed RLP list with named fields: pyrlp's Serializable, as an immutable tuple.

    Subclasses list ``fields`` as (name, schema) pairs; fields wrapped in ``Optional`` are
    trailing and default to None. Records are tuples so that the compiled decoder builds
    them in one step and the raw codec encodes them as lists. Two records are equal only
    when their types are equal too. Subclasses that want extra cached state (a hash)
    simply omit ``__slots__``.
    """

    __slots__ = ()
    fields: ClassVar[tuple[tuple[str, Any], ...]] = ()
    allow_extra: ClassVar[bool] = False
    _field_names: ClassVar[tuple[str, ...]] = ()
    _required: ClassVar[int] = 0
    _sedes: ClassVar[RecordSedes]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = tuple(name for name, _ in cls.fields)
        for i, name in enumerate(names):
            if name.startswith("_") or name in _RESERVED:
                raise ValueError(f"{cls.__name__}: field name {name!r} is reserved")
            getter = _tuplegetter(i, None) if _tuplegetter else property(operator.itemgetter(i))
            setattr(cls, name, getter)
        if len(set(names)) != len(names):
            raise ValueError(f"{cls.__name__}: duplicate field names")
        cls._field_names = names
        cls._sedes = RecordSedes(cls)
        cls._required = cls._sedes.required

    def __new__(cls, *args: Any, **kwargs: Any) -> Record:
        names = cls._field_names
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__} takes at most {len(names)} fields, got {len(args)}")
        values = list(args) + [None] * (len(names) - len(args))
        for key, value in kwargs.items():
            try:
                i = names.index(key)
            except ValueError:
                raise TypeError(f"{cls.__name__} has no field {key!r}") from None
            if i < len(args):
                raise TypeError(f"{cls.__name__} got field {key!r} twice")
            values[i] = value
        missing = [n for i, n in enumerate(names[: cls._required]) if i >= len(args) and n not in kwargs]
        if missing:
            raise TypeError(f"{cls.__name__} is missing field(s) {', '.join(missing)}")
        return tuple.__new__(cls, values)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Any:
        return cls._sedes.decode(data)

    def encode(self) -> bytes:
        return self._sedes.encode(self)

    def replace(self, **changes: Any) -> Any:
        values = list(self)
        for key, value in changes.items():
            try:
                values[self._field_names.index(key)] = value
            except ValueError:
                raise TypeError(f"{type(self).__name__} has no field {key!r}") from None
        return tuple.__new__(type(self), values)

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self._field_names, self, strict=True))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and tuple.__eq__(self, other)  # type: ignore[arg-type]

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={v!r}" for n, v in zip(self._field_names, self, strict=True))
        return f"{type(self).__name__}({body})"

    def __reduce__(self) -> Any:
        return (tuple.__new__, (type(self), tuple(self)))


def as_sedes(obj: Any) -> Sedes:
    """A schema from a schema or a Record subclass."""
    if isinstance(obj, Sedes):
        return obj
    if isinstance(obj, type) and issubclass(obj, Record) and obj is not Record:
        return obj._sedes
    raise TypeError(f"not an RLP schema: {obj!r}")


binary = Bytes()
hash32 = FixedBytes(32)
address = FixedBytes(20)
boolean = Boolean()
raw = Raw()
uint8 = UInt(8)
uint16 = UInt(16)
uint32 = UInt(32)
uint64 = UInt(64)
uint256 = UInt(256)
big_endian_int = UInt(None)

__all__ = [
    "Sedes", "Bytes", "FixedBytes", "UInt", "Boolean", "Raw", "List", "Optional", "Tuple",
    "Record", "RecordSedes", "as_sedes", "binary", "hash32", "address", "boolean", "raw",
    "uint8", "uint16", "uint32", "uint64", "uint256", "big_endian_int",
]
