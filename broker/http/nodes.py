"""/api/nodes: the one node, with memory, file descriptors, sockets, alarms
and uptime as the process measures them.  Monitoring users only."""

from __future__ import annotations

import os
import resource
import shutil
import time
from typing import Any

from leveret import __version__

from . import auth, shapes
from .errors import not_found
from .overview import EXCHANGE_TYPES
from .request import Call

_PAGE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096
_ZERO_IO = ('io_read_count', 'io_read_bytes', 'io_read_avg_time', 'io_write_count',
            'io_write_bytes', 'io_write_avg_time', 'io_sync_count', 'io_sync_avg_time',
            'io_seek_count', 'io_seek_avg_time', 'io_reopen_count', 'mnesia_ram_tx_count',
            'mnesia_disk_tx_count', 'msg_store_read_count', 'msg_store_write_count',
            'queue_index_write_count', 'queue_index_read_count', 'gc_num',
            'gc_bytes_reclaimed', 'context_switches')


def memory_used() -> int:
    """Resident set size of the process, bytes."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def fds_used() -> int:
    try:
        return len(os.listdir('/proc/self/fd'))
    except OSError:
        return 0


def node(call: Call) -> dict[str, Any]:
    broker = call.broker
    memory = broker.memory
    settings = broker.settings
    fd_total = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    try:
        disk_free = shutil.disk_usage(settings.data_dir).free
    except OSError:
        disk_free = 0
    alarm = bool(memory.alarm)
    out: dict[str, Any] = {
        'partitions': [],
        'os_pid': str(os.getpid()),
        'fd_total': fd_total,
        'sockets_total': max(0, fd_total - 64),
        'mem_limit': memory.high,
        'mem_alarm': alarm,
        'disk_free_limit': 50_000_000,
        'disk_free_alarm': False,
        'proc_total': 1,
        'rates_mode': 'basic',
        'uptime': int((time.time() - broker.started_at) * 1000),
        'run_queue': 0,
        'processors': os.cpu_count() or 1,
        'exchange_types': EXCHANGE_TYPES,
        'auth_mechanisms': [{'name': m, 'description': f'{m} authentication', 'enabled': True}
                            for m in ('PLAIN', 'AMQPLAIN')],
        'applications': [{'name': 'leveret', 'description': 'Leveret',
                          'version': __version__}],
        'contexts': [{'description': 'Leveret Management', 'path': '/',
                      'cowboy_opts': '[]', 'port': str(settings.management_port)}],
        'log_files': ['<stdout>'],
        'db_dir': str(settings.data_dir),
        'config_files': [],
        'net_ticktime': 60,
        'enabled_plugins': ['rabbitmq_management'],
        'mem_calculation_strategy': 'rss',
        'ra_open_file_metrics': {'ra_log_wal': 0, 'ra_log_segment_writer': 0},
        'name': broker.node_name,
        'type': 'disc',
        'running': True,
        'mem_used': memory_used(),
        'mem_used_details': dict(shapes.ZERO_RATE),
        'fd_used': fds_used(),
        'fd_used_details': dict(shapes.ZERO_RATE),
        'sockets_used': len(broker.sessions.connections),
        'sockets_used_details': dict(shapes.ZERO_RATE),
        'proc_used': 1,
        'proc_used_details': dict(shapes.ZERO_RATE),
        'disk_free': disk_free,
        'disk_free_details': dict(shapes.ZERO_RATE),
        'cluster_links': [],
        'metrics_gc_queue_length': dict.fromkeys(
            ('connection_closed', 'channel_closed', 'consumer_deleted', 'exchange_deleted',
             'queue_deleted', 'vhost_deleted', 'node_node_deleted',
             'channel_consumer_deleted'), 0),
    }
    for name in _ZERO_IO:
        out[name] = 0
        out[f'{name}_details'] = dict(shapes.ZERO_RATE)
    churn = broker.churn
    rates = churn.rates()
    for name in churn.COUNTERS:
        out[name] = getattr(churn, name)
        out[f'{name}_details'] = shapes.rate(rates[name])
    if call.flag('memory'):
        out['memory'] = {'total': {'rss': out['mem_used'], 'allocated': out['mem_used']},
                         'queue_procs': memory.held, 'strategy': 'rss'}
    return out


async def list_nodes(call: Call) -> Any:
    auth.require_monitor(call)
    return [node(call)]


async def get_node(call: Call) -> Any:
    auth.require_monitor(call)
    if call.params['name'] != call.broker.node_name:
        raise not_found()
    return node(call)


ROUTES = [
    ('nodes', {'GET': list_nodes}),
    ('nodes/{name}', {'GET': get_node}),
]
