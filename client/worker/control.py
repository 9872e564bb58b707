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
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from ..serialization import decode_body

if TYPE_CHECKING:
    from .consumer import Worker

log = logging.getLogger(__name__)

EXCHANGE = 'celery.pidbox'
REPLY_EXCHANGE = 'reply.celery.pidbox'
QUEUE_ARGUMENTS: dict[str, Any] = {'x-expires': 10000, 'x-message-ttl': 300000}

Handler = Callable[..., Any]


def _matches(hostname: str, pattern: str, matcher: str | None) -> bool:
    if matcher == 'pcre':
        return re.search(pattern, hostname) is not None
    return fnmatch.fnmatch(hostname, pattern)


class RemoteControl:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.hostname = worker.hostname
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
        self.worker.clock.adjust(int(headers.get('clock') or 0))
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
        publisher = self.worker.publisher
        exchange = reply_to.get('exchange') or REPLY_EXCHANGE
        await publisher.declare_exchange(exchange, 'direct', durable=False)
        await publisher.publish_json(
            {self.hostname: reply}, exchange, reply_to.get('routing_key', ''),
            {'ticket': ticket, 'clock': self.worker.clock.forward()})

    # --- commands (Celery's names and reply shapes) -------------------------
    def ping(self, **_: Any) -> dict[str, str]:
        return {'ok': 'pong'}

    def active(self, safe: bool = False, **_: Any) -> list[dict[str, Any]]:
        return [r.info(self.hostname) for r in self.worker.running_requests()]

    def reserved(self, **_: Any) -> list[dict[str, Any]]:
        return [r.info(self.hostname) for r in self.worker.reserved_requests()]

    def scheduled(self, **_: Any) -> list[dict[str, Any]]:
        return [{'eta': r.eta.isoformat() if r.eta else None,
                 'priority': r.priority,
                 'request': r.info(self.hostname)} for r in self.worker.scheduled.values()]

    def registered(self, taskinfoitems: Any = None, builtins: bool = False,
                   **_: Any) -> list[str]:
        names = self.worker.registry.runners if builtins else self.worker.registry.names()
        return sorted(names)

    def stats(self, **_: Any) -> dict[str, Any]:
        return self.worker.stats()

    def revoke(self, task_id: str | list[str], terminate: bool = False,
               signal: str | None = None, **_: Any) -> dict[str, str]:
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        for one in ids:
            self.worker.revoke(one, terminate=terminate)
        return {'ok': f'tasks {", ".join(ids)} flagged as revoked'}

    def revoked(self, **_: Any) -> list[str]:
        return list(self.worker.revoked)

    def hello(self, from_node: str, revoked: Any = None, **_: Any) -> dict[str, Any] | None:
        if from_node == self.hostname:
            return None
        for task_id in revoked or ():
            self.worker.revoked[task_id] = None
        return {'revoked': list(self.worker.revoked), 'clock': self.worker.clock.forward()}

    def heartbeat(self, **_: Any) -> None:
        self.worker.events.worker('worker-heartbeat', **self.worker.heartbeat_fields())
        return None

    def clock(self, **_: Any) -> dict[str, int]:
        return {'clock': self.worker.clock.value}

    def active_queues(self, **_: Any) -> list[dict[str, Any]]:
        return [{'name': q, 'exchange': {'name': q, 'type': 'direct'}, 'routing_key': q,
                 'durable': True, 'exclusive': False, 'auto_delete': False,
                 'no_ack': False} for q in self.worker.options.queues]

    def shutdown(self, msg: str = 'Got shutdown from remote', **_: Any) -> None:
        log.warning(msg)
        self.worker.request_shutdown()
        return None

    def query_task(self, ids: list[str] | str | None = None, **_: Any) -> dict[str, Any]:
        wanted = {ids} if isinstance(ids, str) else set(ids or ())
        found: dict[str, Any] = {}
        for state, requests in (('active', self.worker.running_requests()),
                                ('reserved', self.worker.reserved_requests()),
                                ('scheduled', self.worker.scheduled.values())):
            for request in requests:
                if request.id in wanted:
                    found[request.id] = [state, request.info(self.hostname)]
        return found
