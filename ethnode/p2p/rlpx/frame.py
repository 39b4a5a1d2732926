"""The RLPx frame codec (devp2p rlpx.md "Framing"; geth p2p/rlpx/rlpx.go).

One ``FrameCodec`` per connection holds all of its frame crypto: the egress and ingress
AES-256-CTR streams (IV zero, keyed by aes-secret) and the egress and ingress keccak MACs,
seeded with what the handshake produced ((mac-secret ^ nonce) || handshake packet).
It is sans-IO and coarse, one call per frame:

    frame = codec.write(code, payload)           # header || header-mac || body || frame-mac
    need = codec.read_header(first_32_bytes)     # padded body + 16-byte MAC still to read
    code, payload = codec.read_body(next_need_bytes)

The implementation is the Rust one when ``ethnode._rust`` is built, else the pure twin
(see ``ethnode.backends()``): same API, bytes and errors. Every error is fatal for the
connection; the stream state is out of step with the peer's once one is raised.
"""

from __future__ import annotations

from ethnode._native import RUST_MODULE, implementation, select
from ethnode.p2p.rlpx._frame_pure import MAX_FRAME_SIZE
from ethnode.p2p.rlpx.frame_errors import FrameError, FrameTooLargeError, MACMismatchError

_mod = select("rlpx_frame", RUST_MODULE, "ethnode.p2p.rlpx._frame_pure")
FrameCodec = _mod.FrameCodec

HEADER_SIZE = 32  # what a reader takes before every frame: encrypted header (16) + MAC (16)


def frame_implementation(kind: str) -> type:
    """The ``"compiled"`` or ``"pure"`` FrameCodec class, for tests and benchmarks."""
    return implementation(kind, RUST_MODULE, "ethnode.p2p.rlpx._frame_pure").FrameCodec  # type: ignore[no-any-return]


__all__ = [
    "FrameCodec",
    "frame_implementation",
    "FrameError",
    "MACMismatchError",
    "FrameTooLargeError",
    "MAX_FRAME_SIZE",
    "HEADER_SIZE",
]
