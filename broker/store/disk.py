"""The disk store: the definitions journal plus an append-only message log.

Definitions
    Vhosts, users, permissions and the durable topology are kept in
    :mod:`.journal` (one record per change, compacted now and then), written
    by the same writer thread and in the same batches as the messages: a
    declaration is answered once the batch holding its record is synced,
    like a confirm.  Definitions are synced even with ``fsync`` off.

Messages
    Persistent messages in durable queues are appended as records
    (:mod:`.records`) to numbered segment files under ``messages/``.  A
    store id is ``segment << 32 | index``: the segment a message's ``P``
    record lives in is known from its id.

Group commit
    Records go to an in-memory buffer.  Once per event-loop turn the buffer
    is handed to one writer thread, which writes it and calls ``fdatasync``
    once for the whole batch, however many publishes it holds.  Publisher
    confirms wait until the batch holding their record is synced
    (:meth:`write_position` / :meth:`synced_position`), then go out as one
    cumulative ``basic.ack(multiple=True)`` per channel.  While a batch is
    being synced the next one accumulates; a message acked before its
    batch was handed over is dropped from it and never written.  With
    ``fsync`` off, batches are written from the loop and never synced.

Reclaiming space
    A segment is deleted once it holds no live message and every older
    segment is gone (its ``A`` records may refer to older segments).  When
    the oldest segment is mostly dead, its few live messages are written
    again at the head of the log and it is deleted: a long-lived message
    never pins the log behind it.

Failures
    A failed write (disk full, I/O error) puts the store in a failed state:
    confirms still waiting get ``basic.nack`` and new persistent messages
    are refused; the next write is tried a few seconds later in a fresh
    segment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .base import (
    Definitions,
    LiveMessages,
    Recovered,
    RestoreQueue,
    StoredMessage,
    StoredQueue,
    StoreFailed,
)
from .definitions import from_items, load_legacy
from .files import DataDirLock, fsync_dir, write_atomically
from .journal import Journal, JournalWriter
from .records import (
    ACK,
    DELIVERED,
    PUBLISH,
    Published,
    ack_record,
    delivered_record,
    describe_queue_key,
    publish_record,
    read_records,
    record_id,
)

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = '.seg'
#: Records recovery could not read, beside the segments (same record format).
QUARANTINE_FILE = 'quarantine'
#: Quarantined records logged one by one at start-up; the rest are counted.
QUARANTINE_LOG_LINES = 100
#: Seconds between attempts to write again after a failure.
RETRY_AFTER = 5.0
#: Seconds records may wait in memory when nobody waits for them.
LAZY_FLUSH = 0.02
#: Records buffered above which a flush is started at once.
BUFFER_RECORDS = 20000

__all__ = ['DiskStore', 'Recovered', 'StoreFailed']


class DiskStore:
    persistent = True

    def __init__(self, data_dir: Path, fsync: bool = True,
                 segment_size: int = 16 * 1024 * 1024) -> None:
        self.data_dir = Path(data_dir)
        self.messages_dir = self.data_dir / 'messages'
        self.fsync = fsync
        self.segment_size = segment_size
        self._lock = DataDirLock(self.data_dir)
        #: Written by versions before the journal; read once, then removed.
        self._legacy_path = self.data_dir / 'definitions.json'
        self._legacy_found = False
        self._journal = Journal(self.data_dir / 'definitions.log')
        self._journal_writer = JournalWriter(self._journal.path)
        self._clean_marker = self.data_dir / 'clean-shutdown'
        self.clean_start = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._live_messages: LiveMessages = lambda: ()
        # --- the log ---
        self._segment = 0              # segment new records go to
        self._segment_bytes = 0
        self._next_index = 0
        #: segment -> [live messages, their bytes, bytes in the segment]
        self._counts: dict[int, list[int]] = {}
        # --- group commit ---
        self._buffer: list[bytes] = []
        self._buffer_segment = 0
        self._sealed: list[tuple[int, list[bytes]]] = []
        self._unwritten: dict[int, tuple[list[bytes], int]] = {}
        self._to_delete: list[int] = []
        self._appended = 0
        self._synced = 0
        self._waiters: list[Callable[[], None]] = []
        self._flush_scheduled = False
        self._flush_soon = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._writing = False
        self.failed: OSError | None = None
        self._retry_timer: asyncio.TimerHandle | None = None
        self._compacting = False
        self._writer = _SegmentWriter(self.messages_dir)

    # --- life cycle ---------------------------------------------------------
    def open(self) -> None:
        """Create the directories and lock them (before anything else)."""
        self.messages_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        # The marker exists only between a clean stop and the next start.
        self.clean_start = self._clean_marker.exists()
        if self.clean_start:
            self._clean_marker.unlink()
            fsync_dir(self.data_dir)

    def attach(self, loop: asyncio.AbstractEventLoop, live_messages: LiveMessages) -> None:
        self._loop = loop
        self._live_messages = live_messages
        # The writer thread: message batches when fsync is on, the
        # definitions journal always.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix='leveret-store')
        if self._buffer or self._sealed or self._to_delete or self._journal.pending:
            self._schedule_flush()

    def close(self) -> None:
        """Write and sync whatever is buffered, then release the files."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)      # let a batch in flight finish
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        self._seal()
        if (self._sealed or self._to_delete or self._journal.pending) and self.failed is None:
            jobs, self._sealed = self._sealed, []
            deletes, self._to_delete = self._to_delete, []
            journal = self._journal.take() if self._journal.pending else None
            try:
                self._write_batch(_join(jobs), deletes, True, journal)
            except OSError as exc:
                log.error('final write of the message store failed: %s', exc)
        self._writer.close()
        self._journal_writer.close()
        if self.failed is None:
            write_atomically(self._clean_marker, b'')
        self._lock.release()

    # --- definitions --------------------------------------------------------
    def save_definition(self, key: str, value: dict[str, Any]) -> None:
        if self._journal.put(key, value):
            self._journal_changed()

    def drop_definition(self, key: str) -> None:
        if self._journal.delete(key):
            self._journal_changed()

    def replace_definitions(self, items: dict[str, dict[str, Any]]) -> None:
        changed = False
        for key, value in items.items():
            changed |= self._journal.put(key, value)
        for key in [k for k in self._journal.live if k not in items]:
            changed |= self._journal.delete(key)
        if changed or self._journal.compact_due:
            self._journal_changed()

    def _journal_changed(self) -> None:
        self._appended += 1
        if not self._flush_scheduled:
            self._schedule_flush()

    def load_definitions(self) -> Definitions | None:
        items = self._journal.load()
        if items is not None:
            return from_items(items)
        legacy = load_legacy(self._legacy_path)
        if legacy is not None:
            # Moved to the journal by the first batch, then removed.
            self._legacy_found = True
            self._journal.compact_due = True
        return legacy

    # --- messages (the hot path) --------------------------------------------
    def add(self, queue: StoredQueue, message: StoredMessage) -> None:
        if self.failed is not None:
            raise StoreFailed(f'disk write failed: {self.failed}')
        self._add(queue, message, message.delivery_count)

    def _add(self, queue: StoredQueue, message: StoredMessage, delivery_count: int) -> None:
        segment = self._segment
        store_id = (segment << 32) | self._next_index
        self._next_index += 1
        expires_ms = 0
        if message.expires_at:
            expires_ms = int((time.time() + message.expires_at - time.monotonic()) * 1000)
        record = publish_record(store_id, message.seq, delivery_count, expires_ms,
                                queue.store_key, message.exchange_and_key, message.header,
                                message.body)
        message.store_id = store_id
        buffer = self._buffer
        self._unwritten[store_id] = (buffer, len(buffer))
        buffer.append(record)
        self._appended += 1
        counts = self._counts[segment]
        counts[0] += 1
        counts[1] += _weight(queue, message)
        counts[2] += len(record)
        self._segment_bytes += len(record)
        if self._segment_bytes >= self.segment_size:
            self._roll()
        if not self._flush_scheduled or len(self._buffer) > BUFFER_RECORDS:
            self._schedule_flush(urgent=len(self._buffer) > BUFFER_RECORDS)

    def delivered(self, message: StoredMessage) -> None:
        """One more delivery of a stored message (redelivered flag, count)."""
        self._append(delivered_record(message.store_id))

    def remove(self, queue: StoredQueue, message: StoredMessage) -> None:
        store_id = message.store_id
        message.store_id = 0
        unwritten = self._unwritten.pop(store_id, None)
        if unwritten is not None:
            buffer, index = unwritten
            buffer[index] = b''         # acked before it was written: never written
        else:
            self._append(ack_record(store_id))
        segment = store_id >> 32
        counts = self._counts.get(segment)
        if counts is not None:
            counts[0] -= 1
            counts[1] -= _weight(queue, message)
            if counts[0] == 0 and segment != self._segment:
                self._reclaim()

    def _append(self, record: bytes) -> None:
        self._buffer.append(record)
        self._appended += 1
        self._segment_bytes += len(record)
        self._counts[self._segment][2] += len(record)
        if not self._flush_scheduled or len(self._buffer) > BUFFER_RECORDS:
            self._schedule_flush(urgent=len(self._buffer) > BUFFER_RECORDS)

    # --- confirms -----------------------------------------------------------
    def write_position(self) -> int:
        return self._appended

    def synced_position(self) -> int:
        return self._synced

    def when_synced(self, callback: Callable[[], None]) -> None:
        self._waiters.append(callback)
        self._schedule_flush(urgent=True)

    # --- group commit -------------------------------------------------------
    def _schedule_flush(self, urgent: bool = False) -> None:
        """Flush at the end of this loop turn when someone waits for the disk
        (a confirm, a commit), else within LAZY_FLUSH: acks and deliveries
        alone are not worth an fsync each."""
        loop = self._loop
        if loop is None:
            return      # before attach() (recovery): attach() flushes what is pending
        if urgent:
            if not self._flush_soon:
                self._flush_soon = True
                loop.call_soon(self._flush)
        elif not self._flush_scheduled:
            self._flush_timer = loop.call_later(LAZY_FLUSH, self._flush)
        self._flush_scheduled = True

    def _seal(self) -> None:
        """Close the current buffer; later records go to a new one."""
        if self._buffer:
            self._sealed.append((self._buffer_segment, self._buffer))
            self._buffer = []
        self._buffer_segment = self._segment

    def _flush(self) -> None:
        self._flush_scheduled = self._flush_soon = False
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._writing or self.failed is not None:
            return
        self._seal()
        jobs, self._sealed = self._sealed, []
        deletes, self._to_delete = self._to_delete, []
        journal = self._journal.take() if self._journal.pending else None
        position = self._appended
        if not jobs and not deletes and journal is None:
            self._synced = position
            self._wake()
            return
        # Every buffered record is handed over now: none can be dropped any more.
        self._unwritten.clear()
        joined = _join(jobs)
        if journal is None and not self.fsync:
            try:
                self._writer.run(joined, deletes, sync=False)
            except OSError as exc:
                self._failed(exc)
                return
            self._synced = position
            self._wake()
            return
        self._writing = True
        assert self._loop is not None and self._executor is not None
        future = self._loop.run_in_executor(self._executor, self._write_batch, joined,
                                            deletes, self.fsync, journal)
        future.add_done_callback(lambda f: self._written(f, position))

    def _write_batch(self, jobs: list[tuple[int, bytes]], deletes: list[int], sync: bool,
                     journal: tuple[bytes | None, bytes] | None) -> None:
        """One batch, in the writer thread: definitions first, then messages."""
        if journal is not None:
            self._journal_writer.write(*journal)
            if self._legacy_found:
                self._legacy_found = False
                self._legacy_path.unlink(missing_ok=True)
                log.info('definitions moved from %s to the journal %s',
                         self._legacy_path.name, self._journal.path.name)
        self._writer.run(jobs, deletes, sync=sync)

    def _written(self, future: 'asyncio.Future[None]', position: int) -> None:
        self._writing = False
        exc = future.exception()
        if exc is not None:
            self._failed(exc if isinstance(exc, OSError) else OSError(str(exc)))
            return
        self._synced = position
        self._wake()
        if self._waiters:
            self._flush()
        elif self._buffer or self._sealed or self._to_delete or self._journal.pending:
            self._schedule_flush()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for callback in waiters:
            callback()

    def _failed(self, exc: OSError) -> None:
        log.error('writing the message store failed: %s; persistent messages are refused '
                  'until a write succeeds again', exc)
        self.failed = exc
        # What was being written is lost for confirmation purposes; drop it
        # and start a fresh segment for the next attempt.
        self._buffer = []
        self._sealed = []
        self._unwritten.clear()
        self._journal.failed()
        self._writer.abandon_current()
        self._roll()
        self._wake()       # waiting confirms see the failure and nack
        if self._loop is not None:
            self._retry_timer = self._loop.call_later(RETRY_AFTER, self._retry)

    def _retry(self) -> None:
        self._retry_timer = None
        try:
            self._writer.run([], [], sync=True, probe=self._segment)
        except OSError as exc:
            log.warning('message store still failing: %s', exc)
            assert self._loop is not None
            self._retry_timer = self._loop.call_later(RETRY_AFTER, self._retry)
            return
        log.warning('message store writable again; accepting persistent messages')
        self.failed = None
        self._flush()

    def confirm_failed(self, position: int) -> bool:
        """True if a confirm at ``position`` can no longer succeed."""
        return self.failed is not None and position > self._synced

    # --- segments -----------------------------------------------------------
    def _roll(self) -> None:
        self._segment += 1
        self._segment_bytes = 0
        self._next_index = 0
        self._counts[self._segment] = [0, 0, 0]
        self._seal()
        self._reclaim()

    def _reclaim(self) -> None:
        """Delete dead segments from the oldest end; compact a sparse oldest one."""
        if self._compacting:
            return
        counts = self._counts
        while len(counts) > 1:
            oldest = min(counts)
            if oldest == self._segment:
                return
            live, live_bytes, size = counts[oldest]
            if live > 0:
                # Mostly live: keep it.  Mostly dead: move the live ones forward.
                if live_bytes * 2 > size or self.failed is not None:
                    return
                self._compacting = True
                try:
                    self._compact(oldest)
                finally:
                    self._compacting = False
                if counts[oldest][0] > 0:
                    return      # some live message was not found; keep the segment
            del counts[oldest]
            self._to_delete.append(oldest)
            if not self._flush_scheduled:
                self._schedule_flush()

    def _compact(self, segment: int) -> None:
        """Write the live messages of ``segment`` again at the head of the log."""
        moved = 0
        for queue, message, out in list(self._live_messages()):
            old_id = message.store_id
            if old_id >> 32 != segment or old_id in self._unwritten:
                continue
            count = message.delivery_count + (1 if out else 0)
            self._add(queue, message, count)
            # If the old segment outlives a crash, its copy must be gone.
            self._append(ack_record(old_id))
            old = self._counts[segment]
            old[0] -= 1
            old[1] -= _weight(queue, message)
            moved += 1
        log.debug('compacted segment %d: %d live messages moved', segment, moved)

    # --- recovery -----------------------------------------------------------
    def recover(self, restore: RestoreQueue) -> Recovered:
        """Read every segment back; hand each queue's live messages to ``restore``.

        Recovery never stops at one record: a record that cannot be read
        (or that ``restore`` refuses) is copied to the quarantine file
        beside the log with one log line, then acked in the log so that it
        is not read again; a segment file that cannot be read at all is
        renamed aside.  Everything else is recovered.
        """
        started = time.monotonic()
        report = Recovered(clean=self.clean_start)
        live: dict[int, tuple[bytes, int, int, str]] = {}
        deliveries: dict[int, int] = {}
        files = []
        numbers = set()     # every segment number seen, readable or not
        for path in sorted(self.messages_dir.glob('*' + SEGMENT_SUFFIX)):
            if not path.stem.isdigit():
                log.warning('message store: ignoring %s (not a segment name)', path.name)
                continue
            numbers.add(int(path.stem))
            try:
                data = path.read_bytes()
            except OSError as exc:
                self._quarantine_file(path, exc)
                continue
            files.append(path)
            records, end = read_records(data)
            if end < len(data):
                cut = len(data) - end
                report.cut_bytes += cut
                log.warning('message store: cut %d bytes of torn or corrupt data at the end '
                            'of %s (never confirmed)', cut, path.name)
                os.truncate(path, end)
            for kind, start, stop in records:
                store_id = record_id(data, start)
                if kind == PUBLISH:
                    live[store_id] = (data, start, stop, path.name)
                elif kind == ACK:
                    live.pop(store_id, None)
                elif kind == DELIVERED and store_id in live:
                    deliveries[store_id] = deliveries.get(store_id, 0) + 1
        # Group by queue, newest copy wins when compaction left two.
        by_queue: dict[bytes, dict[int, Published]] = {}
        refused: list[tuple[int, bytes, str, str]] = []   # id, record, where, why
        for store_id, (data, start, stop, name) in live.items():
            try:
                published = Published(data, start, stop)
            except (ValueError, IndexError, struct.error) as exc:
                refused.append((store_id, data[start - 5:stop + 4], f'{name}:{start - 5}',
                                f'unreadable record: {exc}'))
                continue
            published.location = f'{name}:{start - 5}'
            published.delivery_count += deliveries.get(store_id, 0)
            # After a crash a delivery may have happened that never reached
            # the log: every message is flagged as possibly delivered.
            published.redelivered = bool(published.delivery_count) or not self.clean_start
            per_queue = by_queue.setdefault(published.queue_key, {})
            earlier = per_queue.get(published.seq)
            if earlier is None or earlier.store_id < store_id:
                per_queue[published.seq] = published
        for key, messages in by_queue.items():
            in_order = [messages[seq] for seq in sorted(messages)]
            not_taken = restore(key, in_order)
            if not_taken is None:
                report.dropped += len(in_order)
                continue
            skip = set()
            for published, why in not_taken:
                skip.add(published.store_id)
                data, start, stop, _name = live[published.store_id]
                refused.append((published.store_id, data[start - 5:stop + 4],
                                f'{describe_queue_key(key)}, {published.location}', why))
            for published in in_order:
                if published.store_id in skip:
                    continue
                counts = self._counts.setdefault(published.store_id >> 32, [0, 0, 0])
                counts[0] += 1
                # _weight() of the message this record becomes:
                counts[1] += 48 + len(key) + len(published.exchange_and_key) + len(published.body)
                report.messages += 1
        for path in files:
            self._counts.setdefault(int(path.stem), [0, 0, 0])[2] = path.stat().st_size
        self._segment = max(numbers, default=0) + 1
        self._counts[self._segment] = [0, 0, 0]
        self._buffer_segment = self._segment
        if refused:
            self._quarantine(refused)
            report.quarantined = len(refused)
        self._reclaim()
        report.seconds = time.monotonic() - started
        return report

    def _quarantine(self, refused: list[tuple[int, bytes, str, str]]) -> None:
        """Copy unreadable records to the quarantine file (synced), then ack
        them in the log: they are kept, but never recovered again."""
        path = self.messages_dir / QUARANTINE_FILE
        with open(path, 'ab') as f:
            f.write(b''.join(record for _, record, _, _ in refused))
            f.flush()
            os.fsync(f.fileno())
        for i, (store_id, _record, where, why) in enumerate(refused):
            if i < QUARANTINE_LOG_LINES:
                log.error('message store: record at %s moved to %s: %s', where, path, why)
            self._append(ack_record(store_id))
        if len(refused) > QUARANTINE_LOG_LINES:
            log.error('message store: %d more records moved to %s',
                      len(refused) - QUARANTINE_LOG_LINES, path)

    def _quarantine_file(self, path: Path, exc: OSError) -> None:
        aside = path.with_name(path.name + '.unreadable')
        log.error('message store: cannot read %s (%s); renamed to %s, recovering the rest',
                  path.name, exc, aside.name)
        try:
            path.rename(aside)
        except OSError as rename_exc:
            log.error('message store: cannot rename %s either: %s', path.name, rename_exc)


def _weight(queue: StoredQueue, message: StoredMessage) -> int:
    """About the bytes a message's record takes (its header can change size
    later, so it is left out: this must come out the same at add and remove)."""
    return 48 + len(queue.store_key) + len(message.exchange_and_key) + len(message.body)


def _join(jobs: list[tuple[int, list[bytes]]]) -> list[tuple[int, bytes]]:
    return [(segment, b''.join(records)) for segment, records in jobs]


class _SegmentWriter:
    """Owns the segment files; runs in the writer thread (or the loop without fsync)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fds: dict[int, int] = {}

    def _path(self, segment: int) -> Path:
        return self.directory / f'{segment:010d}{SEGMENT_SUFFIX}'

    def _fd(self, segment: int) -> tuple[int, bool]:
        fd = self._fds.get(segment)
        if fd is not None:
            return fd, False
        fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._fds[segment] = fd
        return fd, True

    def run(self, jobs: list[tuple[int, bytes]], deletes: list[int], sync: bool,
            probe: int | None = None) -> None:
        """Write ``jobs`` in order, sync once, then delete dead segments."""
        created = False
        touched: list[int] = []
        if probe is not None:
            fd, created = self._fd(probe)
            touched.append(fd)
        for segment, data in jobs:
            if not data:
                continue
            fd, new = self._fd(segment)
            created |= new
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fd not in touched:
                touched.append(fd)
        if sync:
            for fd in touched:
                os.fdatasync(fd)
        # Older segments are complete now (their data is synced): close them.
        newest = max(self._fds, default=-1)
        for old in [s for s in self._fds if s < newest]:
            os.close(self._fds.pop(old))
        for segment in deletes:
            stale = self._fds.pop(segment, None)
            if stale is not None:
                os.close(stale)
            try:
                os.unlink(self._path(segment))
            except FileNotFoundError:
                pass
        if sync and (created or deletes):
            fsync_dir(self.directory)

    def abandon_current(self) -> None:
        """After a failed write, never append to the same files again."""
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

    def close(self) -> None:
        self.abandon_current()


