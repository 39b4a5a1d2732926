"""A heavy execution workload built by ethnode itself: ~30 Mgas blocks on a Prague genesis.

The ethtest chains that geth ships are tiny (a few hundred thousand gas a block), so they
time mostly the per-block overhead. This module makes the other kind of chain: every block
filled to about half a 60 Mgas limit (so the base fee holds still) with a mix of what
mainnet blocks carry:

- plain transfers (a fifth legacy txs), half of them to fresh addresses (new accounts);
- token transfers: an ERC-20-like contract with Solidity's ``mapping`` layout, one cold
  SLOAD/SSTORE pair for the sender and a new slot for a fresh recipient, and a log;
- SSTORE-heavy calls: a contract writing runs of 40 fresh slots, and runs rewriting
  slots written blocks ago (the state growth and trie hashing that dominate real blocks);
- keccak loops (interpreter-bound, the part where an EVM's dispatch speed shows);
- contract creations whose constructors write two slots and whose runtime is 1.6 KB of
  code unique to each deployment (code storage).

Blocks come from ethnode's own block builder (``ethnode.miner.builder.build_block``, fed
by a stand-in pool) on a revm chain, are inserted the way a sealed block is
(``insert_built_block``, which re-checks the header and the roots), and are written as a
chain file by ``BlockChain.export``: what ``ethnode-fast export`` writes. The genesis is
written beside it in geth's format (merged at genesis, ``blobSchedule``, the Prague system
contracts), so ``geth init`` + ``geth import`` replay the same file: geth is also the judge
that the blocks ethnode built are valid.

Generation takes a while for 200 blocks, so the files are kept under
``~/.cache/ethnode-bench/`` keyed by a hash of this module's source and the parameters;
any edit here makes a new chain.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GAS_LIMIT = 60_000_000  # constant: the builder's ceiling equals the genesis limit
TARGET_GAS = 30_000_000  # per block: at the EIP-1559 target, so the base fee stays near 1 gwei
CHAIN_ID = 7_031_337
SENDERS = 512
BLOCK_TIME = 12
GENESIS_TIME = 1_700_000_000
FEE_CAP = 1000 * 10**9  # far above any base fee the chain reaches
TIP = 10**9
COINBASE = bytes.fromhex("c0ffee0000000000000000000000000000000bee")
TOKEN = bytes.fromhex("7070000000000000000000000000000000000001")
WRITER = bytes.fromhex("5705000000000000000000000000000000000002")
HASHER = bytes.fromhex("4a54000000000000000000000000000000000003")
WRITE_RUN = 40  # slots per SSTORE-heavy call
RUNTIME_FILLER = 1600  # bytes of unique code per created contract
TRANSFER_TOPIC = bytes.fromhex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")

# The Prague system contracts (EIP-4788, EIP-2935, EIP-7002, EIP-7251), byte for byte as
# deployed on every network: geth fails a Prague block whose request contracts have no code.
SYSTEM_CONTRACTS = {
    "000f3df6d732807ef1319fb7b8bb8522d0beac02": (
        "3373fffffffffffffffffffffffffffffffffffffffe14604d57602036146024575f5ffd5b5f35801560495762001fff810690"
        "815414603c575f5ffd5b62001fff01545f5260205ff35b5f5ffd5b62001fff42064281555f359062001fff015500"),
    "0000f90827f1c53a10cb7a02335b175320002935": (
        "3373fffffffffffffffffffffffffffffffffffffffe14604657602036036042575f35600143038111604257611fff814303"
        "11604257611fff9006545f5260205ff35b5f5ffd5b5f35611fff60014303065500"),
    "00000961ef480eb55e80d19ad83579a64c007002": (
        "3373fffffffffffffffffffffffffffffffffffffffe1460cb5760115f54807fffffffffffffffffffffffffffffffffffff"
        "ffffffffffffffffffffffffffff146101f457600182026001905f5b5f82111560685781019083028483029004916001019190"
        "604d565b909390049250505036603814608857366101f457346101f4575f5260205ff35b34106101f457600154600101600155"
        "600354806003026004013381556001015f35815560010160203590553360601b5f5260385f601437604c5fa0600101600355"
        "005b6003546002548082038060101160df575060105b5f5b8181146101835782810160030260040181604c02815460601b8152"
        "601401816001015481526020019060020154807fffffffffffffffffffffffffffffffff000000000000000000000000000000"
        "00168252906010019060401c908160381c81600701538160301c81600601538160281c81600501538160201c81600401538160"
        "181c81600301538160101c81600201538160081c81600101535360010160e1565b910180921461019557906002556101a0565b"
        "90505f6002555f6003555b5f54807fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff14156101"
        "cd57505f5b6001546002828201116101e25750505f6101e8565b01600290035b5f555f600155604c025ff35b5f5ffd"),
    "0000bbddc7ce488642fb579f8b00f3a590007251": (
        "3373fffffffffffffffffffffffffffffffffffffffe1460d35760115f54807fffffffffffffffffffffffffffffffffffff"
        "ffffffffffffffffffffffffffff1461019a57600182026001905f5b5f82111560685781019083028483029004916001019190"
        "604d565b9093900492505050366060146088573661019a573461019a575f5260205ff35b341061019a576001546001016001"
        "55600354806004026004013381556001015f358155600101602035815560010160403590553360601b5f5260605f6014376074"
        "5fa0600101600355005b6003546002548082038060021160e7575060025b5f5b8181146101295782810160040260040181607402"
        "815460601b815260140181600101548152602001816002015481526020019060030154905260010160e9565b91018092146101"
        "3b5790600255610146565b90505f6002555f6003555b5f54807fffffffffffffffffffffffffffffffffffffffffffffffffff"
        "ffffffffffffff141561017357505f5b6001546001828201116101885750505f61018e565b01600190035b5f555f600155607402"
        "5ff35b5f5ffd"),
}

# --- a few lines of EVM assembly ------------------------------------------------------------

_OPS = {
    "STOP": 0x00, "ADD": 0x01, "SUB": 0x03, "LT": 0x10, "ISZERO": 0x15, "KECCAK256": 0x20, "CALLER": 0x33,
    "CALLDATALOAD": 0x35, "CODECOPY": 0x39, "NUMBER": 0x43, "MLOAD": 0x51, "MSTORE": 0x52, "SLOAD": 0x54,
    "SSTORE": 0x55, "JUMP": 0x56, "JUMPI": 0x57, "JUMPDEST": 0x5B, "PUSH0": 0x5F, "DUP1": 0x80, "DUP2": 0x81,
    "DUP3": 0x82, "SWAP1": 0x90, "LOG3": 0xA3, "RETURN": 0xF3, "REVERT": 0xFD,
}


def assemble(program: list[Any]) -> bytes:
    """Opcode names, ints (pushed with the shortest PUSHn), bytes (PUSHn of them), ``":label"``
    (a JUMPDEST) and ``"@label"`` (PUSH2 of its offset). Two passes: labels are 3-byte pushes."""

    def push(value: bytes) -> bytes:
        return bytes((0x5F + len(value),)) + value

    labels: dict[str, int] = {}
    for final in (False, True):
        out = bytearray()
        for item in program:
            if isinstance(item, int):
                out += push(item.to_bytes(max(1, (item.bit_length() + 7) // 8), "big"))
            elif isinstance(item, bytes):
                out += push(item)
            elif item.startswith(":"):
                labels[item[1:]] = len(out)
                out.append(_OPS["JUMPDEST"])
            elif item.startswith("@"):
                out += push(labels.get(item[1:], 0).to_bytes(2, "big") if final else bytes(2))
            else:
                out.append(_OPS[item])
    return bytes(out)


# transfer(to = calldata[0:32], amount = calldata[32:64]): balances[caller] -= amount (revert if
# short), balances[to] += amount, Transfer(caller, to, amount). balances is mapping slot 0.
TOKEN_CODE = assemble([
    "CALLER", "PUSH0", "MSTORE", 0x40, "PUSH0", "KECCAK256",          # key_from
    "DUP1", "SLOAD", 0x20, "CALLDATALOAD",                            # key_from bal amount
    "DUP2", "LT", "@short", "JUMPI",                                  # bal < amount: revert
    0x20, "CALLDATALOAD", "SWAP1", "SUB", "SWAP1", "SSTORE",
    "PUSH0", "CALLDATALOAD", "PUSH0", "MSTORE", 0x40, "PUSH0", "KECCAK256",  # key_to
    "DUP1", "SLOAD", 0x20, "CALLDATALOAD", "ADD", "SWAP1", "SSTORE",
    0x20, "CALLDATALOAD", "PUSH0", "MSTORE",
    "PUSH0", "CALLDATALOAD", "CALLER", TRANSFER_TOPIC, 0x20, "PUSH0", "LOG3", "STOP",
    ":short", "PUSH0", "PUSH0", "REVERT",
])

# write(base = calldata[0:32], count = calldata[32:64]): storage[base + i] = block number.
WRITER_CODE = assemble([
    "PUSH0", "CALLDATALOAD", "DUP1", 0x20, "CALLDATALOAD", "ADD", "SWAP1",  # end i
    ":loop", "DUP2", "DUP2", "LT", "ISZERO", "@done", "JUMPI",
    "NUMBER", "DUP2", "SSTORE", 1, "ADD", "@loop", "JUMP",
    ":done", "STOP",
])

# hash(n = calldata[0:32]): n rounds of mem[0:32] = keccak(mem[0:64]); the last kept in slot 1.
HASHER_CODE = assemble([
    "PUSH0", "CALLDATALOAD",
    ":loop", "DUP1", "ISZERO", "@done", "JUMPI",
    0x40, "PUSH0", "KECCAK256", "PUSH0", "MSTORE", 1, "SWAP1", "SUB", "@loop", "JUMP",
    ":done", "PUSH0", "MLOAD", 1, "SSTORE", "STOP",
])


def creation_code(filler: bytes) -> bytes:
    """A constructor that stores its deployer and block number, then returns the token's code
    followed (after its STOP) by ``filler``, so every deployment stores new code."""
    runtime = TOKEN_CODE + filler

    def head(offset: int) -> bytes:
        return assemble(["CALLER", "PUSH0", "SSTORE", "NUMBER", 1, "SSTORE", len(runtime).to_bytes(2, "big"),
                         "DUP1", offset.to_bytes(2, "big"), "PUSH0", "CODECOPY", "PUSH0", "RETURN"])

    return head(len(head(0))) + runtime


# --- the mix per block ---------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    """Txs of each kind in one block; the defaults come to ~30 Mgas (about 450 txs)."""

    transfers: int = 280
    token: int = 200
    fresh_writes: int = 8
    rewrites: int = 6
    hashes: int = 4
    creations: int = 6
    hash_rounds: int = 10_000


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _address(tag: bytes, n: int) -> bytes:
    from ethnode.crypto.keccak import keccak256

    return keccak256(tag + n.to_bytes(8, "big"))[:20]


class TxMaker:
    """Signs the txs of each block: senders in turn, nonces counted here (every tx is included)."""

    def __init__(self, mix: Mix) -> None:
        from ethnode.core.types.transaction import address_of
        from ethnode.crypto.keccak import keccak256
        from ethnode.crypto.keys import PrivateKey

        self.mix = mix
        self.keys = [PrivateKey(keccak256(b"ethnode-bench-sender" + i.to_bytes(4, "big"))) for i in range(SENDERS)]
        self.senders = [address_of(k.node_id) for k in self.keys]
        self.nonces = [0] * SENDERS
        self.turn = 0
        self.fresh = 0  # fresh recipients and storage runs handed out so far
        self.runs: list[int] = []  # bases of the storage runs written, oldest first

    def _sign(self, to: bytes | None, gas: int, data: bytes = b"", value: int = 0, legacy: bool = False) -> tuple:
        from ethnode.core.types.transaction import DynamicFeeTx, LegacyTx

        i = self.turn % SENDERS
        self.turn += 1
        nonce = self.nonces[i]
        self.nonces[i] += 1
        if legacy:
            tx = LegacyTx(nonce, FEE_CAP // 10, gas, to, value, data, 0, 0, 0).sign(self.keys[i], CHAIN_ID)
        else:
            tx = DynamicFeeTx(CHAIN_ID, nonce, TIP, FEE_CAP, gas, to, value, data, (), 0, 0, 0).sign(self.keys[i])
        return self.senders[i], tx

    def block(self, number: int) -> list[tuple[bytes, Any]]:
        """(sender, signed tx) for block ``number``, kinds interleaved as a pool would mix them."""
        from ethnode.crypto.keccak import keccak256

        m = self.mix
        kinds = (["transfer"] * m.transfers + ["token"] * m.token + ["write"] * m.fresh_writes
                 + ["rewrite"] * m.rewrites + ["hash"] * m.hashes + ["create"] * m.creations)
        order = sorted(range(len(kinds)), key=lambda k: keccak256(number.to_bytes(8, "big") + k.to_bytes(4, "big")))
        out = []
        for k in order:
            kind = kinds[k]
            self.fresh += 1
            if kind == "transfer":
                fresh = k % 2 == 0
                to = _address(b"recipient", self.fresh) if fresh else self.senders[(self.turn + 7) % SENDERS]
                out.append(self._sign(to, 21_000, value=10**15 + k, legacy=k % 5 == 0))
            elif kind == "token":
                to = _address(b"holder", self.fresh) if k % 3 else self.senders[(self.turn + 3) % SENDERS]
                out.append(self._sign(TOKEN, 90_000, _word(int.from_bytes(to, "big")) + _word(1 + k)))
            elif kind == "write" or (kind == "rewrite" and not self.runs):
                self.runs.append(self.fresh << 16)
                out.append(self._sign(WRITER, 1_100_000, _word(self.fresh << 16) + _word(WRITE_RUN)))
            elif kind == "rewrite":  # a run written about ten blocks ago (the oldest one early on)
                base = self.runs[max(0, len(self.runs) - 10 * m.fresh_writes - k % m.fresh_writes)]
                out.append(self._sign(WRITER, 1_100_000, _word(base) + _word(WRITE_RUN)))
            elif kind == "hash":
                out.append(self._sign(HASHER, 1_500_000, _word(m.hash_rounds)))
            else:
                filler = b"".join(keccak256(b"code" + self.fresh.to_bytes(8, "big") + j.to_bytes(2, "big"))
                                  for j in range(RUNTIME_FILLER // 32))
                out.append(self._sign(None, 700_000, creation_code(filler)))
        return out


def genesis_json(senders: list[bytes]) -> dict[str, Any]:
    """Prague from genesis, merged at genesis (geth needs ttd 0 for PoS blocks), every sender
    rich in ether and in the token, the three contracts and the system contracts deployed."""
    from ethnode.crypto.keccak import keccak256

    forks = ("homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock", "constantinopleBlock",
             "petersburgBlock", "istanbulBlock", "muirGlacierBlock", "berlinBlock", "londonBlock",
             "arrowGlacierBlock", "grayGlacierBlock", "mergeNetsplitBlock")
    config: dict[str, Any] = {"chainId": CHAIN_ID, **dict.fromkeys(forks, 0), "shanghaiTime": 0, "cancunTime": 0,
                              "pragueTime": 0, "terminalTotalDifficulty": 0,
                              "depositContractAddress": "0x" + bytes(20).hex(),
                              "blobSchedule": {"cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477},
                                               "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716}}}
    alloc: dict[str, Any] = {a: {"code": "0x" + c, "balance": "0x0", "nonce": "0x1"}
                             for a, c in SYSTEM_CONTRACTS.items()}
    for sender in senders:
        alloc[sender.hex()] = {"balance": hex(10**30)}
    token_storage = {"0x" + keccak256(_word(int.from_bytes(s, "big")) + _word(0)).hex(): "0x" + _word(10**30).hex()
                     for s in senders}
    alloc[TOKEN.hex()] = {"code": "0x" + TOKEN_CODE.hex(), "balance": "0x0", "storage": token_storage}
    alloc[WRITER.hex()] = {"code": "0x" + WRITER_CODE.hex(), "balance": "0x0"}
    alloc[HASHER.hex()] = {"code": "0x" + HASHER_CODE.hex(), "balance": "0x0"}
    return {"config": config, "nonce": "0x0", "timestamp": hex(GENESIS_TIME), "extraData": "0x",
            "gasLimit": hex(GAS_LIMIT), "difficulty": "0x0", "mixHash": "0x" + bytes(32).hex(),
            "coinbase": "0x" + bytes(20).hex(), "baseFeePerGas": hex(10**9), "alloc": alloc}


# --- building and caching ------------------------------------------------------------------


class WorkloadError(RuntimeError):
    """ethnode could not build the workload: names the block and what went wrong."""


class _Pool:
    """The tx pool as ``build_block`` reads it: sender -> txs in nonce order."""

    def __init__(self, txs: list[tuple[bytes, Any]]) -> None:
        self.txs: dict[bytes, list[Any]] = {}
        for sender, tx in txs:
            self.txs.setdefault(sender, []).append(tx)

    def pending(self, min_tip: int = 0, base_fee: int | None = None) -> dict[bytes, list[Any]]:
        return self.txs


class _PosPrepare:
    """A proof-of-stake block has nothing for an engine to prepare: the template stands."""

    def prepare(self, chain: Any, header: Any) -> Any:
        return header


def build(folder: Path, blocks: int, mix: Mix, log: Any = None) -> dict[str, Any]:
    """Build ``blocks`` blocks into ``folder``/chain.rlp (with genesis.json); returns their figures."""
    from ethnode.consensus import create_engine
    from ethnode.core.blockchain import BlockChain, setup_genesis
    from ethnode.core.chainconfig import ChainConfig
    from ethnode.core.genesis import Genesis
    from ethnode.core.rawdb import MemoryDB
    from ethnode.miner.builder import MinerConfig, build_block

    logging.disable(logging.WARNING)
    started = time.perf_counter()
    maker = TxMaker(mix)
    obj = genesis_json(maker.senders)
    db = MemoryDB()
    setup_genesis(db, Genesis.from_json(obj), obj)
    config = ChainConfig.from_json(obj["config"])
    chain = BlockChain(db, create_engine(config, db), config=config, execute=True, evm="revm")
    miner = MinerConfig(etherbase=COINBASE, gas_ceil=GAS_LIMIT, min_tip=0, extra=b"ethnode bench workload")
    gas = txs = 0
    for number in range(1, blocks + 1):
        pool = _Pool(maker.block(number))
        wanted = sum(len(v) for v in pool.txs.values())
        built = build_block(chain, pool, miner, engine=_PosPrepare(),
                            clock=lambda: chain.current_block.time + BLOCK_TIME)
        if built.skipped or len(built.block.transactions) != wanted:
            why = "; ".join(f"0x{h.hex()}: {r}" for h, r in built.skipped[:5])
            raise WorkloadError(f"block {number}: the builder left out {len(built.skipped)} of {wanted} txs: {why}")
        failed = [i for i, r in enumerate(built.result.receipts) if not r.status]
        if failed:
            raise WorkloadError(f"block {number}: txs {failed[:10]} reverted (the workload's contracts are wrong)")
        chain.insert_built_block(built.block, built.result)
        gas += built.header.gas_used
        txs += wanted
        if log is not None and (number % 25 == 0 or number == blocks):
            log(f"workload: built block {number}/{blocks}, {built.header.gas_used / 1e6:.1f} Mgas, "
                f"base fee {built.header.base_fee / 1e9:.3f} gwei, {time.perf_counter() - started:.0f} s")
    with open(folder / "chain.rlp", "wb") as f:
        chain.export(f, 1)
    (folder / "genesis.json").write_text(json.dumps(obj, indent=1) + "\n")
    meta = {"blocks": blocks, "gas": gas, "txs": txs, "head": chain.current_block.hash.hex(),
            "build_seconds": round(time.perf_counter() - started, 1)}
    (folder / "meta.json").write_text(json.dumps(meta) + "\n")
    return meta


def cache_root() -> Path:
    root = os.environ.get("ETHNODE_BENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "ethnode-bench"


def ensure(blocks: int, mix: Mix | None = None, log: Any = None) -> Path:
    """The folder holding genesis.json, chain.rlp and meta.json for these parameters, built once.

    The key is a hash of this file and the parameters, so a changed mix or contract is a new
    chain; a folder appears complete or not at all (built aside, then renamed).
    """
    mix = mix or Mix()
    key = hashlib.sha256(Path(__file__).read_bytes() + repr((blocks, mix)).encode()).hexdigest()[:16]
    folder = cache_root() / f"heavy-{blocks}-{key}"
    if (folder / "meta.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        build(staging, blocks, mix, log)
        try:
            staging.rename(folder)
        except OSError:  # built meanwhile by another process: theirs stands
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


__all__ = ["Mix", "WorkloadError", "build", "ensure", "genesis_json", "GAS_LIMIT", "TARGET_GAS"]
