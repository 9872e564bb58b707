"""Limits that keep one client from taking what the others need.

RabbitMQ's vhost and user limits (``max-connections``, ``max-queues``; a
negative value means none), set at run time per vhost (``vhost.limits``) and
per user (``user.limits``), or else the settings' defaults; and the
per-channel caps of the settings (``consumer_max_per_channel``,
``unacked_max_per_channel``, which the channel and its consumers apply).
Each refusal uses RabbitMQ's reply code and text.  RabbitMQ has no
per-user queue limit: Leveret counts the queues a user declared and refuses
past ``max-queues`` as the vhost limit does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leveret.protocol.errors import NotAllowed, PreconditionFailed

if TYPE_CHECKING:
    from ..auth import User
    from ..config import Settings
    from ..model.vhost import VirtualHost
    from .registry import Sessions

LIMIT_NAMES = ('max-connections', 'max-queues')


def vhost_limit(settings: Settings, vhost: VirtualHost, name: str) -> int:
    """The vhost's limit ``name`` (-1: none)."""
    value = vhost.limits.get(name)
    if value is None:
        value = (settings.vhost_max_connections if name == 'max-connections'
                 else settings.vhost_max_queues)
    return value


def user_limit(settings: Settings, user: User, name: str) -> int:
    """The user's limit ``name`` (-1: none)."""
    value = user.limits.get(name)
    if value is None:
        value = (settings.user_max_connections if name == 'max-connections'
                 else settings.user_max_queues)
    return value


def check_connection(sessions: Sessions, user: User, vhost: VirtualHost) -> None:
    """connection.open: 530 once the vhost or the user has its connections."""
    settings = sessions.settings
    limit = vhost_limit(settings, vhost, 'max-connections')
    if 0 <= limit <= sessions.open_in_vhost(vhost.name):
        raise NotAllowed(f"access to vhost '{vhost.name}' refused for user '{user.name}': "
                         f"connection limit ({limit}) is reached")
    limit = user_limit(settings, user, 'max-connections')
    if 0 <= limit <= sessions.open_by_user(user.name):
        raise NotAllowed(f"Connection refused for user '{user.name}': user connection "
                         f"limit ({limit}) is reached")


def check_new_queue(settings: Settings, user: User | None, vhost: VirtualHost,
                    name: str, all_vhosts: list[VirtualHost]) -> None:
    """A queue is about to be created: 406 past the vhost's or the user's queues."""
    limit = vhost_limit(settings, vhost, 'max-queues')
    if 0 <= limit <= len(vhost.queues):
        raise PreconditionFailed(f"cannot declare queue '{name}': queue limit in vhost "
                                 f"'{vhost.name}' ({limit}) is reached")
    if user is None:
        return
    limit = user_limit(settings, user, 'max-queues')
    if limit >= 0 and limit <= sum(v.queues_by_user.get(user.name, 0) for v in all_vhosts):
        raise PreconditionFailed(f"cannot declare queue '{name}': queue limit for user "
                                 f"'{user.name}' ({limit}) is reached")
