"""A copy of the numbers the metrics and the Celery views read, taken on the
event loop in slices.

Everything the broker counts lives on the objects the hot path holds
(``model/counters.py``, ``model/celery.py``); a scrape copies those plain
integers here, a few thousand queues or deliveries per loop turn, so that a
broker with 10,000 queues never stops serving AMQP for long while it is
looked at.  What is made of the copy (the Prometheus text, the JSON of the
API) is built from it afterwards, off the loop if it is large.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..model import celery
from ..model.counters import ChannelCounters, ChurnCounters
from ..model.memory import MemoryMonitor
from ..model.message import Message
from ..model.queue import Queue
from ..model.vhost import VirtualHost

if TYPE_CHECKING:
    from ..config import Settings
    from ..session import Connection, Sessions
    from ..session.channel import Channel
    from ..session.consumer import Consumer

#: Objects copied per loop turn.
SLICE = 1000

#: The delivery counters of channels and queues, in the rows' order.
DELIVERY_STATS = ('stat_deliver', 'stat_deliver_no_ack', 'stat_get', 'stat_get_no_ack',
                  'stat_get_empty', 'stat_ack', 'stat_redeliver')
#: A channel's counters, in the rows' order.
CHANNEL_STATS = ('stat_publish', 'stat_confirm', 'stat_return_unroutable',
                 'stat_drop_unroutable') + DELIVERY_STATS

#: Celery's remote-control queues are named ``<hostname>.celery.pidbox``.
PIDBOX_SUFFIX = '.celery.pidbox'


class BrokerView(Protocol):
    """What a snapshot reads of the broker (``server.Broker`` is one)."""

    settings: Settings
    vhosts: Mapping[str, VirtualHost]
    sessions: Sessions
    churn: ChurnCounters
    memory: MemoryMonitor
    #: ``leveret@<host>``, RabbitMQ's ``rabbit@<host>``.
    node_name: str


@dataclass(slots=True)
class QueueRow:
    vhost: str
    name: str
    durable: bool
    ready: int
    ready_bytes: int
    unacked: int
    unacked_bytes: int
    consumers: int
    published: int
    #: :data:`DELIVERY_STATS`, in order.
    delivery: tuple[int, ...]


@dataclass(slots=True)
class ChannelRow:
    name: str
    vhost: str
    consumers: int
    unacked: int
    unconfirmed: int
    uncommitted: int
    acks_uncommitted: int
    prefetch: int
    global_prefetch: int
    #: :data:`CHANNEL_STATS`, in order.
    stats: tuple[int, ...]


@dataclass(slots=True)
class ConnectionRow:
    name: str
    vhost: str
    user: str
    channels: int
    recv_oct: int
    recv_cnt: int
    send_oct: int
    send_cnt: int


@dataclass(slots=True)
class TaskRow:
    """One Celery task name in one queue."""

    vhost: str
    queue: str
    task: str
    published: int = 0
    delivered: int = 0
    acked: int = 0
    rejected: int = 0
    redelivered: int = 0
    waiting: int = 0
    #: Seconds since the oldest waiting task was routed (None: none waits).
    oldest_waiting: float | None = None
    #: Delivered, unacked, with an ETA still in the future.
    eta_held: int = 0
    #: Seconds until the first of those is due (None: none held).
    next_eta_in: float | None = None
    latency_counts: tuple[int, ...] = ()
    latency_sum: float = 0.0


@dataclass(slots=True)
class HeldTask:
    """A task a consumer holds unacked with an ETA in the future."""

    vhost: str
    queue: str
    task: str
    id: str | None
    eta: float
    worker: str | None
    connection: str
    #: Celery's ``retries`` header: how many times the task was retried.
    retries: int | None = None
    parent_id: str | None = None
    root_id: str | None = None


@dataclass(slots=True)
class WorkerRow:
    """A Celery worker as the broker sees it: its pidbox queue and the
    connections that consume from it or carry its consumer tags."""

    hostname: str
    vhost: str
    connections: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    consumer_tags: list[str] = field(default_factory=list)
    prefetch: int = 0
    unacked: int = 0
    eta_held: int = 0


@dataclass
class Snapshot:
    taken_at: float
    node: str
    cluster: str
    queues: list[QueueRow] = field(default_factory=list)
    channels: list[ChannelRow] = field(default_factory=list)
    connections: list[ConnectionRow] = field(default_factory=list)
    #: The counts of the channels that closed, per vhost (:data:`CHANNEL_STATS`).
    closed_channels: dict[str, tuple[int, ...]] = field(default_factory=dict)
    churn: dict[str, int] = field(default_factory=dict)
    consumers: int = 0
    #: Queues there are (:attr:`queues` holds one row in all when summed).
    queue_count: int = 0
    exchanges: int = 0
    memory_held: int = 0
    memory_limit: int = 0
    memory_alarm: bool = False
    tasks: list[TaskRow] = field(default_factory=list)
    held: list[HeldTask] = field(default_factory=list)
    workers: list[WorkerRow] = field(default_factory=list)
    task_names: int = 0
    task_names_limit: int = 0
    task_names_overflowed: int = 0


def connection_name(connection: Connection) -> str:
    """``peer -> local``, as RabbitMQ (and the management API) names a connection."""
    return connection.name


def channel_name(connection_label: str, channel: Channel) -> str:
    """``<connection> (<number>)``, as the management API names a channel."""
    return f'{connection_label} ({channel.id})'


def _stats(obj: ChannelCounters, names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple([getattr(obj, name) for name in names])


async def take(broker: BrokerView, *, objects: bool = True, summed: bool = False,
               celery_views: bool = True) -> Snapshot:
    """Copy the broker's numbers, :data:`SLICE` objects per loop turn.

    ``objects``: a row per queue, channel and connection (``summed``: the
    queues added up into one row, which is all ``/metrics`` needs);
    ``celery_views``: the tasks, the ETA-held ones and the workers.
    """
    snap = Snapshot(taken_at=time.time(), node=broker.node_name, cluster=broker.node_name)
    churn = broker.churn
    snap.churn = {name: getattr(churn, name) for name in ChurnCounters.COUNTERS}
    snap.memory_held = broker.memory.held
    snap.memory_limit = broker.memory.high
    snap.memory_alarm = bool(broker.memory.alarm)
    names = broker.sessions.task_names
    snap.task_names, snap.task_names_limit = len(names), names.limit
    snap.task_names_overflowed = names.overflowed

    # Deliveries waiting for an ack, per queue (count, bytes), and the tasks
    # among them held with an ETA.
    unacked: dict[Queue, list[int]] = {}
    now_wall = time.time()
    held: list[tuple[Queue, Message, str]] = []
    budget = SLICE
    connections = list(broker.sessions.connections)
    for connection in connections:
        label = connection_name(connection)
        vhost = connection.vhost.name if connection.vhost is not None else ''
        channels = list(connection.channels.values())
        if objects:
            snap.connections.append(ConnectionRow(
                label, vhost, connection.username, len(channels), connection.recv_oct,
                connection.recv_cnt, connection.send_oct, connection.send_cnt))
        for channel in channels:
            deliveries = list(channel.unacked.values())
            if objects:
                snap.channels.append(ChannelRow(
                    channel_name(label, channel), vhost, len(channel.consumers),
                    len(deliveries), channel.unconfirmed(), channel.tx_pending_publishes(),
                    channel.tx_pending_acks(), channel.prefetch, channel.global_prefetch,
                    _stats(channel, CHANNEL_STATS)))
            for message, queue, _consumer in deliveries:
                entry = unacked.get(queue)
                if entry is None:
                    unacked[queue] = [1, len(message.body)]
                else:
                    entry[0] += 1
                    entry[1] += len(message.body)
                if celery_views and message.task is not None:
                    held.append((queue, message, label))
            budget -= len(deliveries) + 1
            if budget <= 0:
                await asyncio.sleep(0)
                budget = SLICE

    vhosts = list(broker.vhosts.values())
    snap.closed_channels = {v.name: _stats(v.closed_channels, CHANNEL_STATS) for v in vhosts}
    snap.exchanges = sum(len(v.exchanges) for v in vhosts)
    queues = [queue for vhost in vhosts for queue in vhost.queues.values()]
    snap.queue_count = len(queues)
    celery_queues = [queue for queue in queues if queue.celery_tasks]
    if objects and summed:
        await _sum_queues(snap, queues, unacked)
    for start in range(0, len(queues) if objects and not summed else 0, SLICE):
        if start:
            await asyncio.sleep(0)
        for queue in queues[start:start + SLICE]:
            counts = unacked.get(queue)
            snap.consumers += len(queue.consumers)
            snap.queues.append(QueueRow(
                queue.vhost_name, queue.name, queue.durable, len(queue.ready),
                queue.ready_bytes, counts[0] if counts else 0, counts[1] if counts else 0,
                len(queue.consumers), queue.stat_publish, _stats(queue, DELIVERY_STATS)))
    if celery_views:
        await _celery(snap, broker, celery_queues, held, now_wall)
    return snap


async def _sum_queues(snap: Snapshot, queues: list[Queue],
                      unacked: dict[Queue, list[int]]) -> None:
    """Every queue added up into one row of :attr:`Snapshot.queues`."""
    ready = ready_bytes = held = held_bytes = consumers = published = 0
    delivery = [0] * len(DELIVERY_STATS)
    for start in range(0, len(queues), SLICE):
        if start:
            await asyncio.sleep(0)
        for queue in queues[start:start + SLICE]:
            ready += len(queue.ready)
            ready_bytes += queue.ready_bytes
            counts = unacked.get(queue)
            if counts:
                held += counts[0]
                held_bytes += counts[1]
            consumers += len(queue.consumers)
            published += queue.stat_publish
            for i, value in enumerate(_stats(queue, DELIVERY_STATS)):
                delivery[i] += value
    snap.consumers = consumers
    snap.queues.append(QueueRow('', '', False, ready, ready_bytes, held, held_bytes,
                                consumers, published, tuple(delivery)))


async def _celery(snap: Snapshot, broker: BrokerView, queues: list[Queue],
                  held: list[tuple[Queue, Message, str]], now_wall: float) -> None:
    rows: dict[tuple[Queue, str], TaskRow] = {}
    now = time.monotonic()
    for queue in queues:
        for name, stats in list(queue.celery_tasks.items()):
            rows[queue, name] = TaskRow(
                queue.vhost_name, queue.name, name, stats.published, stats.delivered,
                stats.acked, stats.rejected, stats.redelivered,
                latency_counts=tuple(stats.latency_counts), latency_sum=stats.latency_sum)
        ready = list(queue.ready)
        for start in range(0, len(ready), SLICE * 10):
            await asyncio.sleep(0)
            for name, (count, oldest) in celery.waiting(ready[start:start + SLICE * 10]).items():
                row = _row(rows, queue, name)
                row.waiting += count
                age = now - oldest
                if row.oldest_waiting is None or age > row.oldest_waiting:
                    row.oldest_waiting = age

    workers = _workers(broker)
    worker_of = {label: worker for worker in workers for label in worker.connections}
    for i, (queue, message, label) in enumerate(held):
        if i and not i % SLICE:
            await asyncio.sleep(0)
        eta = celery.eta_of(message)
        if eta is None or eta <= now_wall:
            continue
        assert message.task is not None
        row = _row(rows, queue, message.task[0])
        row.eta_held += 1
        due_in = eta - now_wall
        if row.next_eta_in is None or due_in < row.next_eta_in:
            row.next_eta_in = due_in
        worker = worker_of.get(label)
        if worker is not None:
            worker.eta_held += 1
        snap.held.append(HeldTask(queue.vhost_name, queue.name, message.task[0],
                                  celery.field_of(message, 'id'), eta,
                                  worker.hostname if worker else None, label,
                                  celery.field_of(message, 'retries'),
                                  celery.field_of(message, 'parent_id'),
                                  celery.field_of(message, 'root_id')))
    snap.tasks = sorted(rows.values(), key=lambda r: (r.vhost, r.queue, r.task))
    snap.held.sort(key=lambda h: h.eta)
    snap.workers = workers


def _row(rows: dict[tuple[Queue, str], TaskRow], queue: Queue, name: str) -> TaskRow:
    row = rows.get((queue, name))
    if row is None:
        row = rows[queue, name] = TaskRow(queue.vhost_name, queue.name, name)
    return row


def _workers(broker: BrokerView) -> list[WorkerRow]:
    """Workers named by their pidbox queues.

    A worker's connections are those that consume from its pidbox queue
    (Celery's worker consumes tasks and remote control on one connection)
    or whose consumer tags start with its hostname (the bundled worker tags
    its consumers ``<hostname>.<queue>``); its queues, prefetch and unacked
    deliveries are what those connections consume.
    """
    by_host: dict[tuple[str, str], WorkerRow] = {}
    for vhost in broker.vhosts.values():
        for name in list(vhost.queues):
            if name.endswith(PIDBOX_SUFFIX) and len(name) > len(PIDBOX_SUFFIX):
                hostname = name[:-len(PIDBOX_SUFFIX)]
                by_host[vhost.name, hostname] = WorkerRow(hostname, vhost.name)
    if not by_host:
        return []
    for connection in list(broker.sessions.connections):
        if connection.vhost is None:
            continue
        vhost = connection.vhost.name
        consumers = [c for ch in connection.channels.values() for c in ch.consumers.values()]
        worker = _worker_of(by_host, vhost, consumers)
        if worker is None:
            continue
        worker.connections.append(connection_name(connection))
        for channel in connection.channels.values():
            task_consumers = [c for c in channel.consumers.values()
                              if not _is_control_queue(c.queue.name)]
            if not task_consumers:
                continue
            worker.unacked += channel.unacked_count
            worker.prefetch += (channel.global_prefetch
                                or sum(c.prefetch for c in task_consumers))
            for consumer in task_consumers:
                if consumer.queue.name not in worker.queues:
                    worker.queues.append(consumer.queue.name)
                worker.consumer_tags.append(consumer.tag)
    return sorted(by_host.values(), key=lambda w: (w.vhost, w.hostname))


def _worker_of(by_host: dict[tuple[str, str], WorkerRow], vhost: str,
               consumers: list[Consumer]) -> WorkerRow | None:
    for consumer in consumers:
        name = consumer.queue.name
        if name.endswith(PIDBOX_SUFFIX):
            found = by_host.get((vhost, name[:-len(PIDBOX_SUFFIX)]))
            if found is not None:
                return found
    for consumer in consumers:
        for (worker_vhost, hostname), worker in by_host.items():
            if worker_vhost == vhost and consumer.tag.startswith(hostname + '.'):
                return worker
    return None


def _is_control_queue(name: str) -> bool:
    """Celery's remote-control and event queues, not task queues."""
    return name.endswith(PIDBOX_SUFFIX) or name.startswith('celeryev.')
