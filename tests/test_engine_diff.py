"""revm against py-evm: the two engines behind ``Executor`` must compute the same chain.

A node picks one engine (revm when the Rust extension has it, py-evm otherwise), so any
difference between them is a consensus split between two ethnode nodes. Every test runs
the same input through both and compares everything consensus depends on:

1. the 600 blocks of geth's ethtest chain, imported once per engine: every ``BlockResult``
   (receipts, logs, bloom, gas, blob gas, requests, roots) compared block by block;
2. seeded random Prague blocks on a genesis of hand-assembled contracts (storage, logs,
   calls of every kind, creates, reverts, out of gas, SELFDESTRUCT, transient storage,
   MCOPY, PUSH0, BLOBBASEFEE, BLOCKHASH, precompiles, EIP-7702 delegations, blob txs,
   deposits and EIP-7002/7251 requests, withdrawals), chained several blocks deep with
   each engine keeping its own state;
3. txs that cannot be applied (same geth error name from both, same subset skipped) and
   blocks that must be rejected (same message), deposit logs of every shape;
4. eth_call: the same ``CallResult`` (output, gas, peak gas, error kind and text).

Where the engines disagree the case stays here marked ``xfail(strict=True)`` with what
each engine does, so the disagreement is visible and a fix shows up as an XPASS.
"""

from __future__ import annotations

import functools
import importlib.util
import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from chain_support import open_chain
from engine_diff_support import (
    CHAIN_ID,
    CODE_KEY,
    DEPOSITOR,
    ENGINES,
    ENV,
    LOGGER,
    MAX_NONCE_KEY,
    POOR_KEY,
    SENDERS,
    STORE,
    UNFUNDED_KEY,
    Recording,
    TxGen,
    addr,
    asm,
    call_message,
    call_outcome,
    deploy_code,
    deposit_data,
    diff_genesis,
    open_pair,
    result_diffs,
    state_diffs,
    tx_gas,
    word,
)
from eth_support import ETHTEST_CHAIN_ID, ETHTEST_HEAD, ethtest_blocks, genesis_json

from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.eip4844 import calc_blob_fee
from ethnode.core.errors import BlockValidationError, InvalidBlockError
from ethnode.core.execution import BlockEnv, BlockResult, CallMessage, TxExecutionError, compiled_engine_error
from ethnode.core.execution.system import DEPOSIT_EVENT_TOPIC
from ethnode.core.genesis import EMPTY_REQUESTS_HASH, Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.state import StateView
from ethnode.core.types.block import Block, derive_tx_root
from ethnode.core.types.header import Header
from ethnode.core.types.transaction import (
    BlobTx,
    DynamicFeeTx,
    LegacyTx,
    SetCodeAuthorization,
    SetCodeTx,
    Transaction,
)
from ethnode.core.types.withdrawal import Withdrawal, withdrawals_root
from ethnode.ethapi.marshal import contract_address
from ethnode.miner.builder import MinerConfig, new_header


def _missing_engine() -> str | None:
    error = compiled_engine_error()
    if error is not None:
        return f"needs both engines; revm is not available: {error}"
    if importlib.util.find_spec("eth") is None:
        return "needs both engines; py-evm is not installed"
    return None


pytestmark = [
    pytest.mark.skipif(_missing_engine() is not None, reason=_missing_engine() or ""),
    pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode present:DeprecationWarning"),  # py-evm's, on every use
]


GWEI = 10**9


def _both(fn: Callable[[str], Any]) -> dict[str, Any]:
    """``fn(engine)`` for each engine, by engine name."""
    return {evm: fn(evm) for evm in ENGINES}


# --- 1. the ethtest chain ----------------------------------------------------------------------


def _import_ethtest(evm: str, upto: int) -> BlockChain:
    """ethtest blocks 1..upto imported (executed and checked against geth's headers) with ``evm``."""
    obj = genesis_json()
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    chain = open_chain(db, execute=True, evm=evm)
    chain._state_root_warned = True
    chain.executor = Recording(chain.executor)
    try:
        chain.insert_chain(ethtest_blocks()[:upto])
    except InvalidBlockError as exc:
        pytest.fail(f"{evm} rejects a block of geth's ethtest chain: {exc}")
    return chain


@pytest.fixture(scope="module")
def ethtest() -> dict[str, BlockChain]:
    """geth's 600 ethtest blocks imported once per engine, each on its own database (~4 s)."""
    return _both(lambda evm: _import_ethtest(evm, 600))


def test_every_ethtest_block_gives_the_same_result_on_both_engines(ethtest: dict[str, BlockChain]) -> None:
    """Each block executed on its parent's state by each engine: every field of the results agrees
    (the import also checked each result against geth's header)."""
    results = {evm: chain.executor.results for evm, chain in ethtest.items()}
    assert all(len(r) == 600 for r in results.values())
    mismatches = {}
    for block in ethtest_blocks():
        diffs = result_diffs(results["revm"][block.number], results["py-evm"][block.number])
        if diffs:
            mismatches[block.number] = diffs
    assert not mismatches, mismatches
    assert all(chain.current_block.hash == ETHTEST_HEAD for chain in ethtest.values())
    revm = results["revm"].values()
    # Not vacuous: every tx type, logs, failed txs, blob gas and a non-empty request are in there.
    receipts = [r for result in revm for r in result.receipts]
    assert len(receipts) == 603 and {r.type for r in receipts} == {0, 1, 2, 3, 4}
    assert any(r.logs for r in receipts) and any(r.status == 0 for r in receipts)
    assert any(result.blob_gas_used for result in revm) and any(result.requests for result in revm)


# --- 2. random Prague blocks ---------------------------------------------------------------------


def _next_header(chain: BlockChain, rng: random.Random, coinbase: bytes) -> Header:
    parent = chain.current_block
    config = MinerConfig(etherbase=coinbase, gas_ceil=parent.gas_limit, extra=b"engine-diff")
    header = new_header(chain, parent, config, parent.time + 12)
    return header.replace(mix_digest=rng.randbytes(32), parent_beacon_root=rng.randbytes(32))  # type: ignore[no-any-return]


def _explain_state(chains: dict[str, BlockChain], results: dict[str, BlockResult], gen: TxGen) -> list[str]:
    """Which accounts differ, when the state roots do (the overlays are written, nothing else)."""
    views = []
    for evm in ENGINES:
        batch = chains[evm].db.new_batch()
        results[evm].state.write_to(batch)
        batch.write()
        views.append(StateView(chains[evm].state_db, results[evm].state_root))
    targets = [getattr(tx, "to", None) for tx in results["revm"].transactions]
    touched = [addr(k) for k in SENDERS] + gen.fresh + gen.created + [to for to in targets if to is not None]
    return state_diffs(views, touched)


@pytest.mark.parametrize("seed", range(6))
def test_random_prague_blocks_agree(seed: int) -> None:
    """Three chained blocks of ~25 random txs (every type, some invalid) and withdrawals: the same
    txs applied with the same results, each engine building on its own stored state; and each
    tx's message as an eth_call on the parent gives the same ``CallResult`` on both."""
    rng = random.Random(seed)
    chains = open_pair()
    gen = TxGen(rng)
    withdrawal_index = 0
    applied = failed = calls = 0
    for _ in range(3):
        ref = chains["revm"]
        parent = ref.current_block
        gen.sync(ref.state())
        coinbase = rng.choice([bytes(20), addr(SENDERS[0]), STORE, rng.randbytes(20), bytes(19) + b"\x01"])
        header = _next_header(ref, rng, coinbase)
        env = BlockEnv.from_header(header)
        blob_fee = calc_blob_fee(ref.config, header)
        txs = [gen.tx(header.base_fee, blob_fee) for _ in range(25)]
        for _ in range(2):
            txs.insert(rng.randrange(len(txs) + 1), gen.junk(header.base_fee, header.gas_limit))
        withdrawals = []
        for _ in range(rng.randrange(5)):
            withdrawals.append(Withdrawal(withdrawal_index, rng.randrange(100), gen.address(),
                                          rng.choice([0, 1, GWEI])))
            withdrawal_index += 1
        for tx in txs[:4]:  # eth_call parity on the parent state (py-evm calls are the slow part)
            outcomes = {evm: call_outcome(chains[evm].executor, parent, call_message(tx)) for evm in ENGINES}
            assert outcomes["revm"] == outcomes["py-evm"], (seed, header.number, tx.hash.hex())
            calls += 1
        results = {evm: chains[evm].executor.apply_transactions(parent, txs, env, withdrawals, skip_invalid=True)
                   for evm in ENGINES}
        diffs = result_diffs(results["revm"], results["py-evm"])
        if diffs and results["revm"].state_root != results["py-evm"].state_root:
            diffs += _explain_state(chains, results, gen)
        assert not diffs, f"seed {seed}, block {header.number}:\n" + "\n".join(diffs)
        result = results["revm"]
        applied += len(result.transactions)
        failed += sum(r.status == 0 for r in result.receipts)
        sealed = result.fill_header(header.replace(
            tx_root=derive_tx_root([tx.canonical for tx in result.transactions]),
            withdrawals_root=withdrawals_root(withdrawals)))
        block = Block.new(sealed, result.transactions, [], withdrawals)
        for evm in ENGINES:  # checks the header against the engine's own result, stores its state
            chains[evm].insert_built_block(block, results[evm])
    assert applied >= 60 and failed >= 3 and calls == 12  # mostly valid, with failures among them


# --- 3. txs that cannot be applied ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh() -> dict[str, BlockChain]:
    """The differential genesis, untouched (the tx cases never store anything)."""
    return open_pair()


def _env(chain: BlockChain, **changes: Any) -> BlockEnv:
    """The environment of the head's child, as the miner would make it, with ``changes``."""
    parent = chain.current_block
    header = new_header(chain, parent, MinerConfig(gas_ceil=parent.gas_limit), parent.time + 12)
    return BlockEnv.from_header(header.replace(**changes))


def _dyn(key: Any = SENDERS[0], nonce: int = 0, *, tip: int = 0, fee: int = 2 * GWEI, gas: int = 21_000,
         to: bytes | None = STORE, value: int = 0, data: bytes = b"", chain_id: int = CHAIN_ID) -> Transaction:
    return DynamicFeeTx(chain_id, nonce, tip, fee, gas, to, value, data, [], 0, 0, 0).sign(key)


def _blob(key: Any = SENDERS[1], nonce: int = 0, blobs: int = 1, blob_fee_cap: int = 10, gas: int = 100_000,
          hashes: list[bytes] | None = None) -> Transaction:
    hashes = [b"\x01" + bytes([i]) * 31 for i in range(blobs)] if hashes is None else hashes
    return BlobTx(CHAIN_ID, nonce, 0, 2 * GWEI, gas, ENV, 0, word(1) + word(STORE), [], blob_fee_cap, hashes,
                  0, 0, 0).sign(key)


def _set_code(auths: list[SetCodeAuthorization], key: Any = SENDERS[2], gas: int = 100_000) -> Transaction:
    return SetCodeTx(CHAIN_ID, 0, 0, 2 * GWEI, gas, STORE, 0, b"", [], auths, 0, 0, 0).sign(key)


BIG_INIT = bytes(49_153)
_HEAVY_DATA = b"\x01" * 1000  # intrinsic 37000, EIP-7623 floor 61000
# (id, txs, index of the refused tx, geth's error name, BlockEnv changes)
_TX_CASES: list[tuple[str, Callable[[], list[Transaction]], int, str, dict[str, Any]]] = [
    ("nonce-too-low", lambda: [_dyn(), _dyn(to=LOGGER)], 1, "nonce too low", {}),
    ("nonce-too-high", lambda: [_dyn(nonce=5)], 0, "nonce too high", {}),
    ("nonce-max", lambda: [_dyn(MAX_NONCE_KEY, 2**64 - 1)], 0, "nonce has max value", {}),
    ("funds-value", lambda: [_dyn(POOR_KEY, value=10**18)], 0, "insufficient funds for gas * price + value", {}),
    ("funds-gas", lambda: [_dyn(POOR_KEY, gas=10**6)], 0, "insufficient funds for gas * price + value", {}),
    ("funds-unfunded", lambda: [_dyn(UNFUNDED_KEY)], 0, "insufficient funds for gas * price + value", {}),
    ("funds-blob-fee", lambda: [_blob(POOR_KEY, blob_fee_cap=10**10)], 0,
     "insufficient funds for gas * price + value", {}),
    ("intrinsic-transfer", lambda: [_dyn(gas=20_999)], 0, "intrinsic gas too low", {}),
    ("intrinsic-create", lambda: [_dyn(to=None, gas=53_000 + 15, data=b"\x01")], 0, "intrinsic gas too low", {}),
    ("intrinsic-auths", lambda: [_set_code([SetCodeAuthorization(CHAIN_ID, STORE, 0, 0, 0, 0).sign(SENDERS[3])],
                                           gas=40_000)], 0, "intrinsic gas too low", {}),
    ("floor-data-gas", lambda: [_dyn(gas=40_000, data=_HEAVY_DATA)], 0,
     "insufficient gas for floor data gas cost", {}),
    ("fee-cap-below-base-fee", lambda: [_dyn(fee=GWEI // 2)], 0, "max fee per gas less than block base fee", {}),
    ("legacy-price-below-base-fee", lambda: [LegacyTx(0, GWEI // 2, 21_000, STORE, 0, b"", 0, 0, 0).sign(
        SENDERS[0], CHAIN_ID)], 0, "max fee per gas less than block base fee", {}),
    ("tip-above-fee-cap", lambda: [_dyn(tip=2 * GWEI + 1)], 0, "max priority fee per gas higher than max fee per gas",
     {}),
    ("block-gas-limit", lambda: [_dyn(gas=60_000), _dyn(nonce=1, gas=10_000_000)], 1, "gas limit reached",
     {"gas_limit": 10_000_000}),
    ("block-blob-gas", lambda: [_blob(blobs=6), _blob(SENDERS[2], blobs=6)], 1, "blob gas limit reached", {}),
    ("too-many-blobs-for-a-block", lambda: [_blob(blobs=10)], 0, "blob gas limit reached", {}),
    ("sender-with-code", lambda: [_dyn(CODE_KEY)], 0, "sender not an eoa", {}),
    ("initcode-too-large", lambda: [_dyn(to=None, gas=tx_gas(None, BIG_INIT) + 10_000, data=BIG_INIT)], 0,
     "max initcode size exceeded", {}),
    ("blob-fee-cap-below-blob-base-fee", lambda: [_blob(blob_fee_cap=1)], 0,
     "max fee per blob gas less than block blob gas fee", {"excess_blob_gas": 10_000_000}),
    ("blob-tx-without-blobs", lambda: [_blob(hashes=[])], 0, "blob transaction missing blob hashes", {}),
    ("set-code-without-auths", lambda: [_set_code([])], 0, "EIP-7702 transaction with empty auth list", {}),
    ("wrong-chain-id", lambda: [_dyn(chain_id=CHAIN_ID + 1)], 0, "invalid chain id for signer", {}),
]
_NAMING = "both engines refuse it, but txerrors.geth_reason has no rule for {engine}'s text {text!r}"
_TX_XFAIL: dict[str, Any] = {  # where the engines disagree: what each one does
}
TX_CASES = [pytest.param(*case, id=case[0], marks=_TX_XFAIL.get(case[0], ())) for case in _TX_CASES]


def _geth_name(reason: str) -> str:
    """The geth error name a refusal starts with (the engine's detail follows a ':' or a ' (')."""
    return re.split(r":| \(", reason, maxsplit=1)[0]


def _apply(chain: BlockChain, txs: list[Transaction], env: BlockEnv, skip: bool) -> Any:
    try:
        return chain.executor.apply_transactions(chain.current_block, txs, env, [], skip_invalid=skip)
    except TxExecutionError as exc:
        return exc


@pytest.mark.parametrize(("name", "make", "bad", "geth_name", "env_changes"), TX_CASES)
def test_a_tx_that_cannot_apply_is_refused_alike(
    fresh: dict[str, BlockChain], name: str, make: Callable[[], list[Transaction]], bad: int, geth_name: str,
    env_changes: dict[str, Any],
) -> None:
    """Both engines refuse the same tx, under geth's error name; skipping it, both apply the rest alike."""
    txs = make()
    env = _env(fresh["revm"], **env_changes)
    refused = _both(lambda evm: _apply(fresh[evm], txs, env, False))
    for evm, err in refused.items():
        assert isinstance(err, TxExecutionError), f"{evm} applied the {name} tx"
        assert err.index == bad and err.tx_hash == txs[bad].hash, (evm, err)
    names = {evm: _geth_name(err.reason) for evm, err in refused.items()}
    assert names == {"revm": geth_name, "py-evm": geth_name}, {evm: e.reason for evm, e in refused.items()}
    skipped = _both(lambda evm: _apply(fresh[evm], txs, env, True))
    assert not result_diffs(skipped["revm"], skipped["py-evm"]), result_diffs(skipped["revm"], skipped["py-evm"])
    assert [tx.hash for tx in skipped["revm"].transactions] == [tx.hash for i, tx in enumerate(txs) if i != bad]


def test_txs_near_the_limits_are_applied_alike(fresh: dict[str, BlockChain]) -> None:
    """The valid side of those limits: exact intrinsic gas and floor, a gas limit above Osaka's cap
    (no cap in Prague), exactly the block's blob gas, an initcode of exactly 49152 bytes."""
    init = bytes(49_152)
    txs = [
        _dyn(gas=21_000), _dyn(nonce=1, gas=61_000, data=_HEAVY_DATA), _dyn(nonce=2, gas=2**24 + 1),
        _dyn(nonce=3, to=None, gas=tx_gas(None, init) + 100_000, data=init),
        _blob(blobs=6), _blob(SENDERS[3], blobs=3),
        _set_code([SetCodeAuthorization(CHAIN_ID, STORE, 0, 0, 0, 0).sign(SENDERS[4])], gas=21_000 + 25_000),
    ]
    env = _env(fresh["revm"])
    results = _both(lambda evm: _apply(fresh[evm], txs, env, False))
    assert not any(isinstance(r, TxExecutionError) for r in results.values()), results
    assert not result_diffs(results["revm"], results["py-evm"]), result_diffs(results["revm"], results["py-evm"])
    assert len(results["revm"].transactions) == len(txs) and results["revm"].blob_gas_used == 9 * 2**17


def test_a_skipped_blob_tx_leaves_its_blob_gas_to_the_next(fresh: dict[str, BlockChain]) -> None:
    """Block building: a blob tx left out (here for its nonce) uses none of the block's blob gas."""
    txs = [_blob(SENDERS[1], blobs=6), _blob(SENDERS[2], nonce=3, blobs=2), _blob(SENDERS[3], blobs=3)]
    results = _both(lambda evm: _apply(fresh[evm], txs, _env(fresh[evm]), True))
    assert [tx.hash for tx in results["py-evm"].transactions] == [txs[0].hash, txs[2].hash]
    assert not result_diffs(results["revm"], results["py-evm"]), result_diffs(results["revm"], results["py-evm"])


# Blocks holding a tx geth refuses: ethnode's block checks (validate_transactions) catch some before
# execution (the last two), the engine must catch the others.
_REFUSAL_PREFIX = re.compile(r"^invalid block #\d+ \(0x[0-9a-f]+\): (could not apply tx \d+ \[0x[0-9a-f]+\]: "
                             r"|invalid transaction \d+ \(0x[0-9a-f]+\): )?")
# the engine disagreements that reach import
_IMPORT_XFAIL: dict[str, Any] = {}  # none left: py-evm now makes geth's pre-execution checks too
_IMPORT_CASES = [
    pytest.param(name, make, geth_name, id=name, marks=_IMPORT_XFAIL.get(name, ())) for name, make, geth_name in (
        ("floor-data-gas", lambda: _dyn(gas=40_000, data=_HEAVY_DATA), "insufficient gas for floor data gas cost"),
        ("sender-with-code", lambda: _dyn(CODE_KEY), "sender not an eoa"),
        ("initcode-too-large", lambda: _dyn(to=None, gas=tx_gas(None, BIG_INIT) + 10_000, data=BIG_INIT),
         "max initcode size exceeded"),
        ("nonce-too-high", lambda: _dyn(nonce=5), "nonce too high"),
        ("tip-above-fee-cap", lambda: _dyn(tip=2 * GWEI + 1), "max priority fee per gas higher than max fee per gas"),
        ("wrong-chain-id", lambda: _dyn(chain_id=CHAIN_ID + 1), "invalid chain id for signer"),  # refused before
    )
]


@pytest.mark.parametrize(("name", "make", "geth_name"), _IMPORT_CASES)
def test_a_block_holding_a_tx_geth_refuses_is_rejected_by_both(
    name: str, make: Callable[[], Transaction], geth_name: str
) -> None:
    """Txs ethnode's own block checks (``validate_transactions``) leave to the engine: the block's
    header is the one an engine that applies the tx would seal (so only the tx is wrong), and both
    chains must refuse the block with ``InvalidBlockError`` naming geth's error."""
    chains = open_pair()
    tx = make()
    parent = chains["revm"].current_block
    template = new_header(chains["revm"], parent, MinerConfig(gas_ceil=parent.gas_limit), parent.time + 12)
    template = template.replace(tx_root=derive_tx_root([tx.canonical]), withdrawals_root=withdrawals_root([]),
                                requests_hash=EMPTY_REQUESTS_HASH)
    built = [r for r in _both(lambda evm: _apply(chains[evm], [tx], BlockEnv.from_header(template), False)).values()
             if isinstance(r, BlockResult)]
    header = built[0].fill_header(template) if built else template
    block = Block.new(header, [tx], [], [])

    def reject(evm: str) -> str:
        with pytest.raises(InvalidBlockError) as err:
            chains[evm].insert_chain([block])
        assert chains[evm].current_block.number == 0
        return _REFUSAL_PREFIX.sub("", str(err.value))

    names = {evm: _geth_name(reason) for evm, reason in _both(reject).items()}
    assert names == {"revm": geth_name, "py-evm": geth_name}, names


# --- invalid blocks ------------------------------------------------------------------------------

REQUESTS_BLOCK = 13  # the ethtest block with a non-empty request (Prague from block 12)


@pytest.fixture(scope="module")
def ethtest12() -> dict[str, BlockChain]:
    """Both engines' chains one block before the block with a request (so its tampered forms can be tried)."""
    return _both(lambda evm: _import_ethtest(evm, REQUESTS_BLOCK - 1))


def _tamper(block: Block, **changes: Any) -> Block:
    return Block(block.header.replace(**changes), block.tx_items, block.uncles, block.withdrawals)


def _unfunded_block() -> Block:
    template = ethtest_blocks()[REQUESTS_BLOCK - 1]
    tx = DynamicFeeTx(ETHTEST_CHAIN_ID, 0, 1, 10**12, 21_000, b"\x11" * 20, 1, b"", [],
                      0, 0, 0).sign(UNFUNDED_KEY)
    header = template.header.replace(tx_root=derive_tx_root([tx.canonical]))
    return Block.new(header, [tx], [], template.withdrawals)


@pytest.mark.parametrize("change", [
    {"gas_used": 21_000 * 7}, {"bloom": b"\x01" * 256}, {"receipt_root": b"\x02" * 32},
    {"requests_hash": b"\x03" * 32}, {"state_root": b"\x04" * 32}, "unfunded tx",
], ids=["gas-used", "bloom", "receipts-root", "requests-hash", "state-root", "unfunded-tx"])
def test_an_invalid_block_is_rejected_alike(ethtest12: dict[str, BlockChain], change: Any) -> None:
    """A block whose header disagrees with its execution: the same ``InvalidBlockError`` text from
    both (it carries both values, so execution agrees too); for a tx that cannot apply, the same
    text up to geth's error name. Neither chain moves."""
    good = ethtest_blocks()[REQUESTS_BLOCK - 1]
    bad = _unfunded_block() if change == "unfunded tx" else _tamper(good, **change)

    def reject(evm: str) -> str:
        chain = ethtest12[evm]
        with pytest.raises(InvalidBlockError) as err:
            chain.insert_chain([bad])
        assert chain.current_block.number == REQUESTS_BLOCK - 1 and not chain.has_block(bad.hash, bad.number)
        return str(err.value)

    messages = _both(reject)
    if change == "unfunded tx":
        cut = {evm: m.split("]: ", 1)[0] + "]: " + m.split("]: ", 1)[1].split(":")[0] for evm, m in messages.items()}
        assert cut["revm"] == cut["py-evm"], messages
        assert cut["revm"].endswith("could not apply tx 0 [0x" + bad.transactions[0].hash.hex()
                                    + "]: insufficient funds for gas * price + value"), messages
    else:
        assert messages["revm"] == messages["py-evm"]
        assert f"invalid block #{REQUESTS_BLOCK} (0x{bad.hash.hex()}): " in messages["revm"]


# --- deposit logs ---------------------------------------------------------------------------------

_DEPOSIT = deposit_data(random.Random(7))


def _patched(at: int, value: int) -> bytes:
    data = bytearray(_DEPOSIT)
    data[at:at + 32] = word(value)
    return bytes(data)


def _split(reason: str) -> Any:
    """The mark of a case the engines decide differently (``reason`` says how)."""
    return pytest.mark.xfail(strict=True, reason=reason)


# (id, deposit contract, tx target, calldata, marks). geth v1.17.5 for reference: ParseDepositLogs takes every
# log of the deposit contract whose first topic is DepositEvent (more topics allowed); DepositLogToRequest
# checks only that the data is 576 bytes and copies the five fields from their fixed positions.
DEPOSIT_CASES = [
    pytest.param(DEPOSITOR, DEPOSITOR, word(DEPOSIT_EVENT_TOPIC) + _DEPOSIT, id="well-formed"),
    pytest.param(DEPOSITOR, DEPOSITOR, word(1) + _DEPOSIT, id="other-topic-ignored"),
    pytest.param(DEPOSITOR, DEPOSITOR, word(DEPOSIT_EVENT_TOPIC) + _patched(0, 192), id="pubkey-offset-192"),
    pytest.param(LOGGER, LOGGER, word(DEPOSIT_EVENT_TOPIC) + bytes(96) + _DEPOSIT, id="extra-topics", marks=_split(
        "deposit contract logs LOG1..LOG4 whose first topic is DepositEvent, well-formed 576-byte data: py-evm "
        "(and geth v1.17.5 ParseDepositLogs, which checks only topic[0]) makes 4 deposit requests; revm (alloy-evm "
        "0.39 DepositEvent::decode_log) rejects the block: 'failed to decode deposit requests from receipts: topic "
        "list length mismatch'")),
    pytest.param(DEPOSITOR, DEPOSITOR, word(DEPOSIT_EVENT_TOPIC) + _DEPOSIT[:-1], id="575-bytes", marks=_split(
        "DepositEvent data of 575 bytes (last padding byte missing): py-evm (and geth) reject the block 'unable to "
        "parse deposit data: deposit wrong length: want 576, have 575'; revm's lenient ABI decoder accepts it and "
        "makes the same request as for the 576-byte form")),
    pytest.param(DEPOSITOR, DEPOSITOR, word(DEPOSIT_EVENT_TOPIC) + _DEPOSIT + bytes(32), id="608-bytes",
                 marks=_split(
                     "DepositEvent data of 608 bytes (a trailing zero word): py-evm (and geth) reject the block "
                     "'deposit wrong length: want 576, have 608'; revm ignores the trailing word and makes a request")),
    pytest.param(DEPOSITOR, DEPOSITOR, word(DEPOSIT_EVENT_TOPIC) + _patched(160, 47), id="pubkey-size-47",
                 marks=_split(
                     "576-byte DepositEvent data whose pubkey length word says 47: py-evm rejects the block "
                     "('invalid size of field 0'); revm accepts and makes a 191-byte request (47-byte pubkey); geth "
                     "v1.17.5 accepts and makes a 192-byte request (copies 48 bytes from the fixed position)")),
    pytest.param(DEPOSITOR, DEPOSITOR, word(DEPOSIT_EVENT_TOPIC) + bytes(576), id="576-zero-bytes", marks=_split(
        "576 zero bytes of DepositEvent data: py-evm rejects the block ('invalid offset of field 0'); revm accepts "
        "with no deposit request (every field decodes empty); geth v1.17.5 accepts with one all-zero 192-byte "
        "request")),
]


@pytest.mark.parametrize(("contract", "to", "data"), DEPOSIT_CASES)
def test_deposit_logs_make_the_same_requests(contract: bytes, to: bytes, data: bytes) -> None:
    """EIP-6110: the deposit contract's DepositEvent logs become type-0 requests, or make the block
    invalid; both engines must decide alike and make the same requests."""
    chains = open_pair(diff_genesis(deposit_contract=contract))
    env = _env(chains["revm"])
    tx = _dyn(to=to, gas=200_000, data=data)

    def outcome(evm: str) -> tuple[Any, ...]:
        try:
            result = chains[evm].executor.apply_transactions(chains[evm].current_block, [tx], env, [])
        except BlockValidationError:
            return ("block invalid",)
        return ("valid", result.receipts[0].status, result.requests, result.requests_hash)

    outcomes = _both(outcome)
    assert outcomes["revm"] == outcomes["py-evm"], outcomes


# --- 4. eth_call ---------------------------------------------------------------------------------

CALLME = bytes.fromhex("17e7eedce4ac02ef114a7ed9fe6e2f33feba1667")  # ethtest contracts (see test_rpc_call)
CALLREVERT = bytes.fromhex("0ee3ab1371c93e7c0c281cc0c2107cdebc8b1930")
CALLENV = bytes.fromhex("9344b07175800259691961298ca11c824e65032d")
EMIT = bytes.fromhex("7dcd17433742f4c0ca53122ab541d0ba67fc27df")
DELEGATED = bytes.fromhex("eda8645ba6948855e3b3cd596bbb07596d59c603")
SENDER = bytes.fromhex("7435ed30a8b4aeb0877cef0c6e8cffe834eb865f")
NOBODY = bytes.fromhex("00000000000000000000000000000000000000ee")
INFINITE_LOOP = bytes.fromhex("5b600056")
RETURN_42 = bytes.fromhex("602a5f5260205ff3")  # runtime: return the word 42


@functools.cache
def _calls() -> dict[str, CallMessage]:
    """(name, message): each kind of outcome eth_call can have, on the ethtest contracts or as init code."""
    M = CallMessage  # noqa: N806
    emit = ethtest_blocks()[9].transactions[0]
    deploy_callme = ethtest_blocks()[1].transactions[0].data
    child = deploy_code(RETURN_42)  # 19 bytes: one word in memory, CREATEd from there
    create_inside = asm(child.ljust(32, b"\0"), 0, "MSTORE", len(child), 0, 0, "CREATE", 0, "MSTORE", 32, 0, "RETURN")
    env_code = asm("PUSH0", "BLOBBASEFEE", "BASEFEE", "GASPRICE", 0, "BLOBHASH", 1, "NUMBER", "SUB", "BLOCKHASH",
                   *[x for i in range(6) for x in (32 * i, "MSTORE")], 192, 0, "RETURN")
    deposit_100 = deploy_code(b"\x5b" * 100)  # 100 bytes of code to store: 20000 gas of code deposit
    transient = asm(7, 1, "TSTORE", 1, "TLOAD", 0, "MSTORE", 32, 0, 8, "MCOPY", 64, 0, "RETURN")
    return dict([
        ("output", M(gas=100_000, to=CALLME, data=b"\xff\x01")),
        ("context", M(gas=100_000, sender=SENDER, to=CALLENV, value=7)),
        ("context-priced", M(gas=100_000, sender=SENDER, to=CALLENV, gas_price=10**10, gas_fee_cap=10**10)),
        ("revert-raw", M(gas=100_000, to=CALLME, data=b"\xff")),
        ("revert-panic", M(gas=100_000, to=CALLREVERT, data=word(0))),
        ("revert-error", M(gas=100_000, to=CALLREVERT, data=word(1))),
        ("out-of-gas", M(gas=30_000, sender=SENDER, to=EMIT, data=emit.data)),
        ("emit", M(gas=emit.gas, sender=SENDER, to=EMIT, value=emit.value, data=emit.data)),
        ("loop-out-of-gas", M(gas=200_000, data=INFINITE_LOOP)),
        ("invalid-fe", M(gas=100_000, data=b"\xfe")),
        ("undefined-ef", M(gas=100_000, data=b"\xef")),
        ("underflow-add", M(gas=100_000, data=b"\x01")),
        ("underflow-swap", M(gas=100_000, data=bytes.fromhex("5f91"))),
        ("underflow-dup", M(gas=100_000, data=bytes.fromhex("5f5f82"))),
        ("bad-jump", M(gas=100_000, data=bytes.fromhex("600056"))),
        ("bad-jumpi", M(gas=100_000, data=bytes.fromhex("6001600357"))),
        ("stack-overflow", M(gas=1_000_000, data=b"\x5f" * 1025)),
        ("returndata-out-of-bounds", M(gas=100_000, data=bytes.fromhex("60015f5f3e"))),
        ("create-deploys", M(gas=1_000_000, sender=SENDER, data=deploy_callme)),
        ("create-inside", M(gas=1_000_000, data=create_inside)),
        ("code-too-large", M(gas=10_000_000, data=asm(24_577, 0, "RETURN"))),
        ("code-starts-ef", M(gas=1_000_000, data=deploy_code(b"\xef\x00"))),
        ("initcode-too-large", M(gas=10_000_000, data=bytes(49_153))),
        ("env", M(gas=100_000, data=env_code)),
        ("blob-create-refused", M(gas=100_000, data=env_code, blob_hashes=[b"\x01" * 32], blob_fee_cap=10**9)),
        ("blobs", M(gas=100_000, to=CALLENV, blob_hashes=[b"\x01" * 32, b"\x01" * 32], blob_fee_cap=0)),
        ("blobs-unaffordable", M(gas=100_000, to=CALLENV, blob_hashes=[b"\x01" * 32], blob_fee_cap=10**9)),
        ("transient-mcopy", M(gas=100_000, data=transient)),
        ("delegated-7702", M(gas=100_000, to=DELEGATED, data=word(5))),
        ("access-list", M(gas=100_000, to=CALLME, data=b"\xff\x01", access_list=[(CALLME, [word(0)])])),
        ("precompile-sha256", M(gas=100_000, to=bytes(19) + b"\x02", data=b"abc")),
        ("precompile-modexp", M(gas=100_000, to=bytes(19) + b"\x05", data=word(1) * 3 + b"\x03\x05\x07")),
        ("precompile-bls-bad", M(gas=100_000, to=bytes(19) + b"\x0b", data=b"\x01" * 256)),
        ("value-to-precompile", M(gas=100_000, sender=SENDER, to=bytes(19) + b"\x04", value=5, data=b"hi")),
        ("value-without-funds", M(gas=100_000, sender=NOBODY, to=EMIT, value=1)),
        ("fee-below-base-fee", M(gas=100_000, to=CALLME, gas_price=1, gas_fee_cap=1)),
        ("tip-above-fee", M(gas=100_000, to=CALLME, gas_fee_cap=1, gas_tip_cap=2)),
        ("intrinsic-too-low", M(gas=21_000, to=CALLME, data=b"\xff\x01")),
        ("floor-too-low", M(gas=40_000, to=CALLME, data=b"\x01" * 1000)),
        ("gas-without-funds", M(gas=10**6, sender=NOBODY, to=CALLME, gas_price=10**10, gas_fee_cap=10**10)),
        ("blobs-without-fee-cap", M(gas=100_000, to=CALLENV, blob_hashes=[b"\x01" * 32])),
        ("code-deposit-out-of-gas", M(gas=tx_gas(None, deposit_100) + 5_000, data=deposit_100)),
        ("precompile-short-of-gas-bad-input", M(gas=25_000, to=bytes(19) + b"\x11", data=b"\x57")),
        ("modexp-huge-lengths", M(gas=100_000, to=bytes(19) + b"\x05", data=word(2**255) + word(1) + word(1))),
    ])


CALL_NAMES = (
    "output", "context", "context-priced", "revert-raw", "revert-panic", "revert-error", "out-of-gas", "emit",
    "loop-out-of-gas", "invalid-fe", "undefined-ef", "underflow-add", "underflow-swap", "underflow-dup", "bad-jump",
    "bad-jumpi", "stack-overflow", "returndata-out-of-bounds", "create-deploys", "create-inside", "code-too-large",
    "code-starts-ef", "initcode-too-large", "env", "blob-create-refused", "blobs", "blobs-unaffordable",
    "transient-mcopy", "delegated-7702", "access-list", "precompile-sha256", "precompile-modexp",
    "precompile-bls-bad", "value-to-precompile", "value-without-funds", "fee-below-base-fee", "tip-above-fee",
    "intrinsic-too-low", "floor-too-low", "gas-without-funds", "blobs-without-fee-cap", "code-deposit-out-of-gas",
    "precompile-short-of-gas-bad-input", "modexp-huge-lengths",
)
_CALL_XFAIL = {
    "precompile-bls-bad": pytest.mark.xfail(strict=True, reason=(
        "any precompile that fails on its input, here BLS12-381 G1ADD (0x0b) on 256 bytes of 0x01: both use all "
        "100000 gas, but revm's message is always 'precompile error' and py-evm's is its own exception text ('x >= "
        "field modulus'); geth gives the precompile's error ('invalid field element top bytes')")),
    "precompile-short-of-gas-bad-input": pytest.mark.xfail(strict=True, reason=(
        "BLS12_MAP_FP2_TO_G2 (0x11) on 1 byte with 3984 gas left (it costs 23800): revm, like geth (gas is "
        "charged before the input is read), fails 'out of gas' (VMErrorKind.OUT_OF_GAS); py-evm checks the input "
        "first: 'Length of data must be 128 bytes for BLS12_MAP_FP2_TO_G2' (OTHER). Same gas; the kind steers "
        "eth_estimateGas")),
    "modexp-huge-lengths": pytest.mark.xfail(strict=True, reason=(
        "MODEXP (0x05) with a base length of 2**255: py-evm, like geth (RequiredGas saturates to 2**64-1), fails "
        "'out of gas' (OUT_OF_GAS); revm fails 'precompile error' (OTHER). Same gas; the kind steers "
        "eth_estimateGas")),
    "code-deposit-out-of-gas": pytest.mark.xfail(strict=True, reason=(
        "a create whose init code returns 100 bytes with 5000 gas left for the 20000-gas code deposit: py-evm, "
        "like geth (ErrCodeStoreOutOfGas), fails 'contract creation code storage out of gas' (OTHER); revm says "
        "'out of gas' (OUT_OF_GAS), which eth_estimateGas treats as 'more gas helps'")),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=_CALL_XFAIL.get(n, ())) for n in CALL_NAMES])
def test_a_call_gives_the_same_result(ethtest: dict[str, BlockChain], name: str) -> None:
    """eth_call on the state after blocks 20 and 600: the same output, gas, peak gas and error (kind and
    geth's text), or the same refusal (``CallPreconditionError`` and its text)."""
    message = _calls()[name]
    for at in (20, 600):
        header = ethtest["revm"].get_header_by_number(at)
        outcomes = _both(lambda evm, header=header: call_outcome(ethtest[evm].executor, header, message))
        assert outcomes["revm"] == outcomes["py-evm"], (at, outcomes)


def _traced(executor: Any, header: Any, message: CallMessage) -> tuple[Any, ...]:
    """``trace_access``'s result and accesses (eth_createAccessList's run), or the refusal."""
    from ethnode.core.execution import ExecutionError

    try:
        return ("result", *executor.trace_access(header, message))
    except ExecutionError as exc:
        return ("refused", type(exc).__name__, str(exc))


def test_a_traced_call_records_the_same_accesses(ethtest: dict[str, BlockChain]) -> None:
    """eth_createAccessList's trace (revm's inspector in rust/src/evm/access_list.rs, py-evm's opcode
    hooks): for every call case, the same accesses in the same order and the same result as the
    plain call (the cases whose error kinds differ, above, are compared on their accesses)."""
    header = ethtest["revm"].current_block
    recorded = 0
    for name in CALL_NAMES:
        message = _calls()[name]
        outcomes = _both(lambda evm, message=message: _traced(ethtest[evm].executor, header, message))
        if name in _CALL_XFAIL:
            assert outcomes["revm"][2:] == outcomes["py-evm"][2:], (name, outcomes)
            continue
        assert outcomes["revm"] == outcomes["py-evm"], (name, outcomes)
        plain = call_outcome(ethtest["py-evm"].executor, header, message)
        assert outcomes["py-evm"][:2] == plain[:2] and (plain[0] == "refused" or outcomes["py-evm"][1] == plain[1])
        if outcomes["revm"][0] == "result":
            recorded += len(outcomes["revm"][2])
    assert recorded >= 5, recorded
    # SLOAD 0xaa, SSTORE 0xcc, BALANCE(NOBODY), in a create from SENDER: slots of the new contract, then NOBODY
    code = bytes.fromhex("60aa5450" "60bb60cc55" "73" + NOBODY.hex() + "3150" "00")
    traced = _both(lambda evm: _traced(ethtest[evm].executor, header, CallMessage(gas=100_000, sender=SENDER,
                                                                                 data=code)))
    assert traced["revm"] == traced["py-evm"], traced
    created = contract_address(SENDER, ethtest["revm"].state_at(header).nonce(SENDER))
    assert traced["revm"][2] == [(created, word(0xAA)), (created, word(0xCC)), (NOBODY, None)], traced


def test_the_call_cases_are_what_their_names_say(ethtest: dict[str, BlockChain]) -> None:
    """Every message is run, and a few are checked for their kind, so the comparisons cover each kind."""
    assert set(_calls()) == set(CALL_NAMES)
    header = ethtest["revm"].current_block
    kinds = {name: call_outcome(ethtest["py-evm"].executor, header, _calls()[name]) for name in (
        "output", "revert-error", "stack-overflow", "value-without-funds", "intrinsic-too-low", "create-inside",
        "floor-too-low", "out-of-gas", "invalid-fe", "blobs")}
    assert kinds["output"][1].output == b"\xff\xee" and kinds["revert-error"][1].message == "execution reverted"
    assert kinds["stack-overflow"][1].message == "stack limit reached 1024 (1023)"
    assert kinds["value-without-funds"][:2] == ("refused", "CallPreconditionError")
    assert kinds["intrinsic-too-low"][:2] == ("refused", "IntrinsicGasError")
    assert kinds["floor-too-low"][2].startswith("insufficient gas for floor data gas cost")
    assert len(kinds["create-inside"][1].output) == 32 and kinds["create-inside"][1].error is None
    assert kinds["out-of-gas"][1].message == "out of gas"
    assert kinds["invalid-fe"][1].message == "invalid opcode: INVALID"
    assert kinds["blobs"][0] == "result" and not kinds["blobs"][1].failed
