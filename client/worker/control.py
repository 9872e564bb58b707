"""Remote control over Celery's pidbox: ``celery inspect``/``control`` and
Flower reach the worker here, and get Celery's reply shapes.

Commands arrive on the fanout exchange ``celery.pidbox`` through the
worker's own queue ``<hostname>.celery.pidbox``; replies go to the direct
exchange ``reply.celery.pidbox`` as ``{hostname: reply}``, with the
caller's ticket (see kombu's ``pidbox.Node``). Every command with a
``reply_to`` is answered (``None`` included, as kombu does), except
``shutdown``; an unknown command answers ``{'error': "KeyError('name')"}``
and a failing one ``{'error': repr(exc)}``, as Celery's worker.

``mingle`` (at start, unless ``--without-mingle``) is the other direction:
a ``hello`` broadcast whose replies bring the revoked ids other workers know.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import math
import os
import platform
import re
import resource
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from ..serialization import decode_body
from .banner import VERSION, broker_info, results_uri
from .events import EventDispatcher, LamportClock
from .options import WorkerOptions
from .publisher import Publisher
from .state import WorkerState
from .tasks import Registry

log = logging.getLogger(__name__)

EXCHANGE = 'celery.pidbox'
REPLY_EXCHANGE = 'reply.celery.pidbox'
QUEUE_ARGUMENTS: dict[str, Any] = {'x-expires': 10000, 'x-message-ttl': 300000}
#: What ``inspect registered`` shows of each task by default (Celery's).
DEFAULT_TASK_INFO_ITEMS = ('exchange', 'routing_key', 'rate_limit')
#: How long mingle waits for the other workers' replies (Celery's default).
MINGLE_TIMEOUT = 1.0

Handler = Callable[..., Any]


def ok(value: Any) -> dict[str, Any]:
    return {'ok': value}


def nok(value: Any) -> dict[str, Any]:
    return {'error': value}


def _matches(hostname: str, pattern: str, matcher: str | None) -> bool:
    if matcher == 'pcre':
        return re.search(pattern, hostname) is not None
    return fnmatch.fnmatch(hostname, pattern)


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def humanbytes(n: int) -> str:
    """Celery's ``celery.utils.debug.humanbytes``."""
    for power, unit in ((50, 'PB'), (40, 'TB'), (30, 'GB'), (20, 'MB'), (10, 'KB')):
        if n >= 2 ** power:
            return f'{n / 2 ** power:.1f}{unit}'
    return f'{n}b'


def resident_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


class WorkerActions(Protocol):
    """What a command may ask of the worker beyond reading its state."""

    autoscaler: Any

    def revoke(self, task_id: str, terminate: bool = False, signal: str | None = None
               ) -> bool:
        """Discard the task when it is due; take it back from the pool, or stop
        it (``terminate``) if it runs; whether it was stopped."""

    def request_shutdown(self) -> None:
        """Start a warm shutdown."""

    def pool_info(self) -> dict[str, Any]:
        """The pool's part of ``inspect stats``."""

    def pool_resize(self, n: int) -> None:
        """Grow (n > 0) or shrink the pool; the prefetch count follows."""

    def pool_restart(self) -> None:
        """Replace the pool's processes (raises ValueError where it has none)."""

    def add_consumer(self, queue: str, exchange: str | None, exchange_type: str | None,
                     routing_key: str | None, **options: Any) -> None:
        """Declare ``queue`` as kombu declares it, and consume it."""

    def cancel_consumer(self, queue: str) -> None:
        """Stop consuming ``queue``."""

    def active_queues(self) -> list[dict[str, Any]]:
        """kombu's ``Queue.as_dict(recurse=True)`` of each queue consumed."""

    def set_rate_limit(self, task_name: str, rate_limit: Any) -> None:
        """A new rate limit for a task (raises ValueError if invalid)."""

    def set_task_events(self, enabled: bool) -> bool:
        """Task events on or off; whether that changed anything."""


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
        #: memsample's samples, for memdump.
        self.mem_samples: list[str] = []
        self.handlers: dict[str, Handler] = {
            'ping': self.ping, 'active': self.active, 'reserved': self.reserved,
            'scheduled': self.scheduled, 'registered': self.registered, 'stats': self.stats,
            'revoke': self.revoke, 'terminate': self.terminate, 'revoked': self.revoked,
            'hello': self.hello, 'heartbeat': self.heartbeat, 'clock': self.clock,
            'active_queues': self.active_queues, 'shutdown': self.shutdown,
            'query_task': self.query_task, 'conf': self.conf, 'report': self.report,
            'enable_events': self.enable_events, 'disable_events': self.disable_events,
            'rate_limit': self.rate_limit, 'time_limit': self.time_limit,
            'add_consumer': self.add_consumer, 'cancel_consumer': self.cancel_consumer,
            'pool_grow': self.pool_grow, 'pool_shrink': self.pool_shrink,
            'autoscale': self.autoscale, 'pool_restart': self.pool_restart,
            'memsample': self.memsample, 'memdump': self.memdump, 'election': self.election,
        }
        # Celery's old names for the same commands.
        for alias, name in (('dump_conf', 'conf'), ('dump_reserved', 'reserved'),
                            ('dump_active', 'active'), ('dump_revoked', 'revoked'),
                            ('dump_tasks', 'registered'), ('dump_schedule', 'scheduled')):
            self.handlers[alias] = self.handlers[name]
        self._channel: AbstractChannel | None = None
        self._mingle_replies: dict[str, list[dict[str, Any]]] = {}

    async def start(self, channel: AbstractChannel) -> None:
        self._channel = channel
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
        method = str(body.get('method'))
        log.debug('control command %s %r', method, body.get('arguments'))
        arguments = body.get('arguments') or {}
        handler = self.handlers.get(method)
        try:
            if handler is None:
                raise KeyError(method)
            reply = handler(**arguments)
        except Exception as exc:
            log.error('pidbox command error: %r', exc)
            reply = nok(repr(exc))
        reply_to = body.get('reply_to')
        if reply_to and method != 'shutdown':
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

    # --- mingle: at start, the revoked ids the other workers know -------------
    async def mingle(self, timeout: float = MINGLE_TIMEOUT) -> int:
        """Broadcast ``hello`` and merge the revoked ids of the replies (Celery's
        Mingle); how many workers answered."""
        channel = self._channel
        if channel is None:
            return 0
        ticket = str(uuid.uuid4())
        name = f'{uuid.uuid4()}.reply.celery.pidbox'
        exchange = await channel.declare_exchange(REPLY_EXCHANGE, 'direct', durable=False)
        queue = await channel.declare_queue(name, auto_delete=True, exclusive=True,
                                            arguments={'x-expires': 10000})
        await queue.bind(exchange, routing_key=name)
        replies: list[dict[str, Any]] = []

        async def collect(message: AbstractIncomingMessage) -> None:
            if (message.headers or {}).get('ticket') != ticket:
                return
            body = decode_body(message.body, message.content_type, message.content_encoding)
            if isinstance(body, dict):
                replies.append(body)

        tag = await queue.consume(collect, no_ack=True)  # type: ignore[arg-type]
        await self.publisher.publish_json(
            {'method': 'hello', 'arguments': {'from_node': self.hostname,
                                              'revoked': list(self.state.revoked)},
             'destination': None, 'pattern': None, 'matcher': None, 'ticket': ticket,
             'reply_to': {'exchange': REPLY_EXCHANGE, 'routing_key': name}},
            # A whole second, rounded up: pamqp writes a float header as a 32-bit
            # float, which cannot hold a time of day to the second.
            EXCHANGE, '', {'clock': self.lamport.forward(),
                           'expires': math.ceil(time.time() + timeout) + 1})
        await asyncio.sleep(timeout)
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
        nodes = 0
        for reply in replies:
            for node, value in reply.items():
                if node == self.hostname or not isinstance(value, dict):
                    continue
                nodes += 1
                for task_id in value.get('revoked') or ():
                    self.state.revoke(task_id)
                self.lamport.adjust(int(value.get('clock') or 0))
        if nodes:
            log.info('mingle: sync with %d nodes', nodes)
        else:
            log.info('mingle: all alone')
        return nodes

    # --- inspect (Celery's names and reply shapes) ---------------------------
    def ping(self, **_: Any) -> dict[str, str]:
        return ok('pong')

    def active(self, safe: bool = False, **_: Any) -> list[dict[str, Any]]:
        return [r.info(self.hostname, safe) for r in self.state.running()]

    def reserved(self, safe: bool = False, **_: Any) -> list[dict[str, Any]]:
        return [r.info(self.hostname, safe) for r in self.state.reserved()]

    def scheduled(self, **_: Any) -> list[dict[str, Any]]:
        return [{'eta': r.eta.isoformat() if r.eta else None,
                 'priority': r.priority or 0,
                 'request': r.info(self.hostname)} for r in self.state.held.values()]

    def registered(self, taskinfoitems: Any = None, builtins: bool = False,
                   **_: Any) -> list[str]:
        """Task names, each with ``[field=value ...]`` for the fields it sets."""
        items = [item for item in (_listed(taskinfoitems) or DEFAULT_TASK_INFO_ITEMS)
                 if isinstance(item, str) and not item.startswith('_')]
        names = sorted(self.registry.runners) if builtins else self.registry.names()
        found = []
        for name in names:
            runner = self.registry.runners[name]
            source = getattr(runner, 'task', None) or runner.spec
            fields = [(field, getattr(source, field, None) if field != 'rate_limit'
                       else runner.spec.rate_limit) for field in items]
            shown = [f'{field}={value}' for field, value in fields if value is not None]
            found.append(f'{name} [{" ".join(shown)}]' if shown else name)
        return found

    def stats(self, **_: Any) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        hard, soft = self.options.time_limit, self.options.soft_time_limit
        pool = self.actions.pool_info()
        stats: dict[str, Any] = {
            'total': dict(self.state.total), 'pid': os.getpid(),
            'clock': str(self.lamport.value),
            'uptime': int(time.monotonic() - self.state.started_at),
            'pool': {
                'implementation': pool.get('implementation'),
                'max-concurrency': pool.get('max-concurrency'),
                'processes': pool.get('processes', []),
                'max-tasks-per-child': self.options.max_tasks_per_child or 'N/A',
                'put-guarded-by-semaphore': False,
                'timeouts': [soft or 0, hard or 0],
                'writes': {'total': 0, 'avg': '0.00', 'all': '', 'raw': '',
                           'strategy': 'fair', 'inqueues': {
                               'total': len(pool.get('processes', [])),
                               'active': pool.get('running', 0)}},
            },
            'broker': broker_info(self.options.broker_url),
            'prefetch_count': self.state.prefetch.value,
            'rusage': {field: getattr(usage, f'ru_{field}') for field in (
                'utime', 'stime', 'maxrss', 'ixrss', 'idrss', 'isrss', 'minflt', 'majflt',
                'nswap', 'inblock', 'oublock', 'msgsnd', 'msgrcv', 'nsignals', 'nvcsw',
                'nivcsw')},
        }
        if self.actions.autoscaler is not None:
            stats['autoscaler'] = self.actions.autoscaler.info()
        return stats

    def query_task(self, ids: Any = None, **_: Any) -> dict[str, Any]:
        wanted = set(_listed(ids))
        found: dict[str, Any] = {}
        for state, requests in (('active', self.state.running()),
                                ('reserved', self.state.reserved()),
                                ('scheduled', self.state.held.values())):
            for request in requests:
                if request.id in wanted:
                    found[request.id] = [state, request.info(self.hostname)]
        return found

    def revoked(self, **_: Any) -> list[str]:
        return list(self.state.revoked)

    def conf(self, with_defaults: bool = False, **_: Any) -> dict[str, Any]:
        """The app's settings, as Celery's ``conf`` (passwords masked)."""
        app = self.registry.app
        if self.registry.is_celery:
            from celery.worker import control as celery_control

            return celery_control.conf(_AppState(app), with_defaults=with_defaults)
        settings = app.conf.model_dump(mode='json')
        settings['broker_url'] = _mask(settings.get('broker_url') or '')
        return settings

    def report(self, **_: Any) -> dict[str, str]:
        app = self.registry.app
        if self.registry.is_celery:
            return ok(app.bugreport())
        return ok(f'\nsoftware -> leveret:{VERSION} py:{platform.python_version()}\n'
                  f'platform -> system:{platform.system()} arch:{platform.machine()}\n'
                  f'settings -> transport:amqp results:{results_uri(self.registry)}\n'
                  f'broker_url: {_mask(self.options.broker_url)!r}\n')

    def clock(self, **_: Any) -> dict[str, int]:
        return {'clock': self.lamport.value}

    def hello(self, from_node: str, revoked: Any = None, **_: Any) -> dict[str, Any] | None:
        if from_node == self.hostname:
            return None
        log.info('sync with %s', from_node)
        for task_id in revoked or ():
            self.state.revoke(task_id)
        return {'revoked': list(self.state.revoked), 'clock': self.lamport.forward()}

    def active_queues(self, **_: Any) -> list[dict[str, Any]]:
        return self.actions.active_queues()

    def memsample(self, **_: Any) -> str | None:
        """This process's resident memory now (kept for memdump), as Celery's
        ``sample_mem`` reads it with psutil."""
        try:
            sample = humanbytes(resident_bytes())
        except (OSError, ValueError, IndexError):
            return None
        self.mem_samples.append(sample)
        return sample

    def memdump(self, samples: int = 10, **_: Any) -> str:
        """The last memsample samples and the memory now (Celery's text)."""
        try:
            now = humanbytes(resident_bytes())
        except (OSError, ValueError, IndexError):
            return '- rss: (not available on this system).\n'
        if not self.mem_samples:
            return f'- rss: no memsample taken yet; now {now}.\n'
        lines = ['- rss (sample):', *(f'-    > {m},' for m in self.mem_samples[-samples:]),
                 f'- rss (end): {now}.']
        return '\n'.join(lines) + '\n'

    # --- control -------------------------------------------------------------
    def revoke(self, task_id: Any = None, terminate: bool = False, signal: str | None = None,
               **_: Any) -> dict[str, str]:
        ids = set(_listed(task_id))
        terminated = [one for one in ids
                      if self.actions.revoke(one, terminate=terminate, signal=signal)]
        if terminate:
            if not terminated:
                return ok('terminate: tasks unknown')
            return ok(f'terminate: {", ".join(terminated)}')
        log.info('Tasks flagged as revoked: %s', ', '.join(ids))
        return ok(f'tasks {ids} flagged as revoked')

    def terminate(self, signal: str, task_id: Any = None, **_: Any) -> dict[str, str]:
        return self.revoke(task_id, terminate=True, signal=signal)

    def heartbeat(self, **_: Any) -> None:
        self.events.worker('worker-heartbeat', **self.state.heartbeat_fields())
        return None

    def enable_events(self, **_: Any) -> dict[str, str]:
        if self.actions.set_task_events(True):
            log.info('Events of group {task} enabled by remote.')
            return ok('task events enabled')
        return ok('task events already enabled')

    def disable_events(self, **_: Any) -> dict[str, str]:
        if self.actions.set_task_events(False):
            log.info('Events of group {task} disabled by remote.')
            return ok('task events disabled')
        return ok('task events already disabled')

    def rate_limit(self, task_name: str, rate_limit: Any, **_: Any) -> dict[str, str]:
        from .rate_limits import parse_rate

        try:
            parse_rate(rate_limit)
        except ValueError as exc:
            return nok(f'Invalid rate limit string: {exc!r}')
        if task_name not in self.registry.runners:
            log.error('Rate limit attempt for unknown task %s', task_name)
            return nok('unknown task')
        self.registry.update(task_name, rate_limit=rate_limit or None)
        self.actions.set_rate_limit(task_name, rate_limit)
        if not rate_limit:
            log.info('Rate limits disabled for tasks of type %s', task_name)
            return ok('rate limit disabled successfully')
        log.info('New rate limit for tasks of type %s: %s.', task_name, rate_limit)
        return ok('new rate limit set successfully')

    def time_limit(self, task_name: str | None = None, hard: float | None = None,
                   soft: float | None = None, **_: Any) -> dict[str, str]:
        if task_name not in self.registry.runners:
            log.error('Change time limit attempt for unknown task %s', task_name)
            return nok('unknown task')
        self.registry.update(task_name, soft_time_limit=soft, time_limit=hard)
        log.info('New time limits for tasks of type %s: soft=%s hard=%s',
                 task_name, soft, hard)
        return ok('time limits set successfully')

    def add_consumer(self, queue: str, exchange: str | None = None,
                     exchange_type: str | None = None, routing_key: str | None = None,
                     **options: Any) -> dict[str, str]:
        self.actions.add_consumer(queue, exchange, exchange_type, routing_key, **options)
        return ok(f'add consumer {queue}')

    def cancel_consumer(self, queue: str, **_: Any) -> dict[str, str]:
        self.actions.cancel_consumer(queue)
        return ok(f'no longer consuming from {queue}')

    def pool_grow(self, n: int = 1, **_: Any) -> dict[str, str]:
        if self.actions.autoscaler is not None:
            return nok('pool_grow is not supported with autoscale. '
                       'Adjust autoscale range instead.')
        self.actions.pool_resize(int(n))
        return ok('pool will grow')

    def pool_shrink(self, n: int = 1, **_: Any) -> dict[str, str]:
        if self.actions.autoscaler is not None:
            return nok('pool_shrink is not supported with autoscale. '
                       'Adjust autoscale range instead.')
        self.actions.pool_resize(-int(n))
        return ok('pool will shrink')

    def autoscale(self, max: int | None = None, min: int | None = None,
                  **_: Any) -> dict[str, str]:
        autoscaler = self.actions.autoscaler
        if autoscaler is None:
            raise ValueError('Autoscale not enabled')
        high, low = autoscaler.update(None if max is None else int(max),
                                      None if min is None else int(min))
        return ok(f'autoscale now max={high} min={low}')

    def pool_restart(self, modules: Any = None, reload: bool = False, **_: Any
                     ) -> dict[str, str]:
        if not getattr(self.registry.app.conf, 'worker_pool_restarts', False):
            raise ValueError('Pool restarts not enabled')
        self.actions.pool_restart()
        return ok('reload started')

    def shutdown(self, msg: str = 'Got shutdown from remote', **_: Any) -> None:
        log.warning(msg)
        self.actions.request_shutdown()
        return None

    def election(self, id: str | None = None, topic: str | None = None,
                 action: str | None = None, **_: Any) -> None:
        return None  # no gossip here: nothing to elect


class _AppState:
    """What Celery's own ``conf`` command reads of its worker state: the app."""

    def __init__(self, app: Any) -> None:
        self.app = app


def _mask(url: str) -> str:
    return re.sub(r'(://[^:/@]*:)[^@]*@', r'\1********@', url)


__all__ = ['RemoteControl', 'WorkerActions']
