"""``leveret worker``: run the tasks of a Leveret app or of a Celery app, with
the options of ``celery worker`` (same names, same meaning).

    leveret worker -A proj -Q celery,emails -c 4 --pool prefork -E -B

An option of ``celery worker`` that this worker does not have gets one line
on stderr and exit status 2, as does any other bad option.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from pydantic import ValidationError

from ..app import App
from ..transport import DEFAULT_URL
from .celery_trace import traced_registry, uses_app_backend
from .lifecycle import Worker
from .loader import AppNotFound, find_app
from .options import WorkerOptions, expand_hostname
from .queues import QueueSelectionError, task_queues
from .tasks import registry_for

POOLS = ('prefork', 'threads', 'asyncio', 'solo')
LOG_LEVELS = ('debug', 'info', 'warning', 'error', 'critical', 'fatal')

#: Options of ``celery worker`` this worker does not have, and why.
UNSUPPORTED = {
    '--detach': 'run it under a process supervisor (systemd, supervisord, a container)',
    '--statedb': 'revoked ids are kept in memory only',
    '--pool-start-method': 'pool processes are always forked',
    '--uid': 'start it as the user it should run as',
    '--gid': 'start it as the group it should run as',
    '--umask': 'set the umask before starting it',
    '--executable': 'pool processes are forked, not executed',
}
#: Their short spellings.
UNSUPPORTED_SHORT = {'-D': '--detach', '-S': '--statedb'}
#: Pools of ``celery worker`` this worker does not have.
OTHER_POOLS = ('eventlet', 'gevent', 'processes', 'custom')


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """Errors in one line (and exit status 2), not a usage text."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _autoscale(text: str) -> tuple[int, int]:
    """``MAX,MIN`` (or ``MAX``: MIN 0), as Celery reads it."""
    parts = [int(part) for part in text.split(',') if part.strip()]
    if not 1 <= len(parts) <= 2 or any(part < 0 for part in parts):
        raise argparse.ArgumentTypeError(f'expected MAX[,MIN], got {text!r}')
    high, low = (parts + [0])[:2]
    if low > high:
        high, low = low, high
    return high, low


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog='leveret worker', description='Run the tasks of a Leveret or Celery app.')
    p.add_argument('-A', '--app', required=True,
                   help='the app: module, module:attribute or package (as celery -A)')
    p.add_argument('-b', '--broker', help="broker URL (default: the app's broker_url)")
    p.add_argument('-Q', '--queues', help='comma-separated queues to consume '
                                          "(default: the app's task_queues)")
    p.add_argument('-X', '--exclude-queues', help='comma-separated queues not to consume')
    p.add_argument('-I', '--include', help='comma-separated modules to import')
    p.add_argument('-c', '--concurrency', type=int, help='pool size (default: CPU count)')
    p.add_argument('-P', '--pool', default=None, help=f'one of {", ".join(POOLS)}')
    p.add_argument('-n', '--hostname',
                   help='node name: %%h host name, %%n its first label, %%d its domain '
                        '(default celery@%%h)')
    p.add_argument('-E', '--task-events', '--events', action='store_true', default=None,
                   help='send task events (for celery events, Flower)')
    p.add_argument('-O', '--optimization', choices=('default', 'fair'),
                   help='accepted: jobs always go to an idle pool process first')
    p.add_argument('--prefetch-multiplier', type=int,
                   help='messages prefetched per pool slot (0: unlimited)')
    p.add_argument('--disable-prefetch', action='store_true',
                   help='prefetch only as many messages as there are pool slots')
    p.add_argument('--time-limit', type=float, help='hard time limit of tasks, seconds')
    p.add_argument('--soft-time-limit', type=float, help='soft time limit of tasks, seconds')
    p.add_argument('--max-tasks-per-child', type=int,
                   help='replace a pool process after this many tasks')
    p.add_argument('--max-memory-per-child', type=int,
                   help='replace a pool process whose resident memory passed this (KiB)')
    p.add_argument('--autoscale', type=_autoscale, metavar='MAX,MIN',
                   help='grow and shrink the pool between MIN and MAX')
    p.add_argument('--purge', '--discard', action='store_true',
                   help='discard the waiting messages of the queues first')
    p.add_argument('--without-gossip', action='store_true',
                   help='accepted: this worker does not consume other workers\' events')
    p.add_argument('--without-mingle', action='store_true',
                   help='do not sync revoked ids with the other workers at start')
    p.add_argument('--without-heartbeat', action='store_true',
                   help='send no worker heartbeat events')
    p.add_argument('--heartbeat-interval', type=float,
                   help='seconds between worker heartbeat events (default 2)')
    p.add_argument('-B', '--beat', action='store_true',
                   help="run the app's beat_schedule in the worker (Celery apps)")
    p.add_argument('-s', '--schedule-filename', '--schedule', default='celerybeat-schedule',
                   help="beat's schedule file")
    p.add_argument('--scheduler', help="beat's scheduler class")
    p.add_argument('-f', '--logfile', help='log to this file (default: stderr)')
    p.add_argument('--pidfile', help='write the pid here (refused while it names a live one)')
    p.add_argument('--shutdown-timeout', type=float, default=30.0,
                   help='on SIGTERM, how long running tasks may take to finish')
    p.add_argument('-l', '--loglevel', default='info', type=str.lower, choices=LOG_LEVELS)
    return p


def refuse_unsupported(argv: list[str]) -> None:
    """Raise :class:`UsageError` for the first ``celery worker`` option this worker lacks."""
    for arg in argv:
        name = arg.split('=', 1)[0]
        name = UNSUPPORTED_SHORT.get(name, name)
        if name in UNSUPPORTED:
            raise UsageError(f'{name} is not supported: {UNSUPPORTED[name]}')


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or '').split(',') if part.strip()]


def _app_settings(app: Any) -> dict[str, Any]:
    """The worker-related settings of a Leveret or a Celery app."""
    conf = app.conf
    settings = {'broker_url': conf.broker_url, 'queue': conf.task_default_queue,
                'broker_use_ssl': conf.broker_use_ssl,
                'concurrency': conf.worker_concurrency,
                'prefetch_multiplier': conf.worker_prefetch_multiplier,
                'task_events': conf.worker_send_task_events,
                'time_limit': conf.task_time_limit, 'soft_time_limit': conf.task_soft_time_limit}
    if isinstance(app, App):
        settings.update(queue_arguments=conf.task_queue_arguments, disable_rate_limits=False,
                        max_tasks_per_child=None, max_memory_per_child=None, pool=None)
    else:
        settings.update(queue_arguments={},
                        disable_rate_limits=bool(conf.worker_disable_rate_limits),
                        max_tasks_per_child=conf.worker_max_tasks_per_child,
                        max_memory_per_child=conf.worker_max_memory_per_child,
                        pool=conf.worker_pool)
    return settings


def options_from(args: argparse.Namespace, app: Any) -> WorkerOptions:
    settings = _app_settings(app)
    pool = args.pool or settings['pool'] or 'prefork'
    if pool in OTHER_POOLS:
        raise UsageError(f'-P {pool} is not supported: use one of {", ".join(POOLS)}')
    if pool not in POOLS:
        raise UsageError(f'-P {pool}: unknown pool (one of {", ".join(POOLS)})')
    if args.beat and isinstance(app, App):
        raise UsageError('-B runs a Celery app\'s beat_schedule: this is a Leveret app')
    values: dict[str, Any] = {
        'broker_url': args.broker or settings['broker_url'] or DEFAULT_URL,
        'pool': pool,
        'app_name': args.app,
        'shutdown_timeout': args.shutdown_timeout,
        'queue_arguments': settings['queue_arguments'],
        'default_queue': settings['queue'],
        'autoscale': args.autoscale,
        'max_tasks_per_child': args.max_tasks_per_child or settings['max_tasks_per_child'],
        'max_memory_per_child': args.max_memory_per_child or settings['max_memory_per_child'],
        'heartbeat': not args.without_heartbeat,
        'disable_rate_limits': settings['disable_rate_limits'],
        'beat': args.beat, 'schedule_filename': args.schedule_filename,
        'scheduler': args.scheduler, 'purge': args.purge, 'mingle': not args.without_mingle,
        'broker_use_ssl': settings['broker_use_ssl'],
    }
    if args.heartbeat_interval:
        values['heartbeat_interval'] = args.heartbeat_interval
    concurrency = args.concurrency or settings['concurrency']
    if args.autoscale:
        concurrency = args.autoscale[0]  # the pool's size; autoscale keeps MIN..MAX busy
    if pool == 'solo':
        concurrency = 1
    if concurrency:
        values['concurrency'] = concurrency
    values['hostname'] = expand_hostname(args.hostname or 'celery@%h')
    multiplier = args.prefetch_multiplier
    values['prefetch_multiplier'] = multiplier if multiplier is not None \
        else settings['prefetch_multiplier']
    if args.disable_prefetch:
        values['prefetch_multiplier'] = 1
    events = args.task_events if args.task_events is not None else settings['task_events']
    values['task_events'] = bool(events)
    values['time_limit'] = args.time_limit or settings['time_limit']
    values['soft_time_limit'] = args.soft_time_limit or settings['soft_time_limit']
    values['queues'] = _split(args.queues) or [settings['queue']]
    return WorkerOptions(**values)


def setup_logging(level: str, logfile: str | None = None, hostname: str = '') -> None:
    handler: logging.Handler
    if logfile:
        path = logfile.replace('%n', hostname.partition('@')[0]).replace('%h', hostname) \
            .replace('%i', '0').replace('%I', '')
        handler = logging.FileHandler(path)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        '%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s'))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel('CRITICAL' if level.upper() == 'FATAL' else level.upper())
    for noisy in ('aiormq', 'aio_pika'):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class PidFile:
    """``--pidfile``: refused while it names a live process, removed at exit."""

    def __init__(self, path: str) -> None:
        self.path = path

    def acquire(self) -> None:
        try:
            with open(self.path) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                pass  # stale: the process is gone
            except PermissionError:
                raise UsageError(f'pidfile {self.path} names a running process ({pid})') from None
            else:
                raise UsageError(f'pidfile {self.path} names a running process ({pid})')
        with open(self.path, 'w') as f:
            f.write(f'{os.getpid()}\n')

    def release(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _fail(message: str) -> int:
    print(f'leveret worker: {message}', file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        refuse_unsupported(argv)
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc))
    if args.include:
        for module in _split(args.include):
            try:
                importlib.import_module(module)
            except ImportError as exc:
                return _fail(f'-I {module}: {exc}')
    try:
        app = find_app(args.app)
    except AppNotFound as exc:
        return _fail(str(exc))
    try:
        options = options_from(args, app)
    except UsageError as exc:
        return _fail(str(exc))
    except ValidationError as exc:
        errors = '; '.join(f'{".".join(map(str, e["loc"]))}: {e["msg"]}' for e in exc.errors())
        return _fail(f'invalid options: {errors}')
    setup_logging(args.loglevel, args.logfile, options.hostname)
    # Tasks that send tasks (and Celery's own retry()) publish through the
    # app: make it use the worker's broker.
    app.conf.broker_url = options.broker_url if isinstance(app, App) else \
        (args.broker or options.broker_url)
    try:
        queues = task_queues(app, _split(args.queues), _split(args.exclude_queues),
                             options.default_queue, options.queue_arguments)
    except QueueSelectionError as exc:
        return _fail(str(exc))
    options = options.model_copy(update={'queues': queues.names})
    registry = traced_registry(app) if uses_app_backend(app) else registry_for(app)
    if registry.is_celery:
        # What celery worker sets in the app's configuration (control conf shows it).
        app.conf.worker_disable_prefetch = bool(args.disable_prefetch)
        modules = {type(task).__module__ for task in app.tasks.values()}
        app.conf.include = tuple(set(app.conf.include or ()) | set(_split(args.include))
                                 | modules)
    pidfile = PidFile(args.pidfile) if args.pidfile else None
    try:
        if pidfile is not None:
            pidfile.acquire()
    except (UsageError, OSError) as exc:
        return _fail(str(exc))
    runner: Callable[..., int]
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    try:
        return runner(Worker(registry, options, queues).run())
    finally:
        if pidfile is not None:
            pidfile.release()


if __name__ == '__main__':
    sys.exit(main())
