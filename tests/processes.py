"""Subprocesses for the tests (workers, CLIs) and polling until something holds."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import TypeVar

T = TypeVar('T')


def wait_until(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.05,
               message: str | Callable[[], str] = 'condition not met') -> T:
    """Poll ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f'after {timeout}s: {text}')
        time.sleep(interval)


class Background:
    """A subprocess in a session of its own, with its output in a log file."""

    def __init__(self, args: list[str], log_path: Path, *, cwd: Path,
                 env: dict[str, str]) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, 'ab')
        self._start = self._log.tell()
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        """Output of this run only (a restarted process may share its log file)."""
        with open(self.log_path, 'rb') as f:
            f.seek(self._start)
            return f.read().decode(errors='replace')

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        compiled = re.compile(pattern)

        def found() -> re.Match[str] | None:
            match = compiled.search(self.log())
            if match is None and not self.alive():
                raise AssertionError(f'{" ".join(self.args)} exited with '
                                     f'{self.proc.returncode} before logging {pattern!r}:\n'
                                     f'{self.log()[-4000:]}')
            return match

        return wait_until(found, timeout, message=lambda: f'no {pattern!r} in:\n'
                                                          f'{self.log()[-4000:]}')

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the process and every process of its session."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the process and everything in its session (pool children too)."""
        self.signal_group(SIGKILL)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def stop(self, sig: int = SIGTERM, timeout: float = 30.0) -> int | None:
        """Ask the main process to stop; kill whatever is left of the session."""
        self.signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        code = self.proc.poll()
        self.kill()
        return code
