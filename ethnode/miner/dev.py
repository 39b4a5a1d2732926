"""``run --dev``: a proof-of-stake dev chain with a prefunded developer account, as geth's ``--dev``.

The genesis is geth v1.17's developer genesis: chain id 1337, every block fork at 0, merged
at genesis (terminal total difficulty 0), every time fork at 0 up to the newest one the
running engine executes (Osaka with revm, Prague on a pure install, where py-evm stops),
the system contracts of those forks deployed, the precompiles holding 1 wei, the developer
account funded with 2^256 - 9 wei and empty extra-data. Blocks come from the simulated
beacon (``ethnode.eth.catalyst.simulated_beacon``) through the Engine API code.

``--dev.clique`` keeps the chain of geth's Clique era instead: every fork up to London at
block 0 (geth refuses Shanghai and later on Clique chains), the developer account as the
only signer (in the extra-data) and funded. It is the one to use for a network of several
nodes that propagate blocks over eth/68 (followers `init` its genesis and peer with it);
the proof-of-stake chain is for one node and its users (no p2p by default, as geth).

Where it lives:

- **No datadir**: in memory, gone at exit (geth's ``--dev`` is ephemeral too); the key is
  new each run unless ``--dev.key`` names one.
- **A datadir**: written on the first run (genesis, and the signer key in
  ``<datadir>/ethnode/devkey``), reused after; a chain already there wins over the flags
  (its period, its signers), as geth keeps a stored genesis.

Either way the genesis JSON can be written out (``--dev.genesis-out``; with a datadir
also ``<datadir>/ethnode/genesis.json``) so that other nodes ``init`` the same chain and
follow it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ethnode.consensus import create_engine
from ethnode.core.blockchain import BlockChain, setup_genesis
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.genesis import Genesis
from ethnode.core.rawdb import CLIENT_DIR, MemoryDB, open_database
from ethnode.core.rawdb import accessors as rawdb
from ethnode.core.types.transaction import address_of
from ethnode.crypto.errors import InvalidKeyError
from ethnode.crypto.keys import PrivateKey, load_private_key, save_private_key
from ethnode.errors import EthnodeError
from ethnode.event import EventSink
from ethnode.privatefs import make_private_dirs

log = logging.getLogger("ethnode.miner")

DEV_CHAIN_ID = 1337  # geth --dev chain and network id
POS_FAUCET_BALANCE = 2**256 - 9  # geth DeveloperGenesisBlock: the faucet is not paid tips on PoS
POS_PRECOMPILES = (*range(1, 0x12), 0x100)  # geth: 0x01..0x11 and P256VERIFY (0x100), 1 wei each
# geth params.DefaultCancunBlobConfig / DefaultPragueBlobConfig (AllDevChainProtocolChanges.BlobScheduleConfig)
_DEV_BLOB_SCHEDULE = {"cancun": {"target": 3, "max": 6, "baseFeeUpdateFraction": 3338477},
                      "prague": {"target": 6, "max": 9, "baseFeeUpdateFraction": 5007716}}
_DEV_TIME_FORKS = ("shanghaiTime", "cancunTime", "pragueTime", "osakaTime")
DEV_GAS_LIMIT = 11_500_000  # geth --dev.gaslimit default
DEV_EPOCH = 30_000  # geth params.AllCliqueProtocolChanges Clique.Epoch
# geth funds 2^256-9; the faucet is also the signer that earns the tips of everyone's txs,
# and a balance that close to 2^256 would overflow on the first tip of another account.
DEV_FAUCET_BALANCE = 2**255
PRECOMPILES = range(1, 10)  # 0x01..0x09, funded with 1 wei as geth's developer genesis does (London era)
DEV_KEY_FILE = "devkey"  # <datadir>/ethnode/devkey: the signer key of a persistent dev chain
GENESIS_FILE = "genesis.json"  # <datadir>/ethnode/genesis.json: for followers' `init`
_BLOCK_FORKS = (
    "homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock", "constantinopleBlock",
    "petersburgBlock", "istanbulBlock", "berlinBlock", "londonBlock",
)
_VANITY, _SEAL = 32, 65  # Clique extra-data: vanity, signers (at genesis), seal


class DevError(EthnodeError):
    """The dev chain cannot be set up (bad key, a datadir holding another kind of chain)."""


def pos_dev_genesis(faucet: bytes, gas_limit: int = DEV_GAS_LIMIT, newest: str = "osaka") -> dict[str, Any]:
    """geth's developer genesis (``core.DeveloperGenesisBlock``) with time forks up to ``newest``."""
    from ethnode.core.systemcontracts import system_contracts_alloc

    forks = _DEV_TIME_FORKS[: _DEV_TIME_FORKS.index(f"{newest}Time") + 1]
    alloc: dict[str, Any] = {"0x" + n.to_bytes(20, "big").hex(): {"balance": "0x1"} for n in POS_PRECOMPILES}
    alloc.update(system_contracts_alloc())
    alloc["0x" + faucet.hex()] = {"balance": hex(POS_FAUCET_BALANCE)}
    return {
        "config": {"chainId": DEV_CHAIN_ID, **dict.fromkeys(_BLOCK_FORKS, 0), "muirGlacierBlock": 0,
                   "arrowGlacierBlock": 0, "grayGlacierBlock": 0, "terminalTotalDifficulty": 0,
                   **dict.fromkeys(forks, 0), "blobSchedule": _DEV_BLOB_SCHEDULE},
        "nonce": "0x0",
        "timestamp": "0x0",
        "extraData": "0x",
        "gasLimit": hex(gas_limit),
        "difficulty": "0x0",
        "baseFeePerGas": hex(10**9),  # geth params.InitialBaseFee
        "alloc": alloc,
    }


def newest_executable_fork() -> str:
    """Osaka when revm is there, Prague on a pure install (py-evm stops there)."""
    from ethnode.core.execution import compiled_engine_error

    return "osaka" if compiled_engine_error() is None else "prague"


def dev_genesis(signer: bytes, period: int, gas_limit: int = DEV_GAS_LIMIT) -> dict[str, Any]:
    """geth's Clique developer genesis with ``signer`` as the only signer and the funded account."""
    alloc: dict[str, Any] = {"0x" + n.to_bytes(20, "big").hex(): {"balance": "0x1"} for n in PRECOMPILES}
    alloc["0x" + signer.hex()] = {"balance": hex(DEV_FAUCET_BALANCE)}
    return {
        "config": {"chainId": DEV_CHAIN_ID, **dict.fromkeys(_BLOCK_FORKS, 0),
                   "clique": {"period": period, "epoch": DEV_EPOCH}},
        "nonce": "0x0",
        "timestamp": "0x0",
        "extraData": "0x" + (bytes(_VANITY) + signer + bytes(_SEAL)).hex(),
        "gasLimit": hex(gas_limit),
        "difficulty": "0x1",
        "baseFeePerGas": hex(10**9),  # geth params.InitialBaseFee
        "alloc": alloc,
    }


@dataclass
class DevChain:
    """What ``run --dev`` runs on: the signer key, the genesis, and where the chain is."""

    key: PrivateKey
    genesis_json: dict[str, Any]
    datadir: Path | None  # None: the chain is in memory (``chain``)
    chain: BlockChain | None = None
    created: bool = False  # the genesis was written by this run
    genesis_files: list[Path] = field(default_factory=list)  # where its JSON was written for followers
    pos_period: int = 0  # seconds between simulated-beacon blocks (the Clique period is in the genesis)

    @property
    def address(self) -> bytes:
        return address_of(self.key.node_id)

    @property
    def clique(self) -> bool:
        return "clique" in self.genesis_json.get("config", {})

    @property
    def period(self) -> int:
        if self.clique:
            return int(self.genesis_json["config"]["clique"].get("period", 0))
        return self.pos_period


def parse_key(text: str) -> PrivateKey:
    try:
        return PrivateKey.from_hex(text)
    except InvalidKeyError as exc:
        raise DevError(f"invalid --dev.key: {exc}") from None


def _dev_key(key_hex: str | None, instance: Path | None) -> PrivateKey:
    if key_hex:
        return parse_key(key_hex)
    path = None if instance is None else instance / DEV_KEY_FILE
    if path is not None and path.exists():
        try:
            return load_private_key(path)
        except (InvalidKeyError, ValueError, OSError) as exc:
            raise DevError(f"dev key {path}: {exc}") from None
    key = PrivateKey.generate()
    if path is not None:
        make_private_dirs(instance)  # type: ignore[arg-type]
        save_private_key(key, path)
    return key


def prepare_dev_chain(
    datadir: str | os.PathLike[str] | None,
    *,
    period: int = 0,
    key_hex: str | None = None,
    gas_limit: int = DEV_GAS_LIMIT,
    genesis_out: str | os.PathLike[str] | None = None,
    events: EventSink | None = None,
    clique: bool = False,
) -> DevChain:
    """Create (or reopen) the dev chain; ``DevError`` with one line for the user on any problem.

    ``events``: the bus of the node that will run the in-memory chain, which is opened here
    (a chain in a datadir is opened by the Ethereum service, with its node's bus).
    """
    root = None if datadir is None else Path(datadir).expanduser().absolute()
    instance = None if root is None else root / CLIENT_DIR
    key = _dev_key(key_hex, instance)
    signer = address_of(key.node_id)
    if root is None:
        obj = dev_genesis(signer, period, gas_limit) if clique else pos_dev_genesis(
            signer, gas_limit, newest_executable_fork())
        db = MemoryDB()
        setup_genesis(db, Genesis.from_json(obj), obj)
        config = ChainConfig.from_json(obj["config"])
        chain = BlockChain(db, create_engine(config, db), config=config, events=events, execute=True)
        dev = DevChain(key, obj, None, chain, created=True)
    else:
        dev = _open_datadir(root, key, period, gas_limit, clique)
    dev.pos_period = period
    for path in (genesis_out, instance and instance / GENESIS_FILE):
        if path is not None:
            dev.genesis_files.append(_write_json(Path(path).expanduser(), dev.genesis_json))
    return dev


def _open_datadir(root: Path, key: PrivateKey, period: int, gas_limit: int, clique: bool) -> DevChain:
    signer = address_of(key.node_id)
    try:
        db = open_database(root)
    except EthnodeError as exc:
        raise DevError(str(exc)) from None
    try:
        genesis_hash = rawdb.read_canonical_hash(db, 0)
        if genesis_hash is None:
            obj = dev_genesis(signer, period, gas_limit) if clique else pos_dev_genesis(
                signer, gas_limit, newest_executable_fork())
            setup_genesis(db, Genesis.from_json(obj), obj)
            return DevChain(key, obj, root, created=True)
        obj = rawdb.read_genesis_json(db, genesis_hash)
    finally:
        db.close()
    stored = None if obj is None else ChainConfig.from_json(obj.get("config"))
    if stored is None or stored.chain_id != DEV_CHAIN_ID:
        raise DevError(f"{root} holds a chain that is not a dev chain: --dev needs an empty datadir or a dev chain")
    dev = DevChain(key, obj, root)  # type: ignore[arg-type]
    if dev.clique != clique:
        log.warning("Reusing the %s dev chain in %s (%s ignored)", "Clique" if dev.clique else "proof-of-stake",
                    root, "--dev.clique" if clique else "the proof-of-stake default")
    if not dev.clique:
        return dev
    if dev.period != period:
        log.warning("Reusing the dev chain in %s: its period is %d s (--dev.period %d ignored)", root, dev.period,
                    period)
    extra = bytes.fromhex(str(obj.get("extraData", "0x"))[2:])
    if signer not in {extra[i : i + 20] for i in range(_VANITY, len(extra) - _SEAL, 20)}:
        log.warning("Dev key 0x%s is not a genesis signer of the chain in %s", signer.hex(), root)
    return dev


def _write_json(path: Path, obj: dict[str, Any]) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path
    except OSError as exc:
        raise DevError(f"cannot write the dev genesis to {path}: {exc.strerror or exc}") from None


__all__ = [
    "DevChain", "DevError", "dev_genesis", "pos_dev_genesis", "newest_executable_fork", "prepare_dev_chain",
    "parse_key", "DEV_CHAIN_ID", "DEV_GAS_LIMIT",
    "DEV_FAUCET_BALANCE", "DEV_KEY_FILE", "GENESIS_FILE",
]
