"""EIP-712 typed structured data hashing, after geth's ``signer/core/apitypes`` (``TypedDataAndHash``).

``typed_data_hash`` is the digest a wallet signs for ``eth_signTypedData_v4``:
``keccak256(0x19 0x01 || hashStruct(EIP712Domain, domain) || hashStruct(primaryType, message))``.
Written here rather than taken from ``eth_account``: that package would pull eth-abi and
pydantic into the node's install for one dev-only method, and the tests can then check this
encoder against eth_account's as an independent implementation.

The value rules are geth's (its clef signer is the reference ethnode follows): addresses
and byte strings as 0x hex, integers as JSON numbers or hex/decimal strings range-checked
for their type, booleans as JSON booleans, a field missing from the data or a field the
type does not list is an error, and the error texts are geth's. Two additions for what
clients send: ``types`` may leave ``EIP712Domain`` out (ethers, viem and eth_account derive
it from the domain's fields, in the EIP's order), and ``primaryType`` may be left out when
exactly one type is referenced by no other (eth_account's rule).
"""

from __future__ import annotations

import re
from typing import Any

from ethnode.crypto.keccak import keccak256

DOMAIN_TYPE = "EIP712Domain"
# The EIP's domain fields, in its order: what a domain without an EIP712Domain type is hashed as.
DOMAIN_FIELDS = (("name", "string"), ("version", "string"), ("chainId", "uint256"),
                 ("verifyingContract", "address"), ("salt", "bytes32"))
MAX_DEPTH = 64  # nesting of structs and arrays; a bound for the recursion (geth has none)

_REFERENCE_TYPE = re.compile(r"^[A-Za-z](\w*)(\[\d*\])*$")  # geth typedDataReferenceTypeRegexp
_ADDRESS = re.compile(r"^(0[xX])?[0-9a-fA-F]{40}$")  # geth common.IsHexAddress
_HEX_INT = re.compile(r"^[+-]?[0-9a-fA-F]+$")
_DEC_INT = re.compile(r"^[+-]?[0-9]+$")
_HEX_DATA = re.compile(r"^0[xX]([0-9a-fA-F]{2})*$")
_PRIMITIVES = frozenset(
    ["address", "bool", "string", "bytes", "int", "uint"]
    + [f"bytes{n}" for n in range(1, 33)]
    + [f"{kind}{bits}" for kind in ("int", "uint") for bits in range(8, 257, 8)]
)


class TypedDataError(ValueError):
    """Typed data that cannot be hashed; the text is geth's where geth has one."""


Types = dict[str, list[tuple[str, str]]]  # type name -> [(field name, field type)]


def typed_data_hash(typed: Any) -> bytes:
    """The 32-byte EIP-712 digest of a ``{types, primaryType, domain, message}`` object."""
    if not isinstance(typed, dict):
        raise TypedDataError("typed data is not a JSON object")
    domain, message = typed.get("domain"), typed.get("message")
    if not isinstance(domain, dict) or not domain:
        raise TypedDataError("domain is undefined")
    if not isinstance(message, dict):
        raise TypedDataError("message is not a JSON object")
    types = _parse_types(typed.get("types"))
    if DOMAIN_TYPE not in types:
        types[DOMAIN_TYPE] = [(name, kind) for name, kind in DOMAIN_FIELDS if name in domain]
    _validate(types)
    primary = typed.get("primaryType")
    if primary is None:
        primary = _derive_primary(types)
    if not isinstance(primary, str) or primary not in types:
        raise TypedDataError(f"primary type {primary!r} is undefined")
    encoder = _Encoder(types)
    separator = keccak256(encoder.encode_data(DOMAIN_TYPE, domain, 1))
    struct_hash = keccak256(encoder.encode_data(primary, message, 1))
    return keccak256(b"\x19\x01" + separator + struct_hash)


def _parse_types(raw: Any) -> Types:
    if not isinstance(raw, dict):
        raise TypedDataError("types is not a JSON object")
    types: Types = {}
    for name, fields in raw.items():
        if not isinstance(fields, list):
            raise TypedDataError(f"type {name!r}: fields are not a list")
        parsed = []
        for i, field in enumerate(fields):
            if not isinstance(field, dict) or not isinstance(field.get("name", ""), str) \
                    or not isinstance(field.get("type", ""), str):
                raise TypedDataError(f"type {name!r}:{i}: not a {{name, type}} object")
            parsed.append((field.get("name", ""), field.get("type", "")))
        types[name] = parsed
    return types


def _base(kind: str) -> str:
    """``Person[2][]`` -> ``Person`` (geth Type.typeName)."""
    return kind.split("[", 1)[0]


def _validate(types: Types) -> None:
    """geth ``Types.validate``: names present, no self reference, every reference defined and well formed."""
    for key, fields in types.items():
        if not key:
            raise TypedDataError("empty type key")
        for i, (name, kind) in enumerate(fields):
            if not kind:
                raise TypedDataError(f'type "{key}":{i}: empty Type')
            if not name:
                raise TypedDataError(f'type "{key}":{i}: empty Name')
            if key == kind:
                raise TypedDataError(f'type "{kind}" cannot reference itself')
            primitive = _base(kind) in _PRIMITIVES
            if not primitive and _base(kind) not in types:
                raise TypedDataError(f'reference type "{kind}" is undefined')
            if not _REFERENCE_TYPE.match(kind):  # geth checks references only; "uint8[" is no type either
                raise TypedDataError(f'unknown {"primitive" if primitive else "reference"} type "{kind}"')


def _derive_primary(types: Types) -> str:
    referenced = {_base(kind) for key, fields in types.items() for _, kind in fields if _base(kind) != key}
    roots = [t for t in types if t != DOMAIN_TYPE and t not in referenced]
    if len(roots) != 1:
        raise TypedDataError("primaryType not specified and not derivable from types")
    return roots[0]


def _mismatch(kind: str, value: Any) -> TypedDataError:
    shown = "<nil>" if value is None else value
    return TypedDataError(f"provided data '{shown}' doesn't match type '{kind}'")


class _Encoder:
    """geth ``TypedData.EncodeData`` and friends over one set of types."""

    def __init__(self, types: Types) -> None:
        self.types = types
        self._type_hashes: dict[str, bytes] = {}

    def dependencies(self, primary: str, found: list[str]) -> list[str]:
        primary = _base(primary)
        if primary in found or primary not in self.types:
            return found
        found.append(primary)
        for _, kind in self.types[primary]:
            self.dependencies(kind, found)
        return found

    def encode_type(self, primary: str) -> bytes:
        """``Mail(Person from,Person to,string contents)Person(string name,address wallet)``."""
        deps = self.dependencies(primary, [])
        ordered = [primary] + sorted(deps[1:])
        return "".join(
            f"{dep}({','.join(f'{kind} {name}' for name, kind in self.types[dep])})" for dep in ordered
        ).encode()

    def type_hash(self, primary: str) -> bytes:
        cached = self._type_hashes.get(primary)
        if cached is None:
            cached = self._type_hashes[primary] = keccak256(self.encode_type(primary))
        return cached

    def encode_data(self, primary: str, values: dict[str, Any], depth: int) -> bytes:
        """``typeHash || enc(field 1) || ... || enc(field n)``, each 32 bytes."""
        if depth > MAX_DEPTH:
            raise TypedDataError(f"typed data nested deeper than {MAX_DEPTH}")
        fields = self.types[primary]
        if len(fields) < len(values):
            raise TypedDataError(f"there is extra data provided in the message ({len(fields)} < {len(values)})")
        out = [self.type_hash(primary)]
        for name, kind in fields:
            out.append(self.encode_value(kind, values.get(name), depth))
        return b"".join(out)

    def encode_value(self, kind: str, value: Any, depth: int) -> bytes:
        if kind.endswith("]"):
            if not isinstance(value, list):
                raise _mismatch(kind, value)
            element = kind[:kind.rindex("[")]
            return keccak256(b"".join(self.encode_value(element, item, depth + 1) for item in value))
        if kind in self.types:
            if not isinstance(value, dict):
                raise _mismatch(kind, value)
            return keccak256(self.encode_data(kind, value, depth + 1))
        return _encode_primitive(kind, value)


def _hex_bytes(value: Any) -> bytes | None:
    """geth hexutil.Decode: "0x" and an even number of hex digits; None for anything else."""
    if not isinstance(value, str) or not _HEX_DATA.match(value):
        return None
    return bytes.fromhex(value[2:])


def _integer(kind: str, value: Any) -> int:
    """geth parseInteger: a JSON integer, or a hex ("0x") / decimal string, in range for ``kind``."""
    signed = kind.startswith("int")
    bits = int(kind[3 if signed else 4:] or 256)
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float):  # what a JSON number with a fraction or exponent decodes to
        if not value.is_integer():
            raise TypedDataError(f"invalid float value {value} for type {kind}")
        number = int(value)
    elif isinstance(value, str):  # geth math.HexOrDecimal256 (an empty string is 0)
        hexa = value[:2] in ("0x", "0X")
        text = value[2:] if hexa else value
        if value and not (_HEX_INT if hexa else _DEC_INT).match(text):
            raise TypedDataError(f'invalid hex or decimal integer "{value}"')
        number = int(text, 16 if hexa else 10) if value else 0
    else:
        raise TypedDataError(f"invalid integer value {value} for type {kind}")
    if signed:
        if not -(1 << (bits - 1)) <= number < 1 << (bits - 1):
            raise TypedDataError(f"integer larger than '{kind}'")
    elif number < 0:
        raise TypedDataError(f"invalid negative value for unsigned type {kind}")
    elif number.bit_length() > bits:
        raise TypedDataError(f"integer larger than '{kind}'")
    return number


def _encode_primitive(kind: str, value: Any) -> bytes:
    """geth EncodePrimitiveValue: one 32-byte word (dynamic types hashed)."""
    if kind == "address":
        if isinstance(value, str) and _ADDRESS.match(value):
            return bytes.fromhex(value[-40:]).rjust(32, b"\0")
        raise _mismatch(kind, value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _mismatch(kind, value)
        return int(value).to_bytes(32, "big")
    if kind == "string":
        if not isinstance(value, str):
            raise _mismatch(kind, value)
        return keccak256(value.encode())
    if kind == "bytes":
        raw = _hex_bytes(value)
        if raw is None:
            raise _mismatch(kind, value)
        return keccak256(raw)
    if kind.startswith("bytes"):
        size = int(kind[5:])
        raw = _hex_bytes(value)
        if raw is None or len(raw) != size:
            raise _mismatch(kind, value)
        return raw.ljust(32, b"\0")
    if kind.startswith(("int", "uint")):
        return (_integer(kind, value) % (1 << 256)).to_bytes(32, "big")  # two's complement for negatives
    raise TypedDataError(f"unrecognized type '{kind}'")


__all__ = ["typed_data_hash", "TypedDataError", "DOMAIN_TYPE"]
