"""Dead-lettering: republish a message to its queue's dead-letter exchange.

The new message carries RabbitMQ's ``x-death`` header (an array of tables,
newest first, one per (queue, reason) with a count) and the
``x-first-death-*`` headers.  A message that would go round a cycle of
queues with no rejection on the way is dropped, as RabbitMQ does.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

from leveret.protocol import properties

from .message import Message

if TYPE_CHECKING:
    from .queue import Queue
    from .vhost import VirtualHost

log = logging.getLogger(__name__)


def dead_letter(vhost: 'VirtualHost', queue: 'Queue', messages: list[Message],
                reason: str) -> None:
    dlx_name = queue.args.dead_letter_exchange
    if dlx_name is None:
        return
    exchange = vhost.exchanges.get(dlx_name)
    if exchange is None:
        log.debug('dead-letter exchange %r of queue %r does not exist; dropping',
                  dlx_name, queue.name)
        return
    fixed_key = queue.args.dead_letter_routing_key
    for message in messages:
        routing_key = fixed_key if fixed_key is not None else message.routing_key
        new, deaths = _dead_lettered_copy(message, queue, reason, dlx_name, routing_key)
        for target in list(vhost.route(exchange, routing_key, new)):
            if _is_cycle(target.name, deaths):
                log.debug('dead-letter cycle through %r; dropping', target.name)
                continue
            target.publish(new.copy())


def _dead_lettered_copy(message: Message, queue: 'Queue', reason: str, dlx: str,
                        routing_key: str) -> tuple[Message, list[dict[str, Any]]]:
    """The message as it goes to the dead-letter exchange.

    Only ``x-death`` and the ``x-first-death-*`` headers are written and the
    ``expiration`` property removed; every other property and header stays
    as the publisher sent it.  Of a headers table the broker cannot read,
    the deaths counted are those earlier dead-letterings appended after it
    (see :mod:`leveret.protocol.properties`).
    """
    old = properties.header_value(message.header, 'x-death')
    deaths = [dict(d) for d in old if isinstance(d, dict)] if isinstance(old, list) else []
    entry: dict[str, Any] | None = None
    for i, death in enumerate(deaths):
        if death.get('queue') == queue.name and death.get('reason') == reason:
            entry = deaths.pop(i)
            count = entry.get('count', 0)
            entry['count'] = (count if type(count) is int else 0) + 1
            break
    if entry is None:
        entry = {
            'count': 1,
            'reason': reason,
            'queue': queue.name,
            'time': datetime.datetime.now(datetime.UTC).replace(microsecond=0),
            'exchange': message.exchange,
            'routing-keys': [message.routing_key],
        }
        expiration = properties.scan(message.header)[2]
        if expiration is not None:
            entry['original-expiration'] = expiration
    deaths.insert(0, entry)
    # The per-message TTL does not follow the message (RabbitMQ removes it).
    header = properties.with_headers(
        message.header,
        {'x-death': deaths, 'x-first-death-reason': reason,
         'x-first-death-queue': queue.name, 'x-first-death-exchange': message.exchange},
        keep=('x-first-death-reason', 'x-first-death-queue', 'x-first-death-exchange'),
        drop_expiration=True)
    new = Message(dlx, routing_key, header, message.body, message.priority,
                  message.persistent, None)
    return new, deaths


def _is_cycle(target: str, deaths: list[dict[str, Any]]) -> bool:
    """True if ``target`` was already passed through with no rejection since."""
    for death in deaths:
        if death.get('reason') == 'rejected':
            return False
        if death.get('queue') == target:
            return True
    return False
