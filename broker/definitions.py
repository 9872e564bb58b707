"""What a restart recreates, to and from the store's plain data: vhosts,
users, permissions and the durable topology.

Durable means what RabbitMQ means: durable exchanges, durable non-exclusive
queues, and bindings whose source and destination are both durable.  The
predeclared ``amq.*`` exchanges are recreated at start, never saved.

:class:`Recorder` is told of every change (it is the vhosts'
``DurableTopology`` and the users' listener) and hands the store one item
per change; :func:`everything` lists every item at once (the store keeps
only what changed); :func:`restore` rebuilds the broker from the saved items.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from typing import Any

from leveret.protocol import fieldtable

from .auth import Permission, TopicPermission, User, Users
from .model.exchanges import Exchange
from .model.exchanges.base import freeze
from .model.queue import Queue
from .model.vhost import PREDECLARED, VirtualHost
from .store.base import Definitions, Store
from .store.journal import make_key

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


# --- items: a key and a value per thing saved ----------------------------------
def vhost_item(vhost: VirtualHost) -> tuple[str, dict[str, Any]]:
    return make_key('vhosts', vhost.name), {
        'name': vhost.name, 'description': vhost.description, 'tags': list(vhost.tags),
        'default_queue_type': vhost.default_queue_type, 'limits': dict(vhost.limits)}


def user_item(user: User) -> tuple[str, dict[str, Any]]:
    return make_key('users', user.name), {
        'name': user.name, 'password_hash': user.password_hash, 'tags': list(user.tags),
        'hashing_algorithm': user.hashing_algorithm, 'limits': dict(user.limits)}


def permission_item(vhost: str, user: str, p: Permission) -> tuple[str, dict[str, Any]]:
    return make_key('permissions', vhost, user), {
        'vhost': vhost, 'user': user, 'configure': p.configure, 'write': p.write,
        'read': p.read}


def topic_permission_item(vhost: str, user: str,
                          p: TopicPermission) -> tuple[str, dict[str, Any]]:
    return make_key('topic_permissions', vhost, user, p.exchange), {
        'vhost': vhost, 'user': user, 'exchange': p.exchange, 'write': p.write,
        'read': p.read}


def exchange_item(vhost: str, exchange: Exchange) -> tuple[str, dict[str, Any]]:
    return make_key('exchanges', vhost, exchange.name), {
        'vhost': vhost, 'name': exchange.name, 'type': exchange.kind,
        'auto_delete': exchange.auto_delete, 'internal': exchange.internal,
        'arguments': encode_table(exchange.arguments)}


def queue_item(vhost: str, queue: Queue) -> tuple[str, dict[str, Any]]:
    return make_key('queues', vhost, queue.name), {
        'vhost': vhost, 'name': queue.name, 'auto_delete': queue.auto_delete,
        'arguments': encode_table(queue.arguments), 'incarnation': queue.incarnation,
        'declared_by': queue.declared_by}


def _destination_type(destination: Any) -> str:
    return 'queue' if isinstance(destination, Queue) else 'exchange'


def binding_key(vhost: str, source: str, destination: Any, routing_key: str,
                arguments: dict[str, Any]) -> str:
    return make_key('bindings', vhost, source, _destination_type(destination),
                    destination.name, routing_key, repr(freeze(arguments)))


def binding_item(vhost: str, source: str, destination: Any, routing_key: str,
                 arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return binding_key(vhost, source, destination, routing_key, arguments), {
        'vhost': vhost, 'source': source, 'destination': destination.name,
        'destination_type': _destination_type(destination), 'routing_key': routing_key,
        'arguments': encode_table(arguments)}


class Recorder:
    """Every change, one item at a time, to the store (muted while restoring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.muted = True

    def _save(self, item: tuple[str, dict[str, Any]]) -> None:
        if not self.muted:
            self.store.save_definition(*item)

    def _drop(self, key: str) -> None:
        if not self.muted:
            self.store.drop_definition(key)

    # --- vhosts (told by the broker) ---
    def vhost_saved(self, vhost: VirtualHost) -> None:
        self._save(vhost_item(vhost))

    def vhost_dropped(self, name: str) -> None:
        self._drop(make_key('vhosts', name))

    # --- the model's DurableTopology ---
    def exchange_saved(self, vhost: str, exchange: Exchange) -> None:
        if exchange.name not in _PREDECLARED_NAMES:
            self._save(exchange_item(vhost, exchange))

    def exchange_dropped(self, vhost: str, name: str) -> None:
        self._drop(make_key('exchanges', vhost, name))

    def queue_saved(self, vhost: str, queue: Queue) -> None:
        self._save(queue_item(vhost, queue))

    def queue_dropped(self, vhost: str, name: str) -> None:
        self._drop(make_key('queues', vhost, name))

    def binding_saved(self, vhost: str, source: str, destination: Any, routing_key: str,
                      arguments: dict[str, Any]) -> None:
        self._save(binding_item(vhost, source, destination, routing_key, arguments))

    def binding_dropped(self, vhost: str, source: str, destination: Any, routing_key: str,
                        arguments: dict[str, Any]) -> None:
        self._drop(binding_key(vhost, source, destination, routing_key, arguments))

    # --- the users' listener ---
    def user_saved(self, user: User) -> None:
        self._save(user_item(user))

    def user_deleted(self, name: str) -> None:
        self._drop(make_key('users', name))

    def permission_saved(self, vhost: str, user: str, permission: Permission) -> None:
        self._save(permission_item(vhost, user, permission))

    def permission_deleted(self, vhost: str, user: str) -> None:
        self._drop(make_key('permissions', vhost, user))

    def topic_permission_saved(self, vhost: str, user: str,
                               permission: TopicPermission) -> None:
        self._save(topic_permission_item(vhost, user, permission))

    def topic_permission_deleted(self, vhost: str, user: str, exchange: str) -> None:
        self._drop(make_key('topic_permissions', vhost, user, exchange))


def everything(vhosts: Mapping[str, VirtualHost], users: Users) -> dict[str, dict[str, Any]]:
    """Every item that a restart must recreate."""
    items: list[tuple[str, dict[str, Any]]] = []
    items += [vhost_item(vhost) for vhost in vhosts.values()]
    items += [user_item(user) for user in users.users.values()]
    items += [permission_item(v, u, p) for (v, u), p in users.permissions.items()]
    items += [topic_permission_item(v, u, p)
              for (v, u, _), p in users.topic_permissions.items()]
    for vhost in vhosts.values():
        for exchange in vhost.exchanges.values():
            if exchange.durable and exchange.name not in _PREDECLARED_NAMES:
                items.append(exchange_item(vhost.name, exchange))
        for queue in vhost.queues.values():
            if _queue_is_durable(queue):
                items.append(queue_item(vhost.name, queue))
        for exchange in vhost.exchanges.values():
            if not exchange.durable:
                continue
            for (destination, routing_key, _), arguments in exchange.bindings.items():
                if isinstance(destination, Queue):
                    if not _queue_is_durable(destination):
                        continue
                elif not (isinstance(destination, Exchange) and destination.durable):
                    continue
                items.append(binding_item(vhost.name, exchange.name, destination,
                                          routing_key, arguments))
    return dict(items)


def restore(definitions: Definitions, add_vhost: Callable[[str], VirtualHost],
            users: Users) -> None:
    """Recreate what was saved (vhosts first, bindings last).

    ``add_vhost`` finds or creates a virtual host by name.
    """
    for item in definitions.vhosts:
        vhost = add_vhost(item['name'])
        vhost.description = item.get('description', '')
        vhost.tags = list(item.get('tags', []))
        vhost.default_queue_type = item.get('default_queue_type', 'undefined')
        vhost.limits = dict(item.get('limits') or {})
    for item in definitions.users:
        users.put(item['name'], item['password_hash'], list(item.get('tags', [])),
                  item.get('hashing_algorithm') or 'rabbit_password_hashing_sha256',
                  limits=dict(item.get('limits') or {}))
    for item in definitions.permissions:
        users.set_permission(item['vhost'], item['user'],
                             Permission(item['configure'], item['write'], item['read']))
    for item in definitions.topic_permissions:
        users.set_topic_permission(item['vhost'], item['user'], TopicPermission(
            item['exchange'], item['write'], item['read']))
    for item in definitions.exchanges:
        vhost = add_vhost(item['vhost'])
        vhost.declare_exchange(item['name'], item['type'], durable=True,
                               auto_delete=item['auto_delete'], internal=item['internal'],
                               arguments=decode_table(item['arguments']))
    for item in definitions.queues:
        vhost = add_vhost(item['vhost'])
        vhost.declare_queue(item['name'], None, durable=True, auto_delete=item['auto_delete'],
                            arguments=decode_table(item['arguments']),
                            incarnation=item['incarnation'],
                            declared_by=item.get('declared_by', ''))
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
