"""The datadir lock: one node per datadir, refused at once otherwise.

geth takes an flock on ``<datadir>/LOCK`` and turns the failure into "datadir already
used by another process" (node.convertFileLockError); so do we. flock locks belong to the
open file description, so a second Node in the same process is refused too.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ethnode.errors import EthnodeError
from ethnode.privatefs import PRIVATE_FILE_MODE, make_private_dirs

LOCK_FILE = "LOCK"  # geth: the same name, in the datadir root


class DatadirInUseError(EthnodeError):
    """Another process (or Node) holds the datadir."""


class DatadirLock:
    """An exclusive, non-blocking flock on ``<datadir>/LOCK`` held until release()."""

    def __init__(self, datadir: Path) -> None:
        self.path = Path(datadir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        make_private_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatadirInUseError(f"datadir already used by another process: {self.path.parent}") from None
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
