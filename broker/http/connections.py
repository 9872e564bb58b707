"""/api/connections: list, show, close (``X-Reason`` goes to the client);
a connection's channels; /api/vhosts/{vhost}/connections."""

from __future__ import annotations

from typing import Any

from . import auth, listing, shapes
from .common import channels_of, connections, node
from .errors import not_authorised, not_found
from .reply import no_content
from .request import Call

#: What a client is told when closed without an ``X-Reason``.
DEFAULT_REASON = 'Closed via management plugin'


def visible(call: Call) -> list[Any]:
    """Every connection for monitoring users, the user's own for the others."""
    found = connections(call)
    if 'vhost' in call.params:
        vhost = auth.vhost(call)
        found = [c for c in found if c.vhost is vhost]
    if not auth.is_monitor(call.user):
        found = [c for c in found if c.username == call.user.name]
    return found


def _connection(call: Call) -> Any:
    name = call.params['name']
    for conn in connections(call):
        if conn.name == name:
            if not auth.is_monitor(call.user) and conn.username != call.user.name:
                raise not_authorised('User not authorised to access object')
            return conn
    raise not_found()


async def list_connections(call: Call) -> Any:
    options = listing.ListOptions.parse(call.query)
    name = node(call)
    return await listing.answer(visible(call), lambda c: shapes.connection(c, name), options)


async def get_connection(call: Call) -> Any:
    return shapes.connection(_connection(call), node(call))


async def close_connection(call: Call) -> Any:
    conn = _connection(call)
    if not auth.is_admin(call.user) and conn.username != call.user.name:
        raise not_authorised('User not authorised to access object')
    conn.force_close(call.headers.get('X-Reason') or DEFAULT_REASON)
    return no_content()


async def connection_channels(call: Call) -> Any:
    conn = _connection(call)
    name = node(call)
    return [shapes.channel(ch, name) for ch in channels_of(conn)]


ROUTES = [
    ('connections', {'GET': list_connections}),
    ('connections/{name}', {'GET': get_connection, 'DELETE': close_connection}),
    ('connections/{name}/channels', {'GET': connection_channels}),
    ('vhosts/{vhost}/connections', {'GET': list_connections}),
]
