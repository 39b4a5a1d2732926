"""The signer set and the votes at one block (geth ``consensus/clique/snapshot.go``).

A snapshot is a pure function of the chain up to its block: replaying headers on the last
one gives the next (``apply``). Votes ride in headers (coinbase = the account voted on,
nonce = add or drop); a vote passes when more than half the signers hold it, and every
checkpoint (number % epoch == 0) forgets pending votes. ``recents`` maps the last
len(signers)/2+1 block numbers to their signers: nobody may seal twice in that window,
so a minority cannot run the chain alone.

Stored as geth stores it: JSON under ``"clique-" + block hash``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ethnode.consensus.clique.errors import (
    InvalidVoteError,
    InvalidVotingChainError,
    RecentlySignedError,
    UnauthorizedSignerError,
)
from ethnode.consensus.clique.seal import LRU, ecrecover
from ethnode.core.rawdb.store import KeyValueStore
from ethnode.core.types.header import Header

NONCE_AUTH_VOTE = b"\xff" * 8  # geth nonceAuthVote 0xffffffffffffffff: vote to add a signer
NONCE_DROP_VOTE = bytes(8)  # geth nonceDropVote 0x0000000000000000: vote to remove a signer
SNAPSHOT_PREFIX = b"clique-"  # geth: db key "clique-" + hash -> snapshot JSON


@dataclass
class Vote:
    """One signer's standing vote on one account (geth Vote)."""

    signer: bytes  # who voted
    block: int  # where the vote was cast
    address: bytes  # the account voted on
    authorize: bool  # add (True) or drop (False)


@dataclass
class Tally:
    """Votes for the pending proposal on one account; opposing votes do not count (geth Tally)."""

    authorize: bool
    votes: int


def snapshot_key(block_hash: bytes) -> bytes:
    return SNAPSHOT_PREFIX + block_hash


class Snapshot:
    """Authorization state after block ``number`` (hash ``hash``)."""

    def __init__(
        self,
        epoch: int,
        number: int,
        block_hash: bytes,
        signers: Iterable[bytes],
        *,
        recents: dict[int, bytes] | None = None,
        votes: list[Vote] | None = None,
        tally: dict[bytes, Tally] | None = None,
        sigcache: LRU[bytes, bytes] | None = None,
    ) -> None:
        self.epoch = epoch
        self.number = number
        self.hash = block_hash
        self.signers: set[bytes] = set(signers)
        self.recents: dict[int, bytes] = dict(recents or {})
        self.votes: list[Vote] = list(votes or [])
        self.tally: dict[bytes, Tally] = dict(tally or {})
        self.sigcache = sigcache

    # --- persistence -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """geth's JSON shape (``number``, ``hash``, ``signers``, ``recents``, ``votes``, ``tally``)."""
        return {
            "number": self.number,
            "hash": "0x" + self.hash.hex(),
            "signers": {"0x" + s.hex(): {} for s in self.signer_list()},
            "recents": {str(n): "0x" + s.hex() for n, s in sorted(self.recents.items())},
            "votes": [
                {"signer": "0x" + v.signer.hex(), "block": v.block, "address": "0x" + v.address.hex(),
                 "authorize": v.authorize}
                for v in self.votes
            ],
            "tally": {"0x" + a.hex(): {"authorize": t.authorize, "votes": t.votes} for a, t in self.tally.items()},
        }

    @classmethod
    def from_json(cls, epoch: int, obj: Any, sigcache: LRU[bytes, bytes] | None = None) -> Snapshot:
        def b(text: str) -> bytes:
            return bytes.fromhex(text[2:] if text.startswith("0x") else text)

        return cls(
            epoch,
            int(obj["number"]),
            b(obj["hash"]),
            [b(s) for s in obj.get("signers") or {}],
            recents={int(n): b(s) for n, s in (obj.get("recents") or {}).items()},
            votes=[Vote(b(v["signer"]), int(v["block"]), b(v["address"]), bool(v["authorize"]))
                   for v in obj.get("votes") or []],
            tally={b(a): Tally(bool(t["authorize"]), int(t["votes"])) for a, t in (obj.get("tally") or {}).items()},
            sigcache=sigcache,
        )

    def store(self, db: KeyValueStore) -> None:
        db.put(snapshot_key(self.hash), json.dumps(self.to_json(), separators=(",", ":")).encode())

    @classmethod
    def load(
        cls, epoch: int, db: KeyValueStore, block_hash: bytes, sigcache: LRU[bytes, bytes] | None = None
    ) -> Snapshot | None:
        """The snapshot stored for ``block_hash``, or None if absent or unreadable."""
        blob = db.get(snapshot_key(block_hash))
        if blob is None:
            return None
        try:
            return cls.from_json(epoch, json.loads(blob), sigcache)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # a damaged record is rebuilt from headers, as geth does on a read error

    def copy(self) -> Snapshot:
        """A copy whose sets, maps and tallies can change freely (votes are shared: never mutated)."""
        return Snapshot(
            self.epoch, self.number, self.hash, self.signers,
            recents=self.recents, votes=self.votes,
            tally={a: Tally(t.authorize, t.votes) for a, t in self.tally.items()},
            sigcache=self.sigcache,
        )

    # --- voting ----------------------------------------------------------------------

    def valid_vote(self, address: bytes, authorize: bool) -> bool:
        """A vote that would change something: add an outsider or drop a signer."""
        return (address in self.signers) != authorize

    def _cast(self, address: bytes, authorize: bool) -> bool:
        if not self.valid_vote(address, authorize):
            return False
        old = self.tally.get(address)
        if old is not None:
            old.votes += 1  # geth increments even if ``authorize`` differs: that cannot happen here
        else:
            self.tally[address] = Tally(authorize, 1)
        return True

    def _uncast(self, address: bytes, authorize: bool) -> bool:
        tally = self.tally.get(address)
        if tally is None or tally.authorize != authorize:
            return False  # a dangling vote, or one that was never counted
        if tally.votes > 1:
            tally.votes -= 1
        else:
            del self.tally[address]
        return True

    def apply(self, headers: Sequence[Header]) -> Snapshot:
        """The snapshot after ``headers`` (consecutive, starting right after this one)."""
        if not headers:
            return self
        for prev, nxt in zip(headers, headers[1:], strict=False):
            if nxt.number != prev.number + 1:
                raise InvalidVotingChainError()
        if headers[0].number != self.number + 1:
            raise InvalidVotingChainError()
        snap = self.copy()
        for header in headers:
            number = header.number
            if number % self.epoch == 0:
                snap.votes = []
                snap.tally = {}
            limit = len(snap.signers) // 2 + 1
            if number >= limit:
                snap.recents.pop(number - limit, None)  # the oldest signer may sign again
            signer = ecrecover(header, self.sigcache)
            if signer not in snap.signers:
                raise UnauthorizedSignerError()
            if signer in snap.recents.values():
                raise RecentlySignedError()
            snap.recents[number] = signer

            coinbase = header.coinbase
            # A signer has one standing vote per account: a new one replaces the old.
            for i, vote in enumerate(snap.votes):
                if vote.signer == signer and vote.address == coinbase:
                    snap._uncast(vote.address, vote.authorize)
                    del snap.votes[i]
                    break
            if header.nonce == NONCE_AUTH_VOTE:
                authorize = True
            elif header.nonce == NONCE_DROP_VOTE:
                authorize = False
            else:
                raise InvalidVoteError()
            if snap._cast(coinbase, authorize):
                snap.votes.append(Vote(signer, number, coinbase, authorize))

            tally = snap.tally.get(coinbase)
            if tally is not None and tally.votes > len(snap.signers) // 2:
                if tally.authorize:
                    snap.signers.add(coinbase)
                else:
                    snap.signers.discard(coinbase)
                    limit = len(snap.signers) // 2 + 1  # the window shrank with the set
                    if number >= limit:
                        snap.recents.pop(number - limit, None)
                    # A dropped signer's standing votes go with it.
                    kept = []
                    for vote in snap.votes:
                        if vote.signer == coinbase:
                            snap._uncast(vote.address, vote.authorize)
                        else:
                            kept.append(vote)
                    snap.votes = kept
                # The account changed sides: every vote about it is moot.
                snap.votes = [v for v in snap.votes if v.address != coinbase]
                snap.tally.pop(coinbase, None)
        snap.number += len(headers)
        snap.hash = headers[-1].hash
        return snap

    # --- turns -----------------------------------------------------------------------

    def signer_list(self) -> list[bytes]:
        """The signers in ascending byte order: the order turns and checkpoints use."""
        return sorted(self.signers)

    def inturn(self, number: int, signer: bytes) -> bool:
        """Whether ``signer`` is the one expected to seal block ``number`` (difficulty 2)."""
        signers = self.signer_list()
        if not signers:
            return False
        offset = signers.index(signer) if signer in self.signers else len(signers)
        return number % len(signers) == offset

    def recently_signed(self, number: int, signer: bytes) -> bool:
        """Whether ``signer`` sealed within the window that block ``number`` still sees."""
        limit = len(self.signers) // 2 + 1
        return any(
            recent == signer and (number < limit or seen > number - limit) for seen, recent in self.recents.items()
        )

    def __repr__(self) -> str:
        head = f"#{self.number} 0x{self.hash.hex()[:12]}…"
        return f"Snapshot({head}, signers={len(self.signers)}, votes={len(self.votes)})"


__all__ = ["Snapshot", "Vote", "Tally", "NONCE_AUTH_VOTE", "NONCE_DROP_VOTE", "SNAPSHOT_PREFIX", "snapshot_key"]
