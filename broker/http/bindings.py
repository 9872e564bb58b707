"""/api/bindings: list; create and delete a binding between an exchange and a
queue (``q``) or another exchange (``e``); one binding by its properties key."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from leveret.protocol.errors import AMQPError

from . import auth, listing, shapes
from .common import api_error
from .errors import ApiError, access_refused, not_found
from .reply import created, no_content
from .request import Call, arguments_of
from .sync import after

KINDS = {'q': 'queue', 'e': 'exchange'}


async def list_bindings(call: Call) -> Any:
    options = listing.ListOptions.parse(call.query)
    rows = [row for v in auth.visible_vhosts(call) for row in shapes.binding_rows(v)]
    return await listing.answer(rows, shapes.binding_of_row, options,
                                name_of=lambda row: row[3])


def _ends(call: Call, must_exist: bool = True) -> Any:
    vhost = auth.vhost(call)
    source_name = call.params['source']
    source = vhost.exchanges.get('' if source_name == 'amq.default' else source_name)
    kind = call.params['kind']
    if kind not in KINDS:
        raise not_found()
    name = call.params['destination']
    destination = (vhost.queues if kind == 'q' else vhost.exchanges).get(name)
    if source is None:
        if must_exist:
            raise not_found()
        raise ApiError(404, 'not_found', f"no exchange '{source_name}' in vhost "
                                         f"'{vhost.name}'")
    if destination is None:
        if must_exist:
            raise not_found()
        raise ApiError(404, 'not_found', f"no {KINDS[kind]} '{name}' in vhost '{vhost.name}'")
    return vhost, source, destination


def _between(vhost: Any, source: Any, destination: Any) -> list[dict[str, Any]]:
    if source.name == '':
        return [shapes.binding(vhost.name, '', destination, destination.name, {})] \
            if destination in vhost.queues.values() else []
    found = [shapes.binding(vhost.name, source.name, destination, key, arguments)
             for key, arguments in source.bindings_to(destination)]
    found.sort(key=lambda b: (b['routing_key'], b['properties_key']))
    return found


async def list_between(call: Call) -> Any:
    vhost, source, destination = _ends(call)
    return _between(vhost, source, destination)


async def create(call: Call) -> Any:
    body = call.body()
    vhost, source, destination = _ends(call, must_exist=False)
    if source.name == '':
        raise access_refused()
    if (not auth.permitted(call, vhost.name, 'write', destination.name)
            or not auth.permitted(call, vhost.name, 'read', source.name)):
        raise access_refused()
    routing_key = str(body.get('routing_key', ''))
    arguments = arguments_of(body)
    store = vhost.store
    position = store.write_position()
    try:
        vhost.bind(source, destination, routing_key, arguments)
    except AMQPError as exc:
        raise api_error(exc) from None
    await after(store, position)
    props = shapes.properties_key(routing_key, arguments)
    return created(f'{quote(destination.name, safe="")}/{quote(props, safe="~")}')


def _find(call: Call) -> Any:
    vhost, source, destination = _ends(call)
    wanted = call.params['props']
    for binding in _between(vhost, source, destination):
        if binding['properties_key'] == wanted:
            return vhost, source, destination, binding
    raise not_found()


async def get_one(call: Call) -> Any:
    return _find(call)[3]


async def delete_one(call: Call) -> Any:
    vhost, source, destination, binding = _find(call)
    if source.name == '':
        raise access_refused()
    if (not auth.permitted(call, vhost.name, 'write', destination.name)
            or not auth.permitted(call, vhost.name, 'read', source.name)):
        raise access_refused()
    arguments = next(args for key, args in source.bindings_to(destination)
                     if key == binding['routing_key']
                     and shapes.properties_key(key, args) == binding['properties_key'])
    store = vhost.store
    position = store.write_position()
    vhost.unbind(source, destination, binding['routing_key'], arguments)
    await after(store, position)
    return no_content()


ROUTES = [
    ('bindings', {'GET': list_bindings}),
    ('bindings/{vhost}', {'GET': list_bindings}),
    ('bindings/{vhost}/e/{source}/{kind}/{destination}', {'GET': list_between, 'POST': create}),
    ('bindings/{vhost}/e/{source}/{kind}/{destination}/{props}', {'GET': get_one,
                                                                  'DELETE': delete_one}),
]
