"""Running ``ethnode-fast run`` as a user does: a child process whose stderr is read on a
thread, waited on line by line, stopped by signal. Shared by the CLI, devnet, metrics,
interop and security tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from shared_support import subprocess_env

HOST = "127.0.0.1"
START_TIMEOUT = 20.0  # a cold interpreter start on a busy 2-core machine
EXIT_BOUND = 5.0  # shutdown after SIGTERM within 5 s, as geth
ENODE_LINE = re.compile(r'Started P2P networking +self="?(enode://[0-9a-f]{128}@[\d.]+:\d+)')


def cli_command(*args: str) -> list[str]:
    # These tests are about the node and the p2p server: `run` without the eth service,
    # unless a test asks for eth versions itself (the eth handler has its own tests).
    if args and args[0] == "run" and "--eth.versions" not in args:
        args = (*args, "--eth.versions", "none")
    return [sys.executable, "-m", "ethnode", *args]


def child_env() -> dict[str, str]:
    return subprocess_env()


class RunProcess:
    """A running ``ethnode-fast run`` whose stderr is read on a thread (it can never block on it)."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
                 argv: list[str] | None = None) -> None:
        """``argv`` runs that command line as it is (no ``run``, no default flags added)."""
        command = argv if argv is not None else cli_command("run", *args)
        self.proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, env=env or child_env(), cwd=cwd)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # EOF marker
            self._changed.notify_all()

    def wait_for_line(self, pattern: str | re.Pattern[str], timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first stderr line matching ``pattern``; fails if the process exits or time runs out."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                if self.lines and self.lines[-1] == "" and self.proc.poll() is not None:
                    raise AssertionError(f"run exited ({self.proc.returncode}): {self.output}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line matching {regex.pattern!r} within {timeout} s: {self.output}")
                self._changed.wait(left)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> tuple[int, float]:
        """Send ``sig``; (exit status, seconds until exit)."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code, time.monotonic() - start


def start_run_command(*extra: str, datadir: Path) -> tuple[RunProcess, str]:
    """``ethnode-fast run`` on a free loopback port; the process and its enode URL."""
    run = RunProcess(["--datadir", str(datadir), "--port", "0", "--listenaddr", HOST, *extra])
    try:
        return run, run.wait_for_line(ENODE_LINE).group(1)
    except BaseException:
        run.stop(signal.SIGKILL)
        raise


def stop_run_command(run: RunProcess, sig: int = signal.SIGINT) -> tuple[int, str]:
    code, _ = run.stop(sig)
    return code, run.output


# ---------------------------------------------------------------------------------------
# Running
