"""Account facts at a state root ("account at block N") and at the moving chain head.

Values come straight from the stored tries, so they are what execution committed;
reading never needs the EVM engine. A ``StateView`` is immutable (one root), so it may
cache what it reads.
"""

from __future__ import annotations

from collections.abc import Callable

from ethnode import rlp
from ethnode.core.genesis import EMPTY_CODE_HASH, StateAccount
from ethnode.core.state.database import StateDatabase
from ethnode.core.state.trie import MissingNodeError, trie_get, trie_prove
from ethnode.core.types.header import Header
from ethnode.crypto.keccak import keccak256
from ethnode.errors import EthnodeError

_VIEW_CACHE_LIMIT = 65_536  # accounts remembered per view before the cache is dropped
_READER_VIEWS = 8  # state views a HeadState keeps (the head moves; RPC may ask a few older blocks)


class MissingStateError(EthnodeError):
    """The state asked for is not stored (the block was imported with --noexec, or not executed)."""


class StateView:
    """Accounts and storage at one state root. Absent accounts read as nonce 0, balance 0, no code."""

    def __init__(self, db: StateDatabase, root: bytes) -> None:
        if not db.has_state(root):
            raise MissingStateError(f"state 0x{root.hex()} is not in the database")
        self.db = db
        self.root = root
        self._accounts: dict[bytes, StateAccount | None] = {}

    def account(self, address: bytes) -> StateAccount | None:
        """The account record, or None if the address has no account."""
        try:
            return self._accounts[address]
        except KeyError:
            pass
        data = self._get(self.root, keccak256(address))
        account = None if data is None else StateAccount.decode(data)
        if len(self._accounts) >= _VIEW_CACHE_LIMIT:
            self._accounts.clear()
        self._accounts[address] = account
        return account

    def nonce(self, address: bytes) -> int:
        account = self.account(address)
        return 0 if account is None else account.nonce  # type: ignore[no-any-return]

    def balance(self, address: bytes) -> int:
        account = self.account(address)
        return 0 if account is None else account.balance  # type: ignore[no-any-return]

    def code_hash(self, address: bytes) -> bytes:
        account = self.account(address)
        return EMPTY_CODE_HASH if account is None else account.code_hash  # type: ignore[no-any-return]

    def code(self, address: bytes) -> bytes:
        code_hash = self.code_hash(address)
        if code_hash == EMPTY_CODE_HASH:
            return b""
        code = self.db.get(code_hash)
        if code is None:
            raise MissingNodeError(code_hash)
        return code

    def storage(self, address: bytes, slot: int | bytes) -> int:
        """The value of a storage slot (0 when unset)."""
        account = self.account(address)
        if account is None:
            return 0
        key = slot.to_bytes(32, "big") if isinstance(slot, int) else slot.rjust(32, b"\0")
        data = self._get(account.storage_root, keccak256(key))
        return 0 if data is None else int.from_bytes(rlp.decode(data), "big")

    def _get(self, root: bytes, key: bytes) -> bytes | None:
        return trie_get(self.db.get, root, key)

    def account_proof(self, address: bytes) -> list[bytes]:
        """The account trie's nodes proving ``address``'s account (or its absence), root first."""
        return trie_prove(self.db.get, self.root, keccak256(address))

    def storage_proof(self, storage_root: bytes, slot: bytes) -> list[bytes]:
        """The storage trie's nodes proving a 32-byte ``slot``'s value (or its absence)."""
        return trie_prove(self.db.get, storage_root, keccak256(slot))


class HeadState:
    """Account facts at the head, or at canonical block ``number``: the pool's and RPC's ``StateReader``.

    The head is looked up on every call, so the answers follow the chain. None means
    "unknown": the block does not exist or its state is not stored (imported with
    --noexec), and callers then fall back (the pool to its stateless rules, RPC to geth's
    "state not available" error) instead of failing.
    """

    def __init__(
        self,
        db: StateDatabase,
        head: Callable[[], Header],
        by_number: Callable[[int], Header | None] | None = None,
    ) -> None:
        self.db = db
        self._head = head
        self._by_number = by_number
        self._views: dict[bytes, StateView] = {}  # by root: the head's and a few recent ones

    def view(self, at: int | Header | None = None) -> StateView | None:
        """The state at the head (``at`` None), canonical block ``at`` (a number) or after the block
        of header ``at`` (canonical or not: every executed block's state is kept); None if unknown."""
        if at is None:
            header: Header | None = self._head()
        elif isinstance(at, int):
            header = None if self._by_number is None else self._by_number(at)
        else:
            header = at
        if header is None:
            return None
        root = header.state_root
        view = self._views.get(root)
        if view is None:
            try:
                view = StateView(self.db, root)
            except MissingStateError:
                return None
            if len(self._views) >= _READER_VIEWS:
                self._views.clear()
            self._views[root] = view
        return view

    def nonce(self, address: bytes, at: int | Header | None = None) -> int | None:
        view = self.view(at)
        return None if view is None else view.nonce(address)

    def balance(self, address: bytes, at: int | Header | None = None) -> int | None:
        view = self.view(at)
        return None if view is None else view.balance(address)

    def code(self, address: bytes, at: int | Header | None = None) -> bytes | None:
        view = self.view(at)
        return None if view is None else view.code(address)

    def storage(self, address: bytes, slot: int | bytes, at: int | Header | None = None) -> int | None:
        view = self.view(at)
        return None if view is None else view.storage(address, slot)


__all__ = ["StateView", "HeadState", "MissingStateError"]
