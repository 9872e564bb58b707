"""AsyncResult reads through the ResultBackend protocol: any backend works
(here one over the client's own ResultStore, no App and no broker), and the
App is one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from leveret.client import App, AsyncResult, TaskRevokedError, current_app, errors, states
from leveret.client.messages import ResultMessage
from leveret.client.result import ResultBackend, ResultStore


class StoreBackend:
    """A ResultBackend over a ResultStore that something else fills."""

    def __init__(self) -> None:
        self.store = ResultStore()

    def latest_result(self, task_id: str) -> ResultMessage | None:
        return self.store.get(task_id)

    def wait_for_result(self, task_id: str, timeout: float | None) -> ResultMessage:
        return self.store.wait(task_id, timeout)

    async def wait_for_result_async(self, task_id: str,
                                    timeout: float | None) -> ResultMessage:
        return await self.store.wait_async(task_id, timeout)

    def forget_result(self, task_id: str) -> None:
        self.store.forget(task_id)


def test_a_result_is_pending_until_its_backend_has_a_state():
    backend = StoreBackend()
    result = AsyncResult('t1', app=backend)
    assert (result.state, result.ready(), result.result, result.date_done) == \
        (states.PENDING, False, None, None)
    backend.store.put(ResultMessage.started('t1', 'w@h', 7))
    assert result.state == states.STARTED and not result.ready()
    backend.store.put(ResultMessage.success('t1', [1, 2]))
    assert (result.state, result.successful(), result.get(timeout=0)) == \
        (states.SUCCESS, True, [1, 2])
    assert isinstance(result.date_done, datetime)
    assert result.date_done.utcoffset() == timedelta(0)
    result.forget()
    assert result.state == states.PENDING


def test_a_failure_is_raised_or_returned():
    backend = StoreBackend()
    backend.store.put(ResultMessage.failure('t2', KeyError('missing'), 'Traceback ...'))
    result = AsyncResult('t2', app=backend)
    with pytest.raises(KeyError):
        result.get(timeout=0)
    assert isinstance(result.get(timeout=0, propagate=False), KeyError)
    assert result.failed() and result.traceback == 'Traceback ...'


def test_a_revoked_task_raises_task_revoked():
    backend = StoreBackend()
    backend.store.put(ResultMessage.failure('t3', TaskRevokedError('revoked'),
                                            status=states.REVOKED))
    with pytest.raises(TaskRevokedError):
        AsyncResult('t3', app=backend).get(timeout=0)


def test_get_gives_up_with_the_clients_timeout_error():
    with pytest.raises(errors.TimeoutError):
        AsyncResult('never', app=StoreBackend()).get(timeout=0)


def test_get_async_waits_on_the_backend():
    async def scenario() -> int:
        backend = StoreBackend()
        waiting = asyncio.ensure_future(AsyncResult('t4', app=backend).get_async(timeout=30))
        await asyncio.sleep(0)
        assert not waiting.done()
        backend.store.put(ResultMessage.success('t4', 4))
        return await waiting
    assert asyncio.run(scenario()) == 4


def test_the_app_is_a_result_backend_and_the_default_one():
    app = App('amqp://unused/')
    backend: ResultBackend = app  # the protocol, checked by mypy too
    app.results.put(ResultMessage.success('t5', 'done'))
    assert AsyncResult('t5', app=backend).result == 'done'
    assert AsyncResult('t5').backend is app is current_app()
    assert app.AsyncResult('t5').state == states.SUCCESS
    app.close()


def test_without_an_app_an_async_result_says_so():
    code = ('from leveret.client.result import AsyncResult\n'
            'try:\n    AsyncResult("x")\nexcept RuntimeError as exc:\n    print(exc)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == 'no App has been created: pass app= or create an App first'
