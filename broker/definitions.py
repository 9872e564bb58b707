"""The durable topology of a broker, to and from the store's plain data.

Durable means what RabbitMQ means: durable exchanges, durable non-exclusive
queues, and bindings whose source and destination are both durable.  The
predeclared ``amq.*`` exchanges are recreated at start, never saved.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from typing import Any

from leveret.protocol import fieldtable

from .auth import Users
from .model.exchanges import Exchange
from .model.queue import Queue
from .model.vhost import PREDECLARED, VirtualHost
from .store.base import Definitions

log = logging.getLogger(__name__)

_PREDECLARED_NAMES = {name for name, _ in PREDECLARED}


def encode_table(table: dict[str, Any]) -> str:
    """Arguments as saved: AMQP's own table encoding, base64'd, so that every
    value keeps its exact type across a restart (JSON would turn a Decimal
    or a timestamp into something else).  Whatever a client sent and the
    broker decoded encodes back (:mod:`leveret.protocol.fieldtable`)."""
    return base64.b64encode(fieldtable.encode_table(table)).decode()


def decode_table(text: str) -> dict[str, Any]:
    return fieldtable.decode_table(base64.b64decode(text))


def _queue_is_durable(queue: Queue) -> bool:
    return queue.durable and not queue.exclusive and not queue.deleted


def export(vhosts: Mapping[str, VirtualHost], users: Users) -> Definitions:
    out = Definitions()
    out.vhosts = sorted(vhosts)
    out.users = [{'name': u.name, 'password_hash': u.password_hash, 'tags': list(u.tags),
                  'vhosts': sorted(u.vhosts), 'loopback_only': u.loopback_only}
                 for u in users.users.values()]
    for vhost in vhosts.values():
        for exchange in vhost.exchanges.values():
            if not exchange.durable or exchange.name in _PREDECLARED_NAMES:
                continue
            out.exchanges.append({
                'vhost': vhost.name, 'name': exchange.name, 'type': exchange.kind,
                'auto_delete': exchange.auto_delete, 'internal': exchange.internal,
                'arguments': encode_table(exchange.arguments)})
        for queue in vhost.queues.values():
            if not _queue_is_durable(queue):
                continue
            out.queues.append({
                'vhost': vhost.name, 'name': queue.name, 'auto_delete': queue.auto_delete,
                'arguments': encode_table(queue.arguments), 'incarnation': queue.incarnation})
        for exchange in vhost.exchanges.values():
            if not exchange.durable:
                continue
            for (destination, routing_key, _), arguments in exchange.bindings.items():
                if isinstance(destination, Queue):
                    if not _queue_is_durable(destination):
                        continue
                    kind = 'queue'
                elif isinstance(destination, Exchange) and destination.durable:
                    kind = 'exchange'
                else:
                    continue
                out.bindings.append({
                    'vhost': vhost.name, 'source': exchange.name,
                    'destination': destination.name, 'destination_type': kind,
                    'routing_key': routing_key, 'arguments': encode_table(arguments)})
    return out


def restore(definitions: Definitions, add_vhost: Callable[[str], VirtualHost],
            users: Users) -> None:
    """Recreate the saved topology (vhosts first, bindings last).

    ``add_vhost`` finds or creates a virtual host by name.
    """
    for name in definitions.vhosts:
        add_vhost(name)
    # Users come from the settings alone: one saved but no longer configured
    # was removed on purpose and stays out.
    for user in definitions.users:
        if user['name'] not in users.users:
            log.warning("user '%s' is no longer configured: not restored", user['name'])
    for item in definitions.exchanges:
        vhost = add_vhost(item['vhost'])
        vhost.declare_exchange(item['name'], item['type'], durable=True,
                               auto_delete=item['auto_delete'], internal=item['internal'],
                               arguments=decode_table(item['arguments']))
    for item in definitions.queues:
        vhost = add_vhost(item['vhost'])
        vhost.declare_queue(item['name'], None, durable=True, auto_delete=item['auto_delete'],
                            arguments=decode_table(item['arguments']),
                            incarnation=item['incarnation'])
    for item in definitions.bindings:
        vhost = add_vhost(item['vhost'])
        source = vhost.exchanges.get(item['source'])
        destination: Queue | Exchange | None
        if item['destination_type'] == 'queue':
            destination = vhost.queues.get(item['destination'])
        else:
            destination = vhost.exchanges.get(item['destination'])
        if source is None or destination is None:
            log.warning('dropping saved binding %s -> %s: one end is missing',
                        item['source'], item['destination'])
            continue
        vhost.bind(source, destination, item['routing_key'], decode_table(item['arguments']))
