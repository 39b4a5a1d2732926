"""devp2p Disconnect reasons (geth p2p/peer_error.go), their wire form and their meaning.

A reason travels as the RLP list ``[reason]``. Some implementations, older geth among
them, sent the bare integer instead, so both forms are read; anything else reads as
``INVALID``, geth's local sentinel, which is never sent.
"""

from __future__ import annotations

import enum

from ethnode import rlp
from ethnode.errors import EthnodeError
from ethnode.rlp.errors import DecodingError

_MAX_REASON = 0xFF  # geth decodes the reason into a uint8


class DiscReason(enum.IntEnum):
    """Why a peer is being dropped; values and descriptions as geth's DiscReason."""

    REQUESTED = 0x00
    NETWORK_ERROR = 0x01
    PROTOCOL_ERROR = 0x02
    USELESS_PEER = 0x03
    TOO_MANY_PEERS = 0x04
    ALREADY_CONNECTED = 0x05
    INCOMPATIBLE_VERSION = 0x06
    INVALID_IDENTITY = 0x07
    QUITTING = 0x08
    UNEXPECTED_IDENTITY = 0x09
    SELF = 0x0A
    READ_TIMEOUT = 0x0B
    SUBPROTOCOL_ERROR = 0x10
    INVALID = 0xFF  # geth DiscInvalid: the peer's reason could not be decoded; never sent

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    def __str__(self) -> str:
        return self.description

    @classmethod
    def from_code(cls, code: int) -> DiscReason:
        """The reason for a wire value; values geth does not name read as ``INVALID``."""
        try:
            return cls(code)
        except ValueError:
            return cls.INVALID

    def encode_payload(self) -> bytes:
        """The Disconnect message payload, ``rlp([reason])``."""
        if self is DiscReason.INVALID:
            raise ValueError("DiscReason.INVALID is a local sentinel and is never sent")
        return rlp.encode([int(self)])

    @classmethod
    def decode_payload(cls, payload: bytes) -> DiscReason:
        """Read a Disconnect payload leniently: the last message must never raise."""
        try:
            item = rlp.decode(payload)
        except DecodingError:
            return cls.INVALID
        if isinstance(item, list):
            if not item or isinstance(item[0], list):
                return cls.INVALID
            item = item[0]
        if len(item) > 1 or (item and item[0] == 0):  # over a uint8, or non-canonical
            return cls.INVALID
        code = item[0] if item else 0
        return cls.from_code(code) if code <= _MAX_REASON else cls.INVALID


# geth p2p/peer_error.go discReasonToString
_DESCRIPTIONS = {
    DiscReason.REQUESTED: "disconnect requested",
    DiscReason.NETWORK_ERROR: "network error",
    DiscReason.PROTOCOL_ERROR: "breach of protocol",
    DiscReason.USELESS_PEER: "useless peer",
    DiscReason.TOO_MANY_PEERS: "too many peers",
    DiscReason.ALREADY_CONNECTED: "already connected",
    DiscReason.INCOMPATIBLE_VERSION: "incompatible p2p protocol version",
    DiscReason.INVALID_IDENTITY: "invalid node identity",
    DiscReason.QUITTING: "client quitting",
    DiscReason.UNEXPECTED_IDENTITY: "unexpected identity",
    DiscReason.SELF: "connected to self",
    DiscReason.READ_TIMEOUT: "read timeout",
    DiscReason.SUBPROTOCOL_ERROR: "subprotocol error",
    DiscReason.INVALID: "invalid disconnect reason",
}


class DisconnectRequested(EthnodeError):
    """Raised by a sub-protocol handler to drop its peer with a specific reason.

    Any other ``EthnodeError`` from a handler drops the peer with SUBPROTOCOL_ERROR.
    """

    def __init__(self, reason: DiscReason, detail: str = "") -> None:
        super().__init__(f"{reason.description}: {detail}" if detail else reason.description)
        self.reason = reason
        self.detail = detail


__all__ = ["DiscReason", "DisconnectRequested"]
