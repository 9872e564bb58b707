"""The bundled worker consumes a Celery app's queues as ``celery worker``
does: task_queues with their exchanges, routing keys and arguments declared
by kombu, -Q and -X, task_create_missing_queues, add_consumer and
cancel_consumer at run time."""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange, Queue

from ..conftest import BrokerProcess
from ..processes import wait_until
from .conftest import ProjectFactory
from .harness import CeleryProject, CeleryWorker, celery_url

pytestmark = pytest.mark.celery

QUEUES = [
    {'name': 'q-default'},
    {'name': 'q-reports', 'exchange': 'reports', 'exchange_type': 'topic',
     'routing_key': 'reports.#', 'max_priority': 5, 'message_ttl': 600},
]


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    return celery_project_factory(
        celery_url(celery_broker), queues=QUEUES, task_default_queue='q-default',
        task_routes={'report': {'queue': 'q-reports', 'routing_key': 'reports.daily'}})


@pytest.fixture(scope='module')
def worker(project: CeleryProject) -> CeleryWorker:
    return project.start_leveret_worker('-c', '2', name='queues')


def _queues(project: CeleryProject, worker: CeleryWorker) -> list[dict]:
    reply = project.app.control.inspect(destination=[worker.nodename], timeout=10)
    return reply.active_queues()[worker.nodename]


def test_without_q_every_queue_of_task_queues_is_consumed(project, worker) -> None:
    assert [q['name'] for q in _queues(project, worker)] == ['q-default', 'q-reports']
    # The routed task reaches the topic exchange with its routing key and runs.
    assert project.tasks.report.delay('routed').get(timeout=30)['label'] == 'routed'
    assert project.tasks.add.delay(1, 2).get(timeout=30) == 3


def test_queues_are_declared_as_kombu_declares_them(project, worker) -> None:
    reports = _queues(project, worker)[1]
    assert reports['exchange']['name'] == 'reports' and reports['exchange']['type'] == 'topic'
    assert reports['routing_key'] == 'reports.#'
    assert reports['max_priority'] == 5 and reports['message_ttl'] == 600
    with Connection(project.broker_url) as connection:
        channel = connection.default_channel
        # The same declaration again is accepted: it matches what the worker declared...
        Queue('q-reports', Exchange('reports', 'topic'), 'reports.#', max_priority=5,
              message_ttl=600)(channel).declare()
        # ...and other arguments are refused: the worker declared these ones.
        with pytest.raises(Exception, match='PRECONDITION_FAILED'):
            Queue('q-reports', Exchange('reports', 'topic'), 'reports.#')(channel).declare()


def test_the_banner_names_each_queue_with_its_exchange_and_key(worker) -> None:
    log = worker.log()
    assert 'q-reports        exchange=reports(topic) key=reports.#' in log
    assert 'q-default        exchange=q-default(direct) key=q-default' in log


def test_q_and_x_select_queues(project: CeleryProject) -> None:
    only = project.start_leveret_worker('-Q', 'q-reports,brand-new', name='only')
    excluded = project.start_leveret_worker('-X', 'q-reports', name='excluded')
    try:
        # -Q creates a queue the app does not define (task_create_missing_queues).
        assert [q['name'] for q in _queues(project, only)] == ['q-reports', 'brand-new']
        assert [q['name'] for q in _queues(project, excluded)] == ['q-default']
    finally:
        only.stop()
        excluded.stop()


def test_an_undefined_queue_without_create_missing_is_one_line_and_exit_2(
        celery_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    strict = celery_project_factory(celery_url(celery_broker), queues=QUEUES,
                                    task_create_missing_queues=False)
    run = strict.leveret('-Q', 'nowhere')
    assert run.returncode == 2
    assert run.stderr.count('\n') == 1 and "'nowhere'" in run.stderr


def test_add_and_cancel_consumer_at_run_time(project, worker) -> None:
    control = project.app.control
    replies = control.add_consumer('q-extra', destination=[worker.nodename], reply=True,
                                   timeout=10)
    assert replies == [{worker.nodename: {'ok': 'add consumer q-extra'}}]
    wait_until(lambda: 'q-extra' in [q['name'] for q in _queues(project, worker)])
    assert project.tasks.add.apply_async((2, 2), queue='q-extra').get(timeout=30) == 4
    replies = control.cancel_consumer('q-extra', destination=[worker.nodename], reply=True,
                                      timeout=10)
    assert replies == [{worker.nodename: {'ok': 'no longer consuming from q-extra'}}]
    assert 'q-extra' not in [q['name'] for q in _queues(project, worker)]
