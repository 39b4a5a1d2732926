"""The ``clique_`` RPC namespace (geth ``consensus/clique/api.go``), transport-free.

Arguments are Python values (``None`` for "latest", ints, 20/32-byte ``bytes``); results
are already in geth's JSON shape (0x-hex addresses, the snapshot as geth stores it), so the
JSON-RPC layer only decodes parameters and serializes. Errors are ``CliqueError``s with
geth's messages. ``METHODS`` maps each RPC name to its method.
"""

from __future__ import annotations

from typing import Any, Protocol

from ethnode.consensus.clique.clique import DIFF_IN_TURN, Clique, CliqueChainReader
from ethnode.consensus.clique.errors import CliqueError, UnknownBlockError
from ethnode.consensus.clique.snapshot import Snapshot
from ethnode.core.types.block import Block
from ethnode.core.types.header import Header
from ethnode.errors import EthnodeError

STATUS_BLOCKS = 64  # geth API.Status: in-turn share and activity over the last 64 blocks


class CliqueAPIChain(CliqueChainReader, Protocol):
    """What the API reads: the head and headers by number or hash (``BlockChain`` has them)."""

    @property
    def current_header(self) -> Header: ...

    def get_header_by_hash(self, block_hash: bytes) -> Header | None: ...


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


class CliqueAPI:
    """Signer voting control and inspection for one chain and engine."""

    def __init__(self, chain: CliqueAPIChain, clique: Clique) -> None:
        self.chain = chain
        self.clique = clique

    def _header(self, number: int | None) -> Header:
        header = self.chain.current_header if number is None else self.chain.get_header_by_number(number)
        if header is None:
            raise UnknownBlockError()
        return header

    def _header_at_hash(self, block_hash: bytes) -> Header:
        header = self.chain.get_header_by_hash(block_hash)
        if header is None:
            raise UnknownBlockError()
        return header

    def _snapshot(self, header: Header) -> Snapshot:
        return self.clique.snapshot(self.chain, header.number, header.hash)

    def get_snapshot(self, number: int | None = None) -> dict[str, Any]:
        """clique_getSnapshot: the voting state at a block (default: the head)."""
        return self._snapshot(self._header(number)).to_json()

    def get_snapshot_at_hash(self, block_hash: bytes) -> dict[str, Any]:
        """clique_getSnapshotAtHash."""
        return self._snapshot(self._header_at_hash(block_hash)).to_json()

    def get_signers(self, number: int | None = None) -> list[str]:
        """clique_getSigners: the authorized signers at a block, ascending."""
        return [_hex(s) for s in self._snapshot(self._header(number)).signer_list()]

    def get_signers_at_hash(self, block_hash: bytes) -> list[str]:
        """clique_getSignersAtHash."""
        return [_hex(s) for s in self._snapshot(self._header_at_hash(block_hash)).signer_list()]

    def proposals(self) -> dict[str, bool]:
        """clique_proposals: the accounts this node votes on (True = add, False = drop)."""
        return {_hex(a): auth for a, auth in self.clique.current_proposals().items()}

    def propose(self, address: bytes, auth: bool) -> None:
        """clique_propose: vote on ``address`` in every block we seal until discarded."""
        self.clique.propose(address, auth)

    def discard(self, address: bytes) -> None:
        """clique_discard: stop voting on ``address``."""
        self.clique.discard(address)

    def status(self) -> dict[str, Any]:
        """clique_status: the in-turn share and blocks per signer over the last 64 blocks.

        As geth: the window is [head-64, head), or [1, head) on a shorter chain.
        """
        head = self.chain.current_header
        snap = self._snapshot(head)
        end = head.number
        num_blocks = STATUS_BLOCKS
        start = end - num_blocks
        if num_blocks > end:
            start = 1
            num_blocks = max(end - start, 0)
        activity = {s: 0 for s in snap.signer_list()}
        in_turn = 0
        for n in range(start, end):
            header = self.chain.get_header_by_number(n)
            if header is None:
                raise CliqueError(f"missing block {n}")
            if header.difficulty == DIFF_IN_TURN:
                in_turn += 1
            sealer = self.clique.author(header)
            activity[sealer] = activity.get(sealer, 0) + 1
        return {
            "inturnPercent": 100.0 * in_turn / num_blocks if num_blocks else 0.0,
            "sealerActivity": {_hex(a): count for a, count in activity.items()},
            "numBlocks": num_blocks,
        }

    def get_signer(self, block: int | bytes | None = None, *, rlp: bytes | None = None) -> str:
        """clique_getSigner: who sealed a block, given its number, its hash, or its (header) RLP."""
        if rlp is not None:
            try:
                header = Block.decode(rlp).header
            except EthnodeError:
                header = Header.decode(rlp)
            return _hex(self.clique.author(header))
        if block is None:
            found: Header | None = self.chain.current_header
        elif isinstance(block, bytes):
            found = self.chain.get_header_by_hash(block)
        else:
            found = self.chain.get_header_by_number(block)
        if found is None:
            shown = _hex(block) if isinstance(block, bytes) else str(block)
            raise CliqueError(f"missing block {shown}")
        return _hex(self.clique.author(found))


# RPC name -> CliqueAPI method name (geth registers the namespace "clique", not public).
METHODS: dict[str, str] = {
    "clique_getSnapshot": "get_snapshot",
    "clique_getSnapshotAtHash": "get_snapshot_at_hash",
    "clique_getSigners": "get_signers",
    "clique_getSignersAtHash": "get_signers_at_hash",
    "clique_proposals": "proposals",
    "clique_propose": "propose",
    "clique_discard": "discard",
    "clique_status": "status",
    "clique_getSigner": "get_signer",
}

__all__ = ["CliqueAPI", "CliqueAPIChain", "METHODS", "STATUS_BLOCKS"]
