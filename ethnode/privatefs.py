"""Files and directories only their owner can read: the datadir holds the node key, the
JWT secret and the chain database.

geth creates the datadir and everything under it with ``os.MkdirAll(dir, 0700)``, whose
mode applies to every directory it creates; Python's ``os.makedirs`` applies its mode to
the last one only, so the parents are made one by one here. SQLite creates its database
(and the ``-wal``/``-shm`` files, which take the database file's mode) with the process
umask, typically 0644; creating the file first with 0600 keeps all three private.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700  # geth: os.MkdirAll(datadir, 0700)
PRIVATE_FILE_MODE = 0o600


def make_private_dirs(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p`` where each directory created (parents too) is 0700; existing ones are left as they are."""
    target = Path(path)
    missing: list[Path] = []
    probe = target
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            pass  # made meanwhile by someone else
    if not target.is_dir():
        raise NotADirectoryError(f"{target}: not a directory")
    return target


def touch_private(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (never changes an existing file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "make_private_dirs", "touch_private"]
