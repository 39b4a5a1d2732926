"""One log line format for every command, geth's terminal format: ``LVL [MM-DD|HH:MM:SS.mmm] msg k=v``.

Users who read geth logs (and the tools they grep them with) expect geth's four-letter level
names (``WARN``, ``EROR``, ``CRIT``, ``DBUG``, ``TRCE``), one space, the bracketed
millisecond timestamp, then the message with its ``key=value`` pairs.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

TRACE = 5  # below DEBUG; geth's --verbosity 5
GETH_LEVELS = {TRACE: "TRCE", logging.DEBUG: "DBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
               logging.ERROR: "EROR", logging.CRITICAL: "CRIT"}


class GethFormatter(logging.Formatter):
    """``logging.Formatter`` writing geth's terminal format (a traceback, if any, follows)."""

    def format(self, record: logging.LogRecord) -> str:
        level = GETH_LEVELS.get(record.levelno, record.levelname[:4].upper())
        stamp = time.strftime("%m-%d|%H:%M:%S", time.localtime(record.created))
        line = f"{level} [{stamp}.{int(record.msecs):03d}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def install(level: int, logger_name: str = "") -> None:
    """Send records at ``level`` and above of ``logger_name`` (root by default) to stderr, once."""
    logging.addLevelName(TRACE, "TRACE")
    logger = logging.getLogger(logger_name)
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(GethFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)


__all__ = ["GethFormatter", "GETH_LEVELS", "TRACE", "install"]
