"""Definitions in RabbitMQ's JSON format: export, and import validated whole
before anything is applied (all or nothing).

The format is what RabbitMQ 3.10's ``GET /api/definitions`` writes:
``rabbit_version``, ``users`` (with ``password_hash`` and
``hashing_algorithm``), ``vhosts``, ``permissions``, ``topic_permissions``,
``parameters``, ``global_parameters``, ``policies``, ``queues``,
``exchanges``, ``bindings``; one vhost's export has only the topology (and
its items no ``vhost`` key).  Users keep RabbitMQ's salted SHA-256 hashes,
so a file exported from RabbitMQ logs the same users in here.

What Leveret does not implement (policies, parameters, global parameters,
other hashing algorithms) is never dropped silently: each such item gives
one line of the report :func:`import_definitions` returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from leveret import __version__
from leveret.protocol.errors import AMQPError

from .access import pattern_problem
from .auth import (
    HASHING_ALGORITHM,
    Permission,
    TopicPermission,
    hash_password,
    parse_tags,
    valid_hash,
)
from .http.request import table_problem
from .http.shapes import to_json
from .model import queue_args
from .model.exchanges import EXCHANGE_TYPES
from .model.exchanges.headers import validate_binding
from .model.queue import Queue
from .model.vhost import PREDECLARED
from .session.limits import LIMIT_NAMES

if TYPE_CHECKING:
    from .server import Broker

log = logging.getLogger(__name__)

NOT_IMPLEMENTED = {
    'policies': 'policies are not implemented',
    'parameters': 'runtime parameters are not implemented',
    'global_parameters': 'global parameters are not implemented',
}
KNOWN_KEYS = {'rabbit_version', 'rabbitmq_version', 'product_name', 'product_version',
              'users', 'vhosts', 'permissions', 'topic_permissions', 'parameters',
              'global_parameters', 'policies', 'queues', 'exchanges', 'bindings'}


class DefinitionsRefused(ValueError):
    """The document cannot be imported: nothing of it was applied."""


# --- export -------------------------------------------------------------------
#: Items exported between two yields to the event loop.
EXPORT_SLICE = 500


async def export(broker: Broker, vhost_name: str | None = None) -> dict[str, Any]:
    """The definitions as RabbitMQ exports them.  Built a slice at a time
    (10,000 queues and their bindings take a fifth of a second), from
    copies of what it walks, so changes made meanwhile cannot break it."""
    vhosts = ([broker.vhosts[vhost_name]] if vhost_name is not None
              else sorted(broker.vhosts.values(), key=lambda v: v.name))
    scoped = vhost_name is not None
    done = 0

    def where(item: dict[str, Any], vhost: str) -> dict[str, Any]:
        return item if scoped else {**item, 'vhost': vhost}

    async def tick() -> None:
        nonlocal done
        done += 1
        if done % EXPORT_SLICE == 0:
            await asyncio.sleep(0)

    queues, exchanges, bindings = [], [], []
    for v in vhosts:
        for q in sorted(v.queues.values(), key=lambda q: q.name):
            await tick()
            if q.exclusive:
                continue
            queues.append(where({'name': q.name, 'durable': q.durable,
                                 'auto_delete': q.auto_delete,
                                 'arguments': to_json(q.arguments)}, v.name))
        for e in sorted(v.exchanges.values(), key=lambda e: e.name):
            if not e.name or e.name.startswith('amq.'):
                continue
            exchanges.append(where({'name': e.name, 'type': e.kind, 'durable': e.durable,
                                    'auto_delete': e.auto_delete, 'internal': e.internal,
                                    'arguments': to_json(e.arguments)}, v.name))
        for e in sorted(v.exchanges.values(), key=lambda e: e.name):
            if not e.name:
                continue
            for (destination, key, _), arguments in list(e.bindings.items()):
                await tick()
                if isinstance(destination, Queue) and destination.exclusive:
                    continue
                bindings.append(where({
                    'source': e.name, 'destination': destination.name,
                    'destination_type': 'queue' if isinstance(destination, Queue)
                    else 'exchange',
                    'routing_key': key, 'arguments': to_json(arguments)}, v.name))
    # Vhost limits are runtime parameters of the component 'vhost-limits' in
    # RabbitMQ's definitions.
    parameters = [where({'value': dict(v.limits), 'component': 'vhost-limits',
                         'name': 'limits'}, v.name) for v in vhosts if v.limits]
    if scoped:
        return {'rabbit_version': __version__, 'parameters': parameters, 'policies': [],
                'queues': queues, 'exchanges': exchanges, 'bindings': bindings}
    users = broker.users
    return {
        'rabbit_version': __version__,
        'rabbitmq_version': __version__,
        'product_name': 'Leveret',
        'product_version': __version__,
        'users': [{'name': u.name, 'password_hash': u.password_hash,
                   'hashing_algorithm': u.hashing_algorithm, 'tags': list(u.tags),
                   'limits': dict(u.limits)}
                  for u in sorted(users.users.values(), key=lambda u: u.name)],
        'vhosts': [{'name': v.name} for v in vhosts],
        'permissions': [{'user': u, 'vhost': v, 'configure': p.configure, 'write': p.write,
                         'read': p.read} for (v, u), p in sorted(users.permissions.items())],
        'topic_permissions': [{'user': u, 'vhost': v, 'exchange': p.exchange, 'write': p.write,
                               'read': p.read}
                              for (v, u, _), p in sorted(users.topic_permissions.items())],
        'parameters': parameters,
        'global_parameters': [],
        'policies': [],
        'queues': queues,
        'exchanges': exchanges,
        'bindings': bindings,
    }


# --- import -------------------------------------------------------------------
def _items(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = document.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
        raise DefinitionsRefused(f"'{key}' must be a list of objects")
    return value


def _text(item: dict[str, Any], key: str, what: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise DefinitionsRefused(f'{what}: {key!r} missing or not a string')
    return value


def _arguments(item: dict[str, Any], what: str) -> dict[str, Any]:
    arguments = item.get('arguments') or {}
    problem = table_problem(arguments)
    if problem:
        raise DefinitionsRefused(f'{what}: {problem}')
    return arguments  # type: ignore[no-any-return]


def _tags(item: dict[str, Any], what: str) -> list[str]:
    try:
        return parse_tags(item.get('tags'))
    except ValueError as exc:
        raise DefinitionsRefused(f'{what}: {exc}') from None


def _flag(item: dict[str, Any], key: str, default: bool) -> bool:
    value = item.get(key, default)
    if isinstance(value, str):
        return value.lower() == 'true'
    return bool(value)


def import_definitions(broker: Broker, document: Any,
                       vhost_name: str | None = None) -> list[str]:
    """Validate ``document`` whole, then apply it; the report lists what was not.

    Raises :class:`DefinitionsRefused` (nothing applied) for a document
    that cannot be applied as a whole."""
    if not isinstance(document, dict):
        raise DefinitionsRefused('definitions must be a JSON object')
    report: list[str] = []
    steps: list[Callable[[], None]] = []
    scoped = vhost_name is not None
    if scoped and vhost_name not in broker.vhosts:
        raise DefinitionsRefused('vhost_not_found')
    for key in sorted(set(document) - KNOWN_KEYS):
        report.append(f"'{key}': unknown key, ignored")
    for key, why in NOT_IMPLEMENTED.items():
        for item in _items(document, key):
            if key == 'parameters' and item.get('component') == 'vhost-limits':
                continue        # applied below
            where = item.get('vhost', vhost_name) if key != 'global_parameters' else None
            name = item.get('name', '?')
            report.append(f"{key[:-1] if key != 'policies' else 'policy'} '{name}'"
                          + (f" in vhost '{where}'" if where else '') + f': not applied, {why}')

    def vhost_of(item: dict[str, Any], what: str) -> str:
        if scoped:
            assert vhost_name is not None
            return vhost_name
        return _text(item, 'vhost', what)

    # --- vhosts, users, permissions (a whole-broker import only) ---
    new_vhosts = set()
    users_known = set(broker.users.users)
    if not scoped:
        for item in _items(document, 'vhosts'):
            name = _text(item, 'name', 'vhost')
            new_vhosts.add(name)
            description = item.get('description')
            tags = _tags(item, f"vhost '{name}'") if 'tags' in item else None
            steps.append(lambda n=name, d=description, t=tags: broker.add_vhost(
                n, description=str(d) if d is not None else None, tags=t))
        for item in _items(document, 'users'):
            name = _text(item, 'name', 'user')
            algorithm = item.get('hashing_algorithm') or HASHING_ALGORITHM
            password_hash = item.get('password_hash', '')
            if algorithm != HASHING_ALGORITHM:
                report.append(f"user '{name}': not applied, hashing algorithm {algorithm} is "
                              f"not implemented (only {HASHING_ALGORITHM})")
                continue
            if not isinstance(password_hash, str) or (password_hash and
                                                      not valid_hash(password_hash)):
                raise DefinitionsRefused(f"user '{name}': invalid password_hash")
            if not password_hash:
                report.append(f"user '{name}': has no password hash; it cannot log in with "
                              f"a password")
                password_hash = hash_password(os.urandom(24).hex())
            users_known.add(name)
            tags = _tags(item, f"user '{name}'")
            user_limits = _limits(item.get('limits') or {}, f"user '{name}'", report)
            steps.append(lambda n=name, h=password_hash, t=tags, lim=user_limits:
                         broker.users.put(n, h, t, limits=lim))
        all_vhosts = set(broker.vhosts) | new_vhosts
        for item in _items(document, 'permissions'):
            user = _text(item, 'user', 'permission')
            vhost = _text(item, 'vhost', 'permission')
            if user not in users_known or vhost not in all_vhosts:
                raise DefinitionsRefused(f"permission of '{user}' on '{vhost}': "
                                         f'vhost_or_user_not_found')
            perm = Permission(str(item.get('configure', '')), str(item.get('write', '')),
                              str(item.get('read', '')))
            _check_patterns(f"permission of '{user}' on '{vhost}'",
                            perm.configure, perm.write, perm.read)
            steps.append(lambda v=vhost, u=user, p=perm: broker.users.set_permission(v, u, p))
        for item in _items(document, 'topic_permissions'):
            user = _text(item, 'user', 'topic permission')
            vhost = _text(item, 'vhost', 'topic permission')
            if user not in users_known or vhost not in all_vhosts:
                raise DefinitionsRefused(f"topic permission of '{user}' on '{vhost}': "
                                         f'vhost_or_user_not_found')
            tperm = TopicPermission(str(item.get('exchange', '')), str(item.get('write', '')),
                                    str(item.get('read', '')))
            _check_patterns(f"topic permission of '{user}' on '{vhost}'", tperm.write,
                            tperm.read)
            steps.append(lambda v=vhost, u=user, p=tperm:
                         broker.users.set_topic_permission(v, u, p))
    else:
        all_vhosts = set(broker.vhosts)
    for item in _items(document, 'parameters'):
        if item.get('component') != 'vhost-limits':
            continue
        where = vhost_of(item, 'vhost limits')
        if where not in all_vhosts:
            raise DefinitionsRefused(f"vhost limits of '{where}': vhost_not_found")
        value = _limits(item.get('value'), f"vhost limits of '{where}'", report)
        steps.append(lambda v=where, lim=value: broker.set_vhost_limits(v, lim))

    # --- the topology ---
    #: (vhost, exchange) -> its type, for what the broker has and the document adds
    exchanges_known = {(v, e): x.kind for v, vh in broker.vhosts.items()
                       for e, x in vh.exchanges.items()}
    queues_known = {(v, q) for v, vh in broker.vhosts.items() for q in vh.queues}
    for vhost in new_vhosts:
        for name, kind in PREDECLARED:
            exchanges_known.setdefault((vhost, name), kind)
    for item in _items(document, 'exchanges'):
        name = _text(item, 'name', 'exchange')
        vhost = vhost_of(item, f"exchange '{name}'")
        if vhost not in all_vhosts:
            raise DefinitionsRefused(f"exchange '{name}': vhost '{vhost}' does not exist")
        kind = _text(item, 'type', f"exchange '{name}'")
        if kind not in EXCHANGE_TYPES:
            raise DefinitionsRefused(f"exchange '{name}' in vhost '{vhost}': unknown exchange "
                                     f"type '{kind}'")
        if name.startswith('amq.') or not name:
            report.append(f"exchange '{name}' in vhost '{vhost}': predeclared, left as it is")
            continue
        arguments = _arguments(item, f"exchange '{name}' in vhost '{vhost}'")
        durable = _flag(item, 'durable', True)
        auto_delete = _flag(item, 'auto_delete', False)
        internal = _flag(item, 'internal', False)
        existing = broker.vhosts[vhost].exchanges.get(name) if vhost in broker.vhosts else None
        if existing is not None and (
                existing.kind, existing.durable, existing.auto_delete, existing.internal,
                existing.arguments.get('alternate-exchange')) != (
                kind, durable, auto_delete, internal, arguments.get('alternate-exchange')):
            raise DefinitionsRefused(f"exchange '{name}' in vhost '{vhost}' exists with "
                                     f'other properties')
        exchanges_known[(vhost, name)] = kind
        steps.append(lambda v=vhost, n=name, k=kind, d=durable, a=auto_delete, i=internal,
                     args=arguments: broker.vhosts[v].declare_exchange(
                         n, k, durable=d, auto_delete=a, internal=i, arguments=args))
    for item in _items(document, 'queues'):
        name = _text(item, 'name', 'queue')
        vhost = vhost_of(item, f"queue '{name}'")
        if vhost not in all_vhosts:
            raise DefinitionsRefused(f"queue '{name}': vhost '{vhost}' does not exist")
        arguments = _arguments(item, f"queue '{name}'")
        try:
            queue_args.parse(name, vhost, arguments)
        except AMQPError as exc:
            raise DefinitionsRefused(exc.text.partition(' - ')[2] or exc.text) from None
        durable = _flag(item, 'durable', True)
        auto_delete = _flag(item, 'auto_delete', False)
        existing_q = broker.vhosts[vhost].queues.get(name) if vhost in broker.vhosts else None
        if existing_q is not None:
            same = (existing_q.durable, existing_q.auto_delete) == (
                durable or existing_q.args.queue_type == 'quorum', auto_delete)
            try:
                queue_args.assert_equivalent(name, vhost, existing_q.arguments, arguments)
            except AMQPError:
                same = False
            if not same or existing_q.exclusive:
                raise DefinitionsRefused(f"queue '{name}' in vhost '{vhost}' exists with other "
                                         f'properties')
        queues_known.add((vhost, name))
        steps.append(lambda v=vhost, n=name, d=durable, a=auto_delete, args=arguments:
                     broker.vhosts[v].declare_queue(n, None, durable=d, auto_delete=a,
                                                    arguments=args))
    for item in _items(document, 'bindings'):
        source = _text(item, 'source', 'binding')
        destination = _text(item, 'destination', 'binding')
        vhost = vhost_of(item, f"binding {source} -> {destination}")
        kind = item.get('destination_type', 'queue')
        if kind not in ('queue', 'exchange'):
            raise DefinitionsRefused(f"binding {source} -> {destination}: destination_type "
                                     f"must be queue or exchange")
        if source == '':
            report.append(f"binding of the default exchange to '{destination}' in vhost "
                          f"'{vhost}': implicit, left as it is")
            continue
        known: Any = queues_known if kind == 'queue' else exchanges_known
        if (vhost, source) not in exchanges_known or (vhost, destination) not in known:
            raise DefinitionsRefused(f"binding {source} -> {destination} in vhost '{vhost}': "
                                     f'an end does not exist')
        routing_key = str(item.get('routing_key', ''))
        arguments = _arguments(item, f'binding {source} -> {destination}')
        if exchanges_known[(vhost, source)] == 'headers':
            problem = validate_binding(arguments)
            if problem:
                raise DefinitionsRefused(f'binding {source} -> {destination}: {problem}')

        def bind(v: str = vhost, s: str = source, d: str = destination, k: str = kind,
                 rk: str = routing_key, args: dict[str, Any] = arguments) -> None:
            vh = broker.vhosts[v]
            dest = vh.queues[d] if k == 'queue' else vh.exchanges[d]
            vh.bind(vh.exchanges[s], dest, rk, args)
        steps.append(bind)
    for step in steps:
        step()
    for line in report:
        log.warning('definitions import: %s', line)
    return report


def _check_patterns(what: str, *patterns: str) -> None:
    """A permission whose expressions do not compile refuses the import."""
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem is not None:
            raise DefinitionsRefused(f'{what}: {problem}')


def _limits(value: Any, what: str, report: list[str]) -> dict[str, int]:
    """Limits as RabbitMQ writes them ({"max-connections": 10}), checked; one
    Leveret does not implement (a user's max-channels) is reported, not applied."""
    if not isinstance(value, dict):
        raise DefinitionsRefused(f'{what}: limits must be an object')
    found = {}
    for name, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int):
            raise DefinitionsRefused(f"{what}: limit '{name}' must be an integer")
        if name not in LIMIT_NAMES:
            report.append(f"{what}: limit '{name}' not applied, it is not implemented "
                          f"(Leveret's limits are {', '.join(LIMIT_NAMES)})")
            continue
        found[name] = number
    return found
