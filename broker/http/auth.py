"""HTTP Basic authentication, and who may do what (RabbitMQ's rules).

Tags: ``management`` (the vhosts the user has permissions on),
``policymaker`` (management, plus policies), ``monitoring`` (management,
and reads everything: every vhost's objects, every connection, the nodes),
``administrator`` (everything, and the only one to change users, vhosts,
permissions and definitions or to close others' connections).  A user with
none of them is not a management user: 401.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING

from . import errors

if TYPE_CHECKING:
    from ..auth import User, Users
    from ..model.vhost import VirtualHost
    from .request import Call

MANAGEMENT_TAGS = ('management', 'policymaker', 'monitoring', 'administrator')


def authenticate(header: str | None, users: Users) -> User:
    """The user of an ``Authorization`` header, or the 400/401 RabbitMQ sends."""
    if not header:
        raise errors.no_credentials()
    scheme, _, credentials = header.partition(' ')
    if scheme.lower() != 'basic':
        raise errors.login_failed()
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise errors.ApiError(400, '', '', empty=True) from None
    username, sep, password = decoded.partition(':')
    if not sep:
        raise errors.ApiError(400, '', '', empty=True)
    user = users.check(username, password)
    if user is None:
        raise errors.login_failed()
    if not user.has_tag(*MANAGEMENT_TAGS):
        raise errors.not_authorised('Not management user')
    return user


def is_admin(user: User) -> bool:
    return user.has_tag('administrator')


def is_monitor(user: User) -> bool:
    return user.has_tag('administrator', 'monitoring')


def require_admin(call: Call) -> None:
    if not is_admin(call.user):
        raise errors.not_authorised('Not administrator user')


def require_monitor(call: Call) -> None:
    if not is_monitor(call.user):
        raise errors.not_authorised('Not monitor user')


def may_use(call: Call, vhost: str) -> bool:
    return is_admin(call.user) or call.broker.users.may_open(call.user.name, vhost)


def vhost(call: Call, name: str | None = None) -> VirtualHost:
    """The vhost named in the path: 404 if unknown, 401 if not the user's."""
    name = call.params['vhost'] if name is None else name
    found = call.broker.vhosts.get(name)
    if found is None:
        raise errors.not_found()
    if not may_use(call, name):
        raise errors.not_authorised('User not authorised to access virtual host')
    return found


def visible_vhosts(call: Call) -> list[VirtualHost]:
    """The vhosts a list shows: all for monitoring users, else the user's own."""
    if 'vhost' in call.params:
        return [vhost(call)]
    everything = sorted(call.broker.vhosts.values(), key=lambda v: v.name)
    if is_monitor(call.user):
        return everything
    return [v for v in everything if may_use(call, v.name)]


def permitted(call: Call, vhost_name: str, kind: str, resource: str) -> bool:
    """Does the user's ``kind`` (configure, write, read) expression on
    ``vhost_name`` match ``resource``?  An empty expression matches nothing."""
    entry = call.broker.users.permissions.get((vhost_name, call.user.name))
    if entry is None:
        return False
    pattern = getattr(entry, kind)
    if not pattern:
        return False
    try:
        return re.search(pattern, resource) is not None
    except re.error:
        return False


def require_configure(call: Call, vhost_name: str, resource: str) -> None:
    if resource.startswith('amq.') or not permitted(call, vhost_name, 'configure', resource):
        raise errors.access_refused()
