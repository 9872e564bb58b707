"""`celery events` receives task events; `celery beat` publishes on its schedule."""

from __future__ import annotations

import re

import pytest

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import CeleryProject, celery_url

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    project = celery_project_factory(
        celery_url(celery_broker), task_default_queue='events',
        beat_schedule={'report-every-second': {'task': 'report', 'schedule': 1.0,
                                               'args': ['beat']}})
    project.start_worker('-P', 'solo', '-E', name='events')
    return project


def test_celery_events_receives_the_events_of_a_task(project: CeleryProject) -> None:
    events = project.spawn('events', '--dump', name='events')
    # A worker heartbeat (every 2 s) shows that the event queue is bound.
    events.wait_for_log(r'events@leveret \[.*\] heartbeat:')
    result = project.tasks.add.delay(20, 22)
    assert result.get(timeout=20) == 42
    task_id = re.escape(result.id)
    events.wait_for_log(rf'task received: \S+\.add\({task_id}\) args=\(20, 22\)')
    events.wait_for_log(rf'task started: \S+\.add\({task_id}\)')
    events.wait_for_log(rf'task succeeded: \S+\.add\({task_id}\).* result=42')
    events.kill()


def test_beat_publishes_the_task_on_its_schedule(project: CeleryProject) -> None:
    beat = project.spawn('beat', '-s', str(project.directory / 'beat-schedule'),
                         '--max-interval', '1', '-l', 'INFO', name='beat')
    records = project.wait_for_records(
        lambda records: sum(r['label'] == 'beat' for r in records) >= 3)
    beat.kill()
    runs = [r for r in records if r['label'] == 'beat']
    assert len({r['id'] for r in runs}) == len(runs)   # one new task per tick
    assert 'Sending due task report-every-second' in beat.log()
