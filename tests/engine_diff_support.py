"""Plumbing for the engine differential tests (``test_engine_diff.py``): revm against py-evm.

Two engines must compute the same blocks. The tests run the same input through both and
compare everything consensus depends on; this module holds what they share:

- ``asm``: a tiny assembler (mnemonics, pushes, labels), so the contracts stay readable;
- the contracts of the differential genesis, each exercising one part of the EVM;
- ``diff_genesis``/``open_pair``: one chain per engine on the same Prague genesis, each
  keeping its own state, so a node one engine forgets to write shows up on the next block;
- ``result_diffs``/``state_diffs``: every disagreement between two ``BlockResult`` (or two
  states), worded so a failing assertion names the block, tx and field;
- ``TxGen``: seeded random txs of every type against those contracts.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any

from chain_support import open_chain
from eth_support import genesis_json

from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.execution import CallMessage
from ethnode.core.execution.api import BlockResult
from ethnode.core.execution.precheck import CallRules, floor_data_gas, intrinsic_gas
from ethnode.core.execution.system import (
    BEACON_ROOTS_ADDRESS,
    CONSOLIDATION_QUEUE_ADDRESS,
    DEPOSIT_EVENT_TOPIC,
    HISTORY_STORAGE_ADDRESS,
    WITHDRAWAL_QUEUE_ADDRESS,
)
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import MemoryDB
from ethnode.core.state import StateView
from ethnode.core.types.transaction import (
    AccessListTx,
    AccessTuple,
    BlobTx,
    DynamicFeeTx,
    LegacyTx,
    SetCodeAuthorization,
    SetCodeTx,
    Transaction,
    address_of,
)
from ethnode.crypto.keccak import keccak256
from ethnode.crypto.keys import PrivateKey

ENGINES = ("revm", "py-evm")
CHAIN_ID = 0xD1FF
GWEI = 10**9
PRAGUE_RULES = CallRules(homestead=True, istanbul=True, berlin=True, london=True, shanghai=True, cancun=True,
                         prague=True)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
PER_AUTH_GAS = 25_000  # EIP-7702 PER_EMPTY_ACCOUNT_COST, charged up front per authorization

# --- a tiny assembler ----------------------------------------------------------------------------

_OPS = {
    "STOP": 0x00, "ADD": 0x01, "SUB": 0x03, "GT": 0x11, "ISZERO": 0x15, "SHA3": 0x20, "ADDRESS": 0x30,
    "BALANCE": 0x31, "ORIGIN": 0x32, "CALLER": 0x33, "CALLVALUE": 0x34, "CALLDATALOAD": 0x35,
    "CALLDATASIZE": 0x36, "CALLDATACOPY": 0x37, "CODESIZE": 0x38, "CODECOPY": 0x39, "GASPRICE": 0x3A,
    "EXTCODESIZE": 0x3B, "EXTCODECOPY": 0x3C, "RETURNDATASIZE": 0x3D, "RETURNDATACOPY": 0x3E,
    "EXTCODEHASH": 0x3F, "BLOCKHASH": 0x40, "COINBASE": 0x41, "TIMESTAMP": 0x42, "NUMBER": 0x43,
    "PREVRANDAO": 0x44, "GASLIMIT": 0x45, "CHAINID": 0x46, "SELFBALANCE": 0x47, "BASEFEE": 0x48,
    "BLOBHASH": 0x49, "BLOBBASEFEE": 0x4A, "POP": 0x50, "MSTORE": 0x52, "SLOAD": 0x54, "SSTORE": 0x55,
    "JUMP": 0x56, "JUMPI": 0x57, "MSIZE": 0x59, "GAS": 0x5A, "JUMPDEST": 0x5B, "TLOAD": 0x5C,
    "TSTORE": 0x5D, "MCOPY": 0x5E, "PUSH0": 0x5F, "CREATE": 0xF0, "CALL": 0xF1, "CALLCODE": 0xF2,
    "RETURN": 0xF3, "DELEGATECALL": 0xF4, "CREATE2": 0xF5, "STATICCALL": 0xFA, "REVERT": 0xFD,
    "INVALID": 0xFE, "SELFDESTRUCT": 0xFF,
    **{f"DUP{i}": 0x7F + i for i in range(1, 17)},
    **{f"SWAP{i}": 0x8F + i for i in range(1, 17)},
    **{f"LOG{i}": 0xA0 + i for i in range(5)},
}


def asm(*items: Any) -> bytes:
    """Bytecode of ``items``: a mnemonic, an int (shortest PUSH, PUSH0 for 0), bytes (PUSHn of
    them), ``":name"`` (a JUMPDEST labelled name) or ``"@name"`` (PUSH2 of that label)."""
    labels: dict[str, int] = {}
    for _ in range(2):  # the first pass places the labels, the second fills their references
        code = bytearray()
        for item in items:
            if isinstance(item, str) and item.startswith(":"):
                labels[item[1:]] = len(code)
                code.append(_OPS["JUMPDEST"])
            elif isinstance(item, str) and item.startswith("@"):
                code += bytes((0x61,)) + labels.get(item[1:], 0).to_bytes(2, "big")  # PUSH2, fixed size
            elif isinstance(item, str):
                code.append(_OPS[item])
            elif isinstance(item, bytes):
                code += bytes((0x5F + len(item),)) + item
            elif item == 0:
                code.append(_OPS["PUSH0"])
            else:
                raw = item.to_bytes((item.bit_length() + 7) // 8, "big")
                code += bytes((0x5F + len(raw),)) + raw
    return bytes(code)


def word(value: int | bytes) -> bytes:
    return value.to_bytes(32, "big") if isinstance(value, int) else value.rjust(32, b"\0")


# --- the contracts -------------------------------------------------------------------------------

# SSTORE every (slot, value) word pair of the calldata: zeros delete, rewrites refund.
STORE_CODE = asm(0, ":loop", "DUP1", "CALLDATASIZE", "GT", "ISZERO", "@end", "JUMPI",
                 "DUP1", 32, "ADD", "CALLDATALOAD", "DUP2", "CALLDATALOAD", "SSTORE", 64, "ADD", "@loop", "JUMP",
                 ":end", "STOP")
# calldata = 4 topic words + data: LOG0 .. LOG4 of the data.
LOGGER_CODE = asm(
    128, "CALLDATASIZE", "SUB", "DUP1", 128, 0, "CALLDATACOPY",
    "DUP1", 0, "LOG0",
    0, "CALLDATALOAD", "DUP2", 0, "LOG1",
    32, "CALLDATALOAD", 0, "CALLDATALOAD", "DUP3", 0, "LOG2",
    64, "CALLDATALOAD", 32, "CALLDATALOAD", 0, "CALLDATALOAD", "DUP4", 0, "LOG3",
    96, "CALLDATALOAD", 64, "CALLDATALOAD", 32, "CALLDATALOAD", 0, "CALLDATALOAD", "DUP5", 0, "LOG4",
    "STOP",
)


def _caller_code(op: str) -> bytes:
    """calldata = [target][value][gas][inner calldata]: one ``op`` call; slot 0 = success, slot 1 =
    return data size, the return data logged."""
    value = [32, "CALLDATALOAD"] if op in ("CALL", "CALLCODE") else []
    return asm(96, "CALLDATASIZE", "SUB", "DUP1", 96, 0, "CALLDATACOPY",
               0, 0, "DUP3", 0, *value, 0, "CALLDATALOAD", 64, "CALLDATALOAD", op,
               0, "SSTORE", "RETURNDATASIZE", 1, "SSTORE",
               "RETURNDATASIZE", 0, 0, "RETURNDATACOPY", "RETURNDATASIZE", 0, "LOG0", "STOP")


def _creator_code(op: str) -> bytes:
    """calldata = [value][salt][initcode]: one CREATE/CREATE2; slot 0 = the address (0 on failure)."""
    make = ["DUP1", 0, 0, "CALLDATALOAD", "CREATE"] if op == "CREATE" else \
        [32, "CALLDATALOAD", "DUP2", 0, 0, "CALLDATALOAD", "CREATE2"]
    return asm(64, "CALLDATASIZE", "SUB", "DUP1", 64, 0, "CALLDATACOPY", *make,
               0, "SSTORE", "RETURNDATASIZE", 1, "SSTORE",
               "RETURNDATASIZE", 0, 0, "RETURNDATACOPY", "RETURNDATASIZE", 0, "LOG0", "STOP")


# calldata = records [target][value][gas][len][len bytes]: one CALL each, success and return data logged.
MULTI_CODE = asm(
    0, ":loop", "DUP1", "CALLDATASIZE", "GT", "ISZERO", "@end", "JUMPI",
    "DUP1", 96, "ADD", "CALLDATALOAD",
    "DUP1", "DUP3", 128, "ADD", 0, "CALLDATACOPY",
    0, 0, "DUP3", 0, "DUP6", 32, "ADD", "CALLDATALOAD", "DUP7", "CALLDATALOAD", "DUP8", 64, "ADD", "CALLDATALOAD",
    "CALL", 0, "MSTORE", "RETURNDATASIZE", 0, 32, "RETURNDATACOPY", "RETURNDATASIZE", 32, "ADD", 0, "LOG0",
    128, "ADD", "ADD", "@loop", "JUMP",
    ":end", "STOP",
)
# calldata = [topic][data]: one LOG1 (the chain's deposit contract: topic DepositEvent makes a deposit request).
DEPOSIT_CODE = asm(32, "CALLDATASIZE", "SUB", "DUP1", 32, 0, "CALLDATACOPY", 0, "CALLDATALOAD", "SWAP1", 0, "LOG1",
                   "STOP")
REVERT_CODE = asm(1, 0, "SSTORE", "CALLDATASIZE", 0, 0, "CALLDATACOPY", "CALLDATASIZE", 0, "LOG0",
                  "CALLDATASIZE", 0, "REVERT")
BURN_CODE = asm("NUMBER", 0, "SSTORE", ":loop", "@loop", "JUMP")  # runs out of gas, whatever it is given
DESTRUCT_CODE = asm(0, "CALLDATALOAD", "SELFDESTRUCT")  # beneficiary = first word
# calldata = [key][value][key2]: TSTORE, then slot 0 = TLOAD(key), slot 1 = TLOAD(key2), returns TLOAD(key2).
TRANSIENT_CODE = asm(32, "CALLDATALOAD", 0, "CALLDATALOAD", "TSTORE",
                     0, "CALLDATALOAD", "TLOAD", 0, "SSTORE", 64, "CALLDATALOAD", "TLOAD", 1, "SSTORE",
                     64, "CALLDATALOAD", "TLOAD", 0, "MSTORE", 32, 0, "RETURN")
_ENV_VALUES: list[list[Any]] = [
    [0], ["BLOBBASEFEE"], [0, "BLOBHASH"], [1, "BLOBHASH"], [1, "NUMBER", "SUB", "BLOCKHASH"],
    [2, "NUMBER", "SUB", "BLOCKHASH"], [0, "CALLDATALOAD", "BLOCKHASH"], ["BASEFEE"], ["PREVRANDAO"],
    ["COINBASE"], ["TIMESTAMP"], ["NUMBER"], ["GASLIMIT"], ["CHAINID"], ["GASPRICE"], ["ORIGIN"], ["CALLER"],
    ["CALLVALUE"], ["SELFBALANCE"], [32, "CALLDATALOAD", "BALANCE"], [32, "CALLDATALOAD", "EXTCODEHASH"],
    [32, "CALLDATALOAD", "EXTCODESIZE"], ["ADDRESS"], ["CODESIZE"], ["GAS"],
]
# calldata = [block number][address]: the block's environment into memory (MCOPY'd over itself), logged,
# hashed into slot 0 and returned.
ENV_CODE = asm(
    *[x for i, value in enumerate(_ENV_VALUES) for x in (*value, 32 * i, "MSTORE")],
    32, 0, 32 * len(_ENV_VALUES), 32, "CALLDATALOAD", "EXTCODECOPY",
    32 * len(_ENV_VALUES), 0, 16, "MCOPY", 64, 48, 0, "MCOPY",
    "MSIZE", 0, "LOG0", "MSIZE", 0, "SHA3", 0, "SSTORE", "MSIZE", 0, "RETURN",
)


def _addr(n: int) -> bytes:
    return bytes.fromhex("c0de") + bytes(16) + n.to_bytes(2, "big")


STORE, LOGGER, CALLER, DELEGATOR, STATIC, CALLCODER, CREATOR, CREATOR2, MULTI, REVERTER, BURNER, DESTRUCTOR, \
    TRANSIENT, ENV, DEPOSITOR = (_addr(i) for i in range(1, 16))
CONTRACTS = {
    STORE: STORE_CODE, LOGGER: LOGGER_CODE, CALLER: _caller_code("CALL"), DELEGATOR: _caller_code("DELEGATECALL"),
    STATIC: _caller_code("STATICCALL"), CALLCODER: _caller_code("CALLCODE"), CREATOR: _creator_code("CREATE"),
    CREATOR2: _creator_code("CREATE2"), MULTI: MULTI_CODE, REVERTER: REVERT_CODE, BURNER: BURN_CODE,
    DESTRUCTOR: DESTRUCT_CODE, TRANSIENT: TRANSIENT_CODE, ENV: ENV_CODE, DEPOSITOR: DEPOSIT_CODE,
}
PRECOMPILES = [bytes(19) + bytes((i,)) for i in range(1, 0x12)]
SYSTEM = [BEACON_ROOTS_ADDRESS, HISTORY_STORAGE_ADDRESS, WITHDRAWAL_QUEUE_ADDRESS, CONSOLIDATION_QUEUE_ADDRESS]


def _key(label: str) -> PrivateKey:
    return PrivateKey(keccak256(b"engine-diff " + label.encode()))


SENDERS = [_key(f"sender {i}") for i in range(6)]
AUTHORITIES = [_key(f"authority {i}") for i in range(3)]  # EOAs that delegate (EIP-7702) and also send
JUNK = _key("junk")  # sends the txs meant to be refused
CODE_KEY = _key("has code")  # an account with code whose key we know (EIP-3607)
MAX_NONCE_KEY = _key("max nonce")  # nonce 2**64-1 (geth "nonce has max value")
POOR_KEY = _key("poor")  # 10**15 wei: enough for a transfer, not for much gas
UNFUNDED_KEY = _key("unfunded")


def addr(key: PrivateKey) -> bytes:
    return address_of(key.node_id)


def deploy_code(runtime: bytes) -> bytes:
    """Init code returning ``runtime``."""
    return asm(bytes(2) if not runtime else len(runtime).to_bytes(2, "big"), "DUP1", b"\x00\x0b", 0, "CODECOPY",
               0, "RETURN") + runtime


def diff_genesis(deposit_contract: bytes = DEPOSITOR) -> dict[str, Any]:
    """A Prague-from-genesis chain: funded EOAs, the contracts above, the system contracts of the
    ethtest genesis, and DEPOSITOR as the deposit contract (its DepositEvent logs become requests)."""
    ethtest = genesis_json()
    config = {k: v for k, v in ethtest["config"].items() if not k.endswith("Time") and k != "terminalTotalDifficulty"}
    config.update(chainId=CHAIN_ID, shanghaiTime=0, cancunTime=0, pragueTime=0, terminalTotalDifficulty=0,
                  depositContractAddress="0x" + deposit_contract.hex())
    config["blobSchedule"] = {k: v for k, v in config["blobSchedule"].items() if k in ("cancun", "prague")}
    alloc: dict[str, Any] = {a: ethtest["alloc"][a] for a in ethtest["alloc"] if bytes.fromhex(a) in SYSTEM}
    for key in (*SENDERS, *AUTHORITIES, JUNK):
        alloc["0x" + addr(key).hex()] = {"balance": hex(10**24)}
    alloc["0x" + addr(CODE_KEY).hex()] = {"balance": hex(10**24), "code": "0x00"}
    alloc["0x" + addr(MAX_NONCE_KEY).hex()] = {"balance": hex(10**24), "nonce": hex(2**64 - 1)}
    alloc["0x" + addr(POOR_KEY).hex()] = {"balance": hex(10**15)}
    storage = {"0x" + word(i).hex(): "0x" + word(i + 1).hex() for i in range(4)}
    for address, code in CONTRACTS.items():
        alloc["0x" + address.hex()] = {"balance": hex(10**18), "code": "0x" + code.hex(), "storage": storage}
    alloc["0x" + PRECOMPILES[3].hex()] = {"balance": "0x1"}  # an identity precompile that exists
    return {"config": config, "alloc": alloc, "gasLimit": hex(36_000_000), "difficulty": "0x0",
            "baseFeePerGas": hex(GWEI), "timestamp": "0x0", "extraData": "0x", "excessBlobGas": "0x0",
            "blobGasUsed": "0x0"}


def open_pair(obj: dict[str, Any] | None = None) -> dict[str, BlockChain]:
    """One executing chain per engine, each on its own database holding the same genesis."""
    obj = obj if obj is not None else diff_genesis()
    chains = {}
    for evm in ENGINES:
        db = MemoryDB()
        own = copy.deepcopy(obj)
        setup_genesis(db, Genesis.from_json(own), own)
        chain = open_chain(db, execute=True, evm=evm)
        chain._state_root_warned = True
        chains[evm] = chain
    return chains


class Recording:
    """An executor that keeps the ``BlockResult`` of every block it executes (by number)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.version = inner.name, inner.version
        self.results: dict[int, BlockResult] = {}

    def execute_block(self, parent: Any, block: Any, senders: Any = None, fee_recipient: Any = None) -> BlockResult:
        result = self.inner.execute_block(parent, block, senders, fee_recipient)
        self.results[block.number] = result
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# --- comparing -----------------------------------------------------------------------------------


def _logs(receipt: Any) -> list[tuple[bytes, tuple[bytes, ...], bytes]]:
    return [(bytes(lg.address), tuple(bytes(t) for t in lg.topics), bytes(lg.data)) for lg in receipt.logs]


def result_diffs(a: BlockResult, b: BlockResult, names: Sequence[str] = ENGINES) -> list[str]:
    """Every field in which two results of the same block differ, one line each ("" when equal)."""
    out: list[str] = []
    na, nb = names
    ha, hb = [tx.hash.hex() for tx in a.transactions], [tx.hash.hex() for tx in b.transactions]
    if ha != hb:
        out.append(f"txs applied: {na} {len(ha)} {ha}, {nb} {len(hb)} {hb}")
    if len(a.receipts) != len(b.receipts):
        out.append(f"receipt count: {na} {len(a.receipts)}, {nb} {len(b.receipts)}")
    for i, (x, y) in enumerate(zip(a.receipts, b.receipts, strict=False)):
        tx = f"tx {i} (0x{ha[i][:16]}..)" if i < len(ha) else f"tx {i}"
        for field in ("type", "status", "cumulative_gas_used", "post_state"):
            if getattr(x, field) != getattr(y, field):
                out.append(f"{tx} {field}: {na} {getattr(x, field)!r}, {nb} {getattr(y, field)!r}")
        if _logs(x) != _logs(y):
            out.append(f"{tx} logs: {na} {_logs(x)}, {nb} {_logs(y)}")
    for field in ("gas_used", "blob_gas_used", "bloom", "receipts_root", "requests", "requests_hash",
                  "block_access_list", "state_root"):
        va, vb = getattr(a, field), getattr(b, field)
        if va != vb:
            show = (lambda v: v.hex() if isinstance(v, bytes) else v)  # noqa: E731
            out.append(f"{field}: {na} {show(va)}, {nb} {show(vb)}")
    return out


def state_diffs(views: Sequence[StateView], addresses: Sequence[bytes], slots: Sequence[int] = range(8)) -> list[str]:
    """Per-account differences between two states (for the message when state roots differ)."""
    a, b = views
    out = []
    for address in dict.fromkeys(addresses):
        for what in ("nonce", "balance", "code"):
            va, vb = getattr(a, what)(address), getattr(b, what)(address)
            if va != vb:
                out.append(f"0x{address.hex()} {what}: {va!r} != {vb!r}")
        exists = (a.account(address) is not None, b.account(address) is not None)
        if exists[0] != exists[1]:
            out.append(f"0x{address.hex()} exists: {exists[0]} != {exists[1]}")
        for slot in slots:
            va, vb = a.storage(address, slot), b.storage(address, slot)
            if va != vb:
                out.append(f"0x{address.hex()} slot {slot}: {va} != {vb}")
    return out


def call_message(tx: Transaction) -> CallMessage:
    """``tx`` as an eth_call message (free: no fee fields, so no balance is needed for gas)."""
    access = getattr(tx, "access_list", None)
    return CallMessage(
        gas=tx.gas, sender=tx.sender, to=tx.to, value=tx.value, data=tx.data,  # type: ignore[attr-defined]
        access_list=None if access is None else [(t.address, list(t.storage_keys)) for t in access],
        blob_hashes=list(tx.blob_hashes) or None, blob_fee_cap=0 if tx.blob_hashes else None,  # as RPC does
    )


def call_outcome(executor: Any, header: Any, message: CallMessage) -> tuple[Any, ...]:
    """What a call gives, comparable across engines: its ``CallResult``, or the refusal's type and text."""
    from ethnode.core.execution import ExecutionError

    try:
        return ("result", executor.call(header, message))
    except ExecutionError as exc:
        return ("refused", type(exc).__name__, str(exc))


# --- random txs ----------------------------------------------------------------------------------


def tx_gas(to: bytes | None, data: bytes, access_list: Sequence[Any] = (), auths: int = 0) -> int:
    """The least gas a Prague tx needs: intrinsic (with auths) or the EIP-7623 floor."""
    message = CallMessage(gas=0, to=to, data=data, access_list=[(t.address, t.storage_keys) for t in access_list])
    return max(intrinsic_gas(message, PRAGUE_RULES)[0] + auths * PER_AUTH_GAS, floor_data_gas(data))


class TxGen:
    """Seeded random txs against the differential genesis.

    Nonces are tracked as the txs are made (authorizations included) and re-read from the
    chain after each block, so nearly every tx is valid; ``junk`` ones are made to be refused.
    """

    KINDS = ("transfer", "store", "logger", "deposit", "caller", "multi", "create", "create_tx", "revert", "burn",
             "destruct", "transient", "env", "precompile", "request", "delegated", "created", "destroy_new",
             "floor", "requests")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nonces: dict[bytes, int] = {}
        self.created: list[bytes] = []  # CREATE2 addresses that may exist
        self.fresh: list[bytes] = []  # addresses that got value (new accounts)

    def sync(self, state: StateView) -> None:
        for key in (*SENDERS, *AUTHORITIES, JUNK):
            self.nonces[addr(key)] = state.nonce(addr(key))

    # --- targets and their calldata ------------------------------------------------------------

    def _fresh(self) -> bytes:
        a = self.rng.randbytes(20)
        self.fresh.append(a)
        return a

    def address(self) -> bytes:
        """Any kind of address: contract, EOA, precompile, system contract, new or known-empty."""
        r = self.rng
        pools = [list(CONTRACTS), [addr(k) for k in SENDERS + AUTHORITIES], PRECOMPILES, SYSTEM,
                 self.created or [ENV], self.fresh or [STORE], [addr(CODE_KEY)]]
        pool = r.choice(pools)
        return r.choice(pool) if r.random() < 0.9 else self._fresh()

    def initcode(self) -> bytes:
        r = self.rng
        choice = r.randrange(9)
        if choice == 0:
            return deploy_code(r.choice([STORE_CODE, LOGGER_CODE, TRANSIENT_CODE, ENV_CODE]))
        if choice == 1:
            return deploy_code(DESTRUCT_CODE)
        if choice == 2:
            return deploy_code(b"\xef" + r.randbytes(r.randrange(4)))  # EIP-3541: refused
        if choice == 3:
            return asm(1, 0, "SSTORE", 4, 0, "REVERT")  # reverts with 4 zero bytes
        if choice == 4:
            return asm(bytes(12) + self.address(), "SELFDESTRUCT")  # created and destroyed in one tx
        if choice == 5:
            return asm(24_577, 0, "RETURN")  # EIP-170: code too large
        if choice == 6:
            return BURN_CODE  # runs out of gas
        if choice == 7:
            return b""  # an account with no code
        return deploy_code(r.randbytes(r.randrange(1, 40)).lstrip(b"\xef"))

    def calldata(self, target: bytes, depth: int = 0) -> bytes:
        """Calldata shaped for what ``target`` runs (random bytes for anything else)."""
        r = self.rng
        if target == STORE:
            pairs = [(r.randrange(6), r.choice([0, 0, 1, 2, r.getrandbits(256)])) for _ in range(r.randrange(1, 6))]
            return b"".join(word(s) + word(v) for s, v in pairs)
        if target == DEPOSITOR:
            if r.random() < 0.8:
                return word(DEPOSIT_EVENT_TOPIC) + deposit_data(r)
            return word(r.getrandbits(256)) + r.randbytes(r.choice([0, 576]))
        if target == LOGGER:
            return b"".join(word(r.getrandbits(256)) for _ in range(4)) + r.randbytes(r.randrange(70))
        if target in (CALLER, DELEGATOR, STATIC, CALLCODER) and depth < 3:
            inner = self.address()
            value = r.choice([0, 0, 1, 10**15]) if target in (CALLER, CALLCODER) else 0
            gas = r.choice([2**256 - 1, 100_000, 5_000, 0])
            return word(inner) + word(value) + word(gas) + self.calldata(inner, depth + 1)
        if target == MULTI and depth < 3:
            out = b""
            for _ in range(r.randrange(1, 4)):
                inner = r.choice([TRANSIENT, self.address()])
                data = self.calldata(inner, depth + 1)
                out += word(inner) + word(r.choice([0, 0, 7])) + word(r.choice([2**256 - 1, 60_000])) + \
                    word(len(data)) + data
            return out
        if target in (CREATOR, CREATOR2):
            return word(r.choice([0, 0, 3])) + word(r.randrange(3)) + self.initcode()
        if target == TRANSIENT:
            k = r.randrange(3)
            return word(k) + word(r.choice([0, 5, r.getrandbits(256)])) + word(r.choice([k, r.randrange(3)]))
        if target == ENV:
            number = r.choice([0, 1, 2, 300, 2**256 - 1])
            return word(number) + word(self.address())
        if target in (DESTRUCTOR, *self.created):
            return word(self.address())
        if target in PRECOMPILES:
            return precompile_input(r, target[-1])
        if target in (HISTORY_STORAGE_ADDRESS, BEACON_ROOTS_ADDRESS):  # a block number / a timestamp
            return word(r.choice([0, 1, 2, 12, 24, 8191, 2**64]))
        if target in (WITHDRAWAL_QUEUE_ADDRESS, CONSOLIDATION_QUEUE_ADDRESS):
            return r.randbytes(r.choice([0, 56, 96]))
        return r.randbytes(r.choice([0, 0, 4, 36]))

    # --- txs -----------------------------------------------------------------------------------

    def action(self, kind: str) -> tuple[bytes | None, int, bytes, int]:
        """(to, value, data, extra gas) for one ``kind`` of tx."""
        r = self.rng
        gas = r.choice([30_000, 100_000, 300_000, 1_000_000])
        if kind == "transfer":
            to = r.choice([self.address(), self._fresh(), addr(r.choice(SENDERS))])
            return to, r.choice([0, 1, 10**18]), b"", 0 if r.random() < 0.5 else 10_000
        if kind == "create_tx":
            return None, r.choice([0, 5]), self.initcode(), gas + 200_000
        if kind == "request":
            queue = r.choice([WITHDRAWAL_QUEUE_ADDRESS, CONSOLIDATION_QUEUE_ADDRESS])
            size = 56 if queue == WITHDRAWAL_QUEUE_ADDRESS else 96
            return queue, r.choice([10**15, 0]), r.randbytes(r.choice([size, size, 3])), 200_000
        if kind == "requests":  # a burst of EIP-7002/7251 requests: more than a block dequeues
            queue = r.choice([WITHDRAWAL_QUEUE_ADDRESS, CONSOLIDATION_QUEUE_ADDRESS])
            size = 56 if queue == WITHDRAWAL_QUEUE_ADDRESS else 96
            data = b"".join(word(queue) + word(10**14) + word(2**256 - 1) + word(size) + r.randbytes(size)
                            for _ in range(r.randrange(5, 20)))
            return MULTI, 0, data, 3_000_000
        if kind == "floor":  # EIP-7623: calldata-heavy, little execution
            return r.choice([addr(r.choice(SENDERS)), STORE, PRECOMPILES[3]]), 0, r.randbytes(r.randrange(200, 3000)), \
                r.choice([0, 0, 5_000])
        if kind == "delegated":
            to = addr(r.choice(AUTHORITIES))
            return to, r.choice([0, 9]), self.calldata(r.choice(list(CONTRACTS))), gas
        if kind == "destroy_new":  # EIP-6780: a contract created and destroyed in the same tx is deleted
            salt = r.getrandbits(64)
            init = deploy_code(DESTRUCT_CODE)
            created = create2_address(CREATOR2, salt, init)
            make = word(0) + word(salt) + init
            kill = word(self.address())
            data = word(CREATOR2) + word(0) + word(2**256 - 1) + word(len(make)) + make + \
                word(created) + word(5) + word(2**256 - 1) + word(len(kill)) + kill
            return MULTI, 0, data, 300_000
        to = {"store": STORE, "logger": LOGGER, "deposit": DEPOSITOR, "multi": MULTI, "revert": REVERTER,
              "burn": BURNER, "destruct": DESTRUCTOR, "transient": TRANSIENT, "env": ENV}.get(kind)
        if kind == "caller":
            to = r.choice([CALLER, DELEGATOR, STATIC, CALLCODER])
        elif kind == "create":
            to = r.choice([CREATOR, CREATOR2])
        elif kind == "precompile":
            to = r.choice(PRECOMPILES)
        elif kind == "created":
            to = r.choice(self.created or [DESTRUCTOR])
        assert to is not None
        data = self.calldata(to)
        if to == CREATOR2 and len(data) > 64:
            self.created.append(create2_address(CREATOR2, int.from_bytes(data[32:64], "big"), data[64:]))
        return to, r.choice([0, 0, 0, 3]), data, gas

    def access_list(self) -> list[AccessTuple]:
        r = self.rng
        return [AccessTuple(self.address(), [word(r.randrange(6)) for _ in range(r.randrange(3))])
                for _ in range(r.choice([0, 0, 1, 2]))]

    def tx(self, base_fee: int, blob_fee: int, key: PrivateKey | None = None) -> Transaction:
        r = self.rng
        key = key or r.choice(SENDERS + AUTHORITIES)
        sender = addr(key)
        nonce = self.nonces[sender]
        kind = r.choice(self.KINDS)
        to, value, data, extra = self.action(kind)
        tx_type = r.choice([0, 0, 1, 2, 2, 2, 3, 4]) if to is not None else r.choice([0, 1, 2])
        tip = r.choice([0, 1, GWEI])
        access = self.access_list() if tx_type else []
        auths: list[SetCodeAuthorization] = []
        self.nonces[sender] = nonce + 1
        if tx_type == 4:
            auths = self.authorizations(sender)
        gas = tx_gas(to, data, access, len(auths)) + extra
        assert to is not None or tx_type < 3
        if tx_type == 0:
            tx: Transaction = LegacyTx(nonce, base_fee + tip, gas, to, value, data, 0, 0, 0)
            return tx.sign(key, CHAIN_ID if r.random() < 0.9 else None)
        if tx_type == 1:
            tx = AccessListTx(CHAIN_ID, nonce, base_fee + tip, gas, to, value, data, access, 0, 0, 0)
        elif tx_type == 2:
            tx = DynamicFeeTx(CHAIN_ID, nonce, tip, 2 * base_fee + tip, gas, to, value, data, access, 0, 0, 0)
        elif tx_type == 3:
            hashes = [b"\x01" + r.randbytes(31) for _ in range(r.choice([1, 1, 2, 3]))]
            tx = BlobTx(CHAIN_ID, nonce, tip, 2 * base_fee + tip, gas, to, value, data, access,
                        blob_fee * 2 + r.choice([0, 1000]), hashes, 0, 0, 0)
        else:
            tx = SetCodeTx(CHAIN_ID, nonce, tip, 2 * base_fee + tip, gas, to, value, data, access, auths, 0, 0, 0)
        return tx.sign(key)

    def authorizations(self, sender: bytes) -> list[SetCodeAuthorization]:
        """1-3 authorizations; most valid, some with a wrong chain id or nonce (skipped, not fatal)."""
        r = self.rng
        out = []
        for _ in range(r.randrange(1, 4)):
            key = r.choice(AUTHORITIES)
            authority = addr(key)
            target = r.choice([STORE, LOGGER, ENV, MULTI, TRANSIENT, CALLER, DESTRUCTOR, bytes(20),
                               r.choice(PRECOMPILES), addr(r.choice(SENDERS))])
            nonce = self.nonces[authority]
            chain_id = r.choice([CHAIN_ID, CHAIN_ID, 0])
            valid = True
            roll, tamper = r.random(), None
            if roll < 0.1:
                chain_id, valid = r.choice([CHAIN_ID + 1, 2**256 - 1]), False
            elif roll < 0.18:
                nonce, valid = nonce + r.choice([1, 5]), False
            elif roll < 0.25:
                tamper, valid = r.randrange(3), False
            if valid:
                self.nonces[authority] = nonce + 1
            auth = SetCodeAuthorization(chain_id, target, nonce, 0, 0, 0).sign(key)
            if tamper is not None:  # high s (the same signer), a bad y parity, or r = 0
                auth = [auth.replace(s=SECP256K1_N - auth.s, y_parity=1 - auth.y_parity),
                        auth.replace(y_parity=2), auth.replace(r=0)][tamper]
            out.append(auth)
        return out

    def junk(self, base_fee: int, gas_limit: int) -> Transaction:
        """A tx from JUNK that no block may hold (left out with ``skip_invalid``)."""
        r = self.rng
        nonce = self.nonces[addr(JUNK)]
        case = r.randrange(4)  # tip above fee cap is left to test_engine_diff (py-evm takes it)
        gas, fee, tip = 21_000, 2 * base_fee, 0
        if case == 0:
            nonce += 3
        elif case == 1:
            fee = base_fee - 1
        elif case == 2:
            gas = gas_limit + 1
        else:
            gas = 20_000
        return DynamicFeeTx(CHAIN_ID, nonce, tip, fee, gas, STORE, 0, b"", [], 0, 0, 0).sign(JUNK)


def create2_address(creator: bytes, salt: int, initcode: bytes) -> bytes:
    return keccak256(b"\xff" + creator + word(salt) + keccak256(initcode))[12:]


def deposit_data(r: random.Random) -> bytes:
    """A well-formed DepositEvent log body (geth's layout: five ABI byte strings, 576 bytes)."""
    head = b"".join(word(o) for o in (160, 256, 320, 384, 512))
    body = b""
    for size in (48, 32, 8, 96, 8):
        body += word(size) + r.randbytes(size).ljust(-(-size // 32) * 32, b"\0")
    return head + body


def precompile_input(r: random.Random, n: int) -> bytes:
    """Valid-ish or random input for precompile ``n`` (0x01..0x11)."""
    if r.random() < 0.3:
        return r.randbytes(r.choice([0, 1, 64, 128, 200]))
    if n == 5:  # modexp with small lengths
        lb, le, lm = r.randrange(1, 33), r.randrange(1, 9), r.randrange(1, 33)
        return word(lb) + word(le) + word(lm) + r.randbytes(lb + le + lm)
    if n == 9:  # blake2f: rounds, h, m, t, final flag
        return r.randrange(24).to_bytes(4, "big") + r.randbytes(208) + bytes((r.randrange(2),))
    sizes = {1: 128, 2: 50, 3: 50, 4: 50, 6: 128, 7: 96, 8: 192, 10: 192, 11: 256, 12: 160, 13: 512, 14: 288,
             15: 384, 16: 64, 17: 128}
    return bytes(sizes.get(n, 32))  # all zeros: the points at infinity / zero scalars are valid inputs
