"""The definitions journal: the durable topology, users, vhosts and permissions,
one record per change, in ``<data_dir>/definitions.log``.

Every item has a key (``kind``, then the names that identify it, joined by
NUL) and a value (plain JSON data).  A change appends one record, in the
message log's framing (:mod:`.records`: length, type, payload, CRC):

* ``S`` set: key length (u16), key, JSON value;
* ``X`` delete: the key.

So a declaration costs one small append, not a rewrite of everything.  The
records are written by the store's writer thread with the message log's
batches (one ``fdatasync`` for all the changes of a batch), and the method
that made the change is answered once its batch is synced.

Compaction
    When the file holds more than :data:`COMPACT_FACTOR` times as many
    records as there are live items (and at least :data:`COMPACT_MIN`), the
    next batch rewrites it whole instead: the live records, already encoded,
    joined, written to a temporary file, synced and renamed over the journal.

Crash safety
    A torn or corrupt tail (a write cut short) is cut off at start-up, as the
    message log does: it holds only changes that were never answered.

:class:`Journal` lives on the event loop (it encodes records and decides
what the next batch writes); :class:`JournalWriter` does the file work in
the writer thread.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from .files import fsync_dir
from .records import read_records

log = logging.getLogger(__name__)

SET = ord('S')
DELETE = ord('X')
#: Rewrite the journal once it holds this many times the live records...
COMPACT_FACTOR = 2
#: ... and at least this many records more than are live.
COMPACT_MIN = 1000

_HEAD = struct.Struct('<IB')
_U16 = struct.Struct('<H')
_U32 = struct.Struct('<I')


def _record(kind: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(bytes((kind,))))
    return _HEAD.pack(len(payload) + 5, kind) + payload + _U32.pack(crc)


def set_record(key: str, value: Any) -> bytes:
    encoded_key = key.encode()
    body = json.dumps(value, sort_keys=True, separators=(',', ':')).encode()
    return _record(SET, _U16.pack(len(encoded_key)) + encoded_key + body)


def delete_record(key: str) -> bytes:
    return _record(DELETE, key.encode())


def make_key(kind: str, *names: str) -> str:
    return '\x00'.join((kind, *names))


class Journal:
    """The live items and what the next batch must write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: key -> its encoded ``S`` record (what a compaction writes).
        self.live: dict[str, bytes] = {}
        #: Records in the file (after the pending ones are written).
        self.records = 0
        self._pending: list[bytes] = []
        #: The next batch rewrites the file whole.
        self.compact_due = False

    def load(self) -> dict[str, Any] | None:
        """Read the file back (cutting a torn tail); None if there is none."""
        if not self.path.exists():
            return None
        data = self.path.read_bytes()
        found, end = read_records(data)
        if end < len(data):
            log.warning('definitions journal: cut %d bytes of torn or corrupt data at its '
                        'end (changes that were never answered)', len(data) - end)
            os.truncate(self.path, end)
        values: dict[str, Any] = {}
        for kind, start, stop in found:
            if kind == SET:
                key_len = _U16.unpack_from(data, start)[0]
                key = data[start + 2:start + 2 + key_len].decode()
                values[key] = json.loads(data[start + 2 + key_len:stop])
                self.live[key] = _record(SET, data[start:stop])
            elif kind == DELETE:
                key = data[start:stop].decode()
                values.pop(key, None)
                self.live.pop(key, None)
        self.records = len(found)
        return values

    @property
    def pending(self) -> bool:
        return bool(self._pending) or self.compact_due

    def put(self, key: str, value: Any) -> bool:
        """Record ``value`` for ``key``; False if it is what is there already."""
        record = set_record(key, value)
        if self.live.get(key) == record:
            return False
        self.live[key] = record
        self._append(record)
        return True

    def delete(self, key: str) -> bool:
        if self.live.pop(key, None) is None:
            return False
        self._append(delete_record(key))
        return True

    def _append(self, record: bytes) -> None:
        self._pending.append(record)
        self.records += 1
        if self.records > COMPACT_FACTOR * len(self.live) + COMPACT_MIN:
            self.compact_due = True

    def take(self) -> tuple[bytes | None, bytes]:
        """What the next batch writes: ``(whole file, None)`` for a compaction,
        else ``(None, records to append)``."""
        if self.compact_due:
            self.compact_due = False
            self._pending = []
            self.records = len(self.live)
            return b''.join(self.live.values()), b''
        pending, self._pending = self._pending, []
        return None, b''.join(pending)

    def failed(self) -> None:
        """A batch was lost: the next one rewrites the file from what is live."""
        self._pending = []
        self.compact_due = True


class JournalWriter:
    """The journal's file, written from the writer thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def write(self, whole: bytes | None, append: bytes) -> None:
        if whole is not None:
            self._replace(whole)
            return
        if not append:
            return
        created = self._fd is None and not self.path.exists()
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        view = memoryview(append)
        while view:
            view = view[os.write(self._fd, view):]
        os.fdatasync(self._fd)
        if created:
            fsync_dir(self.path.parent)

    def _replace(self, data: bytes) -> None:
        tmp = self.path.with_name(self.path.name + '.tmp')
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        self.close()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
