"""The start-up banner and broker description (passwords masked)."""

from __future__ import annotations

import sys
from typing import Any

from yarl import URL

from ..transport import normalize_url
from .celery_trace import backend_uri
from .options import WorkerOptions
from .tasks import Registry

VERSION = '0.1.0'


def safe_url(url: str) -> str:
    parsed = URL(normalize_url(url))
    if parsed.password:
        parsed = parsed.with_password('**')
    return str(parsed)


def broker_info(url: str) -> dict[str, Any]:
    parsed = URL(normalize_url(url))
    vhost = parsed.path[1:] or '/'
    return {'hostname': parsed.host, 'userid': parsed.user, 'virtual_host': vhost,
            'port': parsed.port, 'insist': False, 'ssl': parsed.scheme == 'amqps',
            'transport': 'amqp', 'connect_timeout': 4, 'transport_options': {},
            'login_method': 'PLAIN', 'uri_prefix': None, 'heartbeat': 60.0,
            'failover_strategy': 'round-robin', 'alternates': [], 'credential_provider': None}


def results_uri(registry: Registry) -> str:
    """Where results go: the app's backend (password masked), rpc:// for a Leveret app."""
    try:
        return backend_uri(registry.app)
    except Exception as exc:  # noqa: BLE001 - a backend that cannot even be described
        return f'(unknown backend: {exc!r})'


def render(options: WorkerOptions, registry: Registry, queues: Any = None) -> str:
    kind = 'Celery app' if registry.is_celery else 'Leveret app'
    tasks = registry.names()
    lines = [
        f' -------------- {options.hostname} v{VERSION} (leveret worker)',
        f'  app:          {options.app_name} ({kind})',
        f'  broker:       {safe_url(options.broker_url)}',
        f'  results:      {results_uri(registry)}',
        f'  concurrency:  {options.concurrency} ({options.pool} pool)',
        f'  prefetch:     {options.prefetch_count or "unlimited"}',
        f'  task events:  {"ON" if options.task_events else "OFF (enable with -E)"}',
        ' -------------- [queues]',
        *(f'  .> {queues.describe(queue) if queues is not None else queue}'
          for queue in (queues.names if queues is not None else options.queues)),
        '',
        '[tasks]',
        *(f'  . {name}' for name in tasks),
        '',
    ]
    return '\n'.join(lines)


def show(options: WorkerOptions, registry: Registry, queues: Any = None) -> None:
    print(render(options, registry, queues), file=sys.stderr, flush=True)
