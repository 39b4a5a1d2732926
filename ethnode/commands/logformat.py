"""One logging setup for every command, in geth's three formats (geth ``log/format.go``, ``internal/debug``).

    terminal  INFO [12-07|22:10:36.710] Started P2P networking                   self=enode://…
    logfmt    t=2026-12-07T22:10:36+0000 lvl=info msg="Started P2P networking" self=enode://…
    json      {"t":"2026-12-07T22:10:36.710372Z","lvl":"info","msg":"Started P2P networking","self":"enode://…"}

Users who read geth logs, and the tools they grep or ship them with, expect geth's aligned
level names, the message padded to 40 columns, values quoted only when they hold a space
or a special character, numbers with thousands separators, and ``--log.format``,
``--log.file`` and ``--verbosity``. Records carry their pairs through ``ethnode.logctx.kv``;
a record without them is split where its trailing ``key=value`` pairs begin.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from ethnode.logctx import CTX_ATTR

TRACE = 5  # below DEBUG; geth's --verbosity 5
# geth LevelAlignedString (terminal) and LevelString (logfmt, JSON)
ALIGNED_LEVELS = {TRACE: "TRACE", logging.DEBUG: "DEBUG", logging.INFO: "INFO ", logging.WARNING: "WARN ",
                  logging.ERROR: "ERROR", logging.CRITICAL: "CRIT "}
LEVEL_WORDS = {TRACE: "trace", logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn",
               logging.ERROR: "error", logging.CRITICAL: "crit"}
_COLOURS = {logging.CRITICAL: "\x1b[35m", logging.ERROR: "\x1b[31m", logging.WARNING: "\x1b[33m",
            logging.INFO: "\x1b[32m", logging.DEBUG: "\x1b[36m", TRACE: "\x1b[34m"}
_RESET = "\x1b[0m"
MSG_JUST = 40  # geth termMsgJust
CTX_MAX_PADDING = 40  # geth termCtxMaxPadding
FORMATS = ("terminal", "logfmt", "json")
DEFAULT_VERBOSITY = 3  # geth: info
SILENT = logging.CRITICAL + 10
_VERBOSITY = {0: SILENT, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: TRACE}
_TRAILING_PAIRS = re.compile(r'(?:\s+[A-Za-z_][\w./-]*=(?:"(?:[^"\\]|\\.)*"|\S*))+$')
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}


class LogSetupError(ValueError):
    """A bad ``--log.format`` or an unwritable ``--log.file``: the command ends with one Fatal line."""


def level_for(verbosity: int) -> int:
    """geth's --verbosity: 0 silent, 1 error, 2 warn, 3 info, 4 debug, 5 trace (and above)."""
    return _VERBOSITY.get(verbosity, TRACE if verbosity > 5 else SILENT)


# -- values ------------------------------------------------------------------------------------
def go_quote(s: str) -> str:
    """Go's ``strconv.Quote``: printable characters kept, the rest escaped."""
    out = []
    for ch in s:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def escape_value(s: str) -> str:
    """geth ``appendEscapeString``: quoted for a space or ``=``, Go-escaped for ``"``, controls, non-ASCII."""
    quoting = False
    for ch in s:
        if ch in " =":
            quoting = True
        elif ch <= '"' or ch > "~":
            return go_quote(s)
    return f'"{s}"' if quoting else s


def escape_message(s: str, equals: bool = True) -> str:
    """geth ``escapeMessage``: spaces and line breaks pass; ``=``, controls and non-ASCII quote it all.

    ``equals=False`` lets ``=`` pass: a text record whose pairs could not be split off keeps them readable.
    """
    for ch in s:
        if ch in "\r\n\t":
            continue
        if ch < " " or ch > "~" or (equals and ch == "="):
            return go_quote(s)
    return s


def thousands(n: int) -> str:
    """geth ``appendInt64``: separators from 100000 up."""
    return str(n) if -100000 < n < 100000 else f"{n:,}"


def terminal_value(value: Any) -> str:
    """One value as geth's terminal handler prints it (no Python reprs)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return thousands(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return escape_value(",".join(_plain(v) for v in items))
    return escape_value(_plain(value))


def _plain(value: Any) -> str:
    """A scalar as text: geth's TerminalStringer (``terminal_string``) first, then bytes as 0x-hex."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    terminal = getattr(value, "terminal_string", None)
    if callable(terminal):
        return str(terminal())
    return str(value)


def json_value(value: Any) -> Any:
    """A value for the JSON format: numbers and booleans stay typed, bytes are 0x-hex."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(v) for v in value]
    return _plain(value)


def _logfmt_text(s: str) -> str:
    """slog's TextHandler: quoted when empty or holding a space, ``=``, ``"`` or an unprintable."""
    if s == "" or any(ch in ' ="' or not ch.isprintable() for ch in s):
        return go_quote(s)
    return s


def record_fields(record: logging.LogRecord) -> tuple[str, list[tuple[str, Any]]]:
    """The message and its pairs: the record's ``kv`` pairs, or the trailing ``key=value`` words of its text."""
    message = record.getMessage()
    pairs = getattr(record, CTX_ATTR, None)
    if pairs is not None:
        return message, list(pairs)
    match = _TRAILING_PAIRS.search(message)
    if match is None:
        return message, []
    found = []
    for word in re.finditer(r'([A-Za-z_][\w./-]*)=("(?:[^"\\]|\\.)*"|\S*)', match.group(0)):
        found.append((word.group(1), _Raw(word.group(2))))
    return message[: match.start()], found


def plain_text(record: logging.LogRecord) -> str:
    """``message key=value ...`` with geth's value formatting, no padding, level or time (for tests and tools)."""
    message, pairs = record_fields(record)
    return " ".join([message, *(f"{k}={v if isinstance(v, _Raw) else terminal_value(v)}" for k, v in pairs)])


class _Raw(str):
    """A value already formatted in the message text: printed as it is (escaped only if it must be)."""


# -- formatters --------------------------------------------------------------------------------
class TerminalFormatter(logging.Formatter):
    """geth's TerminalHandler: aligned level, ``[MM-DD|HH:MM:SS.mmm]``, padded message, aligned values."""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour
        self._padding: dict[str, int] = {}  # geth fieldPadding: each key's widest value so far (<= 40)

    def format(self, record: logging.LogRecord) -> str:
        message, pairs = record_fields(record)
        message = escape_message(message, equals=bool(pairs) or hasattr(record, CTX_ATTR))
        level = ALIGNED_LEVELS.get(record.levelno, record.levelname[:5].ljust(5))
        colour = _COLOURS.get(record.levelno, "") if self.colour else ""
        stamp = time.strftime("%m-%d|%H:%M:%S", time.localtime(record.created))
        head = f"{colour}{level}{_RESET}" if colour else level
        parts = [f"{head}[{stamp}.{int(record.msecs):03d}] {message}"]
        length = len(message.encode())
        if pairs and length < MSG_JUST:
            parts.append(" " * (MSG_JUST - length))
        for i, (key, value) in enumerate(pairs):
            text = (value if _clean(value) else escape_value(value)) if isinstance(value, _Raw) else \
                terminal_value(value)
            name = escape_value(str(key))
            parts.append(f" {colour}{name}{_RESET}=" if colour else f" {name}=")
            width = len(text)
            padding = self._padding.get(key, 0)
            if padding < width <= CTX_MAX_PADDING:
                padding = self._padding[key] = width
            parts.append(text)
            if i < len(pairs) - 1 and padding > width:
                parts.append(" " * (padding - width))
        line = "".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _clean(text: str) -> bool:
    return text.startswith('"') or escape_value(text) == text


class LogfmtFormatter(logging.Formatter):
    """geth ``LogfmtHandler`` (slog's TextHandler): ``t=… lvl=… msg=… key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        message, pairs = record_fields(record)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(record.created))
        level = LEVEL_WORDS.get(record.levelno, record.levelname.lower())
        out = [f"t={stamp}", f"lvl={level}", f"msg={_logfmt_text(message.rstrip())}"]
        for key, value in pairs:
            if isinstance(value, _Raw):
                text = value if value.startswith('"') else _logfmt_text(value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (int, float)):
                text = str(value)
            else:
                text = _logfmt_text(_plain(value) if not isinstance(value, (list, tuple, set, frozenset))
                                    else ",".join(_plain(v) for v in value))
            out.append(f"{_logfmt_text(str(key))}={text}")
        if record.exc_info:
            out.append(f"exc={_logfmt_text(self.formatException(record.exc_info))}")
        return " ".join(out)


class JSONFormatter(logging.Formatter):
    """geth ``JSONHandler`` (slog's): one object a line, ``t`` (RFC 3339, fraction trimmed), ``lvl``, ``msg``."""

    def format(self, record: logging.LogRecord) -> str:
        message, pairs = record_fields(record)
        local = time.localtime(record.created)
        offset = time.strftime("%z", local)
        zone = "Z" if offset in ("+0000", "-0000") else f"{offset[:3]}:{offset[3:]}"
        fraction = f"{record.created % 1:.6f}"[2:].rstrip("0")  # Go's RFC3339Nano: trailing zeros trimmed
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", local) + (f".{fraction}" if fraction else "") + zone
        obj: dict[str, Any] = {"t": stamp, "lvl": LEVEL_WORDS.get(record.levelno, record.levelname.lower()),
                               "msg": message.rstrip()}
        for key, value in pairs:
            if isinstance(value, _Raw):
                raw = str(value)
                if raw.startswith('"'):
                    try:
                        raw = json.loads(raw)
                    except ValueError:
                        pass
                obj[str(key)] = int(raw) if re.fullmatch(r"-?\d+", raw) else raw
            else:
                obj[str(key)] = json_value(value)
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# -- handlers and set-up -----------------------------------------------------------------------
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


class _File(logging.FileHandler):
    """``--log.file``: appended to, as geth opens it (O_APPEND, 0644)."""


def _colour_wanted() -> bool:
    """geth: colour only when stderr is a terminal and TERM is not ``dumb``."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb"


def _formatter(fmt: str, colour: bool) -> logging.Formatter:
    if fmt == "json":
        return JSONFormatter()
    if fmt == "logfmt":
        return LogfmtFormatter()
    return TerminalFormatter(colour)


def setup(verbosity: int = DEFAULT_VERBOSITY, fmt: str | None = None, file: str | None = None,
          logger_name: str = "") -> None:
    """Send records at ``verbosity`` to stderr (and ``file``) in ``fmt``, replacing an earlier setup.

    ``LogSetupError`` for an unknown format or a file that cannot be opened (geth's words).
    """
    fmt = fmt or "terminal"
    if fmt not in FORMATS:
        raise LogSetupError(f"unknown log format: {fmt}")
    file_handler = None
    if file:
        try:
            file_handler = _File(file, mode="a", encoding="utf-8", delay=False)
        except OSError as exc:
            raise LogSetupError(f"failed to open log file {file}: {exc.strerror or exc}") from None
    logging.addLevelName(TRACE, "TRACE")
    logger = logging.getLogger(logger_name)
    for old in [h for h in logger.handlers if isinstance(h, (_Stderr, _File))]:
        logger.removeHandler(old)
        old.close()
    handler = _Stderr()
    handler.setFormatter(_formatter(fmt, fmt == "terminal" and _colour_wanted()))
    logger.addHandler(handler)
    if file_handler is not None:
        file_handler.setFormatter(_formatter(fmt, False))
        logger.addHandler(file_handler)
    logger.setLevel(level_for(verbosity))


def add_log_flags(parser: argparse.ArgumentParser, *, verbosity: bool = True) -> None:
    """geth's logging flags (``internal/debug/flags.go``), on a subcommand."""
    if verbosity:
        parser.add_argument("--verbosity", type=int, default=DEFAULT_VERBOSITY, metavar="N",
                            help="logging verbosity: 0=silent, 1=error, 2=warn, 3=info, 4=debug, 5=detail (default 3)")
    parser.add_argument("--log.format", dest="log_format", default=None, metavar="FORMAT",
                        help="log format to use (json|logfmt|terminal)")
    parser.add_argument("--log.file", dest="log_file", default=None, metavar="FILE",
                        help="write logs to a file (as well as to stderr)")
    parser.set_defaults(setup_logging=setup_from_args)  # the command line calls it before the command runs


def setup_from_args(args: argparse.Namespace) -> str | None:
    """``setup`` from the flags ``add_log_flags`` added: None, or the error for one Fatal line."""
    try:
        setup(getattr(args, "verbosity", DEFAULT_VERBOSITY), args.log_format, args.log_file)
    except LogSetupError as exc:
        return str(exc)
    return None


__all__: Sequence[str] = [
    "TRACE", "ALIGNED_LEVELS", "LEVEL_WORDS", "FORMATS", "LogSetupError", "TerminalFormatter", "LogfmtFormatter",
    "JSONFormatter", "setup", "setup_from_args", "add_log_flags", "level_for", "record_fields",
    "escape_value", "terminal_value", "plain_text",
]
