"""Small file helpers for the store: the data-directory lock and atomic writes."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DataDirLocked(Exception):
    """Another broker holds the data directory."""


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/leveret.lock`` for the process lifetime.

    The kernel drops the lock when the process dies, ``kill -9`` included,
    so a stale lock file never blocks a restart.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / 'leveret.lock'
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors='replace').strip() or 'unknown'
            os.close(fd)
            raise DataDirLocked(
                f'data directory {self.path.parent} is in use by another broker '
                f'(pid {holder}); stop it or choose another --data-dir') from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: on disk whole, or not at all."""
    tmp = path.with_name(path.name + '.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
