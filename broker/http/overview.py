"""GET /api/overview, /api/cluster-name, /api/whoami, /api/extensions."""

from __future__ import annotations

import platform
from typing import Any

from leveret import __version__

from . import auth, shapes
from .common import all_channels, connections, unacked_by_queue
from .listing import select_columns
from .request import Call

EXCHANGE_TYPES = [
    {'name': kind, 'description': f'AMQP {kind} exchange, as per the AMQP specification',
     'enabled': True} for kind in ('direct', 'fanout', 'headers', 'topic')]


def _churn(call: Call) -> dict[str, Any]:
    churn = call.broker.churn
    rates = churn.rates()
    out: dict[str, Any] = {}
    for name in sorted(churn.COUNTERS):
        out[name] = getattr(churn, name)
        out[f'{name}_details'] = shapes.rate(rates[name])
    return out


def listeners(call: Call) -> list[dict[str, Any]]:
    node = call.broker.node_name
    return [{'node': node, 'protocol': item['protocol'], 'ip_address': item['ip_address'],
             'port': item['port'], 'socket_opts': {}} for item in call.broker.listeners()]


async def get_overview(call: Call) -> Any:
    broker = call.broker
    node = broker.node_name
    vhosts = auth.visible_vhosts(call)
    names = {v.name for v in vhosts}
    unacked = await unacked_by_queue(call.broker)
    ready = sum(len(q.ready) for v in vhosts for q in v.queues.values())
    n_unacked = sum(n for q, (n, _) in unacked.items() if q.vhost_name in names)
    conns = [c for c in connections(call) if c.vhost.name in names]
    chans = [ch for ch in all_channels(call) if ch.vhost.name in names]
    stats = shapes.sum_channel_stats(
        [shapes.channel_stats(v.closed_channels) for v in vhosts]
        + [shapes.channel_stats(ch) for ch in chans])
    for key in ('disk_reads', 'disk_writes'):
        stats.setdefault(key, 0)
        stats.setdefault(f'{key}_details', dict(shapes.ZERO_RATE))
    data: dict[str, Any] = {
        'management_version': __version__,
        'rates_mode': 'basic',
        'sample_retention_policies': {'global': [600, 3600, 28800, 86400],
                                      'basic': [600, 3600], 'detailed': [600]},
        'exchange_types': EXCHANGE_TYPES,
        'product_version': __version__,
        'product_name': 'Leveret',
        'rabbitmq_version': __version__,
        'cluster_name': node,
        'erlang_version': platform.python_version(),
        'erlang_full_version': f'Python {platform.python_version()} '
                               f'({platform.python_implementation()})',
        'release_series_support_status': 'supported',
        'disable_stats': False,
        'enable_queue_totals': False,
        'message_stats': dict(sorted(stats.items())),
        'churn_rates': _churn(call),
        'queue_totals': shapes.queue_totals(ready, n_unacked,
                                            [q for v in vhosts for q in v.queues.values()]),
        'object_totals': {
            'channels': len(chans), 'connections': len(conns),
            'consumers': sum(len(ch.consumers) for ch in chans),
            'exchanges': sum(len(v.exchanges) for v in vhosts),
            'queues': sum(len(v.queues) for v in vhosts)},
        'statistics_db_event_queue': 0,
        'node': node,
        'listeners': listeners(call),
        'contexts': [{'ssl_opts': [], 'node': node, 'description': 'Leveret Management',
                      'path': '/', 'cowboy_opts': '[]',
                      'port': str(broker.settings.management_port)}],
    }
    if 'columns' in call.query:
        columns = [c for c in call.query['columns'].split(',') if c]
        return select_columns(data, columns, whole_top_level=True)
    return data


async def get_cluster_name(call: Call) -> Any:
    return {'name': call.broker.node_name}


async def get_whoami(call: Call) -> Any:
    return {'name': call.user.name, 'tags': list(call.user.tags)}


async def get_extensions(call: Call) -> Any:
    return []


ROUTES = [
    ('overview', {'GET': get_overview}),
    ('cluster-name', {'GET': get_cluster_name}),
    ('whoami', {'GET': get_whoami}),
    ('extensions', {'GET': get_extensions}),
]
