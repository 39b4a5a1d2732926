"""geth's ``StateOverride`` and ``BlockOverrides`` for one call (``internal/ethapi/override``).

A call may run on a state and in a block context that differ from the block's: the
overrides are what both engines lay over the block's state (revm: ``rust/src/evm/overlay.rs``;
py-evm: writes to its throwaway ``State``) and over its context, and nothing of them is
ever written to the store. ``apply_block`` keeps the real block for BLOCKHASH (geth builds
the block context first, then overrides its fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ethnode.core.execution.api import BlockEnv, CallPreconditionError
from ethnode.core.execution.precheck import checksum


@dataclass(frozen=True)
class AccountOverride:
    """One account's overrides; None leaves the field as the state has it.

    ``state`` replaces the whole storage (unlisted slots read zero); ``state_diff`` sets only
    the slots listed. Slots and values are 32-byte words."""

    nonce: int | None = None
    code: bytes | None = None
    balance: int | None = None
    state: Mapping[bytes, bytes] | None = None
    state_diff: Mapping[bytes, bytes] | None = None
    move_precompile_to: bytes | None = None


StateOverride = Mapping[bytes, AccountOverride]


@dataclass(frozen=True)
class BlockOverrides:
    """geth ``BlockOverrides`` (the fields eth_call honours)."""

    number: int | None = None
    difficulty: int | None = None
    time: int | None = None
    gas_limit: int | None = None
    fee_recipient: bytes | None = None
    prev_randao: bytes | None = None
    base_fee: int | None = None
    blob_base_fee: int | None = None

    def apply(self, env: BlockEnv) -> BlockEnv:
        """geth ``BlockOverrides.Apply`` on a block context."""
        return replace(
            env,
            number=env.number if self.number is None else self.number,
            difficulty=env.difficulty if self.difficulty is None else self.difficulty,
            time=env.time if self.time is None else self.time,
            gas_limit=env.gas_limit if self.gas_limit is None else self.gas_limit,
            fee_recipient=env.fee_recipient if self.fee_recipient is None else self.fee_recipient,
            mix_digest=env.mix_digest if self.prev_randao is None else self.prev_randao,
            base_fee=env.base_fee if self.base_fee is None else self.base_fee,
        )


def check_state_override(overrides: StateOverride, precompiles: set[bytes]) -> None:
    """geth ``StateOverride.Apply``'s refusals, in its order (addresses ascending).

    ``precompiles`` are the call context's. The engines then apply geth's precompile rule
    themselves: an overridden address is no longer a precompile, and ``move_precompile_to``
    installs the one it held at the destination."""
    for address in sorted(overrides):
        account = overrides[address]
        if account.move_precompile_to is not None:
            if address not in precompiles:
                raise CallPreconditionError(f"account {checksum(address)} is not a precompile")
            if account.move_precompile_to in overrides:
                raise CallPreconditionError(f"account {checksum(account.move_precompile_to)} is already overridden")
        if account.state is not None and account.state_diff is not None:
            raise CallPreconditionError(f"account {checksum(address)} has both 'state' and 'stateDiff'")


__all__ = ["AccountOverride", "StateOverride", "BlockOverrides", "check_state_override"]
