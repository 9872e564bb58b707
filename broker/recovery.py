"""Start-up: recreate the saved topology, then the stored messages."""

from __future__ import annotations

import gc
import logging
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from leveret.protocol import properties

from . import definitions
from .auth import Users
from .model.message import Message
from .model.queue import Queue
from .model.vhost import VirtualHost
from .store.base import Definitions, Recovered, Store
from .store.records import Published

log = logging.getLogger(__name__)


def message_from_record(published: Published, queue: Queue, now_monotonic: float) -> Message:
    """The message a stored record becomes.

    Its content header is scanned as at the door (:func:`properties.scan`):
    a bad disk, or an older version, may have left one this version refuses.
    Raises ``ValueError`` (``InvalidProperties``), ``IndexError`` or
    ``struct.error`` for such a record.
    """
    priority = properties.scan(published.header)[1]
    message = Message(published.exchange, published.routing_key, published.header,
                      published.body, priority, True, None, published.exchange_and_key)
    message.seq = published.seq
    count = published.delivery_count
    if count:
        message.delivery_count = count
        message.set_header(properties.with_header(message.header, 'x-delivery-count', count))
    message.redelivered = published.redelivered
    message.store_id = published.store_id
    if published.expires_ms:
        message.expires_at = now_monotonic + (published.expires_ms / 1000.0 - time.time())
    return message


def recover(store: Store, vhosts: Mapping[str, VirtualHost],
            add_vhost: Callable[[str], VirtualHost],
            users: Users) -> tuple[Definitions | None, Recovered]:
    """Load the saved definitions and the stored messages of ``store``.

    ``add_vhost`` finds or creates a virtual host by name (the saved
    definitions may name vhosts the settings do not); ``vhosts`` are all of
    them once the definitions are restored.  Returns what was saved (None
    on a first start) and what the store's recovery found.
    """
    saved = store.load_definitions()
    if saved is not None:
        definitions.restore(saved, add_vhost, users)
    queues = {q.store_key: q for vhost in vhosts.values()
              for q in vhost.queues.values() if q.store_key}
    now = time.monotonic()

    def restore(queue_key: bytes, records: list[Published]) -> list[tuple[Published, str]] | None:
        queue = queues.get(queue_key)
        if queue is None:
            return None
        messages = []
        refused = []
        for published in records:
            try:
                messages.append(message_from_record(published, queue, now))
            except (ValueError, IndexError, struct.error) as exc:
                refused.append((published, f'invalid content header: {exc or type(exc).__name__}'))
        queue.restore(messages)
        return refused

    # Millions of long-lived objects: the cyclic GC would rescan them over and
    # over while they are created, and again later.  They hold no cycles, so
    # build them with the GC off, then move them out of its sight.
    gc.disable()
    try:
        report = store.recover(restore)
    finally:
        gc.enable()
    gc.freeze()
    if report.messages and not report.clean:
        log.warning('the previous run did not stop cleanly: recovered messages are flagged '
                    'redelivered')
    if saved is not None or report.messages:
        log.info('recovered %d queues, %d exchanges and %d persistent messages in %.2fs'
                 '%s', len(saved.queues) if saved else 0, len(saved.exchanges) if saved else 0,
                 report.messages, report.seconds,
                 f' ({report.dropped} of deleted queues dropped)' if report.dropped else '')
    return saved, report


def live_messages(vhosts: Iterable[VirtualHost],
                  unacked: Callable[[], Iterable[tuple[Queue, Message]]],
                  ) -> Iterator[tuple[Queue, Message, bool]]:
    """Every message the store holds a record for: ready in a queue, or
    delivered and unacked (``unacked`` asks the session layer)."""
    for vhost in vhosts:
        for queue in vhost.queues.values():
            if queue.persists:
                for message in queue.ready:
                    if message.store_id:
                        yield queue, message, False
                for message in queue.returning:     # a big requeue under way
                    if message.store_id:
                        yield queue, message, True
    for queue, message in unacked():
        if message.store_id:
            yield queue, message, True
