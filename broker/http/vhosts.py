"""/api/vhosts: list, show, create or update, delete (administrators only
change them); a vhost's permissions."""

from __future__ import annotations

from typing import Any

from ..auth import Permission, parse_tags
from . import auth, listing, shapes
from .common import all_channels, connections, node, unacked_by_queue
from .errors import bad_request, not_authorised, not_found
from .reply import created_or_updated, no_content
from .request import Call
from .sync import durable


def _shape(call: Call, unacked: dict[Any, tuple[int, int]]) -> Any:
    name = node(call)
    chans = all_channels(call)
    conns = connections(call)

    def shape(v: Any) -> dict[str, Any]:
        ready = sum(len(q.ready) for q in v.queues.values())
        out = sum(n for q, (n, _) in unacked.items() if q.vhost_name == v.name)
        return shapes.vhost(v, name, [ch for ch in chans if ch.vhost is v],
                            [c for c in conns if c.vhost is v], (ready, out))
    return shape


async def list_vhosts(call: Call) -> Any:
    options = listing.ListOptions.parse(call.query)
    everything = sorted(call.broker.vhosts.values(), key=lambda v: v.name)
    if not auth.is_monitor(call.user):
        everything = [v for v in everything if auth.may_use(call, v.name)]
    unacked = await unacked_by_queue(call.broker)
    return await listing.answer(everything, _shape(call, unacked), options)


async def get_vhost(call: Call) -> Any:
    vhost = call.broker.vhosts.get(call.params['vhost'])
    if vhost is None:
        raise not_found()
    if not auth.is_monitor(call.user) and not auth.may_use(call, vhost.name):
        raise not_authorised('Not administrator user')
    return _shape(call, await unacked_by_queue(call.broker))(vhost)


async def put_vhost(call: Call) -> Any:
    auth.require_admin(call)
    name = call.params['vhost']
    body = call.body()
    existed = name in call.broker.vhosts
    description = body.get('description')
    try:
        tags = parse_tags(body['tags']) if 'tags' in body else None
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    call.broker.add_vhost(name, description=str(description) if description is not None
                          else (None if existed else ''), tags=tags)
    if not existed:
        # As RabbitMQ: whoever creates a vhost may use it.
        call.broker.users.set_permission(name, call.user.name, Permission())
    await _durable(call)
    return created_or_updated(not existed)


async def delete_vhost(call: Call) -> Any:
    auth.require_admin(call)
    if not call.broker.delete_vhost(call.params['vhost']):
        raise not_found()
    await _durable(call)
    return no_content()


async def _durable(call: Call) -> None:
    store = call.broker.store
    await durable(store, store.write_position())


async def vhost_permissions(call: Call) -> Any:
    auth.require_admin(call)
    name = call.params['vhost']
    if name not in call.broker.vhosts:
        raise not_found()
    return [shapes.permission(v, u, p)
            for (v, u), p in sorted(call.broker.users.permissions.items()) if v == name]


async def vhost_topic_permissions(call: Call) -> Any:
    auth.require_admin(call)
    name = call.params['vhost']
    if name not in call.broker.vhosts:
        raise not_found()
    return [shapes.topic_permission(v, u, p)
            for (v, u, _), p in sorted(call.broker.users.topic_permissions.items()) if v == name]


ROUTES = [
    ('vhosts', {'GET': list_vhosts}),
    ('vhosts/{vhost}', {'GET': get_vhost, 'PUT': put_vhost, 'DELETE': delete_vhost}),
    ('vhosts/{vhost}/permissions', {'GET': vhost_permissions}),
    ('vhosts/{vhost}/topic-permissions', {'GET': vhost_topic_permissions}),
]
