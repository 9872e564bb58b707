"""Start-up: recreate the saved topology, then the stored messages."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from leveret.protocol import properties

from . import definitions
from .message import Message
from .queue import Queue
from .store.records import Published

if TYPE_CHECKING:
    from .server import Broker

log = logging.getLogger(__name__)


def message_from_record(published: Published, queue: Queue, now_monotonic: float) -> Message:
    # Only a priority queue needs the priority property: skip the scan otherwise.
    priority = properties.scan(published.header)[1] if queue.args.max_priority else 0
    message = Message(published.exchange, published.routing_key, published.header,
                      published.body, priority, True, None, published.exchange_and_key)
    message.seq = published.seq
    count = published.delivery_count
    if count:
        message.delivery_count = count
        message.redelivered = True
        message.header = properties.with_header(message.header, 'x-delivery-count', count)
    message.store_id = published.store_id
    if published.expires_ms:
        message.expires_at = now_monotonic + (published.expires_ms / 1000.0 - time.time())
    return message


def recover(broker: 'Broker') -> None:
    """Load definitions and messages from ``broker.store`` into ``broker``."""
    store = broker.store
    saved = store.load_definitions()
    if saved is not None:
        definitions.restore(broker, saved)
    queues = {q.store_key: q for vhost in broker.vhosts.values()
              for q in vhost.queues.values() if q.store_key}
    now = time.monotonic()
    # Millions of long-lived objects: the cyclic GC would rescan them over and
    # over while they are created, and again later.  They hold no cycles, so
    # build them with the GC off, then move them out of its sight.
    gc.disable()
    try:
        report = store.recover(
            queues.get, lambda p, q: message_from_record(p, q, now))  # type: ignore[misc]
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


def live_messages(broker: 'Broker') -> Iterator[tuple[Queue, Message, bool]]:
    """Every message the store holds a record for: ready, or delivered and unacked."""
    for vhost in broker.vhosts.values():
        for queue in vhost.queues.values():
            if queue.persists:
                for message in queue.ready:
                    if message.store_id:
                        yield queue, message, False
    for connection in broker.connections:
        for channel in connection.channels.values():
            for message, queue, _consumer in channel.unacked.values():
                if message.store_id:
                    yield queue, message, True
