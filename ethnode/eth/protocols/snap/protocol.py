"""The snap wire protocol, declaratively: message codes and payload schemas per version.

snap/1 serves the state in ranges (accounts, storage slots, bytecodes) and heals with
trie nodes by path. snap/2 (EIP-8189) keeps codes 0x00-0x05, drops GetTrieNodes and
TrieNodes (0x06/0x07: on snap/2 they are invalid codes and drop the peer) and adds
GetBlockAccessLists/BlockAccessLists (0x08/0x09), so a syncing node catches its state up
by replaying block access lists instead of healing node by node.

Every request carries a request id first and a soft byte limit last. Facts from geth
v1.17.10 ``eth/protocols/snap/protocol.go``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ethnode.eth.protocols.eth.protocol import ProtocolViolation
from ethnode.rlp.errors import DecodingError
from ethnode.rlp.sedes import List, Sedes, Tuple, binary, hash32, raw, uint64

PROTOCOL_NAME = "snap"
SNAP1 = 1
SNAP2 = 2
SUPPORTED_VERSIONS = (SNAP2, SNAP1)  # what we offer, highest first (geth ProtocolVersions)
PROTOCOL_LENGTHS = {SNAP2: 10, SNAP1: 8}  # message codes used; geth protocolLengths

GET_ACCOUNT_RANGE = 0x00
ACCOUNT_RANGE = 0x01
GET_STORAGE_RANGES = 0x02
STORAGE_RANGES = 0x03
GET_BYTE_CODES = 0x04
BYTE_CODES = 0x05
GET_TRIE_NODES = 0x06  # snap/1 only
TRIE_NODES = 0x07  # snap/1 only
GET_ACCESS_LISTS = 0x08  # snap/2 on
ACCESS_LISTS = 0x09  # snap/2 on


class SnapViolation(ProtocolViolation):
    """A peer broke the snap protocol: disconnected with SUBPROTOCOL_ERROR, as on eth."""


@dataclass(frozen=True, slots=True)
class Message:
    code: int
    name: str
    schema: Sedes
    request: bool  # a query we serve (a reply to one we never sent is a violation)

    def decode(self, payload: bytes) -> tuple:  # type: ignore[type-arg]
        try:
            return self.schema.decode(payload)  # type: ignore[no-any-return]
        except DecodingError as exc:
            raise SnapViolation(f"invalid message: {self.name}: {exc}") from None


_hashes = List(hash32)
_COMMON = (
    # [id, root, origin, limit, bytes]
    Message(GET_ACCOUNT_RANGE, "GetAccountRange", Tuple(uint64, hash32, hash32, hash32, uint64), True),
    # [id, [[hash, slim account], ...], proof]
    Message(ACCOUNT_RANGE, "AccountRange", Tuple(uint64, List(Tuple(hash32, raw)), List(binary)), False),
    # [id, root, account hashes, origin, limit, bytes]
    Message(GET_STORAGE_RANGES, "GetStorageRanges", Tuple(uint64, hash32, _hashes, binary, binary, uint64), True),
    # [id, [[[slot hash, value], ...], ...], proof]
    Message(STORAGE_RANGES, "StorageRanges", Tuple(uint64, List(List(Tuple(hash32, binary))), List(binary)), False),
    Message(GET_BYTE_CODES, "GetByteCodes", Tuple(uint64, _hashes, uint64), True),
    Message(BYTE_CODES, "ByteCodes", Tuple(uint64, List(binary)), False),
)
_TRIE_NODES = (
    # [id, root, [[account path, storage path...], ...], bytes]; path sets are checked as they are served
    Message(GET_TRIE_NODES, "GetTrieNodes", Tuple(uint64, hash32, List(raw), uint64), True),
    Message(TRIE_NODES, "TrieNodes", Tuple(uint64, List(binary)), False),
)
_ACCESS_LISTS = (
    Message(GET_ACCESS_LISTS, "GetAccessLists", Tuple(uint64, _hashes, uint64), True),
    Message(ACCESS_LISTS, "AccessLists", Tuple(uint64, List(raw)), False),
)

MESSAGES: dict[int, dict[int, Message]] = {
    SNAP1: {m.code: m for m in (*_COMMON, *_TRIE_NODES)},
    SNAP2: {m.code: m for m in (*_COMMON, *_ACCESS_LISTS)},
}


def message(version: int, code: int) -> Message:
    """The message ``code`` means on snap/``version``; SnapViolation if it means nothing there."""
    msg = MESSAGES.get(version, {}).get(code)
    if msg is None:
        raise SnapViolation(f"invalid message code: {code:#x} on snap/{version}")
    return msg


__all__ = [
    "PROTOCOL_NAME", "SNAP1", "SNAP2", "SUPPORTED_VERSIONS", "PROTOCOL_LENGTHS", "SnapViolation", "Message",
    "MESSAGES", "message", "GET_ACCOUNT_RANGE", "ACCOUNT_RANGE", "GET_STORAGE_RANGES", "STORAGE_RANGES",
    "GET_BYTE_CODES", "BYTE_CODES", "GET_TRIE_NODES", "TRIE_NODES", "GET_ACCESS_LISTS", "ACCESS_LISTS",
]
