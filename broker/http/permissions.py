"""/api/permissions and /api/topic-permissions: per user and vhost.
Administrators only."""

from __future__ import annotations

from typing import Any

from ..access import pattern_problem
from ..auth import Permission, TopicPermission
from . import auth, listing, shapes
from .errors import bad_request, key_missing, not_found
from .reply import created_or_updated, no_content
from .request import Call
from .sync import durable


async def _saved(call: Call) -> None:
    store = call.broker.store
    await durable(store, store.write_position())


def _patterns(body: dict[str, Any], *keys: str) -> list[str]:
    """The regular expressions of a body, each checked (400 for one that does not compile)."""
    patterns = [str(body[key]) for key in keys]
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem is not None:
            raise bad_request(problem)
    return patterns


def _vhost_and_user(call: Call) -> tuple[str, str]:
    vhost, user = call.params['vhost'], call.params['user']
    if vhost not in call.broker.vhosts or user not in call.broker.users.users:
        raise bad_request('vhost_or_user_not_found')
    return vhost, user


async def list_permissions(call: Call) -> Any:
    auth.require_admin(call)
    options = listing.ListOptions.parse(call.query)
    entries = sorted(call.broker.users.permissions.items())
    return await listing.answer(entries, lambda e: shapes.permission(e[0][0], e[0][1], e[1]),
                                options, name_of=lambda e: e[0][1])


async def get_permission(call: Call) -> Any:
    auth.require_admin(call)
    vhost, user = call.params['vhost'], call.params['user']
    entry = call.broker.users.permissions.get((vhost, user))
    if entry is None:
        raise not_found()
    return shapes.permission(vhost, user, entry)


async def put_permission(call: Call) -> Any:
    auth.require_admin(call)
    body = call.body()
    missing = [k for k in ('configure', 'write', 'read') if k not in body]
    if missing:
        raise key_missing(*missing)
    vhost, user = _vhost_and_user(call)
    configure, write, read = _patterns(body, 'configure', 'write', 'read')
    existed = (vhost, user) in call.broker.users.permissions
    call.broker.users.set_permission(vhost, user, Permission(configure, write, read))
    await _saved(call)
    return created_or_updated(not existed)


async def delete_permission(call: Call) -> Any:
    auth.require_admin(call)
    if not call.broker.users.clear_permission(call.params['vhost'], call.params['user']):
        raise not_found()
    await _saved(call)
    return no_content()


async def list_topic_permissions(call: Call) -> Any:
    auth.require_admin(call)
    return [shapes.topic_permission(v, u, p)
            for (v, u, _), p in sorted(call.broker.users.topic_permissions.items())]


async def get_topic_permissions(call: Call) -> Any:
    auth.require_admin(call)
    vhost, user = call.params['vhost'], call.params['user']
    found = [shapes.topic_permission(v, u, p)
             for (v, u, _), p in sorted(call.broker.users.topic_permissions.items())
             if v == vhost and u == user]
    if not found:
        raise not_found()
    return found


async def put_topic_permission(call: Call) -> Any:
    auth.require_admin(call)
    body = call.body()
    missing = [k for k in ('exchange', 'write', 'read') if k not in body]
    if missing:
        raise key_missing(*missing)
    vhost, user = _vhost_and_user(call)
    write, read = _patterns(body, 'write', 'read')
    key = (vhost, user, str(body['exchange']))
    existed = key in call.broker.users.topic_permissions
    call.broker.users.set_topic_permission(vhost, user, TopicPermission(
        str(body['exchange']), write, read))
    await _saved(call)
    return created_or_updated(not existed)


async def delete_topic_permissions(call: Call) -> Any:
    auth.require_admin(call)
    if not call.broker.users.clear_topic_permissions(call.params['vhost'],
                                                     call.params['user']):
        raise not_found()
    await _saved(call)
    return no_content()


ROUTES = [
    ('permissions', {'GET': list_permissions}),
    ('permissions/{vhost}/{user}', {'GET': get_permission, 'PUT': put_permission,
                                    'DELETE': delete_permission}),
    ('topic-permissions', {'GET': list_topic_permissions}),
    ('topic-permissions/{vhost}/{user}', {'GET': get_topic_permissions,
                                          'PUT': put_topic_permission,
                                          'DELETE': delete_topic_permissions}),
]
