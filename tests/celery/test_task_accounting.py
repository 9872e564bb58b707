"""Celery-aware accounting with a real Celery client and worker: tasks per name
and queue, the ones a worker holds with an ETA, the ones waiting, the
worker itself, in the API (/api/leveret/celery/...) and in the metrics."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import BrokerProcess
from ..metrics.scrape import get, parse, scrape
from .conftest import ProjectFactory
from .harness import CeleryProject, celery_url, wait_until

pytestmark = pytest.mark.celery

AUTH = {'Authorization': 'Basic ' + base64.b64encode(b'guest:guest').decode()}


def api(broker: BrokerProcess, path: str) -> Any:
    status, _, body = get(broker.api + path, AUTH)
    assert status == 200, (status, body)
    return json.loads(body)


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> Iterator[CeleryProject]:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='acct')
    project.start_worker('-P', 'solo', '-Q', 'acct', name='acct')
    yield project


def row(rows: list[dict[str, Any]], queue: str, name: str) -> dict[str, Any] | None:
    found = [r for r in rows if r['queue'] == queue and r['name'] == name]
    return found[0] if found else None


def test_tasks_held_with_an_eta_and_tasks_done(celery_broker, project):
    name = project.task_name('add')
    sent_at = time.time()
    # Celery's retry() sends these headers itself; here they are set the same way.
    held = [project.tasks.add.apply_async((i, i), countdown=300, retries=i,
                                          root_id='root-of-all', parent_id=f'parent-{i}')
            for i in range(3)]
    done = [project.tasks.add.delay(i, 1) for i in range(5)]
    assert [r.get(timeout=30) for r in done] == [1, 2, 3, 4, 5]

    def settled() -> dict[str, Any] | None:
        found = row(api(celery_broker, '/leveret/celery/tasks?vhost=%2F'), 'acct', name)
        return found if found and found['eta_held'] == 3 and found['acked'] == 5 else None

    task = wait_until(settled, message=lambda: str(api(celery_broker, '/leveret/celery/tasks')))
    assert (task['published'], task['delivered'], task['rejected']) == (8, 8, 0)
    assert task['waiting'] == 0 and task['oldest_waiting_seconds'] is None
    assert 250 < task['next_eta_in_seconds'] <= 300 - (time.time() - sent_at) + 1
    assert task['delivery_latency']['count'] == 8
    assert task['delivery_latency']['buckets'][-1] == {'le': None, 'count': 8}

    etas = api(celery_broker, '/leveret/celery/eta-held')
    assert sorted(e['id'] for e in etas) == sorted(r.id for r in held)
    assert {e['worker'] for e in etas} == {'acct@leveret'}
    lineage = {e['id']: (e['retries'], e['parent_id'], e['root_id']) for e in etas}
    assert lineage == {r.id: (i, f'parent-{i}', 'root-of-all') for i, r in enumerate(held)}

    workers = api(celery_broker, '/leveret/celery/workers')
    worker = [w for w in workers if w['hostname'] == 'acct@leveret'][0]
    assert worker['queues'] == ['acct']
    assert worker['eta_held'] == 3 and worker['unacked'] >= 3
    assert worker['prefetch'] > 0 and worker['connections']

    families = parse(scrape(celery_broker.metrics_url))
    labels = {'vhost': '/', 'queue': 'acct', 'task': name}
    assert families['leveret_celery_tasks_eta_held'].value(**labels) == 3
    assert families['leveret_celery_task_published'].value(**labels) == 8
    assert families['leveret_celery_task_acked'].value(**labels) == 5
    assert 250 < families['leveret_celery_next_eta_due_seconds'].value(**labels) <= 300
    assert families['leveret_celery_worker_eta_held'].value(worker='acct@leveret') == 3
    assert families['leveret_celery_task_delivery_latency_seconds'].value(
        le='+Inf', **labels) == 8


def test_tasks_waiting_in_a_queue_nobody_consumes(celery_broker, project):
    name = project.task_name('add')
    for i in range(4):
        project.tasks.add.apply_async((i, i), queue='acct.idle')
    time.sleep(0.2)
    task = wait_until(lambda: row(api(celery_broker, '/leveret/celery/tasks'), 'acct.idle',
                                  name))
    assert (task['published'], task['waiting'], task['delivered']) == (4, 4, 0)
    assert task['oldest_waiting_seconds'] >= 0.2
    paged = api(celery_broker, '/leveret/celery/tasks?page=1&page_size=1&sort=waiting'
                               '&sort_reverse=true')
    assert paged['items'][0]['queue'] == 'acct.idle' and paged['page_size'] == 1
