"""``leveret worker``: run the tasks of a Leveret app or of a Celery app.

    leveret worker -A proj -Q celery,emails -c 4 --pool prefork -E
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ..app import App
from ..transport import DEFAULT_URL
from .lifecycle import Worker
from .loader import AppNotFound, find_app
from .options import WorkerOptions, expand_hostname
from .tasks import registry_for

POOLS = ('prefork', 'threads', 'asyncio', 'solo')


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='leveret worker',
                                description='Run the tasks of a Leveret or Celery app.')
    p.add_argument('-A', '--app', required=True,
                   help='the app: module, module:attribute or package (as celery -A)')
    p.add_argument('-b', '--broker', help="broker URL (default: the app's broker_url)")
    p.add_argument('-Q', '--queues', help='comma-separated queues to consume '
                                          "(default: the app's default queue)")
    p.add_argument('-c', '--concurrency', type=int, help='pool size (default: CPU count)')
    p.add_argument('-P', '--pool', choices=POOLS, default='prefork')
    p.add_argument('-n', '--hostname', help='node name, %%h = host name (default leveret@%%h)')
    p.add_argument('-E', '--task-events', action='store_true', default=None,
                   help='send task events (for celery events, Flower)')
    p.add_argument('--prefetch-multiplier', type=int,
                   help='messages prefetched per pool slot (0: unlimited)')
    p.add_argument('--time-limit', type=float, help='hard time limit of tasks, seconds')
    p.add_argument('--soft-time-limit', type=float, help='soft time limit of tasks, seconds')
    p.add_argument('--shutdown-timeout', type=float, default=30.0,
                   help='on SIGTERM, how long running tasks may take to finish')
    p.add_argument('-l', '--loglevel', default='info',
                   choices=('debug', 'info', 'warning', 'error', 'critical',
                            'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'))
    return p


def _app_settings(app: Any) -> dict[str, Any]:
    """The worker-related settings of a Leveret or a Celery app."""
    conf = app.conf
    if isinstance(app, App):
        return {'broker_url': conf.broker_url, 'queue': conf.task_default_queue,
                'broker_use_ssl': conf.broker_use_ssl,
                'concurrency': conf.worker_concurrency,
                'prefetch_multiplier': conf.worker_prefetch_multiplier,
                'task_events': conf.worker_send_task_events,
                'time_limit': conf.task_time_limit, 'soft_time_limit': conf.task_soft_time_limit,
                'queue_arguments': conf.task_queue_arguments}
    max_priority = conf.task_queue_max_priority
    return {'broker_url': conf.broker_url, 'queue': conf.task_default_queue,
            'broker_use_ssl': conf.broker_use_ssl,
            'concurrency': conf.worker_concurrency,
            'prefetch_multiplier': conf.worker_prefetch_multiplier,
            'task_events': conf.worker_send_task_events,
            'time_limit': conf.task_time_limit, 'soft_time_limit': conf.task_soft_time_limit,
            'queue_arguments': {},
            'max_priority': max_priority}


def options_from(args: argparse.Namespace, app: Any) -> WorkerOptions:
    settings = _app_settings(app)
    values: dict[str, Any] = {
        'broker_url': args.broker or settings['broker_url'] or DEFAULT_URL,
        'queues': [q.strip() for q in (args.queues or settings['queue']).split(',') if q.strip()],
        'pool': args.pool,
        'app_name': args.app,
        'shutdown_timeout': args.shutdown_timeout,
        'queue_arguments': settings['queue_arguments'],
        'default_queue': settings['queue'],
        'broker_use_ssl': settings['broker_use_ssl'],
    }
    if settings.get('max_priority'):
        values['queue_arguments'] = {q: {'x-max-priority': settings['max_priority']}
                                     for q in values['queues']}
    concurrency = args.concurrency or settings['concurrency']
    if args.pool == 'solo':
        concurrency = 1
    if concurrency:
        values['concurrency'] = concurrency
    if args.hostname:
        values['hostname'] = expand_hostname(args.hostname)
    multiplier = args.prefetch_multiplier
    values['prefetch_multiplier'] = multiplier if multiplier is not None \
        else settings['prefetch_multiplier']
    events = args.task_events if args.task_events is not None else settings['task_events']
    values['task_events'] = bool(events)
    values['time_limit'] = args.time_limit or settings['time_limit']
    values['soft_time_limit'] = args.soft_time_limit or settings['soft_time_limit']
    return WorkerOptions(**values)


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format='%(asctime)s %(levelname)-7s %(processName)s %(name)s: '
                               '%(message)s')
    for noisy in ('aiormq', 'aio_pika'):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.loglevel)
    try:
        app = find_app(args.app)
    except AppNotFound as exc:
        print(f'leveret worker: {exc}', file=sys.stderr)
        return 2
    try:
        options = options_from(args, app)
    except ValidationError as exc:
        print(f'leveret worker: invalid options:\n{exc}', file=sys.stderr)
        return 2
    # Tasks that send tasks (and Celery's own retry()) publish through the
    # app: make it use the worker's broker.
    if isinstance(app, App):
        app.conf.broker_url = options.broker_url
    else:
        app.conf.broker_url = args.broker or options.broker_url
    registry = registry_for(app)
    runner: Callable[..., int]
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    return runner(Worker(registry, options).run())


if __name__ == '__main__':
    sys.exit(main())
