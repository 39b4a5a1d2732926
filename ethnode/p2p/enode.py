"""Nodes as discovery sees them: identity, endpoint, record; enode URLs; the local node.

Two different "ids" meet here. RLPx and the crypto layer call the 64-byte uncompressed
public key the node id; discovery (geth ``enode.ID``) uses ``keccak256`` of it, 32 bytes,
because Kademlia distances are computed over that hash. ``Node.pubkey`` is the former,
``Node.id`` the latter.

``LocalNode`` owns this node's record: it re-signs it lazily when an entry or the
predicted endpoint changes, bumping the sequence number, so peers holding an older
record learn (from the enr-seq in Ping/Pong) that they should fetch the new one.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ethnode.crypto import keccak256
from ethnode.crypto.errors import InvalidKeyError
from ethnode.crypto.keys import NODE_ID_LENGTH, PrivateKey, PublicKey
from ethnode.errors import EthnodeError
from ethnode.p2p.enr import ENR, ENRError

log = logging.getLogger("ethnode.p2p.discover")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ID_BITS = 256  # discovery ids are keccak256 hashes

# geth enode/localnode.go IP tracker configuration
IPTRACK_MIN_STATEMENTS = 10  # geth iptrackMinStatements
IPTRACK_WINDOW = 300.0  # seconds; geth iptrackWindow 5 min


class NodeURLError(EthnodeError, ValueError):
    """An enode URL or node text that cannot be parsed."""


def parse_ip(value: str | bytes | IPAddress | None) -> IPAddress | None:
    """An address from text or 4/16 packed bytes; IPv4-mapped IPv6 becomes IPv4."""
    if value is None or isinstance(value, ipaddress.IPv4Address):
        return value
    if isinstance(value, ipaddress.IPv6Address):
        ip: IPAddress = value
    elif isinstance(value, bytes | bytearray):
        if len(value) not in (4, 16):
            return None
        ip = ipaddress.ip_address(bytes(value))
    else:
        ip = ipaddress.ip_address(value)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def log_distance(a: bytes, b: bytes) -> int:
    """geth enode.LogDist: the bit length of ``a XOR b`` (0 when equal, 256 at most)."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_length()


def distance_cmp(target: bytes, a: bytes, b: bytes) -> int:
    """-1, 0 or 1 as ``a`` is closer to, as close as, or farther from ``target`` than ``b``."""
    t = int.from_bytes(target, "big")
    da = t ^ int.from_bytes(a, "big")
    db = t ^ int.from_bytes(b, "big")
    return (da > db) - (da < db)


def _locality(ip: IPAddress) -> int:
    if ip.is_unspecified:
        return 0
    if ip.is_loopback:
        return 1
    if ip.is_link_local:
        return 2
    if ip.is_private:
        return 3
    return 4


class Node:
    """An immutable node: public key, endpoint and (for ENR-known nodes) the record.

    Nodes learned from discv4 Neighbors or enode URLs carry no record and have seq 0,
    like geth's v4-compat nodes.
    """

    __slots__ = ("pubkey", "id", "id_int", "ip", "udp", "tcp", "record")

    pubkey: bytes
    id: bytes
    id_int: int
    ip: IPAddress | None
    udp: int
    tcp: int
    record: ENR | None

    def __init__(
        self, pubkey: bytes, ip: IPAddress | str | bytes | None, udp: int = 0, tcp: int = 0,
        *, record: ENR | None = None, node_id: bytes | None = None,
    ) -> None:
        if len(pubkey) != NODE_ID_LENGTH:
            raise ValueError(f"a public key is {NODE_ID_LENGTH} bytes")
        self.pubkey = bytes(pubkey)
        self.id = node_id if node_id is not None else keccak256(self.pubkey)
        self.id_int = int.from_bytes(self.id, "big")
        self.ip = parse_ip(ip)
        self.udp = udp
        self.tcp = tcp
        self.record = record

    @classmethod
    def from_enr(cls, record: ENR) -> Node:
        """geth newNodeWithID: the "most global" of the record's IPv4/IPv6 endpoints."""
        ip4, ip6 = record.ip, record.ip6
        valid4 = ip4 is not None and not ip4.is_multicast
        valid6 = ip6 is not None and not ip6.is_multicast
        udp4, tcp4 = record.udp or 0, record.tcp or 0
        ip: IPAddress | None = None
        udp, tcp = udp4, tcp4
        if valid4 and (not valid6 or _locality(ip4) >= _locality(ip6)):  # type: ignore[arg-type]
            ip = ip4
        elif valid6:
            mapped = parse_ip(ip6)
            ip = mapped
            if isinstance(mapped, ipaddress.IPv6Address):
                udp = record.udp6 if record.udp6 is not None else udp4
                tcp = record.tcp6 if record.tcp6 is not None else tcp4
        return cls(record.public_key.node_id, ip, udp, tcp, record=record, node_id=record.node_id)

    @property
    def seq(self) -> int:
        return self.record.seq if self.record is not None else 0

    @property
    def udp_addr(self) -> tuple[str, int] | None:
        """(host, port) to send discovery packets to, or None when the node has none."""
        if self.ip is None or not self.udp:
            return None
        return str(self.ip), self.udp

    def validate_complete(self) -> None:
        """geth Node.ValidateComplete: a dialable endpoint and a key on the curve."""
        if self.ip is None:
            raise NodeURLError("missing IP address")
        if self.ip.is_multicast or self.ip.is_unspecified:
            raise NodeURLError(f"invalid IP (multicast/unspecified) {self.ip}")
        if not self.udp:
            raise NodeURLError("missing UDP port")
        try:
            PublicKey(self.pubkey)
        except InvalidKeyError as exc:
            raise NodeURLError(str(exc)) from None

    def enode_url(self) -> str:
        """``enode://<128 hex>@ip:tcp`` plus ``?discport=udp`` when the ports differ."""
        if self.ip is None:
            return f"enode://{self.pubkey.hex()}"
        host = f"[{self.ip}]" if self.ip.version == 6 else str(self.ip)
        url = f"enode://{self.pubkey.hex()}@{host}:{self.tcp}"
        if self.udp != self.tcp:
            url += f"?discport={self.udp}"
        return url

    def with_endpoint(self, ip: IPAddress | None, udp: int, tcp: int) -> Node:
        return Node(self.pubkey, ip, udp, tcp, record=self.record, node_id=self.id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return (self.id, self.ip, self.udp, self.tcp, self.seq) == (other.id, other.ip, other.udp, other.tcp,
                                                                    other.seq)

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Node({self.id.hex()[:16]}… {self.ip}:{self.udp}/{self.tcp} seq={self.seq})"

    def terminal_string(self) -> str:
        """In a log line (geth enode.ID.TerminalString): the first 8 bytes of the id."""
        return self.id.hex()[:16]


def parse_enode(url: str) -> Node:
    """geth enode.ParseV4: ``enode://<hex>@ip:tcp[?discport=udp]`` or bare ``enode://<hex>``.

    Hosts must be IP literals: DNS names are rejected rather than resolved here, so that
    parsing never blocks.
    """
    url = url.strip()
    bare = url[len("enode://"):] if url.lower().startswith("enode://") else url
    if "@" not in bare and all(c in "0123456789abcdefABCDEF" for c in bare) and bare:
        return Node(_parse_pubkey(bare), None)
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise NodeURLError(f"invalid enode URL: {exc}") from None
    if parts.scheme != "enode":
        raise NodeURLError('invalid URL scheme, want "enode"')
    if not parts.username:
        raise NodeURLError("enode URL does not contain a node id")
    pubkey = _parse_pubkey(parts.username)
    if not hostname:
        raise NodeURLError("enode URL has no host")
    try:
        ip = parse_ip(hostname)
    except ValueError:
        raise NodeURLError(f"enode URL host {hostname!r} is not an IP address (no DNS names)") from None
    if port is None:
        raise NodeURLError("invalid port")
    udp = port
    query = parse_qs(parts.query)
    if "discport" in query:
        value = query["discport"][0]
        if not (value.isascii() and value.isdigit()) or int(value) > 0xFFFF:
            raise NodeURLError("invalid discport in query")
        udp = int(value)
    return Node(pubkey, ip, udp, port)


def _parse_pubkey(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise NodeURLError("invalid public key (not hex)") from None
    if len(raw) != NODE_ID_LENGTH:
        raise NodeURLError(f"invalid public key (wrong length, want {2 * NODE_ID_LENGTH} hex chars)")
    try:
        PublicKey(raw)
    except InvalidKeyError as exc:
        raise NodeURLError(f"invalid public key ({exc})") from None
    return raw


def parse_node(text: str) -> Node:
    """An ``enode://`` URL or an ``enr:`` record, as geth's enode.Parse accepts."""
    text = text.strip()
    if text.startswith("enr:"):
        try:
            return Node.from_enr(ENR.from_text(text))
        except ENRError as exc:
            raise NodeURLError(f"invalid record: {exc}") from None
    if text.startswith("enode://"):
        return parse_enode(text)
    raise NodeURLError("missing 'enr:' prefix for base64-encoded record")


class IPTracker:
    """Predicts this node's external endpoint from what bonded peers say it is.

    A simplified geth netutil.IPTracker: the latest statement per reporting IP within
    ``window`` counts as one vote; a prediction needs ``min_statements`` of them, so one
    peer cannot move our endpoint.
    """

    def __init__(
        self, window: float = IPTRACK_WINDOW, min_statements: int = IPTRACK_MIN_STATEMENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.min_statements = min_statements
        self.clock = clock
        self._statements: dict[IPAddress, tuple[tuple[IPAddress, int], float]] = {}

    def add_statement(self, source: IPAddress, endpoint: tuple[IPAddress, int]) -> None:
        self._statements[source] = (endpoint, self.clock())

    def predict(self) -> tuple[IPAddress, int] | None:
        cutoff = self.clock() - self.window
        for source in [s for s, (_, t) in self._statements.items() if t < cutoff]:
            del self._statements[source]
        if len(self._statements) < self.min_statements:
            return None
        votes: dict[tuple[IPAddress, int], int] = {}
        for endpoint, _ in self._statements.values():
            votes[endpoint] = votes.get(endpoint, 0) + 1
        return max(votes.items(), key=lambda kv: kv[1])[0]


class LocalNode:
    """This node's record, re-signed on demand with seq+1 whenever its content changed.

    ``seq`` starts at the value the node DB remembers, or the current time in
    milliseconds (geth's localSeq) so a fresh database still yields a higher seq than any
    record published before; ``on_seq`` persists each new value.
    """

    def __init__(
        self, key: PrivateKey, *, seq: int | None = None, on_seq: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.pubkey = key.node_id
        self.id = keccak256(self.pubkey)
        self.seq = seq if seq else int(time.time() * 1000)
        self._on_seq = on_seq
        self._entries: dict[bytes, Any] = {}
        self._static_ip: dict[int, IPAddress] = {}
        self._fallback_ip: dict[int, IPAddress] = {}
        self._fallback_udp = 0
        self._tracker = {4: IPTracker(clock=clock), 6: IPTracker(clock=clock)}
        self._current: Node | None = None

    # entries
    def set(self, key: str | bytes, value: Any) -> None:
        k = key.encode() if isinstance(key, str) else key
        if value is None:
            self.delete(k)
            return
        if self._entries.get(k, _MISSING) != value:
            self._entries[k] = value
            self._current = None

    def delete(self, key: str | bytes) -> None:
        k = key.encode() if isinstance(key, str) else key
        if self._entries.pop(k, _MISSING) is not _MISSING:
            self._current = None

    # endpoint
    def set_static_ip(self, ip: IPAddress | str) -> None:
        addr = parse_ip(ip)
        assert addr is not None
        self._static_ip[addr.version] = addr
        self._update_endpoints()

    def set_fallback_ip(self, ip: IPAddress | str) -> None:
        addr = parse_ip(ip)
        assert addr is not None
        self._fallback_ip[addr.version] = addr
        self._update_endpoints()

    def set_fallback_udp(self, port: int) -> None:
        self._fallback_udp = port
        self._update_endpoints()

    def set_tcp(self, port: int) -> None:
        self.set("tcp", port or None)

    def udp_endpoint_statement(self, source: IPAddress, endpoint: tuple[IPAddress, int]) -> None:
        """A bonded peer told us (in Ping.to or Pong.to) where it sees us."""
        ip, port = endpoint
        if ip is None or ip.is_unspecified or not port:
            return
        self._tracker[ip.version].add_statement(source, (ip, port))
        self._update_endpoints()

    def _endpoint(self, version: int) -> tuple[IPAddress | None, int]:
        ip = self._fallback_ip.get(version)
        port = self._fallback_udp
        if version in self._static_ip:
            ip = self._static_ip[version]
        else:
            predicted = self._tracker[version].predict()
            if predicted is not None:
                ip, port = predicted
        return ip, port

    def _update_endpoints(self) -> None:
        ip4, udp4 = self._endpoint(4)
        ip6, udp6 = self._endpoint(6)
        self.set("ip", ip4.packed if ip4 is not None and not ip4.is_unspecified else None)
        self.set("ip6", ip6.packed if ip6 is not None and not ip6.is_unspecified else None)
        self.set("udp", udp4 or None)
        self.set("udp6", udp6 if udp6 and udp6 != udp4 else None)

    # record
    @property
    def node(self) -> Node:
        """The current signed node; signing happens here, only after a change."""
        if self._current is None:
            self.seq += 1
            if self._on_seq is not None:
                self._on_seq(self.seq)
            record = ENR.create(self.key, self.seq, self._entries)
            self._current = Node.from_enr(record)
            log.info("New local node record seq=%d id=%s ip=%s udp=%s tcp=%s", self.seq,
                     self.id.hex()[:16], self._current.ip, self._current.udp, self._current.tcp)
        return self._current

    @property
    def record(self) -> ENR:
        record = self.node.record
        assert record is not None
        return record


_MISSING = object()

__all__ = [
    "Node", "LocalNode", "IPTracker", "NodeURLError", "IPAddress", "parse_enode", "parse_node", "parse_ip",
    "log_distance", "distance_cmp", "ID_BITS",
]
