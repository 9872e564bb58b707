"""Fixtures for the security tests: brokers with users, permissions and
limits of their own, the management API as an administrator, and a
throw-away certificate authority for TLS."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import BrokerProcess


class Api:
    """The management API over urllib, as one user."""

    def __init__(self, base: str, user: str = 'guest', password: str = 'guest',
                 context: Any = None) -> None:
        self.base = base
        self.auth = 'Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode()
        self.context = context

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={'Authorization': self.auth,
                                                  'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as reply:
                raw = reply.read()
                return reply.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        assert status in (200, 201, 204), (method, path, status, answer)
        return answer


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe='')


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker of the test's own (users and limits change), started."""
    proc = BrokerProcess(tmp_path / 'data', tmp_path / 'broker.log').start()
    yield proc
    proc.kill()


@pytest.fixture
def admin(own_broker: BrokerProcess) -> Api:
    return Api(own_broker.api)
