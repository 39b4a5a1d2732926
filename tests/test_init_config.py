"""``init`` on a datadir that already holds the chain: geth's ``SetupGenesisBlockWithOverride``.

A fork the stored head has not reached may be moved (the new config is stored); one it
has passed is refused naming the field, as geth's ``ConfigCompatError``. The chain is the
shared ethtest chain (Cancun at time 60, Prague at 120), imported without execution.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shared_support import shared_path

from ethnode.cli import main
from ethnode.core.blockchain import read_chain_config
from ethnode.core.chainconfig import ChainConfig
from ethnode.core.configcompat import check_compatible
from ethnode.core.rawdb import open_database

FAR_FUTURE = 10**12  # a fork time no block of the chain reaches


def _genesis() -> dict[str, Any]:
    return json.loads(shared_path("chains", "ethtest", "genesis.json").read_text())  # type: ignore[no-any-return]


def _write(tmp_path: Path, name: str, obj: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def _stored(datadir: Path) -> ChainConfig:
    db = open_database(datadir)
    try:
        return read_chain_config(db)
    finally:
        db.close()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A datadir holding the ethtest chain (head past Cancun and Prague), and its genesis."""
    tmp = tmp_path_factory.mktemp("chain")
    genesis = _write(tmp, "genesis.json", _genesis())
    datadir = tmp / "d"
    assert main(["init", str(genesis), "--datadir", str(datadir)]) == 0
    chain = shared_path("chains", "ethtest", "chain.rlp")
    assert main(["import", str(chain), "--noexec", "--datadir", str(datadir)]) == 0
    return datadir, genesis


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_compatible_change_is_stored(imported: tuple[Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    datadir = _copy(imported[0], tmp_path / "d")
    obj = _genesis()
    obj["config"]["osakaTime"] = FAR_FUTURE
    assert _stored(datadir).osaka_time is None
    capsys.readouterr()
    assert main(["init", str(_write(tmp_path, "next.json", obj)), "--datadir", str(datadir)]) == 0
    assert "Successfully wrote genesis state" in capsys.readouterr().err
    assert _stored(datadir).osaka_time == FAR_FUTURE


def test_incompatible_change_is_refused_naming_the_field(imported: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    datadir = _copy(imported[0], tmp_path / "d")
    obj = _genesis()
    obj["config"]["cancunTime"] = FAR_FUTURE  # the head is long past time 60
    obj["config"]["pragueTime"] = FAR_FUTURE  # (kept in order after Cancun)
    obj["config"]["osakaTime"] = FAR_FUTURE + 1  # a compatible change beside it is not applied either
    capsys.readouterr()
    assert main(["init", str(_write(tmp_path, "moved.json", obj)), "--datadir", str(datadir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"Fatal: Failed to write chain config: mismatching Cancun fork timestamp in database "
                   f"(have timestamp 60, want timestamp {FAR_FUTURE}, rewindto timestamp 59)"]
    stored = _stored(datadir)
    assert stored.cancun_time == 60 and stored.osaka_time is None


def test_chain_at_genesis_takes_any_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datadir = tmp_path / "d"
    assert main(["init", str(_write(tmp_path, "g.json", _genesis())), "--datadir", str(datadir)]) == 0
    obj = _genesis()
    obj["config"]["cancunTime"] = 90
    assert main(["init", str(_write(tmp_path, "g2.json", obj)), "--datadir", str(datadir)]) == 0
    assert _stored(datadir).cancun_time == 90


def test_check_compatible_finds_the_lowest_conflict() -> None:
    old = ChainConfig.from_json(_genesis()["config"])
    new = ChainConfig.from_json({**_genesis()["config"], "cancunTime": 200, "pragueTime": 300})
    err = check_compatible(old, new, 10, 1000)
    assert err is not None and err.what == "Cancun fork timestamp" and err.rewind_to_time == 59
    assert check_compatible(old, new, 10, 59) is None  # neither fork reached yet: a free move
    unset = ChainConfig.from_json({**_genesis()["config"], "pragueTime": None})
    assert str(check_compatible(old, unset, 10, 1000)) == (
        "mismatching Prague fork timestamp in database (have timestamp 120, want timestamp nil, "
        "rewindto timestamp 119)")


def test_misordered_schedule_is_refused_in_geth_words(imported: tuple[Path, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    datadir = _copy(imported[0], tmp_path / "d")
    obj = _genesis()
    obj["config"]["osakaTime"] = FAR_FUTURE
    obj["config"]["pragueTime"] = FAR_FUTURE + 1  # later than Osaka: geth's CheckConfigForkOrder refuses
    capsys.readouterr()
    assert main(["init", str(_write(tmp_path, "order.json", obj)), "--datadir", str(datadir)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"Fatal: failed to write genesis block: unsupported fork ordering: pragueTime enabled at timestamp "
        f"{FAR_FUTURE + 1}, but osakaTime enabled at timestamp {FAR_FUTURE}"]
    assert _stored(datadir).osaka_time is None
    obj = _genesis()
    obj["config"]["osakaTime"] = FAR_FUTURE  # no blobSchedule entry is needed for Osaka; for BPO1 it is
    obj["config"]["bpo1Time"] = FAR_FUTURE
    assert main(["init", str(_write(tmp_path, "bpo.json", obj)), "--datadir", str(datadir)]) == 1
    assert 'missing entry for fork "bpo1" in blobSchedule' in capsys.readouterr().err


def test_block_fork_error_in_geth_words() -> None:
    base = {"chainId": 1, "homesteadBlock": 0, "londonBlock": 5}
    old, moved = ChainConfig.from_json(base), ChainConfig.from_json({**base, "londonBlock": 50})
    err = check_compatible(old, moved, 20, 0)
    assert str(err) == "mismatching London fork block in database (have block 5, want block 50, rewindto block 4)"
    gone = check_compatible(old, ChainConfig.from_json({**base, "londonBlock": None}), 20, 0)
    assert str(gone) == "mismatching London fork block in database (have block 5, want block <nil>, rewindto block 4)"
    assert check_compatible(old, moved, 4, 0) is None
