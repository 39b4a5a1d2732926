"""RLPx frame error classes, shared by the compiled and the pure codec.

They live apart from ``frame.py`` so that the Rust extension can import them without
importing the module that imports it. Any of them is fatal for the connection: the
codec's stream state is then out of step with the peer's.
"""

from ethnode.errors import EthnodeError


class FrameError(EthnodeError):
    """A frame cannot be read or written: bad size, bad message code, calls out of order."""


class MACMismatchError(FrameError):
    """A header or frame MAC did not verify: the peer or the wire corrupted the stream."""


class FrameTooLargeError(FrameError):
    """The message code plus payload do not fit the 3-byte frame size field."""


__all__ = ["FrameError", "MACMismatchError", "FrameTooLargeError"]
