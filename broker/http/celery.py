"""Leveret's own resources: the Celery views (no RabbitMQ counterpart).

``GET /api/leveret/celery/tasks[?vhost=]``: per task name and queue, the
counts (published, delivered, acked, rejected, redelivered) with their
rates, the tasks waiting and the age of the oldest, the tasks held with an
ETA and when the next is due, the time from routing to first delivery.
``GET /api/leveret/celery/eta-held[?vhost=]``: each ETA-held task, soonest
due first.  ``GET /api/leveret/celery/workers[?vhost=]``: each worker as the
broker sees it.  The list options (paging, sorting, columns) are the API's.
Seconds are floats; a time that does not apply (nothing waits) is null.
"""

from __future__ import annotations

from typing import Any

from ..metrics import snapshot
from ..metrics.snapshot import HeldTask, Snapshot, TaskRow, WorkerRow
from ..model.celery import LATENCY_BOUNDS
from . import auth, listing
from .errors import not_found
from .request import Call


async def _snapshot(call: Call) -> tuple[Snapshot, set[str]]:
    vhosts = {v.name for v in auth.visible_vhosts(call)}
    wanted = call.query.get('vhost')
    if wanted is not None:
        if wanted not in call.broker.vhosts:
            raise not_found()
        auth.vhost(call, wanted)
        vhosts = {wanted}
    return await snapshot.take(call.broker, objects=False), vhosts


def task(row: TaskRow, rates: dict[str, float]) -> dict[str, Any]:
    cumulative = 0
    buckets = []
    for bound, count in zip([*LATENCY_BOUNDS, None], row.latency_counts, strict=False):
        cumulative += count
        buckets.append({'le': bound, 'count': cumulative})
    return {
        'vhost': row.vhost, 'queue': row.queue, 'name': row.task,
        'published': row.published, 'delivered': row.delivered, 'acked': row.acked,
        'rejected': row.rejected, 'redelivered': row.redelivered,
        'rates': rates,
        'waiting': row.waiting,
        'oldest_waiting_seconds': _seconds(row.oldest_waiting),
        'eta_held': row.eta_held,
        'next_eta_in_seconds': _seconds(row.next_eta_in),
        'delivery_latency': {'count': cumulative, 'sum_seconds': round(row.latency_sum, 6),
                             'buckets': buckets},
    }


def held(row: HeldTask) -> dict[str, Any]:
    return {'vhost': row.vhost, 'queue': row.queue, 'name': row.task, 'id': row.id,
            'eta': row.eta, 'worker': row.worker, 'connection': row.connection,
            'retries': row.retries, 'parent_id': row.parent_id, 'root_id': row.root_id}


def worker(row: WorkerRow) -> dict[str, Any]:
    return {'hostname': row.hostname, 'vhost': row.vhost, 'connections': row.connections,
            'queues': row.queues, 'consumer_tags': row.consumer_tags,
            'prefetch': row.prefetch, 'unacked': row.unacked, 'eta_held': row.eta_held}


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def get_tasks(call: Call) -> Any:
    snap, vhosts = await _snapshot(call)
    history = call.broker.history
    rows = [r for r in snap.tasks if r.vhost in vhosts]
    return await listing.answer(
        rows, lambda r: task(r, history.task_rates((r.vhost, r.queue, r.task))),
        listing.ListOptions.parse(call.query), name_of=lambda r: r.task)


async def get_eta_held(call: Call) -> Any:
    snap, vhosts = await _snapshot(call)
    rows = [r for r in snap.held if r.vhost in vhosts]
    return await listing.answer(rows, held, listing.ListOptions.parse(call.query),
                                name_of=lambda r: r.task)


async def get_workers(call: Call) -> Any:
    snap, vhosts = await _snapshot(call)
    rows = [w for w in snap.workers if w.vhost in vhosts]
    return await listing.answer(rows, worker, listing.ListOptions.parse(call.query),
                                name_of=lambda w: w.hostname)


ROUTES = [
    ('leveret/celery/tasks', {'GET': get_tasks}),
    ('leveret/celery/eta-held', {'GET': get_eta_held}),
    ('leveret/celery/workers', {'GET': get_workers}),
]
