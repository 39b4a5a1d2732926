"""discv5's wire protocol, sans-IO: packets, handshakes, sessions, messages (geth p2p/discover/v5wire).

    crypto        masking, AES-GCM and ECDH on the compiled backend or its pure twin; HKDF, ID proofs
    messages      PING, PONG, FINDNODE, NODES, TALKREQ, TALKRESP and their RLP
    session       keys per (node id, address) in an LRU; challenges in flight
    codec         the packet codec: encode/decode with the handshake
"""

from ethnode.p2p.discover.v5wire.codec import Codec, InvalidHeader, PacketError, Unknown, Whoareyou
from ethnode.p2p.discover.v5wire.messages import (
    Findnode,
    InvalidRequestID,
    Message,
    Nodes,
    Ping,
    Pong,
    TalkRequest,
    TalkResponse,
)
from ethnode.p2p.discover.v5wire.session import Session, SessionCache

__all__ = [
    "Codec", "InvalidHeader", "PacketError", "Unknown", "Whoareyou", "Message", "Ping", "Pong", "Findnode",
    "Nodes", "TalkRequest", "TalkResponse", "InvalidRequestID", "Session", "SessionCache",
]
