"""Every session of a broker, and what a connection needs from the process.

The broker process builds one :class:`Sessions` and hands it to each new
connection instead of itself: a connection reads the settings, the users
and the virtual hosts from here and reports its life cycle here.  Process
wiring (shutdown, the store's compaction) asks this object about the
sessions instead of walking connections and channels.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..auth import Users
from ..config import Settings
from ..model.celery import TaskNames
from ..model.counters import ChurnCounters
from ..model.message import Message
from ..model.queue import Queue
from ..model.vhost import VirtualHost
from .connection_log import ConnectionLog
from .logins import LoginFailures

if TYPE_CHECKING:
    from .connection import Connection


class Sessions:
    def __init__(self, settings: Settings, users: Users, vhosts: Mapping[str, VirtualHost],
                 server_properties: dict[str, Any], churn: ChurnCounters | None = None) -> None:
        self.settings = settings
        #: Connections and channels opened and closed (shared with the vhosts).
        self.churn = churn if churn is not None else ChurnCounters()
        self.users = users
        self.vhosts = vhosts
        #: Sent in connection.start.
        self.server_properties = server_properties
        #: Failed logins per source address (the delay each one costs).
        self.login_failures = LoginFailures()
        self.connections: set[Connection] = set()
        #: The connections' lines in the log (accepted, authenticated, closed).
        self.connection_log = ConnectionLog()
        #: Open connections (past connection.open) per vhost and per user.
        self._per_vhost: dict[str, int] = {}
        self._per_user: dict[str, int] = {}
        #: The bound on the Celery task names counted (model.celery).
        self.task_names = TaskNames(settings.celery_task_names)

    def __len__(self) -> int:
        return len(self.connections)

    def opened(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.churn.connection_created += 1
        self.connection_log.accepted(connection)

    def closed(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
            self.churn.connection_closed += 1
            self.connection_log.closed(connection)
            if connection.counted_open:
                connection.counted_open = False
                _count(self._per_vhost, connection.vhost.name, -1)
                _count(self._per_user, connection.username, -1)

    def vhost_opened(self, connection: Connection) -> None:
        """``connection`` passed connection.open: it counts against the limits."""
        connection.counted_open = True
        _count(self._per_vhost, connection.vhost.name, 1)
        _count(self._per_user, connection.username, 1)

    def open_in_vhost(self, vhost: str) -> int:
        return self._per_vhost.get(vhost, 0)

    def open_by_user(self, user: str) -> int:
        return self._per_user.get(user, 0)

    def unacked_snapshot(self) -> list[list[tuple[Message, Queue, Any]]]:
        """Each channel's deliveries waiting for an ack, ``(message, queue,
        consumer)``, copied now (a C-speed copy per channel): a caller that
        walks them a slice at a time, yielding to the loop, sees nothing
        change under it."""
        return [list(channel.unacked.values()) for connection in self.connections
                for channel in connection.channels.values()]

    def unacked(self) -> Iterator[tuple[Queue, Message]]:
        """Every delivery waiting for an ack, on every channel of every connection."""
        for connection in self.connections:
            yield from connection.unacked()

    def shutdown(self) -> None:
        """Close every connection with 320 CONNECTION_FORCED."""
        for connection in list(self.connections):
            connection.shutdown()

    def abort(self) -> None:
        """Drop every connection that is still there."""
        for connection in list(self.connections):
            connection.abort()


def _count(counts: dict[str, int], key: str, step: int) -> None:
    value = counts.get(key, 0) + step
    if value > 0:
        counts[key] = value
    else:
        counts.pop(key, None)
