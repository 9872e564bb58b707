"""/api/users: list, show, create or update, delete, bulk delete; a user's
permissions.  Administrators only."""

from __future__ import annotations

import os
from typing import Any

from ..auth import HASHING_ALGORITHM, hash_password, parse_tags, valid_hash
from . import auth, listing, shapes
from .common import connections
from .errors import bad_request, not_found
from .reply import created_or_updated, no_content
from .request import Call
from .sync import durable


async def _saved(call: Call) -> None:
    store = call.broker.store
    await durable(store, store.write_position())


async def list_users(call: Call) -> Any:
    auth.require_admin(call)
    options = listing.ListOptions.parse(call.query)
    users = sorted(call.broker.users.users.values(), key=lambda u: u.name)
    return await listing.answer(users, shapes.user, options)


async def without_permissions(call: Call) -> Any:
    auth.require_admin(call)
    users = call.broker.users
    with_some = {u for _v, u in users.permissions}
    return [shapes.user(u) for u in sorted(users.users.values(), key=lambda u: u.name)
            if u.name not in with_some]


def _user(call: Call) -> Any:
    auth.require_admin(call)
    user = call.broker.users.users.get(call.params['name'])
    if user is None:
        raise not_found()
    return user


async def get_user(call: Call) -> Any:
    return shapes.user(_user(call))


async def put_user(call: Call) -> Any:
    auth.require_admin(call)
    name = call.params['name']
    body = call.body()
    users = call.broker.users
    algorithm = body.get('hashing_algorithm') or HASHING_ALGORITHM
    if algorithm != HASHING_ALGORITHM:
        raise bad_request(f'unsupported hashing algorithm {algorithm!r}: only '
                          f'{HASHING_ALGORITHM} is')
    if body.get('password') not in (None, ''):
        password_hash = hash_password(str(body['password']))
    elif body.get('password_hash') not in (None, ''):
        password_hash = str(body['password_hash'])
        if not valid_hash(password_hash):
            raise bad_request('invalid password_hash: base64 of a 4-byte salt and a '
                              'SHA-256 digest expected')
    else:
        # No password at all: nobody can log in with one (as RabbitMQ).
        password_hash = hash_password(os.urandom(24).hex())
    try:
        tags = parse_tags(body.get('tags'))
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    existed = name in users.users
    users.put(name, password_hash, tags, algorithm)
    await _saved(call)
    return created_or_updated(not existed)


def _close_connections_of(call: Call, name: str) -> None:
    for conn in connections(call):
        if conn.username == name:
            conn.force_close(f"user '{name}' is deleted")


async def delete_user(call: Call) -> Any:
    user = _user(call)
    call.broker.users.delete(user.name)
    _close_connections_of(call, user.name)
    await _saved(call)
    return no_content()


async def bulk_delete(call: Call) -> Any:
    auth.require_admin(call)
    names = call.body().get('users')
    if not isinstance(names, list):
        raise bad_request('[{key_missing,users}]')
    users = call.broker.users
    missing = None
    for name in names:
        if users.delete(str(name)):
            _close_connections_of(call, str(name))
        elif missing is None:
            missing = str(name)
    await _saved(call)
    if missing is not None:
        raise bad_request(['no_such_user', missing])
    return no_content()


async def user_permissions(call: Call) -> Any:
    user = _user(call)
    return [shapes.permission(v, u, p)
            for (v, u), p in sorted(call.broker.users.permissions.items()) if u == user.name]


async def user_topic_permissions(call: Call) -> Any:
    user = _user(call)
    return [shapes.topic_permission(v, u, p)
            for (v, u, _), p in sorted(call.broker.users.topic_permissions.items())
            if u == user.name]


ROUTES = [
    ('users', {'GET': list_users}),
    ('users/without-permissions', {'GET': without_permissions}),
    ('users/bulk-delete', {'POST': bulk_delete}),
    ('users/{name}', {'GET': get_user, 'PUT': put_user, 'DELETE': delete_user}),
    ('users/{name}/permissions', {'GET': user_permissions}),
    ('users/{name}/topic-permissions', {'GET': user_topic_permissions}),
]
