"""Fixtures for the Celery scenarios.

Every test module gets a Leveret broker of its own (so queues, pidbox
broadcasts and leftover messages of one module never reach another module's
worker) and writes ``app_module.py`` into a directory of its own under a
unique module name, with its Celery settings beside it. Workers, beat and
``celery events`` run as subprocesses in their own session, so a finalizer
can kill each of them with its children (prefork pool processes included).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..conftest import BrokerProcess
from .harness import CeleryProject


@pytest.fixture(scope='module')
def celery_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker for this test module alone."""
    base = tmp_path_factory.mktemp('celery-broker')
    proc = BrokerProcess(base / 'data', base / 'broker.log').start()
    yield proc
    code = proc.stop()
    assert code == 0, proc.log()


ProjectFactory = Callable[..., CeleryProject]


@pytest.fixture(scope='module')
def celery_project_factory(tmp_path_factory: pytest.TempPathFactory
                           ) -> Iterator[ProjectFactory]:
    """``make(broker_url, **conf)``: a Celery project; its processes die with the module."""
    projects: list[CeleryProject] = []

    def make(broker_url: str, queues: list[dict[str, Any]] | None = None,
             **conf: Any) -> CeleryProject:
        project = CeleryProject(tmp_path_factory.mktemp('celery-app'), broker_url, conf, queues)
        projects.append(project)
        return project

    yield make
    for project in reversed(projects):
        project.close()


@pytest.fixture
def unique_queue() -> str:
    return f'q-{uuid.uuid4().hex[:10]}'
