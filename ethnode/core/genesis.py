"""geth-format genesis.json: the chain config, the initial state and the genesis header.

The genesis hash is the chain's identity (it seeds the fork ID and every peer's Status
check), so the header is assembled exactly as geth's ``Genesis.ToBlock`` does: which
optional fields exist depends on the forks active at genesis, and the state root comes
from the allocation through the Merkle Patricia trie.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from os import PathLike
from typing import Any

from ethnode import rlp, strictjson
from ethnode.core.chainconfig import ChainConfig, ChainConfigError
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header
from ethnode.crypto.keccak import keccak256
from ethnode.errors import EthnodeError
from ethnode.rlp.sedes import Record, hash32, uint64, uint256
from ethnode.trie import EMPTY_ROOT, secure_trie_root

GENESIS_GAS_LIMIT = 4712388  # geth params.GenesisGasLimit: used when gasLimit is 0
GENESIS_DIFFICULTY = 131072  # geth params.GenesisDifficulty: used when difficulty and mixHash are unset
INITIAL_BASE_FEE = 1_000_000_000  # geth params.InitialBaseFee (1 gwei): London-at-genesis default

EMPTY_CODE_HASH = keccak256(b"")  # geth types.EmptyCodeHash
EMPTY_REQUESTS_HASH = hashlib.sha256(b"").digest()  # geth types.EmptyRequestsHash (EIP-7685)
# geth types.EmptyBlockAccessListHash (EIP-7928): keccak256(rlp([])), the same bytes as the empty uncle hash
EMPTY_BLOCK_ACCESS_LIST_HASH = EMPTY_UNCLE_HASH
ZERO_HASH = bytes(32)

_INT_TEXT = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")  # geth HexOrDecimal: no sign, no spaces


class GenesisError(EthnodeError):
    """A genesis file that cannot be used; the message names the offending field."""


class StateAccount(Record):
    """An account as stored in the state trie (geth types.StateAccount), keyed by keccak(address)."""

    fields = (("nonce", uint64), ("balance", uint256), ("storage_root", hash32), ("code_hash", hash32))


@dataclass(frozen=True)
class GenesisAccount:
    """One ``alloc`` entry. Storage maps 32-byte slots to 32-byte values."""

    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: Mapping[bytes, bytes] = field(default_factory=dict, hash=False)

    def storage_root(self, nodes: dict[bytes, bytes] | None = None) -> bytes:
        """Root of the storage trie: keccak(slot) -> rlp(value without leading zeros); zero = absent."""
        return secure_trie_root(
            ((slot, rlp.encode(value.lstrip(b"\0"))) for slot, value in self.storage.items() if any(value)), nodes
        )

    def state_account(self, nodes: dict[bytes, bytes] | None = None) -> StateAccount:
        return StateAccount(self.nonce, self.balance, self.storage_root(nodes), keccak256(self.code))


def state_root(alloc: Mapping[bytes, GenesisAccount]) -> bytes:
    """The state root of an allocation (address -> account)."""
    return secure_trie_root((addr, acct.state_account().encode()) for addr, acct in alloc.items())


def state_nodes(alloc: Mapping[bytes, GenesisAccount]) -> tuple[bytes, dict[bytes, bytes]]:
    """(state root, every trie node and code blob keyed by its hash): the genesis state as stored.

    Written at ``init`` so that block 1 executes on top of it; code sits beside the nodes
    because both are content-addressed (see ``rawdb.schema.STATE_PREFIX``).
    """
    nodes: dict[bytes, bytes] = {}
    accounts = []
    for addr, acct in alloc.items():
        if acct.code:
            nodes[keccak256(acct.code)] = acct.code
        accounts.append((addr, acct.state_account(nodes).encode()))
    return secure_trie_root(accounts, nodes), nodes


@dataclass(frozen=True)
class Genesis:
    """A parsed genesis specification (geth core.Genesis). ``None`` means "not given"."""

    config: ChainConfig
    alloc: Mapping[bytes, GenesisAccount] = field(hash=False)
    gas_limit: int
    difficulty: int | None
    nonce: int = 0
    timestamp: int = 0
    extra_data: bytes = b""
    mix_hash: bytes = ZERO_HASH
    coinbase: bytes = bytes(20)
    number: int = 0
    gas_used: int = 0
    parent_hash: bytes = ZERO_HASH
    base_fee: int | None = None
    excess_blob_gas: int | None = None
    blob_gas_used: int | None = None
    slot_number: int | None = None

    @classmethod
    def from_json(cls, obj: Any) -> Genesis:
        """Parse the decoded JSON of a geth genesis file; raises ``GenesisError`` naming the field."""
        if not isinstance(obj, Mapping):
            raise GenesisError("genesis: expected a JSON object")
        if obj.get("config") is None:
            raise GenesisError("config: missing (genesis has no chain configuration)")
        try:
            config = ChainConfig.from_json(obj["config"])
        except ChainConfigError as exc:
            raise GenesisError(str(exc)) from None
        for required in ("gasLimit", "difficulty", "alloc"):
            if obj.get(required) is None:
                raise GenesisError(f"{required}: missing (required by geth)")
        return cls(
            config=config,
            alloc=_alloc(obj["alloc"]),
            gas_limit=_uint(obj["gasLimit"], "gasLimit", 64),
            difficulty=_uint(obj["difficulty"], "difficulty", 256),
            nonce=_opt_uint(obj, "nonce", 64) or 0,
            timestamp=_opt_uint(obj, "timestamp", 64) or 0,
            extra_data=_hex_bytes(obj["extraData"], "extraData") if obj.get("extraData") is not None else b"",
            mix_hash=_fixed(obj, "mixHash", 32) or ZERO_HASH,
            coinbase=_fixed(obj, "coinbase", 20) or bytes(20),
            number=_opt_uint(obj, "number", 64) or 0,
            gas_used=_opt_uint(obj, "gasUsed", 64) or 0,
            parent_hash=_fixed(obj, "parentHash", 32) or ZERO_HASH,
            base_fee=_opt_uint(obj, "baseFeePerGas", 256),
            excess_blob_gas=_opt_uint(obj, "excessBlobGas", 64),
            blob_gas_used=_opt_uint(obj, "blobGasUsed", 64),
            slot_number=_opt_uint(obj, "slotNumber", 64),
        )

    @classmethod
    def load(cls, path: str | PathLike[str]) -> Genesis:
        """Read and parse a genesis.json file."""
        try:
            obj = strictjson.load_file(str(path))
        except OSError as exc:
            raise GenesisError(f"{path}: cannot read: {exc.strerror}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise GenesisError(f"{path}: not valid JSON: {exc}") from None
        return cls.from_json(obj)

    @cached_property
    def state_root(self) -> bytes:
        return state_root(self.alloc)

    @cached_property
    def header(self) -> Header:
        """The genesis header, field presence by the forks active at genesis (geth ToBlock)."""
        return self.to_header()

    def to_header(self, state_root: bytes | None = None) -> Header:
        """The genesis header; ``state_root`` replaces the allocation's root when given.

        The override serves networks whose full allocation is not at hand but whose genesis
        state root is known (geth's ``toBlockWithRoot``).
        """
        cfg, num, time = self.config, self.number, self.timestamp
        difficulty = self.difficulty
        if difficulty is None:
            difficulty = GENESIS_DIFFICULTY if self.mix_hash == ZERO_HASH else 0
        base_fee = self.base_fee
        if cfg.is_london(0) and base_fee is None:
            base_fee = INITIAL_BASE_FEE
        optional: dict[str, Any] = {"base_fee": base_fee}
        if cfg.is_shanghai(num, time):
            optional["withdrawals_root"] = EMPTY_ROOT
        if cfg.is_cancun(num, time):
            optional["blob_gas_used"] = self.blob_gas_used or 0
            optional["excess_blob_gas"] = self.excess_blob_gas or 0
            optional["parent_beacon_root"] = ZERO_HASH  # EIP-4788: genesis has no parent
        if cfg.is_prague(num, time):
            optional["requests_hash"] = EMPTY_REQUESTS_HASH
        if cfg.is_amsterdam(num, time):
            optional["block_access_list_hash"] = EMPTY_BLOCK_ACCESS_LIST_HASH
            optional["slot_number"] = self.slot_number or 0
        return Header(
            parent_hash=self.parent_hash,
            uncle_hash=EMPTY_UNCLE_HASH,
            coinbase=self.coinbase,
            state_root=self.state_root if state_root is None else state_root,
            tx_root=EMPTY_ROOT,
            receipt_root=EMPTY_ROOT,
            bloom=bytes(256),
            difficulty=difficulty,
            number=num,
            gas_limit=self.gas_limit or GENESIS_GAS_LIMIT,
            gas_used=self.gas_used,
            time=time,
            extra=self.extra_data,
            mix_digest=self.mix_hash,
            nonce=self.nonce.to_bytes(8, "big"),
            **optional,
        )

    @property
    def hash(self) -> bytes:
        """The genesis block hash: the chain's identity."""
        return self.header.hash


def load_genesis(path: str | PathLike[str]) -> Genesis:
    """Read a geth-format genesis.json; ``GenesisError`` names what is wrong with it."""
    return Genesis.load(path)


# --- JSON field parsing: geth's HexOrDecimal numbers, 0x-prefixed byte strings ---------


def _uint(value: Any, where: str, bits: int) -> int:
    """A JSON number or a decimal / 0x-hex string (geth math.HexOrDecimal64/256)."""
    if isinstance(value, bool):
        raise GenesisError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, str):
        if not _INT_TEXT.fullmatch(value):
            raise GenesisError(f"{where}: not a hex or decimal integer: {value!r}")
        value = int(value, 0) if value[:2] in ("0x", "0X") else int(value, 10)
    if not isinstance(value, int) or value < 0:
        raise GenesisError(f"{where}: expected a non-negative integer, got {value!r}")
    if value >> bits:
        raise GenesisError(f"{where}: {value} does not fit in {bits} bits")
    return value


def _opt_uint(obj: Mapping[str, Any], key: str, bits: int) -> int | None:
    value = obj.get(key)
    return None if value is None else _uint(value, key, bits)


def _hex_bytes(value: Any, where: str) -> bytes:
    """A 0x-prefixed hex string (geth hexutil.Bytes)."""
    if not isinstance(value, str) or value[:2] not in ("0x", "0X"):
        raise GenesisError(f"{where}: expected a 0x-prefixed hex string, got {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise GenesisError(f"{where}: invalid hex string {value!r}") from None


def _fixed(obj: Mapping[str, Any], key: str, length: int) -> bytes | None:
    value = obj.get(key)
    if value is None:
        return None
    data = _hex_bytes(value, key)
    if len(data) != length:
        raise GenesisError(f"{key}: expected {length} bytes, got {len(data)}")
    return data


def _word(text: Any, where: str) -> bytes:
    """A storage key or value: up to 32 bytes of hex, 0x optional, left-padded (geth storageJSON)."""
    if not isinstance(text, str):
        raise GenesisError(f"{where}: expected a hex string, got {text!r}")
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if len(digits) > 64:
        raise GenesisError(f"{where}: more than 32 bytes of hex")
    try:
        return bytes.fromhex(digits).rjust(32, b"\0")
    except ValueError:
        raise GenesisError(f"{where}: invalid hex {text!r}") from None


def _alloc(obj: Any) -> dict[bytes, GenesisAccount]:
    if not isinstance(obj, Mapping):
        raise GenesisError("alloc: expected a JSON object of address -> account")
    alloc: dict[bytes, GenesisAccount] = {}
    for key, entry in obj.items():
        where = f"alloc.{key}"
        digits = key[2:] if key[:2] in ("0x", "0X") else key
        try:
            addr = bytes.fromhex(digits)
        except ValueError:
            addr = b""
        if len(addr) != 20:
            raise GenesisError(f"{where}: not a 20-byte hex address")
        if not isinstance(entry, Mapping):
            raise GenesisError(f"{where}: expected a JSON object")
        if entry.get("balance") is None:
            raise GenesisError(f"{where}.balance: missing (required by geth)")
        storage: dict[bytes, bytes] = {}
        raw_storage = entry.get("storage")
        if raw_storage is not None:
            if not isinstance(raw_storage, Mapping):
                raise GenesisError(f"{where}.storage: expected a JSON object of slot -> value")
            for slot, value in raw_storage.items():
                storage[_word(slot, f"{where}.storage key")] = _word(value, f"{where}.storage[{slot}]")
        code = entry.get("code")
        alloc[addr] = GenesisAccount(
            balance=_uint(entry["balance"], f"{where}.balance", 256),
            nonce=_opt_uint(entry, "nonce", 64) or 0,
            code=_hex_bytes(code, f"{where}.code") if code is not None else b"",
            storage=storage,
        )
    return alloc


__all__ = [
    "Genesis", "GenesisAccount", "GenesisError", "StateAccount", "load_genesis", "state_root", "state_nodes",
    "EMPTY_CODE_HASH", "EMPTY_REQUESTS_HASH", "EMPTY_BLOCK_ACCESS_LIST_HASH",
    "GENESIS_GAS_LIMIT", "GENESIS_DIFFICULTY", "INITIAL_BASE_FEE",
]
