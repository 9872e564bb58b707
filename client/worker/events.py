"""Celery events on the ``celeryev`` topic exchange, for ``celery events``,
Flower and other monitors.

Worker events (online, heartbeat every 2 s, offline) are always sent, as
Celery's worker does. Task events (received, started, succeeded, failed,
retried, revoked, rejected) are sent with ``-E``, buffered and published
as a JSON list under ``task.multi`` (Celery's buffered task group), once
per loop turn or every 24 events.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import time
from typing import Any

from .publisher import Outbox, Publisher

log = logging.getLogger(__name__)

EXCHANGE = 'celeryev'
HEARTBEAT_FREQ = 2.0
BUFFER_LIMIT = 24
SOFTWARE = {'sw_ident': 'leveret', 'sw_ver': '0.1.0', 'sw_sys': platform.system()}


def utcoffset() -> int:
    """Hours west of UTC, as Celery reports it."""
    if time.localtime().tm_isdst:
        return time.altzone // 3600
    return time.timezone // 3600


class LamportClock:
    def __init__(self) -> None:
        self.value = 0

    def forward(self) -> int:
        self.value += 1
        return self.value

    def adjust(self, other: int) -> int:
        self.value = max(self.value, other) + 1
        return self.value


class EventDispatcher:
    def __init__(self, publisher: Publisher, outbox: Outbox, hostname: str,
                 clock: LamportClock, task_events: bool,
                 heartbeat_interval: float = HEARTBEAT_FREQ) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.publisher = publisher
        self.outbox = outbox
        self.hostname = hostname
        self.clock = clock
        self.task_events = task_events
        self.pid = os.getpid()
        self._buffer: list[dict[str, Any]] = []
        self._flush_scheduled = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._headers = {'hostname': hostname}

    def _event(self, type_: str, fields: dict[str, Any]) -> dict[str, Any]:
        event = {'hostname': self.hostname, 'utcoffset': utcoffset(), 'pid': self.pid,
                 'clock': self.clock.forward()}
        event.update(fields)
        event['timestamp'] = time.time()
        event['type'] = type_
        return event

    # --- task events ---------------------------------------------------------
    def task(self, type_: str, **fields: Any) -> None:
        if not self.task_events:
            return
        self._buffer.append(self._event(type_, fields))
        if len(self._buffer) >= BUFFER_LIMIT:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            if self._loop is None:  # kept: get_running_loop() makes a system call
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        self.outbox.put(lambda: self.publisher.publish_json(
            batch, EXCHANGE, 'task.multi', self._headers))

    # --- worker events -------------------------------------------------------
    def worker(self, type_: str, **fields: Any) -> None:
        event = self._event(type_, dict(fields, freq=self.heartbeat_interval, **SOFTWARE))
        routing_key = type_.replace('-', '.', 1)
        self.outbox.put(lambda: self.publisher.publish_json(
            event, EXCHANGE, routing_key, self._headers))

    def start_heartbeat(self, stats: Any) -> None:
        async def beat() -> None:
            while True:
                await asyncio.sleep(self.heartbeat_interval)
                self.worker('worker-heartbeat', **stats())
        self._heartbeat = asyncio.get_running_loop().create_task(beat())

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
