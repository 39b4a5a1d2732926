"""The ``clique_`` JSON-RPC namespace: geth's argument decoding in front of the transport-free
``CliqueAPI`` (ethnode/consensus/clique/api.py), which already answers in geth's JSON shapes.

geth registers this namespace only on Clique chains and, not being public, serves it only
when asked for (``--http.api ...,clique``).
"""

from __future__ import annotations

from typing import Any

from ethnode.consensus.clique.api import CliqueAPI
from ethnode.errors import EthnodeError
from ethnode.ethapi.eth import MAX_INT64, _block_number
from ethnode.rpc.hexutil import HexError, address_arg, arg, decode_data, decode_quantity, hash_arg
from ethnode.rpc.jsonrpc import INVALID_PARAMS, RPCError, server_error


def _number(index: int, value: Any) -> int | None:
    """geth ``*rpc.BlockNumber``: absent or "latest" is the head; "earliest" is 0; others are numbers.

    "pending", "safe" and "finalized" are negative in geth and so name no header: unknown block.
    """
    if value is None:
        return None
    number = _block_number(index, value)
    if number == "latest":
        return None
    if number == "earliest":
        return 0
    if isinstance(number, str):  # pending, safe, finalized
        return MAX_INT64 + 1  # beyond any chain: geth looks up uint64(negative) and finds nothing
    return number


def _calling(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except EthnodeError as exc:  # CliqueError / UnknownBlockError carry geth's messages
        raise server_error(str(exc)) from None


class CliqueRPC:
    """clique_getSnapshot, ..., clique_getSigner over one chain's Clique engine."""

    def __init__(self, api: CliqueAPI) -> None:
        self.api = api

    def get_snapshot(self, number: Any = None) -> dict[str, Any]:
        return _calling(self.api.get_snapshot, _number(0, number))  # type: ignore[no-any-return]

    def get_snapshot_at_hash(self, block_hash: Any) -> dict[str, Any]:
        return _calling(self.api.get_snapshot_at_hash, hash_arg(0, block_hash))  # type: ignore[no-any-return]

    def get_signers(self, number: Any = None) -> list[str]:
        return _calling(self.api.get_signers, _number(0, number))  # type: ignore[no-any-return]

    def get_signers_at_hash(self, block_hash: Any) -> list[str]:
        return _calling(self.api.get_signers_at_hash, hash_arg(0, block_hash))  # type: ignore[no-any-return]

    def proposals(self) -> dict[str, bool]:
        return self.api.proposals()

    def propose(self, address: Any, auth: Any) -> None:
        if not isinstance(auth, bool):
            raise RPCError(INVALID_PARAMS, "invalid argument 1: json: cannot unmarshal non-bool into Go value of "
                                           "type bool")
        _calling(self.api.propose, address_arg(0, address), auth)

    def discard(self, address: Any) -> None:
        _calling(self.api.discard, address_arg(0, address))

    def status(self) -> dict[str, Any]:
        return _calling(self.api.status)  # type: ignore[no-any-return]

    def get_signer(self, rlp_or_block: Any = None) -> str:
        """geth blockNumberOrHashOrRLP: a tag or number, a 32-byte hash, else the hex RLP of a block."""
        if rlp_or_block is None or (isinstance(rlp_or_block, str) and rlp_or_block in ("latest", "earliest",
                                                                                          "pending", "safe",
                                                                                          "finalized")):
            return _calling(self.api.get_signer, _number(0, rlp_or_block))  # type: ignore[no-any-return]
        if not isinstance(rlp_or_block, str):
            raise RPCError(INVALID_PARAMS, "invalid argument 0: json: cannot unmarshal non-string into Go value "
                                           "of type string")
        if len(rlp_or_block) == 66:
            return _calling(self.api.get_signer, hash_arg(0, rlp_or_block))  # type: ignore[no-any-return]
        try:
            number = decode_quantity(rlp_or_block, 64)
        except HexError:
            blob = arg(0, decode_data, rlp_or_block)
            return _calling(self.api.get_signer, rlp=blob)  # type: ignore[no-any-return]
        return _calling(self.api.get_signer, number)  # type: ignore[no-any-return]


__all__ = ["CliqueRPC"]
