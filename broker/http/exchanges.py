"""/api/exchanges: list, show, declare, delete, publish; an exchange's bindings."""

from __future__ import annotations

import struct
from typing import Any

from leveret.protocol.errors import AMQPError

from ..model.exchanges import EXCHANGE_TYPES
from ..store.base import StoreFailed
from . import auth, listing, shapes
from .common import api_error, reason_of
from .errors import ApiError, access_refused, bad_request, key_missing, not_found
from .messages import header_for, payload_bytes, properties_from_json, publish
from .reply import created_or_updated, no_content
from .request import Call, arguments_of, as_bool
from .sync import after


def exchange_name(name: str) -> str:
    """``amq.default`` in a path is the default exchange."""
    return '' if name == 'amq.default' else name


def _exchange(call: Call) -> Any:
    vhost = auth.vhost(call)
    exchange = vhost.exchanges.get(exchange_name(call.params['name']))
    if exchange is None:
        raise not_found()
    return vhost, exchange


async def list_exchanges(call: Call) -> Any:
    options = listing.ListOptions.parse(call.query)
    objects = [(v.name, e) for v in auth.visible_vhosts(call)
               for e in sorted(v.exchanges.values(), key=lambda e: e.name)]
    return await listing.answer(objects, lambda pair: shapes.exchange(pair[1], pair[0]),
                                options, name_of=lambda pair: pair[1].name)


async def get_exchange(call: Call) -> Any:
    vhost, exchange = _exchange(call)
    out = shapes.exchange(exchange, vhost.name)
    out['incoming'] = []
    out['outgoing'] = []
    return out


async def put_exchange(call: Call) -> Any:
    vhost_name = call.params['vhost']
    if vhost_name not in call.broker.vhosts:
        raise ApiError(404, 'not_found', 'vhost_not_found')
    vhost = auth.vhost(call)
    name = call.params['name']
    body = call.body()
    if name == 'amq.default':
        raise access_refused()
    auth.require_configure(call, vhost_name, name)
    kind = body.get('type', 'direct')
    if kind not in EXCHANGE_TYPES:
        raise bad_request(f"unknown exchange type '{kind}'")
    arguments = arguments_of(body)
    store = vhost.store
    position = store.write_position()
    existed = name in vhost.exchanges
    try:
        vhost.declare_exchange(name, kind, durable=as_bool(body.get('durable'), True),
                               auto_delete=as_bool(body.get('auto_delete'), False),
                               internal=as_bool(body.get('internal'), False),
                               arguments=arguments)
    except AMQPError as exc:
        raise api_error(exc) from None
    await after(store, position)
    return created_or_updated(not existed)


async def delete_exchange(call: Call) -> Any:
    vhost = auth.vhost(call)
    name = exchange_name(call.params['name'])
    if name == '' or name.startswith('amq.'):
        raise access_refused()
    if name not in vhost.exchanges:
        raise not_found()
    auth.require_configure(call, vhost.name, name)
    store = vhost.store
    position = store.write_position()
    try:
        vhost.delete_exchange(name, if_unused=call.flag('if-unused'))
    except AMQPError as exc:
        raise bad_request(reason_of(exc)) from None
    await after(store, position)
    return no_content()


async def publish_message(call: Call) -> Any:
    vhost = auth.vhost(call)
    body = call.body()
    exchange = vhost.exchanges.get(exchange_name(call.params['name']))
    if exchange is None:
        # As RabbitMQ: the AMQP error of the publish, in a 400.
        raise bad_request(f"404 NOT_FOUND - no exchange '{call.params['name']}' in vhost "
                          f"'{vhost.name}'")
    missing = [k for k in ('routing_key', 'properties', 'payload', 'payload_encoding')
               if k not in body]
    if missing:
        raise key_missing(*missing)
    if body['payload_encoding'] not in ('string', 'base64'):
        raise bad_request(['unsupported_encoding', body['payload_encoding']])
    properties = properties_from_json(body['properties'])
    payload = payload_bytes(body['payload'], body['payload_encoding'])
    shown = exchange.name or 'amq.default'
    if not auth.permitted(call, vhost.name, 'write', shown):
        raise bad_request(f"403 ACCESS_REFUSED - access to exchange '{shown}' in vhost "
                          f"'{vhost.name}' refused for user '{call.user.name}'")
    try:
        header = header_for(properties, payload)
    except (TypeError, ValueError, OverflowError, struct.error) as exc:
        # A value AMQP cannot carry (a header integer past 64 bits, say).
        raise bad_request(f'properties cannot be encoded: {exc}') from None
    store = vhost.store
    position = store.write_position()
    try:
        routed, _persistent = publish(vhost, exchange.name, str(body['routing_key']), header,
                                      payload)
    except AMQPError as exc:
        raise bad_request(f'{exc.code} {exc.text}') from None
    except StoreFailed as exc:
        raise ApiError(500, 'internal_error', str(exc)) from None
    await after(store, position)
    return {'routed': routed}


async def _bindings_where(call: Call, side: str) -> list[dict[str, Any]]:
    vhost, exchange = _exchange(call)
    if side == 'source':
        if exchange.name == '':
            found = [('', q, q.name, {}) for q in vhost.queues.values()]
        else:
            found = [(exchange.name, destination, key, arguments)
                     for (destination, key, _), arguments in exchange.bindings.items()]
    else:
        found = [(source.name, exchange, key, arguments)
                 for source, key, arguments in vhost.bindings_of(exchange)]
    rows = shapes.binding_rows_from(vhost.name, found)
    return await listing.shape_all(rows, shapes.binding_of_row)


async def bindings_source(call: Call) -> Any:
    return await _bindings_where(call, 'source')


async def bindings_destination(call: Call) -> Any:
    return await _bindings_where(call, 'destination')


ROUTES = [
    ('exchanges', {'GET': list_exchanges}),
    ('exchanges/{vhost}', {'GET': list_exchanges}),
    ('exchanges/{vhost}/{name}', {'GET': get_exchange, 'PUT': put_exchange,
                                  'DELETE': delete_exchange}),
    ('exchanges/{vhost}/{name}/publish', {'POST': publish_message}),
    ('exchanges/{vhost}/{name}/bindings/source', {'GET': bindings_source}),
    ('exchanges/{vhost}/{name}/bindings/destination', {'GET': bindings_destination}),
]
