"""Fixtures for the management API: the shared broker's API, and a broker of
the test's own for tests that change users, vhosts or restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import BrokerProcess
from .client import Api

DATA = Path(__file__).resolve().parent.parent / 'data' / 'rabbitmq-3.10'


@pytest.fixture
def api(broker: BrokerProcess) -> Api:
    return Api(broker.api)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / 'data', tmp_path / 'broker.log').start()
    yield proc
    proc.kill()


@pytest.fixture
def own_api(own_broker: BrokerProcess) -> Api:
    return Api(own_broker.api)
