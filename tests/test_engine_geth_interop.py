"""The cross-client proof: geth v1.17.10 and ethnode, driven as one chain by a consensus client.

``test_engine_payloads`` shows ethnode agreeing with itself; this shows it agreeing with
geth, the reference, through the only interface a consensus client has: the Engine API
over JWT-authenticated HTTP. Both nodes start from one genesis file; ``engine_driver``'s
``ConsensusDriver`` sits in the beacon node's seat and, slot by slot, alternates the
builder: forkchoiceUpdated with payload attributes on the builder, getPayload, newPayload
on both (builder first), both must answer VALID for the same block hash, then
forkchoiceUpdated on both with safe and finalized trailing the head. A block built by
either client is thus executed and judged by the other, in both directions. Agreeing on
good blocks is half the proof: at one slot per builder, variants of the built payload that
are wrong in one consensus field (sealed under their own hash) must be INVALID on both with
the same latest valid hash, and so must a child of one and a forkchoice naming it.

The txs come in through each node's public ``eth_sendRawTransaction``, to both nodes as
gossip would bring them (blob txs only to the builder: their KZG checks are the slow part,
and the validator never needs the sidecar), and cover what a Prague/Osaka block can hold:
legacy, access-list, dynamic-fee and blob txs, contract creation from hand-assembled init
code, calls that write storage and log (and some that revert), EIP-7702 delegation and
calls into the delegated account, EIP-7002 withdrawal and EIP-7251 consolidation requests
(so ``executionRequests`` are non-empty), and withdrawals in every block. At the end both
nodes must report the same block hashes, state root, balances, storage, code, nonces and
receipts, and the state the driver expects. Along the way: engine_getBlobs serves the sidecars
sent, blockValue is what the fee recipient earned, payload bodies agree, both payload ids for the
same attributes are geth's hash of them, and a token signed with another secret gets a 401.

Blob txs need real KZG commitments and proofs (both pools verify them): the ``ckzg``
package and geth's trusted setup from the Go module cache; without them the blob part is
skipped with a printed reason. geth v1.17.10 pools only cell-proof (version 1) sidecars but
builds pre-Osaka blocks only from version 0 ones, so in the Prague case only ethnode builds
blob txs (version 0 sidecars, which ethnode still pools before Osaka); geth validates them.

Cases: Prague with ethnode's default engine (revm when compiled), Prague with ethnode on its
pure twins (py-evm), and Osaka (revm only: py-evm stops at Prague).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from engine_driver import RPC, ZERO_HASH, ConsensusDriver, ELProcess, Produced, RPCFailure, start_ethnode, start_geth
from gethtools import GETH_VERSION, require_geth_tools
from shared_support import subprocess_env
from txpool_support import ADDRS, CHAIN_ID, GWEI, KEYS, genesis_json

from ethnode._native import FORCE_PURE
from ethnode.core.execution import compiled_engine_error
from ethnode.core.execution.system import CONSOLIDATION_QUEUE_ADDRESS, WITHDRAWAL_QUEUE_ADDRESS, requests_hash
from ethnode.core.systemcontracts import system_contracts_alloc
from ethnode.core.txpool.kzg import TRUSTED_SETUP_ENV, _json_setup_to_text, find_trusted_setup
from ethnode.core.types import (
    AccessListTx,
    AccessTuple,
    BlobTx,
    BlobTxSidecar,
    BlobTxWithSidecar,
    DynamicFeeTx,
    LegacyTx,
    SetCodeAuthorization,
    SetCodeTx,
)
from ethnode.core.types.block import derive_tx_root
from ethnode.core.types.header import EMPTY_UNCLE_HASH, Header
from ethnode.core.types.transaction import BLOB_SIZE, decode_tx, kzg_to_versioned_hash
from ethnode.core.types.withdrawal import withdrawals_root
from ethnode.eth.catalyst.payload import decode_withdrawals
from ethnode.ethapi.marshal import contract_address

pytestmark = [pytest.mark.interop, pytest.mark.subprocess]

BLOCKS = 50  # per case; the builder alternates, so 25 each way
TAMPERED_SLOTS = (14, 17)  # a geth-built and an ethnode-built block, each with requests and blobs (Osaka)
GENESIS_TIME = 1_700_000_000  # in the past: no block of the run is ahead of the wall clock
SECRET = bytes(range(0x40, 0x60))
FEE_CAP = 20 * GWEI
FUNDED = 10**22  # wei per test key
FEE_RECIPIENT = {"geth": "0x" + "fe" * 19 + "01", "ethnode": "0x" + "fe" * 19 + "02"}
WITHDRAW_ONLY = "0x" + "57" * 20  # receives withdrawals and nothing else
WITHDRAWALS_TO = (WITHDRAW_ONLY, "0x" + ADDRS[0].hex())
K_TRANSFER, K_LEGACY, K_ACCESS, K_DEPLOY, K_CALL, K_BLOB, K_SETCODE, K_AUTHORITY, K_REQUESTS = range(9)
K_BLOB_V1_EARLY = 10  # sends the version 1 sidecar blob tx no builder may take before Osaka
SINK = ADDRS[9]  # receives the legacy transfers (not funded at genesis)
FUNDED_KEYS = (*range(9), K_BLOB_V1_EARLY)

# A storage writer. Runtime: no calldata -> REVERT; else storage[cd[32:64]] = cd[0:32],
# storage[0xff] += 1 (a call counter), LOG1(topic=CALLER, data=cd[0:32]).
WRITER_RUNTIME = bytes.fromhex(
    "36" "6008" "57"            # CALLDATASIZE PUSH1 8 JUMPI: to 0x08 when there is calldata
    "6000" "80" "fd"            # PUSH1 0 DUP1 REVERT
    "5b"                        # 0x08: JUMPDEST
    "6000" "35" "6020" "35" "55"  # SSTORE(key=cd[32], value=cd[0])
    "60ff" "54" "6001" "01" "60ff" "55"  # SSTORE(0xff, SLOAD(0xff) + 1)
    "6000" "35" "6000" "52"     # MSTORE(0, cd[0])
    "33" "6020" "6000" "a1"     # LOG1(offset 0, size 32, topic CALLER)
    "00"                        # STOP
)
# Init code: SSTORE(0xfe, 1) (the constructor ran), then CODECOPY the runtime after these 16 bytes and RETURN it.
WRITER_INIT = bytes.fromhex(f"600160fe55" f"60{len(WRITER_RUNTIME):02x}80" "6010600039" "6000f3") + WRITER_RUNTIME
COUNTER_SLOT, CONSTRUCTED_SLOT = 0xFF, 0xFE

needs_revm = pytest.mark.skipif(compiled_engine_error() is not None, reason="ethnode's revm engine is unavailable")
# ethnode on its pure twins (py-evm, pure RLP and trie): the second engine must agree with geth too.
# Skipped when this whole run is pure already (CI's second pass): the plain case is this one then.
needs_pyevm = pytest.mark.skipif(importlib.util.find_spec("eth") is None or FORCE_PURE,
                                 reason="py-evm is not installed, or the plain case already runs pure")


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


# --- KZG material ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobMaterial:
    blob: bytes
    commitment: bytes
    proof: bytes  # EIP-4844 blob proof (sidecar version 0)
    cell_proofs: tuple[bytes, ...]  # EIP-7594 cell proofs (sidecar version 1)


def _trusted_setup() -> Path | None:
    """geth's own setup, from the module of the pinned version when the cache has it."""
    modcache = os.environ.get("GOMODCACHE") or os.path.join(
        os.environ.get("GOPATH") or os.path.expanduser("~/go"), "pkg", "mod")
    pinned = Path(modcache, "github.com", "ethereum", f"go-ethereum@{GETH_VERSION}", "crypto", "kzg4844",
                  "trusted_setup.json")
    return pinned if pinned.is_file() else find_trusted_setup()


@functools.lru_cache(maxsize=1)
def _blob_material() -> tuple[tuple[BlobMaterial, ...], Path] | str:
    """Three blobs with real commitments and proofs, or why there are none (printed, blobs skipped)."""
    try:
        import ckzg  # noqa: PLC0415 - optional, as in ethnode's pool
    except ImportError:
        return "the ckzg package is not installed"
    setup = _trusted_setup()
    if setup is None:
        return f"no KZG trusted setup (the bundled one is missing and {TRUSTED_SETUP_ENV} is unset)"
    with tempfile.TemporaryDirectory() as tmp:  # ckzg reads its own text layout from a file
        text = Path(tmp) / "trusted_setup.txt"
        text.write_text(_json_setup_to_text(setup))
        loaded = ckzg.load_trusted_setup(str(text), 0)
    rng = random.Random(4844)
    out = []
    for _ in range(3):
        blob = b"".join(b"\x00" + rng.randbytes(31) for _ in range(BLOB_SIZE // 32))  # field elements < modulus
        commitment = ckzg.blob_to_kzg_commitment(blob, loaded)
        _, cell_proofs = ckzg.compute_cells_and_kzg_proofs(blob, loaded)
        out.append(BlobMaterial(blob, commitment, ckzg.compute_blob_kzg_proof(blob, commitment, loaded),
                                tuple(cell_proofs)))
    return tuple(out), setup


# --- the workload ------------------------------------------------------------------------------


@dataclass
class Sent:
    raw: str  # what eth_sendRawTransaction gets (a blob tx with its sidecar)
    canonical: str  # what the block holds
    hash: str
    kind: str
    to_both: bool = True
    reverts: bool = False
    lingers: bool = False  # pooled by both, built by neither
    blobs: tuple[BlobMaterial, ...] = ()


class Workload:
    """The txs of each slot, and the state they must leave (storage of every writer, nonces)."""

    def __init__(self, fork: str, blobs: tuple[BlobMaterial, ...] | None) -> None:
        self.fork = fork
        self.blobs = blobs
        self.nonces: Counter[int] = Counter()
        self.writers: list[bytes] = []  # deployed writer contracts, in order
        self.storage: dict[bytes, dict[int, int]] = {}
        self.delegated_to: bytes | None = None
        self.auth_nonce = 0
        self.sent: dict[str, Sent] = {}
        self.recipients: list[bytes] = [SINK]

    def _next(self, key: int) -> int:
        nonce = self.nonces[key]
        self.nonces[key] += 1
        return nonce

    def _record(self, tx: Any, kind: str, raw: bytes | None = None, **flags: Any) -> Sent:
        sent = Sent(_hex(raw or tx.canonical), _hex(tx.canonical), _hex(tx.hash), kind, **flags)
        self.sent[sent.hash] = sent
        return sent

    def _dyn(self, key: int, to: bytes | None, data: bytes = b"", value: int = 0, gas: int = 21_000,
             tip: int = GWEI) -> DynamicFeeTx:
        tx = DynamicFeeTx(CHAIN_ID, self._next(key), tip, FEE_CAP, gas, to, value, data, [], 0, 0, 0)
        return tx.sign(KEYS[key])  # type: ignore[return-value]

    def _write(self, target: bytes, n: int, slot: int) -> bytes:
        """Calldata storing ``n``'s value at ``slot`` of ``target``, with the expected state updated."""
        value = 0 if n % 6 == 0 else n * 1000 + slot  # every 6th write clears the slot (a refund)
        store = self.storage.setdefault(target, {})
        store[slot] = value
        store[COUNTER_SLOT] = store.get(COUNTER_SLOT, 0) + 1
        return _word(value) + _word(slot)

    def slot_txs(self, n: int, builder: str) -> list[Sent]:
        """Block ``n``'s txs; blob txs only when ``builder`` can build them at this fork."""
        earlier = list(self.writers)  # a call in this block must not race the creation in it
        out = [self._record(self._dyn(K_TRANSFER, bytes([0xAA]) + n.to_bytes(19, "big"), value=10**15 + n,
                                      tip=GWEI + n % 3), "transfer (type 2, new account)")]
        self.recipients.append(bytes([0xAA]) + n.to_bytes(19, "big"))
        legacy = LegacyTx(self._next(K_LEGACY), 3 * GWEI, 21_000, SINK, n, b"", 0, 0, 0).sign(KEYS[K_LEGACY], CHAIN_ID)
        out.append(self._record(legacy, "transfer (legacy, EIP-155)"))
        if self.writers:
            target = self.writers[-1]
            access = [AccessTuple(target, [_word(n % 3), _word(COUNTER_SLOT)])]
            data = self._write(target, n, n % 3)
            tx = AccessListTx(CHAIN_ID, self._next(K_ACCESS), 2 * GWEI, 120_000, target, 0, data, access,
                              0, 0, 0).sign(KEYS[K_ACCESS])
            out.append(self._record(tx, "call (type 1, access list)"))
        if n % 5 == 1:
            nonce = self.nonces[K_DEPLOY]
            out.append(self._record(self._dyn(K_DEPLOY, None, WRITER_INIT, gas=300_000), "contract creation"))
            created = contract_address(ADDRS[K_DEPLOY], nonce)
            self.writers.append(created)
            self.storage[created] = {CONSTRUCTED_SLOT: 1}
        if earlier:
            target = earlier[n % len(earlier)]
            if n % 7 == 0:
                out.append(self._record(self._dyn(K_CALL, target, gas=100_000), "call (reverts)", reverts=True))
            else:
                data = self._write(target, n, 3 + n % 2)
                out.append(self._record(self._dyn(K_CALL, target, data, gas=120_000, tip=2 * GWEI), "call (type 2)"))
        authority = ADDRS[K_AUTHORITY]
        if n in (3, 20):  # EIP-7702: the authority's code becomes a writer's (then another's); called at once
            self.delegated_to = earlier[0 if n == 3 else 1]
            auth = SetCodeAuthorization(CHAIN_ID, self.delegated_to, self.auth_nonce, 0, 0, 0).sign(KEYS[K_AUTHORITY])
            self.auth_nonce += 1
            data = self._write(authority, n, 1)
            tx = SetCodeTx(CHAIN_ID, self._next(K_SETCODE), GWEI, FEE_CAP, 200_000, authority, 0, data, [], [auth],
                           0, 0, 0).sign(KEYS[K_SETCODE])
            out.append(self._record(tx, "set code (type 4) + call"))
        elif self.delegated_to and n % 3 == 0:
            data = self._write(authority, n, 2)
            out.append(self._record(self._dyn(K_CALL, authority, data, gas=120_000), "call into delegated EOA"))
        if n % 5 == 4:  # EIP-7002: 48-byte pubkey, 8-byte amount; the fee is 1 wei with an empty queue
            data = bytes([0xB0 + n % 16]) * 48 + (32 * 10**9).to_bytes(8, "big")
            out.append(self._record(self._dyn(K_REQUESTS, WITHDRAWAL_QUEUE_ADDRESS, data, value=1, gas=300_000),
                                    "withdrawal request (EIP-7002)"))
        if n % 5 == 2:  # EIP-7251: source and target pubkeys
            data = bytes([0xC0 + n % 16]) * 48 + bytes([0xD0 + n % 16]) * 48
            out.append(self._record(self._dyn(K_REQUESTS, CONSOLIDATION_QUEUE_ADDRESS, data, value=1, gas=300_000),
                                    "consolidation request (EIP-7251)"))
        if self.blobs is not None and n % 3 == 2 and (self.fork != "prague" or builder == "ethnode"):
            out.append(self._blob_tx(n, K_BLOB, 1 if self.fork == "osaka" else 0))
        if self.blobs is not None and n == 1 and self.fork == "prague":
            out.append(self._blob_tx(n, K_BLOB_V1_EARLY, 1))
        return out

    def _blob_tx(self, n: int, key: int, version: int) -> Sent:
        """A type-3 tx with one or two blobs, calling a writer; version 1 sidecar from Osaka, 0 before.

        A version 1 sidecar before Osaka is sent to both nodes: both pool it, neither may build
        it (geth's miner takes only version 0 before Osaka: a BlobsBundleV1 has one proof per blob).
        """
        assert self.blobs is not None
        chosen = [self.blobs[(n + i) % len(self.blobs)] for i in range(1 + (n // 6) % 2)]
        early = version == 1 and self.fork == "prague"
        proofs = [p for m in chosen for p in m.cell_proofs] if version else [m.proof for m in chosen]
        sidecar = BlobTxSidecar(tuple(m.blob for m in chosen), tuple(m.commitment for m in chosen), tuple(proofs),
                                version)
        hashes = [kzg_to_versioned_hash(m.commitment) for m in chosen]
        target = self.writers[0] if self.writers and not early else SINK
        data = self._write(target, n, 5) if target != SINK else b""
        tx = BlobTx(CHAIN_ID, self._next(key), GWEI, FEE_CAP, 120_000, target, 0, data, [], GWEI, hashes,
                    0, 0, 0).sign(KEYS[key])
        wrapped = BlobTxWithSidecar(tx, sidecar)  # type: ignore[arg-type]
        if early:
            self.nonces[key] -= 1  # never included
            return self._record(tx, "blob tx (sidecar v1 before Osaka)", wrapped.network_encoding(), lingers=True,
                                blobs=tuple(chosen))
        return self._record(tx, f"blob tx ({len(chosen)} blob{'s' * (len(chosen) > 1)}, sidecar v{version})",
                            wrapped.network_encoding(), to_both=False, blobs=tuple(chosen))

    def addresses(self) -> list[str]:
        accounts = [*ADDRS[:11], *self.recipients, *self.writers, bytes.fromhex(WITHDRAW_ONLY[2:]),
                    *(bytes.fromhex(a[2:]) for a in FEE_RECIPIENT.values()), WITHDRAWAL_QUEUE_ADDRESS,
                    CONSOLIDATION_QUEUE_ADDRESS]
        return list(dict.fromkeys(_hex(a) for a in accounts))


# --- the network -------------------------------------------------------------------------------


def _genesis(fork: str) -> dict[str, Any]:
    forks = ("shanghaiTime", "cancunTime", "pragueTime") + (("osakaTime",) if fork == "osaka" else ())
    obj = genesis_json(time_forks=forks)
    if fork != "osaka":
        del obj["config"]["blobSchedule"]["osaka"]
    obj["timestamp"] = hex(GENESIS_TIME)
    obj["alloc"] = {_hex(ADDRS[k]): {"balance": hex(FUNDED)} for k in FUNDED_KEYS}
    obj["alloc"].update(system_contracts_alloc())
    return obj


@dataclass
class Network:
    fork: str
    pure: bool  # ethnode on its pure twins (py-evm)
    geth: ELProcess
    ethnode: ELProcess
    blobs: tuple[BlobMaterial, ...] | None
    blob_skip: str | None

    @property
    def els(self) -> list[ELProcess]:
        return [self.geth, self.ethnode]


@pytest.fixture
def network(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Network]:
    """geth and ethnode on one genesis and one JWT secret; both killed however the test ends."""
    fork, pure = request.param
    geth_bin = require_geth_tools(tools=("geth",)) / "geth"
    material = _blob_material()
    blobs, skip = (material[0], None) if isinstance(material, tuple) else (None, material)
    env = subprocess_env(ETHNODE_NO_EXTENSIONS="1") if pure else subprocess_env()
    if isinstance(material, tuple):
        env[TRUSTED_SETUP_ENV] = str(material[1])  # ethnode's pool checks proofs against the same setup
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(_genesis(fork)))
    jwt = tmp_path / "jwt.hex"
    jwt.write_text("0x" + SECRET.hex())
    started: list[ELProcess] = []
    try:
        started.append(start_geth(geth_bin, tmp_path / "geth", genesis, jwt, SECRET))
        started.append(start_ethnode(tmp_path / "ethnode", genesis, jwt, SECRET, env))
        yield Network(fork, pure, started[0], started[1], blobs, skip)
    finally:
        for el in reversed(started):
            el.stop()


def _versioned_hashes(envelope: dict[str, Any]) -> list[str]:
    """What a consensus client passes to newPayload: one hash per commitment of the blobs bundle."""
    return [_hex(kzg_to_versioned_hash(bytes.fromhex(c[2:]))) for c in envelope["blobsBundle"]["commitments"]]


def _check_bundle(envelope: dict[str, Any], fork: str, blobs: tuple[BlobMaterial, ...] | None) -> int:
    """The bundle matches the block's blob txs and the blobs sent; returns the blob count."""
    in_txs = _blob_hashes(envelope["executionPayload"])
    assert _versioned_hashes(envelope) == in_txs, "blobs bundle commitments do not follow the block's blob txs"
    bundle = envelope["blobsBundle"]
    per_blob = 128 if fork == "osaka" else 1  # BlobsBundleV2 carries cell proofs, V1 one proof per blob
    assert len(bundle["blobs"]) == len(in_txs) and len(bundle["proofs"]) == per_blob * len(in_txs)
    by_commitment = {_hex(m.commitment): m for m in blobs or ()}
    for i, commitment in enumerate(bundle["commitments"]):
        m = by_commitment[commitment]
        assert bundle["blobs"][i] == _hex(m.blob)
        want = m.cell_proofs if per_blob == 128 else (m.proof,)
        assert bundle["proofs"][i * per_blob:(i + 1) * per_blob] == [_hex(p) for p in want]
    return len(in_txs)


def _check_pool_blobs(net: Network, builder: ELProcess, sent: Sent) -> None:
    """engine_getBlobs, as a CL asks before fetching a block's blobs from peers: the builder's pool
    serves the sidecar it took (V1 before Osaka, V2 with cell proofs from Osaka). A version 1 sidecar
    before Osaka is served by neither node (V1 serves version 0 only, V2 answers null before Osaka)."""
    hashes = [_hex(kzg_to_versioned_hash(m.commitment)) for m in sent.blobs]
    if sent.lingers:
        for el in net.els:
            assert el.engine.call("engine_getBlobsV1", hashes) == [None] * len(hashes), el.name
            assert el.engine.call("engine_getBlobsV2", hashes) is None, el.name
    elif net.fork == "osaka":
        want: list[Any] = [{"blob": _hex(m.blob), "proofs": [_hex(p) for p in m.cell_proofs]} for m in sent.blobs]
        assert builder.engine.call("engine_getBlobsV2", hashes) == want, f"{builder.name}: getBlobsV2"
    else:
        want = [{"blob": _hex(m.blob), "proof": _hex(m.proof)} for m in sent.blobs]
        assert builder.engine.call("engine_getBlobsV1", hashes) == want, f"{builder.name}: getBlobsV1"


def _sealed(p: dict[str, Any], beacon_root: str, requests: list[str]) -> dict[str, Any]:
    """``p`` under the hash of the header its fields make: a bad block sealed as a dishonest builder
    would, so a client must execute it to find it wrong (computed here, not by either client)."""
    def b(x: str) -> bytes:
        return bytes.fromhex(x[2:])

    header = Header(
        parent_hash=b(p["parentHash"]), uncle_hash=EMPTY_UNCLE_HASH, coinbase=b(p["feeRecipient"]),
        state_root=b(p["stateRoot"]), tx_root=derive_tx_root(b(t) for t in p["transactions"]),
        receipt_root=b(p["receiptsRoot"]), bloom=b(p["logsBloom"]), difficulty=0, number=int(p["blockNumber"], 16),
        gas_limit=int(p["gasLimit"], 16), gas_used=int(p["gasUsed"], 16), time=int(p["timestamp"], 16),
        extra=b(p["extraData"]), mix_digest=b(p["prevRandao"]), nonce=bytes(8), base_fee=int(p["baseFeePerGas"], 16),
        withdrawals_root=withdrawals_root(decode_withdrawals(p["withdrawals"]) or []),
        blob_gas_used=int(p["blobGasUsed"], 16), excess_blob_gas=int(p["excessBlobGas"], 16),
        parent_beacon_root=b(beacon_root), requests_hash=requests_hash([b(r) for r in requests]),
    )
    return dict(p, blockHash=_hex(header.hash))


def _reject_tampered(net: Network, driver: ConsensusDriver) -> Callable[[Produced, list[Any]], None]:
    """A probe for ``ConsensusDriver.produce``: variants of the built payload, each wrong in one
    consensus field and sealed under its own hash, must be INVALID on both clients with the parent
    as latest valid hash; so must a child of one, and a forkchoice naming either. First, the other
    client asked for the same attributes names the payload with the same id (geth's hash of them)."""
    parent_time, state = driver.time, driver.forkchoice()

    def probe(made: Produced, params: list[Any]) -> None:
        other = next(el for el in net.els if el.name != made.builder)
        assert other.engine.call("engine_forkchoiceUpdatedV3", state, made.attrs)["payloadId"] == made.payload_id
        p, hashes, root, requests = params
        for malformed in ([p, None, root, requests], [p, hashes, root, None], [p, hashes, root]):
            _same_error(net.els, "engine_newPayloadV4", *malformed)
        assert _sealed(p, root, requests)["blockHash"] == p["blockHash"]  # the sealing helper is right
        word = "0x" + "11" * 32

        def bump(field: str, by: int) -> dict[str, Any]:
            return dict(p, **{field: hex(int(p[field], 16) + by)})

        first_withdrawal = dict(p["withdrawals"][0], amount="0x1")
        variants = {
            "stateRoot": (dict(p, stateRoot=word), root, requests),
            "receiptsRoot": (dict(p, receiptsRoot=word), root, requests),
            "logsBloom": (dict(p, logsBloom="0x" + "00" * 256), root, requests),
            "gasUsed": (bump("gasUsed", 1), root, requests),
            "blockNumber": (bump("blockNumber", 1), root, requests),
            "baseFeePerGas": (bump("baseFeePerGas", 1), root, requests),
            "gasLimit": (bump("gasLimit", int(p["gasLimit"], 16)), root, requests),
            "timestamp": (dict(p, timestamp=hex(parent_time)), root, requests),
            "excessBlobGas": (bump("excessBlobGas", 131072), root, requests),
            "blobGasUsed": (bump("blobGasUsed", 131072), root, requests),
            "a tx left out": (dict(p, transactions=p["transactions"][1:]), root, requests),
            "a withdrawal amount": (dict(p, withdrawals=[first_withdrawal, *p["withdrawals"][1:]]), root, requests),
            "parentBeaconBlockRoot": (p, word, requests),
            "executionRequests": (p, root, requests[:-1] if requests else ["0x01" + "ab" * 76]),
        }
        parent = p["parentHash"]
        bad = []
        for what, (payload, beacon_root, reqs) in variants.items():
            sealed = _sealed(payload, beacon_root, reqs)
            args = [sealed, hashes if payload["transactions"] == p["transactions"] else [
                h for h in hashes if h in _blob_hashes(sealed)], beacon_root, reqs]
            for el in net.els:
                got = el.engine.call("engine_newPayloadV4", *args)
                assert (got["status"], got["latestValidHash"]) == ("INVALID", parent), \
                    f"{made.builder}'s #{made.number} with a wrong {what}: {el.name} answered {got}"
            bad.append(sealed)
        child = _sealed(dict(p, parentHash=bad[0]["blockHash"], blockNumber=hex(made.number + 1),
                             timestamp=hex(int(p["timestamp"], 16) + 12)), root, requests)
        fcu = {"headBlockHash": child["blockHash"], "safeBlockHash": parent, "finalizedBlockHash": parent}
        for el in net.els:
            for answer in (el.engine.call("engine_newPayloadV4", child, hashes, root, requests),
                           el.engine.call("engine_forkchoiceUpdatedV3", fcu, None)["payloadStatus"],
                           el.engine.call("engine_forkchoiceUpdatedV3", dict(fcu, headBlockHash=bad[0]["blockHash"]),
                                          None)["payloadStatus"]):
                assert answer == {"status": "INVALID", "latestValidHash": parent,
                                  "validationError": "links to previously rejected block"}, f"{el.name}: {answer}"
    return probe


def _blob_hashes(payload: dict[str, Any]) -> list[str]:
    return [_hex(h) for raw in payload["transactions"] for h in decode_tx(bytes.fromhex(raw[2:])).blob_hashes]


def _same_error(els: list[ELProcess], method: str, *params: Any) -> None:
    """A malformed Engine API call is refused by both with the same code, message and data."""
    errors = []
    for el in els:
        with pytest.raises(RPCFailure) as refused:
            el.engine.call(method, *params)
        errors.append(refused.value.error)
    assert errors[0] == errors[1], f"{method}{params}: geth {errors[0]}, ethnode {errors[1]}"


def _send(el: ELProcess, sent: Sent) -> None:
    answer = el.rpc.call("eth_sendRawTransaction", sent.raw)
    assert answer == sent.hash, f"{el.name} took {sent.kind} as {answer}, its hash is {sent.hash}"


def _same(els: list[ELProcess], method: str, *params: Any) -> Any:
    """The one answer both nodes give (the JSON compared whole)."""
    answers = [el.rpc.call(method, *params) for el in els]
    assert answers[0] == answers[1], f"{method}{params}: geth {answers[0]} ethnode {answers[1]}"
    return answers[0]


def _compare_final_state(net: Network, driver: ConsensusDriver, work: Workload) -> None:
    """The two nodes' public RPC agree on the chain and the state, and both hold what the txs wrote."""
    els = net.els
    head = _same(els, "eth_getBlockByNumber", "latest", False)
    assert int(head["number"], 16) == BLOCKS and head["hash"] == driver.head
    for n in range(BLOCKS + 1):  # every block as the same JSON, its txs included
        assert _same(els, "eth_getBlockByNumber", hex(n), True)["hash"] == driver.hashes[n]
    for tag, lag in (("safe", driver.safe_lag), ("finalized", driver.final_lag)):
        assert _same(els, "eth_getBlockByNumber", tag, False)["hash"] == driver.hashes[BLOCKS - lag]
    for address in work.addresses():
        _same(els, "eth_getBalance", address, "latest")
    withdrawn = sum(int(w["amount"], 16) for p in driver.produced for w in p.attrs["withdrawals"]
                    if w["address"] == WITHDRAW_ONLY)
    assert int(_same(els, "eth_getBalance", WITHDRAW_ONLY, "latest"), 16) == withdrawn * 10**9
    for key, nonce in work.nonces.items():
        assert int(_same(els, "eth_getTransactionCount", _hex(ADDRS[key]), "latest"), 16) == nonce
    for address, slots in work.storage.items():
        for slot, value in slots.items():
            got = _same(els, "eth_getStorageAt", _hex(address), hex(slot), "latest")
            assert int(got, 16) == value, f"storage {_hex(address)}[{slot:#x}] = {got}, the txs wrote {value}"
    for writer in work.writers:
        assert _same(els, "eth_getCode", _hex(writer), "latest") == _hex(WRITER_RUNTIME)
    assert work.delegated_to is not None
    assert _same(els, "eth_getCode", _hex(ADDRS[K_AUTHORITY]), "latest") == _hex(b"\xef\x01\x00" + work.delegated_to)
    for sent in (s for s in work.sent.values() if s.lingers):  # still pooled on both, in no block
        for el in els:
            found = el.rpc.call("eth_getTransactionByHash", sent.hash)
            assert found is not None and found["blockHash"] is None, f"{el.name}: {sent.kind}: {found}"
    for n in range(1, BLOCKS + 1):
        receipts = _same(els, "eth_getBlockReceipts", hex(n))
        for receipt in receipts:
            sent = work.sent[receipt["transactionHash"]]
            assert receipt["status"] == ("0x0" if sent.reverts else "0x1"), f"{sent.kind}: {receipt}"


@pytest.mark.parametrize("network", [
    pytest.param(("prague", False), id="prague"),
    pytest.param(("prague", True), id="prague-pure", marks=needs_pyevm),
    pytest.param(("osaka", False), id="osaka", marks=needs_revm),
], indirect=True)
def test_geth_and_ethnode_build_and_validate_each_others_blocks(network: Network) -> None:
    started = time.monotonic()
    net = network
    if net.blob_skip:
        print(f"blob txs skipped: {net.blob_skip}")
    elif net.fork == "prague":
        print("blob txs in Prague: built by ethnode only (geth v1.17.10 pools version 1 sidecars only and "
              "builds pre-Osaka blocks from version 0 ones)")
    for el in net.els:  # each Engine API answers only a token signed with the shared secret
        with pytest.raises(RPCFailure, match="HTTP 401"):
            RPC("wrong secret", el.engine.url, bytes(32)).call("engine_exchangeCapabilities", [])
    for method, params in (("engine_forkchoiceUpdatedV3", [None, None]), ("engine_getPayloadV4", [None]),
                           ("engine_getBlobsV1", [None]), ("engine_newPayloadV4", [None, [], ZERO_HASH, []])):
        _same_error(net.els, method, *params)  # null where geth's parameter is no pointer
    genesis = _same(net.els, "eth_getBlockByNumber", "0x0", False)
    driver = ConsensusDriver(net.els, genesis, net.fork, _versioned_hashes)
    work = Workload(net.fork, net.blobs)
    included: dict[str, Counter[str]] = {"geth": Counter(), "ethnode": Counter()}
    blobs_built: Counter[str] = Counter()
    requests_seen: Counter[str] = Counter()
    lingering = 0
    for n in range(1, BLOCKS + 1):
        builder = net.els[n % 2]  # odd blocks ethnode, even blocks geth
        other = net.els[(n + 1) % 2]
        txs = work.slot_txs(n, builder.name)
        for sent in txs:
            _send(builder, sent)
            if sent.to_both:
                _send(other, sent)
        for sent in txs:
            if sent.blobs:
                _check_pool_blobs(net, builder, sent)
        lingering += sum(s.lingers for s in txs)
        txs = [s for s in txs if not s.lingers]
        builder.wait_pending(len(txs) + lingering)
        probe = _reject_tampered(net, driver) if n in TAMPERED_SLOTS else None
        made = driver.produce(builder, len(txs), FEE_RECIPIENT[builder.name], WITHDRAWALS_TO, probe)
        assert sorted(made.payload["transactions"]) == sorted(s.canonical for s in txs)
        assert int(made.envelope["blockValue"], 16) > 0 and made.envelope["shouldOverrideBuilder"] is False
        blobs_built[builder.name] += _check_bundle(made.envelope, net.fork, net.blobs)
        for request in made.envelope["executionRequests"]:
            requests_seen[request[:4]] += 1
        if n % 5 in (2, 4):
            assert made.envelope["executionRequests"], f"block {n}: a request tx but no executionRequests"
        included[builder.name].update(s.kind for s in txs)
    _compare_final_state(net, driver, work)
    for name, recipient in FEE_RECIPIENT.items():  # blockValue is what the fee recipient earned
        value = sum(int(p.envelope["blockValue"], 16) for p in driver.produced if p.builder == name)
        assert int(_same(net.els, "eth_getBalance", recipient, "latest"), 16) == value, name
    bodies = [el.engine.call("engine_getPayloadBodiesByRangeV1", "0x1", hex(BLOCKS)) for el in net.els]
    assert bodies[0] == bodies[1] and len(bodies[0]) == BLOCKS
    assert requests_seen["0x01"] >= 4 and requests_seen["0x02"] >= 4, requests_seen
    built = Counter(p.builder for p in driver.produced)
    assert built["geth"] >= 25 and built["ethnode"] >= 25
    elapsed = time.monotonic() - started
    case = net.fork + (" (ethnode pure, py-evm)" if net.pure else "")
    print(f"{case}: {BLOCKS} blocks driven in {elapsed:.1f} s; built by geth {built['geth']}, "
          f"by ethnode {built['ethnode']}; blobs built: {dict(blobs_built)}; requests: {dict(requests_seen)}")
    for name, kinds in included.items():
        print(f"  txs in {name}-built blocks, validated by the other: {sum(kinds.values())} "
              + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())))
