"""Remote control over Celery's pidbox: ``celery inspect``/``control`` and
Flower reach the worker here.

Commands arrive on the fanout exchange ``celery.pidbox`` through the
worker's own queue ``<hostname>.celery.pidbox``; replies go to the direct
exchange ``reply.celery.pidbox`` as ``{hostname: reply}``, with the
caller's ticket (see kombu's ``pidbox.Node``).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import resource
import time
from collections.abc import Callable
from typing import Any, Protocol

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from ..serialization import decode_body
from .banner import broker_info
from .events import EventDispatcher, LamportClock
from .options import WorkerOptions
from .publisher import Publisher
from .state import WorkerState
from .tasks import Registry

log = logging.getLogger(__name__)

EXCHANGE = 'celery.pidbox'
REPLY_EXCHANGE = 'reply.celery.pidbox'
QUEUE_ARGUMENTS: dict[str, Any] = {'x-expires': 10000, 'x-message-ttl': 300000}

Handler = Callable[..., Any]


def _matches(hostname: str, pattern: str, matcher: str | None) -> bool:
    if matcher == 'pcre':
        return re.search(pattern, hostname) is not None
    return fnmatch.fnmatch(hostname, pattern)


class WorkerActions(Protocol):
    """What a command may ask of the worker beyond reading its state."""

    def revoke(self, task_id: str, terminate: bool = False) -> None:
        """Discard the task when it is due; take it back from the pool, or
        stop it (``terminate``) if it runs."""

    def request_shutdown(self) -> None:
        """Start a warm shutdown."""

    def pool_info(self) -> dict[str, Any]:
        """The pool's part of ``inspect stats``."""


class RemoteControl:
    def __init__(self, options: WorkerOptions, registry: Registry, state: WorkerState,
                 clock: LamportClock, publisher: Publisher, events: EventDispatcher,
                 actions: WorkerActions) -> None:
        self.options = options
        self.registry = registry
        self.state = state
        self.lamport = clock
        self.publisher = publisher
        self.events = events
        self.actions = actions
        self.hostname = options.hostname
        self.handlers: dict[str, Handler] = {
            'ping': self.ping, 'active': self.active, 'reserved': self.reserved,
            'scheduled': self.scheduled, 'registered': self.registered, 'stats': self.stats,
            'revoke': self.revoke, 'revoked': self.revoked, 'hello': self.hello,
            'heartbeat': self.heartbeat, 'clock': self.clock,
            'active_queues': self.active_queues, 'shutdown': self.shutdown,
            'query_task': self.query_task,
        }

    async def start(self, channel: AbstractChannel) -> None:
        exchange = await channel.declare_exchange(EXCHANGE, 'fanout', durable=False)
        queue = await channel.declare_queue(f'{self.hostname}.celery.pidbox', exclusive=True,
                                            auto_delete=True, arguments=QUEUE_ARGUMENTS)
        await queue.bind(exchange, routing_key='')
        await queue.consume(self.on_message, no_ack=True)  # type: ignore[arg-type]

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            body = decode_body(message.body, message.content_type, message.content_encoding)
        except Exception as exc:
            log.warning('unreadable control message: %r', exc)
            return
        headers: dict[str, Any] = dict(message.headers or {})
        self.lamport.adjust(int(headers.get('clock') or 0))
        expires = headers.get('expires')
        if expires and float(expires) < time.time():
            return
        if not isinstance(body, dict) or not self._for_me(body):
            return
        method = body.get('method')
        arguments = body.get('arguments') or {}
        handler = self.handlers.get(str(method))
        try:
            if handler is None:
                raise KeyError(f'No such command: {method!r}')
            reply = handler(**arguments)
        except Exception as exc:
            log.error('control command %s failed: %r', method, exc)
            reply = {'error': repr(exc)}
        reply_to = body.get('reply_to')
        if reply_to and reply is not None:
            await self.reply(reply, reply_to, body.get('ticket'))

    def _for_me(self, body: dict[str, Any]) -> bool:
        destination = body.get('destination')
        if destination:
            return self.hostname in destination
        pattern, matcher = body.get('pattern'), body.get('matcher')
        if pattern and matcher:
            return _matches(self.hostname, pattern, matcher)
        return True

    async def reply(self, reply: Any, reply_to: dict[str, Any], ticket: str | None) -> None:
        publisher = self.publisher
        exchange = reply_to.get('exchange') or REPLY_EXCHANGE
        await publisher.declare_exchange(exchange, 'direct', durable=False)
        await publisher.publish_json(
            {self.hostname: reply}, exchange, reply_to.get('routing_key', ''),
            {'ticket': ticket, 'clock': self.lamport.forward()})

    # --- commands (Celery's names and reply shapes) -------------------------
    def ping(self, **_: Any) -> dict[str, str]:
        return {'ok': 'pong'}

    def active(self, safe: bool = False, **_: Any) -> list[dict[str, Any]]:
        return [r.info(self.hostname) for r in self.state.running()]

    def reserved(self, **_: Any) -> list[dict[str, Any]]:
        return [r.info(self.hostname) for r in self.state.reserved()]

    def scheduled(self, **_: Any) -> list[dict[str, Any]]:
        return [{'eta': r.eta.isoformat() if r.eta else None,
                 'priority': r.priority,
                 'request': r.info(self.hostname)} for r in self.state.held.values()]

    def registered(self, taskinfoitems: Any = None, builtins: bool = False,
                   **_: Any) -> list[str]:
        names = self.registry.runners if builtins else self.registry.names()
        return sorted(names)

    def stats(self, **_: Any) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        hard, soft = self.options.time_limit, self.options.soft_time_limit
        return {
            'broker': broker_info(self.options.broker_url),
            'clock': str(self.lamport.value), 'pid': os.getpid(),
            'uptime': int(time.monotonic() - self.state.started_at),
            'pool': dict(self.actions.pool_info(),
                         **{'max-tasks-per-child': 'N/A', 'timeouts': [soft, hard]}),
            'prefetch_count': self.state.prefetch.value,
            'rusage': {'utime': usage.ru_utime, 'stime': usage.ru_stime,
                       'maxrss': usage.ru_maxrss, 'minflt': usage.ru_minflt,
                       'majflt': usage.ru_majflt, 'nvcsw': usage.ru_nvcsw,
                       'nivcsw': usage.ru_nivcsw},
            'total': dict(self.state.total),
            'sw_ident': 'leveret', 'sw_ver': '0.1.0',
        }

    def revoke(self, task_id: str | list[str], terminate: bool = False,
               signal: str | None = None, **_: Any) -> dict[str, str]:
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        for one in ids:
            self.actions.revoke(one, terminate=terminate)
        return {'ok': f'tasks {", ".join(ids)} flagged as revoked'}

    def revoked(self, **_: Any) -> list[str]:
        return list(self.state.revoked)

    def hello(self, from_node: str, revoked: Any = None, **_: Any) -> dict[str, Any] | None:
        if from_node == self.hostname:
            return None
        for task_id in revoked or ():
            self.state.revoked[task_id] = None
        return {'revoked': list(self.state.revoked), 'clock': self.lamport.forward()}

    def heartbeat(self, **_: Any) -> None:
        self.events.worker('worker-heartbeat', **self.state.heartbeat_fields())
        return None

    def clock(self, **_: Any) -> dict[str, int]:
        return {'clock': self.lamport.value}

    def active_queues(self, **_: Any) -> list[dict[str, Any]]:
        return [{'name': q, 'exchange': {'name': q, 'type': 'direct'}, 'routing_key': q,
                 'durable': True, 'exclusive': False, 'auto_delete': False,
                 'no_ack': False} for q in self.options.queues]

    def shutdown(self, msg: str = 'Got shutdown from remote', **_: Any) -> None:
        log.warning(msg)
        self.actions.request_shutdown()
        return None

    def query_task(self, ids: list[str] | str | None = None, **_: Any) -> dict[str, Any]:
        wanted = {ids} if isinstance(ids, str) else set(ids or ())
        found: dict[str, Any] = {}
        for state, requests in (('active', self.state.running()),
                                ('reserved', self.state.reserved()),
                                ('scheduled', self.state.held.values())):
            for request in requests:
                if request.id in wanted:
                    found[request.id] = [state, request.info(self.hostname)]
        return found
