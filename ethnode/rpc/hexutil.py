"""JSON hex encodings as geth's ``common/hexutil``: quantities ("0x1a") and data ("0x00ff").

Decoding errors carry geth's texts ("hex string without 0x prefix", "hex string has length
38, want 40 for common.Address") and become -32602 "invalid argument N: ..." replies.
"""

from __future__ import annotations

from typing import Any

from ethnode.crypto.keccak import keccak256
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError

_HEX = set("0123456789abcdefABCDEF")


class HexError(ValueError):
    """A value that is not the hex form asked for; the text is geth's."""


def quantity(value: int) -> str:
    return hex(value)


def data(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def checksum_address(addr: bytes) -> str:
    """EIP-55 mixed-case hex, as geth's ``common.Address.Hex`` (txpool_content keys)."""
    text = bytes(addr).hex()
    digest = keccak256(text.encode()).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(text, digest[:40], strict=True))


def _strip(text: Any) -> str:
    if not isinstance(text, str):
        raise HexError(f"json: cannot unmarshal {type(text).__name__} into a hex string")
    if text == "":
        raise HexError("empty hex string")
    if not text.startswith(("0x", "0X")):
        raise HexError("hex string without 0x prefix")
    body = text[2:]
    if not set(body) <= _HEX:
        raise HexError("invalid hex string")
    return body


def decode_quantity(text: Any, bits: int = 64) -> int:
    body = _strip(text)
    if not body:
        raise HexError('hex string "0x"')
    if len(body) > 1 and body[0] == "0":
        raise HexError("hex number with leading zero digits")
    value = int(body, 16)
    if value.bit_length() > bits:
        raise HexError(f"hex number > {bits} bits")
    return value


def decode_data(text: Any) -> bytes:
    body = _strip(text)
    if len(body) % 2:
        raise HexError("hex string of odd length")
    return bytes.fromhex(body)


def decode_fixed(text: Any, length: int, type_name: str) -> bytes:
    """geth UnmarshalFixedText's order: prefix, odd length, then the length, then the digits."""
    if text == "":
        raise HexError(f"hex string has length 0, want {2 * length} for {type_name}")
    if isinstance(text, str) and not text.startswith(("0x", "0X")):
        raise HexError("hex string without 0x prefix")
    if isinstance(text, str) and len(text) % 2:
        raise HexError("hex string of odd length")
    body = _strip(text)
    if len(body) != 2 * length:
        raise HexError(f"hex string has length {len(body)}, want {2 * length} for {type_name}")
    return bytes.fromhex(body)


def json_type(value: Any) -> str:
    """The JSON type name Go's encoding/json reports in "cannot unmarshal X into ..." errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# geth hexutil's decError texts: the ones a typed JSON unmarshal wraps as
# "json: cannot unmarshal <text> into Go value of type <T>" (hexutil wrapTypeError).
_DEC_ERRORS = frozenset({
    "empty hex string", "invalid hex string", "hex string without 0x prefix", "hex string of odd length",
    'hex string "0x"', "hex number with leading zero digits", "hex number > 64 bits", "hex number > 256 bits",
})


def arg(index: int, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` with a HexError turned into geth's invalid-argument reply."""
    try:
        return fn(*args)
    except HexError as exc:
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: {exc}") from None


def typed_arg(index: int, go_type: str, fn: Any, value: Any, *args: Any) -> Any:
    """``fn(value, *args)`` as geth's JSON unmarshal of a hexutil/common type reports a bad value:
    a non-string is "non-string", a decError is wrapped with the Go type, other texts stand."""
    if not isinstance(value, str):
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: json: cannot unmarshal non-string into Go value "
                                       f"of type {go_type}")
    try:
        return fn(value, *args)
    except HexError as exc:
        text = str(exc)
        if text in _DEC_ERRORS:
            text = f"json: cannot unmarshal {text} into Go value of type {go_type}"
        raise RPCError(INVALID_PARAMS, f"invalid argument {index}: {text}") from None


def address_arg(index: int, text: Any) -> bytes:
    return typed_arg(index, "common.Address", decode_fixed, text, 20, "common.Address")  # type: ignore[no-any-return]


def hash_arg(index: int, text: Any) -> bytes:
    return typed_arg(index, "common.Hash", decode_fixed, text, 32, "common.Hash")  # type: ignore[no-any-return]


def data_arg(index: int, text: Any) -> bytes:
    """A hexutil.Bytes argument ("0x" and "" are empty)."""
    if text == "":
        return b""
    return typed_arg(index, "hexutil.Bytes", decode_data, text)  # type: ignore[no-any-return]


def uint_arg(index: int, text: Any, go_type: str = "hexutil.Uint") -> int:
    """A hexutil.Uint / hexutil.Uint64 argument (an index, a count)."""
    if text == "":
        return 0
    return typed_arg(index, go_type, decode_quantity, text, 64)  # type: ignore[no-any-return]


__all__ = [
    "HexError", "quantity", "data", "checksum_address", "decode_quantity", "decode_data", "decode_fixed",
    "address_arg", "hash_arg", "data_arg", "uint_arg", "typed_arg", "arg", "json_type",
]
