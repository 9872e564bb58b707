"""The metric families of a snapshot, with RabbitMQ's names, types, labels
and help texts (``rabbitmq_prometheus`` 3.10), and Leveret's own.

``/metrics`` sums every queue, channel and connection into one sample per
family, as RabbitMQ's default endpoint does; ``/metrics/per-object`` gives
one sample per queue (``vhost``, ``queue``), per channel and per connection
(``channel``, RabbitMQ's label for both).  ``rabbitmq_identity_info`` names
the node and cluster every Grafana panel joins on, and the endpoint
(``rabbitmq_endpoint``, as RabbitMQ 3.13 labels it).

Built off the event loop from a :class:`~.snapshot.Snapshot`; nothing here
touches the live broker.  ``docs/metrics.md`` lists RabbitMQ's families that
are left out, and why.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import prometheus_client
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)

from leveret import __version__

from ..model.celery import LATENCY_BOUNDS
from .snapshot import CHANNEL_STATS, DELIVERY_STATS, QueueRow, Snapshot

AGGREGATED = 'aggregated'
PER_OBJECT = 'per-object'
#: Leveret has one kind of queue, with classic queues' behaviour.
QUEUE_TYPE = 'rabbit_classic_queue'
PROTOCOL = 'amqp091'

_D = {name: i for i, name in enumerate(DELIVERY_STATS)}
_C = {name: i for i, name in enumerate(CHANNEL_STATS)}

#: Queue gauges: name, help, value of a row.
QUEUE_GAUGES: list[tuple[str, str, Callable[[QueueRow], int]]] = [
    ('rabbitmq_queue_messages_ready', 'Messages ready to be delivered to consumers',
     lambda q: q.ready),
    ('rabbitmq_queue_messages_unacked',
     'Messages delivered to consumers but not yet acknowledged', lambda q: q.unacked),
    ('rabbitmq_queue_messages',
     'Sum of ready and unacknowledged messages - total queue depth',
     lambda q: q.ready + q.unacked),
    ('rabbitmq_queue_consumers', 'Consumers on a queue', lambda q: q.consumers),
    # Leveret keeps every message in memory (persistent ones on disk too).
    ('rabbitmq_queue_messages_ram', 'Ready and unacknowledged messages stored in memory',
     lambda q: q.ready + q.unacked),
    ('rabbitmq_queue_messages_ram_bytes',
     'Size of ready and unacknowledged messages stored in memory',
     lambda q: q.ready_bytes + q.unacked_bytes),
    ('rabbitmq_queue_messages_ready_ram', 'Ready messages stored in memory',
     lambda q: q.ready),
    ('rabbitmq_queue_messages_unacked_ram', 'Unacknowledged messages stored in memory',
     lambda q: q.unacked),
    ('rabbitmq_queue_messages_bytes', 'Size in bytes of ready and unacknowledged messages',
     lambda q: q.ready_bytes + q.unacked_bytes),
    ('rabbitmq_queue_messages_ready_bytes', 'Size in bytes of ready messages',
     lambda q: q.ready_bytes),
    ('rabbitmq_queue_messages_unacked_bytes', 'Size in bytes of all unacknowledged messages',
     lambda q: q.unacked_bytes),
    ('rabbitmq_queue_messages_paged_out', 'Messages paged out to disk', lambda q: 0),
    ('rabbitmq_queue_messages_paged_out_bytes', 'Size in bytes of messages paged out to disk',
     lambda q: 0),
]

#: Channel gauges: name, help, attribute of a ChannelRow.
CHANNEL_GAUGES = [
    ('rabbitmq_channel_consumers', 'Consumers on a channel', 'consumers'),
    ('rabbitmq_channel_messages_unacked', 'Delivered but not yet acknowledged messages',
     'unacked'),
    ('rabbitmq_channel_messages_unconfirmed', 'Published but not yet confirmed messages',
     'unconfirmed'),
    ('rabbitmq_channel_messages_uncommitted',
     'Messages received in a transaction but not yet committed', 'uncommitted'),
    ('rabbitmq_channel_acks_uncommitted',
     'Message acknowledgements in a transaction not yet committed', 'acks_uncommitted'),
    ('rabbitmq_consumer_prefetch', 'Limit of unacknowledged messages for each consumer',
     'prefetch'),
    ('rabbitmq_channel_prefetch',
     'Total limit of unacknowledged messages for all consumers on a channel',
     'global_prefetch'),
]

#: Channel counters: name (without _total), help, counter.
CHANNEL_COUNTERS = [
    ('rabbitmq_channel_messages_published',
     'Total number of messages published into an exchange on a channel', 'stat_publish'),
    ('rabbitmq_channel_messages_confirmed',
     'Total number of messages published into an exchange and confirmed on the channel',
     'stat_confirm'),
    ('rabbitmq_channel_messages_unroutable_returned',
     'Total number of messages published as mandatory into an exchange and returned to the '
     'publisher as unroutable', 'stat_return_unroutable'),
    ('rabbitmq_channel_messages_unroutable_dropped',
     'Total number of messages published as non-mandatory into an exchange and dropped as '
     'unroutable', 'stat_drop_unroutable'),
    ('rabbitmq_channel_get_ack',
     'Total number of messages fetched with basic.get in manual acknowledgement mode',
     'stat_get'),
    ('rabbitmq_channel_get',
     'Total number of messages fetched with basic.get in automatic acknowledgement mode',
     'stat_get_no_ack'),
    ('rabbitmq_channel_messages_delivered_ack',
     'Total number of messages delivered to consumers in manual acknowledgement mode',
     'stat_deliver'),
    ('rabbitmq_channel_messages_delivered',
     'Total number of messages delivered to consumers in automatic acknowledgement mode',
     'stat_deliver_no_ack'),
    ('rabbitmq_channel_messages_redelivered',
     'Total number of messages redelivered to consumers', 'stat_redeliver'),
    ('rabbitmq_channel_messages_acked',
     'Total number of messages acknowledged by consumers', 'stat_ack'),
    ('rabbitmq_channel_get_empty',
     'Total number of times basic.get operations fetched no message', 'stat_get_empty'),
]

CONNECTION_COUNTERS = [
    ('rabbitmq_connection_incoming_bytes', 'Total number of bytes received on a connection',
     'recv_oct'),
    ('rabbitmq_connection_outgoing_bytes', 'Total number of bytes sent on a connection',
     'send_oct'),
    ('rabbitmq_connection_incoming_packets',
     'Total number of packets received on a connection', 'recv_cnt'),
    ('rabbitmq_connection_outgoing_packets', 'Total number of packets sent on a connection',
     'send_cnt'),
]

CHURN = [
    ('rabbitmq_connections_opened', 'Total number of connections opened', 'connection_created'),
    ('rabbitmq_connections_closed', 'Total number of connections closed or terminated',
     'connection_closed'),
    ('rabbitmq_channels_opened', 'Total number of channels opened', 'channel_created'),
    ('rabbitmq_channels_closed', 'Total number of channels closed', 'channel_closed'),
    ('rabbitmq_queues_declared', 'Total number of queues declared', 'queue_declared'),
    ('rabbitmq_queues_created', 'Total number of queues created', 'queue_created'),
    ('rabbitmq_queues_deleted', 'Total number of queues deleted', 'queue_deleted'),
]

#: rabbitmq_global_messages_*: name, help, value from the channel totals.
GLOBAL_BY_PROTOCOL: list[tuple[str, str, Callable[[list[int]], int]]] = [
    ('received', 'Total number of messages received from publishers',
     lambda t: t[_C['stat_publish']]),
    ('routed', 'Total number of messages routed to queues or streams',
     lambda t: t[_C['stat_publish']] - t[_C['stat_drop_unroutable']]
     - t[_C['stat_return_unroutable']]),
    ('confirmed', 'Total number of messages confirmed to publishers',
     lambda t: t[_C['stat_confirm']]),
    ('unroutable_dropped', 'Total number of messages published as non-mandatory into an '
     'exchange and dropped as unroutable', lambda t: t[_C['stat_drop_unroutable']]),
    ('unroutable_returned', 'Total number of messages published as mandatory into an '
     'exchange and returned to the publisher as unroutable',
     lambda t: t[_C['stat_return_unroutable']]),
]
GLOBAL_BY_QUEUE_TYPE: list[tuple[str, str, Callable[[list[int]], int]]] = [
    ('delivered', 'Total number of messages delivered to consumers',
     lambda t: sum(t[_C[n]] for n in ('stat_deliver', 'stat_deliver_no_ack', 'stat_get',
                                      'stat_get_no_ack'))),
    ('delivered_consume_auto_ack', 'Total number of messages delivered to consumers using '
     'basic.consume with automatic acknowledgment', lambda t: t[_C['stat_deliver_no_ack']]),
    ('delivered_consume_manual_ack', 'Total number of messages delivered to consumers using '
     'basic.consume with manual acknowledgment', lambda t: t[_C['stat_deliver']]),
    ('delivered_get_auto_ack', 'Total number of messages delivered to consumers using '
     'basic.get with automatic acknowledgment', lambda t: t[_C['stat_get_no_ack']]),
    ('delivered_get_manual_ack', 'Total number of messages delivered to consumers using '
     'basic.get with manual acknowledgment', lambda t: t[_C['stat_get']]),
    ('redelivered', 'Total number of messages redelivered to consumers',
     lambda t: t[_C['stat_redeliver']]),
    ('acknowledged', 'Total number of messages acknowledged by consumers',
     lambda t: t[_C['stat_ack']]),
    ('get_empty', 'Total number of times basic.get operations fetched no message',
     lambda t: t[_C['stat_get_empty']]),
]

TASK_LABELS = ['vhost', 'queue', 'task']
WORKER_LABELS = ['vhost', 'worker']


class Host:
    """What the families read of the process besides the snapshot."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self._process = prometheus_client.ProcessCollector(registry=None)

    def process(self) -> dict[str, float]:
        """process_* values as prometheus_client's ProcessCollector reads them."""
        values: dict[str, float] = {}
        for metric in self._process.collect():
            for sample in metric.samples:
                values[sample.name] = sample.value
        return values

    def disk_free(self) -> int | None:
        if self.data_dir is None:
            return None
        try:
            return shutil.disk_usage(self.data_dir).free
        except OSError:
            return None


def families(snap: Snapshot, host: Host, endpoint: str = AGGREGATED) -> Iterator[Metric]:
    """Every family, in RabbitMQ's order, then Leveret's."""
    per_object = endpoint == PER_OBJECT
    yield from _identity(snap, endpoint)
    yield from _process(snap, host, per_object)
    for name, text, key in CHURN:
        yield CounterMetricFamily(name, text, value=snap.churn[key])
    yield from _queues(snap, per_object)
    yield from _channels(snap, per_object)
    yield from _connections(snap, per_object)
    yield _queue_published(snap, per_object)
    yield GaugeMetricFamily('rabbitmq_connections', 'Connections currently open',
                            value=len(snap.connections))
    yield GaugeMetricFamily('rabbitmq_channels', 'Channels currently open',
                            value=len(snap.channels))
    yield GaugeMetricFamily('rabbitmq_consumers', 'Consumers currently connected',
                            value=snap.consumers)
    yield GaugeMetricFamily('rabbitmq_queues', 'Queues available', value=snap.queue_count)
    yield from _global(snap)
    yield from _leveret(snap)
    yield from _celery(snap)


def _identity(snap: Snapshot, endpoint: str) -> Iterator[Metric]:
    build = UnknownMetricFamily(
        'rabbitmq_build_info', 'RabbitMQ & Erlang/OTP version info',
        labels=['rabbitmq_version', 'prometheus_plugin_version', 'prometheus_client_version',
                'erlang_version'])
    build.add_metric([__version__, __version__, prometheus_client_version(),
                      f'Python {platform.python_version()}'], 1)
    yield build
    identity = UnknownMetricFamily(
        'rabbitmq_identity_info', 'RabbitMQ node & cluster identity info',
        labels=['rabbitmq_node', 'rabbitmq_cluster', 'rabbitmq_cluster_permanent_id',
                'rabbitmq_endpoint'])
    identity.add_metric([snap.node, snap.cluster, snap.cluster, endpoint], 1)
    yield identity


def _process(snap: Snapshot, host: Host, per_object: bool) -> Iterator[Metric]:
    process = host.process()
    if 'process_start_time_seconds' in process and not per_object:
        yield GaugeMetricFamily('process_start_time_seconds',
                                'Start time of the process since unix epoch in seconds.',
                                value=process['process_start_time_seconds'])
    if not per_object:
        yield UnknownMetricFamily('rabbitmq_alarms_memory_used_watermark',
                                  'is 1 if VM memory watermark alarm is in effect',
                                  value=int(snap.memory_alarm))
    max_fds = process.get('process_max_fds') or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    open_fds = process.get('process_open_fds')
    if open_fds is None:
        open_fds = len(os.listdir('/proc/self/fd')) if os.path.isdir('/proc/self/fd') else 0
    yield GaugeMetricFamily('rabbitmq_process_open_fds', 'Open file descriptors',
                            value=open_fds)
    yield GaugeMetricFamily('rabbitmq_process_open_tcp_sockets', 'Open TCP sockets',
                            value=len(snap.connections))
    yield GaugeMetricFamily('rabbitmq_process_resident_memory_bytes', 'Memory used in bytes',
                            value=process.get('process_resident_memory_bytes', 0))
    free = host.disk_free()
    if free is not None:
        yield GaugeMetricFamily('rabbitmq_disk_space_available_bytes',
                                'Disk space available in bytes', value=free)
    yield GaugeMetricFamily('rabbitmq_process_max_fds', 'Open file descriptors limit',
                            value=max_fds)
    # One socket per file descriptor: Python has no other limit on sockets.
    yield GaugeMetricFamily('rabbitmq_process_max_tcp_sockets', 'Open TCP sockets limit',
                            value=max_fds)
    yield GaugeMetricFamily('rabbitmq_resident_memory_limit_bytes',
                            'Memory high watermark in bytes', value=snap.memory_limit)


def _queues(snap: Snapshot, per_object: bool) -> Iterator[Metric]:
    rows = snap.queues
    if not per_object:
        for name, text, value in QUEUE_GAUGES:
            yield GaugeMetricFamily(name, text, value=sum(value(q) for q in rows))
        return
    for name, text, value in QUEUE_GAUGES:
        family = GaugeMetricFamily(name, text, labels=['vhost', 'queue'])
        for q in rows:
            family.add_metric([q.vhost, q.name], value(q))
        yield family


def _channels(snap: Snapshot, per_object: bool) -> Iterator[Metric]:
    rows = snap.channels
    if not per_object:
        for name, text, attr in CHANNEL_GAUGES:
            yield GaugeMetricFamily(name, text, value=sum(getattr(c, attr) for c in rows))
        totals = channel_totals(snap)
        for name, text, key in CHANNEL_COUNTERS:
            yield CounterMetricFamily(name, text, value=totals[_C[key]])
        return
    for name, text, attr in CHANNEL_GAUGES:
        family = GaugeMetricFamily(name, text, labels=['channel'])
        for c in rows:
            family.add_metric([c.name], getattr(c, attr))
        yield family
    for name, text, key in CHANNEL_COUNTERS:
        counter = CounterMetricFamily(name, text, labels=['channel'])
        index = _C[key]
        for c in rows:
            counter.add_metric([c.name], c.stats[index])
        yield counter


def channel_totals(snap: Snapshot) -> list[int]:
    """Every channel's counters added up, closed channels' included (so the
    totals only grow)."""
    totals = [0] * len(CHANNEL_STATS)
    for stats in [c.stats for c in snap.channels] + list(snap.closed_channels.values()):
        for i, value in enumerate(stats):
            totals[i] += value
    return totals


def _connections(snap: Snapshot, per_object: bool) -> Iterator[Metric]:
    rows = snap.connections
    if not per_object:
        for name, text, attr in CONNECTION_COUNTERS:
            yield CounterMetricFamily(name, text, value=sum(getattr(c, attr) for c in rows))
        yield GaugeMetricFamily('rabbitmq_connection_channels', 'Channels on a connection',
                                value=sum(c.channels for c in rows))
        return
    for name, text, attr in CONNECTION_COUNTERS:
        counter = CounterMetricFamily(name, text, labels=['channel'])
        for c in rows:
            counter.add_metric([c.name], getattr(c, attr))
        yield counter
    family = GaugeMetricFamily('rabbitmq_connection_channels', 'Channels on a connection',
                               labels=['channel'])
    for c in rows:
        family.add_metric([c.name], c.channels)
    yield family


def _queue_published(snap: Snapshot, per_object: bool) -> Metric:
    name = 'rabbitmq_queue_messages_published'
    text = 'Total number of messages published to queues'
    if not per_object:
        return CounterMetricFamily(name, text, value=sum(q.published for q in snap.queues))
    counter = CounterMetricFamily(name, text, labels=['queue_vhost', 'queue'])
    for q in snap.queues:
        counter.add_metric([q.vhost, q.name], q.published)
    return counter


def _global(snap: Snapshot) -> Iterator[Metric]:
    totals = channel_totals(snap)
    consumers = GaugeMetricFamily('rabbitmq_global_consumers', 'Current number of consumers',
                                  labels=['protocol'])
    consumers.add_metric([PROTOCOL], snap.consumers)
    by_name: dict[str, Metric] = {}
    for name, text, value in GLOBAL_BY_QUEUE_TYPE:
        family = CounterMetricFamily(f'rabbitmq_global_messages_{name}', text,
                                     labels=['protocol', 'queue_type'])
        family.add_metric([PROTOCOL, QUEUE_TYPE], value(totals))
        by_name[name] = family
    for name, text, value in GLOBAL_BY_PROTOCOL:
        family = CounterMetricFamily(f'rabbitmq_global_messages_{name}', text,
                                     labels=['protocol'])
        family.add_metric([PROTOCOL], value(totals))
        by_name[name] = family
    yield consumers
    # RabbitMQ's order: alphabetical.
    for name in sorted(by_name):
        yield by_name[name]


def _leveret(snap: Snapshot) -> Iterator[Metric]:
    build = UnknownMetricFamily('leveret_build_info', 'Leveret and Python versions',
                                labels=['version', 'python_version'])
    build.add_metric([__version__, platform.python_version()], 1)
    yield build
    yield GaugeMetricFamily('leveret_message_bytes_held',
                            'Bytes of message bodies held by queues (the memory alarm '
                            'compares this with its high watermark)', value=snap.memory_held)
    yield GaugeMetricFamily('leveret_exchanges', 'Exchanges, in every vhost',
                            value=snap.exchanges)


def _celery(snap: Snapshot) -> Iterator[Metric]:
    rows = snap.tasks

    def counter(name: str, text: str, attr: str) -> Metric:
        family = CounterMetricFamily(f'leveret_celery_task_{name}', text, labels=TASK_LABELS)
        for r in rows:
            family.add_metric([r.vhost, r.queue, r.task], getattr(r, attr))
        return family

    yield counter('published', 'Celery tasks routed into a queue', 'published')
    yield counter('delivered', 'Celery tasks delivered to a consumer (or basic.get)',
                  'delivered')
    yield counter('acked', 'Celery tasks acknowledged', 'acked')
    yield counter('rejected', 'Celery tasks rejected or nacked, requeued or not', 'rejected')
    yield counter('redelivered', 'Celery tasks delivered again after a requeue',
                  'redelivered')

    def gauge(name: str, text: str, attr: str) -> Metric:
        family = GaugeMetricFamily(f'leveret_celery_{name}', text, labels=TASK_LABELS)
        for r in rows:
            value = getattr(r, attr)
            if value is not None:
                family.add_metric([r.vhost, r.queue, r.task], value)
        return family

    yield gauge('tasks_waiting', 'Celery tasks ready in the queue, not delivered yet',
                'waiting')
    yield gauge('oldest_waiting_task_age_seconds',
                'Seconds since the oldest waiting task was routed', 'oldest_waiting')
    yield gauge('tasks_eta_held', 'Celery tasks delivered and unacked with an ETA in the '
                'future (held by a worker until due)', 'eta_held')
    yield gauge('next_eta_due_seconds', 'Seconds until the first ETA-held task is due',
                'next_eta_in')
    latency = HistogramMetricFamily(
        'leveret_celery_task_delivery_latency_seconds',
        'Seconds from routing a Celery task to its first delivery', labels=TASK_LABELS)
    bounds = [_bound(b) for b in LATENCY_BOUNDS] + ['+Inf']
    for r in rows:
        cumulative = 0
        buckets = []
        for bound, count in zip(bounds, r.latency_counts, strict=False):
            cumulative += count
            buckets.append((bound, cumulative))
        latency.add_metric([r.vhost, r.queue, r.task], buckets, r.latency_sum)
    yield latency
    yield GaugeMetricFamily('leveret_celery_task_names', 'Distinct Celery task names counted',
                            value=snap.task_names)
    yield GaugeMetricFamily('leveret_celery_task_names_limit',
                            'Task names counted at most (celery_task_names); the rest '
                            'count as "other"', value=snap.task_names_limit)
    yield CounterMetricFamily('leveret_celery_task_names_overflowed',
                              'Celery tasks counted as "other" because the name bound was '
                              'reached', value=snap.task_names_overflowed)
    yield GaugeMetricFamily('leveret_celery_workers',
                            'Celery workers seen (by their pidbox queues)',
                            value=len(snap.workers))
    for name, text, attr in (
            ('worker_prefetch', 'Prefetch of a worker\'s task consumers', 'prefetch'),
            ('worker_unacked', 'Deliveries a worker holds unacked', 'unacked'),
            ('worker_eta_held', 'Tasks a worker holds with an ETA in the future', 'eta_held')):
        family = GaugeMetricFamily(f'leveret_celery_{name}', text, labels=WORKER_LABELS)
        for w in snap.workers:
            family.add_metric([w.vhost, w.hostname], getattr(w, attr))
        yield family


def _bound(value: float) -> str:
    return repr(float(value))


def prometheus_client_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version('prometheus_client')
    except PackageNotFoundError:  # pragma: no cover
        return 'unknown'
