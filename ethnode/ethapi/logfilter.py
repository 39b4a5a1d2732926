"""Log queries over stored receipts: criteria decoding, matching and the range scan.

geth ``eth/filters/filter.go`` and ``FilterCriteria.UnmarshalJSON``. Decoding errors carry
geth v1.17.8's texts (checked against a running geth) so that clients branching on them
behave the same. geth searches big ranges through its log index (filtermaps); ethnode has
none, so every query is geth's "unindexed" search: per block, the header bloom first and
the receipts only when the bloom may match. A long scan yields to the event loop every
``SCAN_BATCH`` blocks and, if the chain reorganised meanwhile, drops the matches past the
fork point and scans again from there (geth trims its matches the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.types.header import Header
from ethnode.core.types.receipt import bloom_bits
from ethnode.ethapi.marshal import log_fields
from ethnode.rpc.hexutil import HexError, decode_data, decode_quantity, json_type
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError, server_error

MAX_TOPICS = 4  # geth maxTopics: topic positions, LOG0..LOG4
MAX_SUB_TOPICS = 1000  # geth maxSubTopics: alternatives in one topic position
LOG_QUERY_LIMIT = 1000  # geth --rpc.logquerylimit default: addresses, or alternatives per position
RANGE_LIMIT = 0  # geth --rpc.rangelimit default: toBlock - fromBlock is not limited
SCAN_BATCH = 256  # blocks scanned between yields to the event loop (geth searches on its own goroutine)
MAX_INT64 = 2**63 - 1

# Block tags as geth's rpc.BlockNumber encodes them: negative numbers.
EARLIEST, SAFE, FINALIZED, LATEST, PENDING = -5, -4, -3, -2, -1
TAGS = {"earliest": EARLIEST, "safe": SAFE, "finalized": FINALIZED, "latest": LATEST, "pending": PENDING}


def invalid_params(message: str) -> RPCError:
    return RPCError(INVALID_PARAMS, message)


ERR_INVALID_BLOCK_RANGE = "invalid block range params"  # geth errInvalidBlockRange (-32602)
ERR_RANGE_INTO_FUTURE = "block range extends beyond current head block"  # errBlockRangeIntoFuture (-32602)
ERR_PENDING_LOGS = "pending logs are not supported"  # errPendingLogsUnsupported (-32602)
ERR_UNKNOWN_BLOCK = "unknown block"  # errUnknownBlock (-32000)
ERR_EXCEED_QUERY_LIMIT = "exceed max addresses or topics per search position"  # errExceedLogQueryLimit (-32000)


class _Bad(ValueError):
    """A criteria object geth's UnmarshalJSON rejects; the text is geth's."""


@dataclass(frozen=True)
class FilterCriteria:
    """A decoded eth_getLogs / eth_newFilter argument (geth ethereum.FilterQuery).

    ``from_block``/``to_block``: None when absent, a tag as a negative number (``TAGS``).
    ``topics``: one tuple per position; an empty tuple matches anything there, but a log
    still needs at least as many topics as there are positions (geth filterLogs).
    """

    block_hash: bytes | None = None
    from_block: int | None = None
    to_block: int | None = None
    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...], ...] = ()

    def check_query_limit(self, limit: int = LOG_QUERY_LIMIT) -> None:
        """geth's --rpc.logquerylimit check (0: off), made before any query or subscription."""
        if limit and (len(self.addresses) > limit or any(len(t) > limit for t in self.topics)):
            raise server_error(ERR_EXCEED_QUERY_LIMIT)


def _block_number(value: Any) -> int:
    """geth rpc.BlockNumber.UnmarshalJSON: a tag or a hex quantity up to int64."""
    if isinstance(value, str) and value in TAGS:
        return TAGS[value]
    if not isinstance(value, str):
        raise _Bad("hex string without 0x prefix")  # geth strips the quotes and decodes what is left
    try:
        number = decode_quantity(value, 64)
    except HexError as exc:
        raise _Bad(str(exc)) from None
    if number > MAX_INT64:
        raise _Bad("block number larger than int64")
    return number


def _block_hash(value: Any) -> bytes:
    """common.Hash.UnmarshalJSON, its checks in geth's order, worded as encoding/json words them in a struct."""
    where = "Go struct field input.blockHash of type common.Hash"
    if not isinstance(value, str):
        raise _Bad(f"json: cannot unmarshal non-string into {where}")
    if value and value[:2] not in ("0x", "0X"):
        raise _Bad(f"json: cannot unmarshal hex string without 0x prefix into {where}")
    body = value[2:]
    if len(body) % 2:
        raise _Bad(f"json: cannot unmarshal hex string of odd length into {where}")
    if len(body) != 64:
        raise _Bad(f"hex string has length {len(body)}, want 64 for common.Hash")
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise _Bad(f"json: cannot unmarshal invalid hex string into {where}") from None


def _fixed(value: str, length: int, what: str) -> bytes:
    """geth decodeAddress / decodeTopic: hexutil.Decode, then the length."""
    try:
        raw = decode_data(value)
    except HexError as exc:
        raise _Bad(str(exc)) from None
    if len(raw) != length:
        raise _Bad(f"hex has invalid length {len(raw)} after decoding; expected {length} for {what}")
    return raw


def _addresses(value: Any) -> tuple[bytes, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            return (_fixed(value, 20, "address"),)
        except _Bad as exc:
            raise _Bad(f"invalid address: {exc}") from None
    if not isinstance(value, list):
        raise _Bad("invalid addresses in query")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _Bad(f"non-string address at index {i}")
        try:
            out.append(_fixed(item, 20, "address"))
        except _Bad as exc:
            raise _Bad(f"invalid address at index {i}: {exc}") from None
    return tuple(out)


def _check_topics_type(value: Any) -> None:
    if value is not None and not isinstance(value, list):
        raise _Bad(f"json: cannot unmarshal {json_type(value)} into Go struct field input.topics of type "
                   "[]interface {}")


def _topics(value: Any) -> tuple[tuple[bytes, ...], ...]:
    if value is None:
        return ()
    _check_topics_type(value)
    if len(value) > MAX_TOPICS:
        raise _Bad("exceed max topics")
    out: list[tuple[bytes, ...]] = []
    for position in value:
        if position is None:
            out.append(())
        elif isinstance(position, str):
            out.append((_fixed(position, 32, "topic"),))
        elif isinstance(position, list):
            if len(position) > MAX_SUB_TOPICS:
                raise _Bad("exceed max topics")
            alternatives: list[bytes] = []
            for item in position:
                if item is None:  # a null alternative makes the position a wildcard; geth stops reading there
                    alternatives = []
                    break
                if not isinstance(item, str):
                    raise _Bad("invalid topic(s)")
                alternatives.append(_fixed(item, 32, "topic"))
            out.append(tuple(alternatives))
        else:
            raise _Bad("invalid topic(s)")
    return tuple(out)


def parse_criteria(value: Any, index: int = 0) -> FilterCriteria:
    """geth FilterCriteria.UnmarshalJSON; errors are -32602 "invalid argument N: ..." as geth's rpc words them."""
    if value is None:
        raise invalid_params(f"missing value for required argument {index}")  # geth: null is no value here
    try:
        if not isinstance(value, dict):
            raise _Bad(f"json: cannot unmarshal {json_type(value)} into Go value of type filters.input")
        fields = {str(k).lower(): v for k, v in value.items()}  # encoding/json matches field names case-insensitively
        raw_hash, raw_from, raw_to = fields.get("blockhash"), fields.get("fromblock"), fields.get("toblock")
        block_hash = None if raw_hash is None else _block_hash(raw_hash)
        from_block = None if raw_from is None else _block_number(raw_from)
        to_block = None if raw_to is None else _block_number(raw_to)
        _check_topics_type(fields.get("topics"))  # a JSON type error comes before geth's own checks
        if block_hash is not None and (from_block is not None or to_block is not None):
            raise _Bad("cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
        return FilterCriteria(block_hash, from_block, to_block, _addresses(fields.get("address")),
                              _topics(fields.get("topics")))
    except _Bad as exc:
        raise invalid_params(f"invalid argument {index}: {exc}") from None


class LogMatcher:
    """Addresses and topic alternatives, with their bloom bits computed once per query."""

    def __init__(self, addresses: Sequence[bytes], topics: Sequence[Sequence[bytes]]) -> None:
        self.addresses = frozenset(addresses)
        self.topics = [frozenset(t) for t in topics]
        self._address_masks = [bloom_bits(a) for a in addresses]
        self._topic_masks = [[bloom_bits(t) for t in alts] for alts in topics if alts]

    @classmethod
    def of(cls, criteria: FilterCriteria) -> LogMatcher:
        return cls(criteria.addresses, criteria.topics)

    def bloom_may_match(self, bloom: bytes) -> bool:
        """geth bloomFilter: some address and, per position, some alternative may be in the block.

        An empty bloom answers no even to match-all criteria, so the genesis (whose receipts
        are not stored) and log-less blocks never cost a receipts read.
        """
        bits = int.from_bytes(bloom, "big")
        if not bits:  # every log sets its address's bits: an empty bloom is a block without logs
            return False
        if self._address_masks and not any(bits & m == m for m in self._address_masks):
            return False
        return all(any(bits & m == m for m in masks) for masks in self._topic_masks)

    def matches(self, address: bytes, topics: Sequence[bytes]) -> bool:
        """geth filterLogs (without the block bounds)."""
        if self.addresses and address not in self.addresses:
            return False
        if len(self.topics) > len(topics):
            return False
        return all(not alts or topic in alts for alts, topic in zip(self.topics, topics, strict=False))


def _terminal(block_hash: bytes) -> str:
    """geth common.Hash.TerminalString."""
    return f"{block_hash[:3].hex()}…{block_hash[29:].hex()}"


def block_logs(chain: Any, header: Header, matcher: LogMatcher, *, removed: bool = False) -> list[dict[str, Any]]:
    """The matching logs of one block in geth's JSON shape; logIndex counts within the block.

    Receipts are read only when the header bloom may match; the body (for tx hashes) only
    when some log does. A block whose receipts are not stored (imported with --noexec)
    fails as geth's "failed to get logs" does.
    """
    if not matcher.bloom_may_match(header.bloom):
        return []
    block_hash, number = header.hash, header.number
    receipts = chain.get_receipts(block_hash, number)
    if receipts is None:
        raise server_error(f"failed to get logs for block #{number} (0x{_terminal(block_hash)})")
    found: list[tuple[Any, int, int]] = []
    log_index = 0
    for tx_index, receipt in enumerate(receipts):
        for lg in receipt.logs:
            if matcher.matches(lg.address, lg.topics):
                found.append((lg, tx_index, log_index))
            log_index += 1
    if not found:
        return []
    block = chain.get_block(block_hash, number)
    if block is None:
        raise server_error(f"failed to get logs for block #{number} (0x{_terminal(block_hash)})")
    txs = block.transactions
    out = [log_fields(lg, header, txs[tx_index].hash, tx_index, log_index) for lg, tx_index, log_index in found]
    if removed:
        for fields in out:
            fields["removed"] = True
    return out


def _tag_number(chain: Any, tag: int) -> int:
    """A block tag resolved to a number, with geth filter.go's errors."""
    if tag == LATEST:
        return chain.current_block.number  # type: ignore[no-any-return]
    if tag == EARLIEST:
        return 0  # geth: the history pruning cutoff; ethnode keeps all history
    if tag in (SAFE, FINALIZED):
        read = rawdb.read_safe_block_hash if tag == SAFE else rawdb.read_finalized_block_hash
        name = "safe" if tag == SAFE else "finalized"
        block_hash = read(chain.db)
        header = chain.get_header_by_hash(block_hash) if block_hash is not None else None
        if header is None:
            raise server_error(f"{name} header not found")
        return header.number  # type: ignore[no-any-return]
    if tag < 0:
        raise server_error("negative block number")
    return tag


def resolve_range(chain: Any, criteria: FilterCriteria, range_limit: int = RANGE_LIMIT) -> tuple[int, int]:
    """geth FilterAPI.GetLogs + Filter.Logs: (first, last) block numbers of a range query."""
    begin = LATEST if criteria.from_block is None else criteria.from_block
    end = LATEST if criteria.to_block is None else criteria.to_block
    if begin >= 0 and end >= 0 and begin > end:
        raise invalid_params(ERR_INVALID_BLOCK_RANGE)
    if PENDING in (begin, end):
        raise invalid_params(ERR_PENDING_LOGS)
    first, last = _tag_number(chain, begin), _tag_number(chain, end)
    # geth compares the limit against "latest" before resolving it (so any limit rejects a
    # query to latest); comparing resolved numbers is what the limit means.
    if range_limit and last - first > range_limit:
        raise invalid_params(f"exceed maximum block range {range_limit}")
    if first > last:
        raise invalid_params(ERR_INVALID_BLOCK_RANGE)
    if last > chain.current_block.number:
        raise invalid_params(ERR_RANGE_INTO_FUTURE)
    return first, last


def _fork_point(chain: Any, header: Header) -> int:
    """The highest number at or below ``header`` whose block is still canonical."""
    while header is not None and chain.get_canonical_hash(header.number) != header.hash:
        header = chain.get_header(header.parent_hash, header.number - 1)
    return -1 if header is None else header.number  # type: ignore[no-any-return]


async def range_logs(chain: Any, first: int, last: int, matcher: LogMatcher) -> list[dict[str, Any]]:
    """geth unindexedLogs over canonical blocks ``first..last``, yielding to the loop as it goes."""
    matches: list[dict[str, Any]] = []
    number = first
    while number <= last:
        stop = min(last, number + SCAN_BATCH - 1)
        scanned: Header | None = None
        for n in range(number, stop + 1):
            if n > chain.current_block.number:
                raise invalid_params(ERR_INVALID_BLOCK_RANGE)  # the chain got shorter under the query
            scanned = chain.get_header_by_number(n)
            if scanned is None:
                raise server_error("header not found")
            matches.extend(block_logs(chain, scanned, matcher))
        number = stop + 1
        if number > last:
            break
        await asyncio.sleep(0)  # let the node run; the chain may move meanwhile
        assert scanned is not None
        fork = _fork_point(chain, scanned)
        if fork < scanned.number:  # reorged under us: forget what is no longer canonical, rescan from there
            matches = [m for m in matches if int(m["blockNumber"], 16) <= fork]
            number = max(first, fork + 1)
    return matches


__all__ = [
    "FilterCriteria", "LogMatcher", "parse_criteria", "block_logs", "resolve_range", "range_logs",
    "invalid_params", "server_error", "MAX_TOPICS", "MAX_SUB_TOPICS", "LOG_QUERY_LIMIT", "RANGE_LIMIT",
    "SCAN_BATCH", "TAGS", "EARLIEST", "SAFE", "FINALIZED", "LATEST", "PENDING", "ERR_INVALID_BLOCK_RANGE",
    "ERR_RANGE_INTO_FUTURE", "ERR_PENDING_LOGS", "ERR_UNKNOWN_BLOCK", "ERR_EXCEED_QUERY_LIMIT",
]
