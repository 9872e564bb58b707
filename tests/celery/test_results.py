"""Results over rpc://: values, failures, chains and groups, with prefork and solo pools."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import chain, group

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import CeleryProject, celery_url

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module', params=['prefork', 'solo'])
def project(request: pytest.FixtureRequest, celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> Iterator[CeleryProject]:
    """A running worker with the pool under test, and the client app."""
    project = celery_project_factory(celery_url(celery_broker),
                                     task_default_queue=f'results-{request.param}')
    project.start_worker('-P', request.param, '-c', '2', name=f'results-{request.param}')
    yield project
    project.close()  # before the other pool's worker starts


def test_delay_get_returns_the_result(project: CeleryProject) -> None:
    assert project.tasks.add.delay(2, 2).get(timeout=20) == 4


def test_many_results_come_back_to_the_right_callers(project: CeleryProject) -> None:
    results = [project.tasks.add.delay(i, i) for i in range(20)]
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(20)]


def test_a_failing_task_reraises_its_exception_on_the_client(project: CeleryProject) -> None:
    result = project.tasks.fail.delay('boom')
    with pytest.raises(ValueError, match='boom'):
        result.get(timeout=20)
    assert result.state == 'FAILURE'
    assert 'ValueError' in result.traceback


def test_a_chain_passes_each_result_to_the_next_step(project: CeleryProject) -> None:
    add = project.tasks.add
    workflow = chain(add.s(1, 2), add.s(10), add.s(100))
    assert workflow.apply_async().get(timeout=30) == 113


def test_a_group_gathers_every_result_in_order(project: CeleryProject) -> None:
    add = project.tasks.add
    result = group(add.s(i, 1) for i in range(8)).apply_async()
    assert result.get(timeout=30) == [i + 1 for i in range(8)]


def test_arguments_and_results_larger_than_a_frame_come_through_whole(
        project: CeleryProject) -> None:
    # 300 kB each way: several body frames of at most frame_max - 8 bytes.
    assert project.tasks.add.delay('a' * 300_000, 'b').get(timeout=30) == 'a' * 300_000 + 'b'
