"""/api/vhost-limits and /api/user-limits: RabbitMQ's vhost and user limits.

A limit is ``max-connections`` or ``max-queues``, set with ``PUT
.../{name}`` and ``{"value": N}`` (a negative value: no limit), removed with
``DELETE``.  Vhost limits are read by whoever may use the vhost; user
limits, and every change, are for administrators.  RabbitMQ's user limits
are ``max-connections`` and ``max-channels``; Leveret's are
``max-connections`` and ``max-queues`` (the queues the user declared), and a
name it does not implement is refused rather than stored for nothing.
"""

from __future__ import annotations

from typing import Any

from ..session.limits import LIMIT_NAMES
from . import auth
from .errors import bad_request, not_found
from .reply import no_content
from .request import Call
from .sync import durable


def _value(call: Call) -> tuple[str, int]:
    name = call.params['name']
    if name not in LIMIT_NAMES:
        raise bad_request(f"Validation failed: unknown limit '{name}' (Leveret's limits are "
                          f"{', '.join(LIMIT_NAMES)})")
    value = call.body().get('value')
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"Validation failed: the value of '{name}' must be an integer, "
                          f"got {value!r}")
    return name, value


async def _saved(call: Call) -> None:
    store = call.broker.store
    await durable(store, store.write_position())


# --- vhosts -----------------------------------------------------------------------
async def list_vhost_limits(call: Call) -> Any:
    return [{'vhost': v.name, 'value': dict(v.limits)}
            for v in auth.visible_vhosts(call) if v.limits]


async def put_vhost_limit(call: Call) -> Any:
    auth.require_admin(call)
    vhost = auth.vhost(call)
    name, value = _value(call)
    call.broker.set_vhost_limits(vhost.name, {**vhost.limits, name: value})
    await _saved(call)
    return no_content()


async def delete_vhost_limit(call: Call) -> Any:
    auth.require_admin(call)
    vhost = auth.vhost(call)
    name = call.params['name']
    if name not in vhost.limits:
        raise not_found()
    call.broker.set_vhost_limits(vhost.name, {k: v for k, v in vhost.limits.items()
                                              if k != name})
    await _saved(call)
    return no_content()


# --- users ------------------------------------------------------------------------
def _user(call: Call) -> Any:
    user = call.broker.users.users.get(call.params['user'])
    if user is None:
        raise not_found()
    return user


async def list_user_limits(call: Call) -> Any:
    auth.require_admin(call)
    users = ([_user(call)] if 'user' in call.params
             else sorted(call.broker.users.users.values(), key=lambda u: u.name))
    return [{'user': u.name, 'value': dict(u.limits)} for u in users if u.limits]


async def put_user_limit(call: Call) -> Any:
    auth.require_admin(call)
    user = _user(call)
    name, value = _value(call)
    call.broker.users.set_limits(user.name, {**user.limits, name: value})
    await _saved(call)
    return no_content()


async def delete_user_limit(call: Call) -> Any:
    auth.require_admin(call)
    user = _user(call)
    name = call.params['name']
    if name not in user.limits:
        raise not_found()
    call.broker.users.set_limits(user.name, {k: v for k, v in user.limits.items()
                                             if k != name})
    await _saved(call)
    return no_content()


ROUTES = [
    ('vhost-limits', {'GET': list_vhost_limits}),
    ('vhost-limits/{vhost}', {'GET': list_vhost_limits}),
    ('vhost-limits/{vhost}/{name}', {'PUT': put_vhost_limit, 'DELETE': delete_vhost_limit}),
    ('user-limits', {'GET': list_user_limits}),
    ('user-limits/{user}', {'GET': list_user_limits}),
    ('user-limits/{user}/{name}', {'PUT': put_user_limit, 'DELETE': delete_user_limit}),
]
