"""The outcome table: what the worker writes when a task starts and when the
pool reports its outcome (in process: the worker's parts over recording
connections)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from leveret.client import errors, states
from leveret.client.messages import ExceptionInfo, ResultMessage
from leveret.client.worker.execute import IGNORED, INVALID, UNSTARTED, Outcome, RetryPlan
from leveret.client.worker.tasks import TaskSpec

from .parts import HOSTNAME, Parts, request_for

LATE = TaskSpec('proj.add', acks_late=True)


def run(scenario: Callable[[Parts], Awaitable[Any]], **options: Any) -> Any:
    async def main() -> Any:
        parts = Parts(**options)
        try:
            return await scenario(parts)
        finally:
            await parts.close()
    return asyncio.run(main())


def success(request: Any, result: Any = 5, **fields: Any) -> Outcome:
    body = ResultMessage.success(request.id, result).body()
    return Outcome(request.job_id, states.SUCCESS, body, repr(result), **fields)


def test_a_task_is_acked_when_it_starts_and_its_result_sent_when_it_ends():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, delivery_tag=7)
        parts.outcomes.started(request, pid=1234)
        await parts.written()
        assert parts.connection.sent == [('ack', 7, True)]
        assert request.worker_pid == 1234 and request.time_start is not None
        parts.outcomes.finished(request, success(request))
        await parts.written()
        assert parts.connection.sent == [('ack', 7, True)]  # no second ack
        [(reply_to, result)] = parts.results()
        assert (reply_to, result.task_id, result.status, result.result) == \
            ('replies', request.id, states.SUCCESS, 5)
        assert parts.state.total == {'proj.add': 1}
    run(scenario)


def test_acks_late_acks_after_the_outcome():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, spec=LATE, delivery_tag=3)
        parts.outcomes.started(request, pid=1)
        await parts.written()
        assert parts.connection.sent == []
        parts.outcomes.finished(request, success(request))
        await parts.written()
        assert parts.connection.sent == [('ack', 3, True)]
        assert [r.status for _, r in parts.results()] == [states.SUCCESS]
    run(scenario)


def test_a_started_result_is_sent_with_track_started():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, spec=TaskSpec('proj.add', track_started=True))
        parts.outcomes.started(request, pid=42)
        await parts.written()
        [(_, result)] = parts.results()
        assert result.status == states.STARTED
        assert result.result == {'pid': 42, 'hostname': HOSTNAME}
    run(scenario)


def test_no_result_without_a_reply_queue_or_with_ignore_result():
    async def scenario(parts: Parts) -> None:
        for request in (request_for(parts, reply_to=''),
                        request_for(parts, ignore_result=True, delivery_tag=2)):
            parts.outcomes.started(request, pid=1)
            parts.outcomes.finished(request, success(request))
        await parts.written()
        assert parts.results() == []
        assert parts.state.total == {'proj.add': 2}
    run(scenario)


def test_a_failure_sends_its_exception_and_is_acked():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, spec=LATE)
        body = ResultMessage.failure(request.id, ValueError('bad')).body()
        parts.outcomes.finished(request, Outcome(request.job_id, states.FAILURE, body,
                                                 "ValueError('bad')", 'Traceback ...'))
        await parts.written()
        [(_, result)] = parts.results()
        assert result.status == states.FAILURE
        assert isinstance(result.value(), ValueError)
        assert parts.connection.sent == [('ack', 1, True)]
    run(scenario)


def test_a_task_lost_with_its_process_is_requeued_with_reject_on_worker_lost():
    async def scenario(parts: Parts) -> None:
        spec = TaskSpec('proj.add', acks_late=True, reject_on_worker_lost=True)
        request = request_for(parts, spec=spec, delivery_tag=4)
        body = ResultMessage.failure(request.id, errors.WorkerLostError('gone')).body()
        parts.outcomes.finished(request, Outcome(request.job_id, states.FAILURE, body,
                                                 'lost', worker_lost=True))
        await parts.written()
        assert parts.connection.sent == [('reject', 4, True)]
        assert parts.results() == []
        assert parts.state.total == {'proj.add': 1}
    run(scenario)


def test_a_retry_is_republished_then_reported_then_acked():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, spec=LATE, args=(1, 2), retries=2)
        eta = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
        plan = RetryPlan(eta=eta, args=[10, 20])
        body = ResultMessage(task_id=request.id, status=states.RETRY).body()
        parts.outcomes.finished(request, Outcome(request.job_id, states.RETRY, body,
                                                 'Retry in 30s', retry=plan))
        await parts.written()
        [(message, exchange, routing_key)] = parts.publisher.tasks
        assert (message.id, message.name, message.args) == (request.id, 'proj.add', [10, 20])
        assert message.headers.retries == 3 and message.headers.eta == eta
        assert (exchange, routing_key) == ('', 'celery')  # where it came from
        assert [r.status for _, r in parts.results()] == [states.RETRY]
        assert parts.connection.sent == [('ack', 1, True)]
    run(scenario)


def test_a_celery_retry_that_sent_itself_is_not_republished():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts)
        plan = RetryPlan(eta=datetime.now(UTC).isoformat(), republish=False)
        parts.outcomes.finished(request, Outcome(request.job_id, states.RETRY, None, 'Retry',
                                                 retry=plan))
        await parts.written()
        assert parts.publisher.tasks == []
    run(scenario)


def test_retry_without_throw_republishes_and_reports_the_value():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts)
        plan = RetryPlan(eta=datetime.now(UTC).isoformat())
        parts.outcomes.finished(request, success(request, 9, retry=plan))
        await parts.written()
        assert [m.headers.retries for m, _, _ in parts.publisher.tasks] == [1]
        assert [(r.status, r.result) for _, r in parts.results()] == [(states.SUCCESS, 9)]
    run(scenario)


def test_a_rejected_task_is_rejected_as_it_asked():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, spec=LATE, delivery_tag=5)
        parts.outcomes.finished(request, Outcome(request.job_id, states.REJECTED, None,
                                                 'Reject', requeue=True))
        early = request_for(parts, delivery_tag=6)
        parts.outcomes.started(early, pid=1)
        parts.outcomes.finished(early, Outcome(early.job_id, states.REJECTED, None, 'Reject'))
        await parts.written()
        # The early-acked one was acked when it started: nothing left to reject (as Celery).
        assert parts.connection.sent == [('reject', 5, True), ('ack', 6, True)]
        assert parts.state.total == {'proj.add': 2}
    run(scenario)


def test_an_ignored_task_is_acked_without_a_result():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, spec=LATE)
        parts.outcomes.finished(request, Outcome(request.job_id, IGNORED))
        await parts.written()
        assert parts.connection.sent == [('ack', 1, True)]
        assert parts.results() == []
        assert parts.state.total == {'proj.add': 1}
    run(scenario)


def test_an_unstarted_job_goes_back_to_the_front_of_ready():
    async def scenario(parts: Parts) -> None:
        waiting = request_for(parts, delivery_tag=1)
        parts.state.ready.append(waiting)
        request = request_for(parts, delivery_tag=2)
        parts.outcomes.finished(request, Outcome(request.job_id, UNSTARTED))
        await parts.written()
        assert list(parts.state.ready) == [request, waiting]
        assert parts.connection.sent == [] and parts.state.total == {}
    run(scenario)


def test_an_unstarted_job_that_was_revoked_is_discarded():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, delivery_tag=2)
        parts.state.revoke(request.id)
        parts.outcomes.finished(request, Outcome(request.job_id, UNSTARTED))
        await parts.written()
        [(_, result)] = parts.results()
        assert result.status == states.REVOKED
        assert isinstance(result.value(), errors.TaskRevokedError)
        assert parts.connection.sent == [('ack', 2, True)]
        assert not parts.state.ready
    run(scenario)


def test_an_unstarted_job_is_requeued_on_shutdown_and_dropped_when_stale():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, delivery_tag=2)
        parts.state.shutting_down = True
        parts.outcomes.finished(request, Outcome(request.job_id, UNSTARTED))
        stale = request_for(parts, delivery_tag=3)
        parts.connection.is_closed = True  # its connection is gone: the broker requeued it
        parts.outcomes.finished(stale, Outcome(stale.job_id, UNSTARTED))
        await parts.written()
        assert parts.connection.sent == [('reject', 2, True)]
        assert not parts.state.ready
    run(scenario)


def test_an_invalid_message_is_rejected_for_good_and_not_counted():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, delivery_tag=8)
        parts.outcomes.finished(request, Outcome(request.job_id, INVALID, summary='bad body'))
        await parts.written()
        assert parts.connection.sent == [('reject', 8, False)]
        assert parts.state.total == {}
    run(scenario)


def test_an_outcome_state_outside_the_table_is_a_failure():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, spec=LATE)
        body = ResultMessage.failure(request.id, RuntimeError('odd')).body()
        parts.outcomes.finished(request, Outcome(request.job_id, 'ODD', body, 'odd'))
        await parts.written()
        assert [r.status for _, r in parts.results()] == [states.FAILURE]
        assert parts.connection.sent == [('ack', 1, True)]
        assert parts.state.total == {'proj.add': 1}
    run(scenario)


def test_a_chain_sends_the_next_task_with_the_value():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts)
        request.message.embed.chain = [{'task': 'proj.last', 'args': [], 'options': {}},
                                       {'task': 'proj.mul', 'args': [10], 'options': {}}]
        request.message.embed.callbacks = [{'task': 'proj.log', 'args': ['done'],
                                            'options': {}, 'immutable': True}]
        parts.outcomes.finished(request, success(request, 5, value=5, follow_up=True))
        await parts.written()
        sent = [(m.name, m.args, m.headers.parent_id, routing_key)
                for m, _, routing_key in parts.publisher.tasks]
        assert sent == [('proj.mul', [5, 10], request.id, 'celery'),
                        ('proj.log', ['done'], request.id, 'celery')]
        chained = parts.publisher.tasks[0][0]
        assert [s['task'] for s in chained.embed.chain] == ['proj.last']
    run(scenario)


def test_a_revoked_or_expired_task_gets_a_revoked_result_and_is_acked():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, spec=LATE, delivery_tag=9)
        parts.outcomes.revoked(request, expired=True)
        await parts.written()
        [(_, result)] = parts.results()
        assert result.status == states.REVOKED
        assert ExceptionInfo.model_validate(result.result).exc_message == ['expired']
        assert parts.connection.sent == [('ack', 9, True)]
        events = parts.task_events()
        assert [(e['type'], e['expired']) for e in events] == [('task-revoked', True)]
    run(scenario, task_events=True)


def test_an_unregistered_task_is_rejected_with_a_not_registered_failure():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts, 'proj.unknown', delivery_tag=11)
        parts.outcomes.unregistered(request.message, 11)
        await parts.written()
        assert parts.connection.sent == [('reject', 11, False)]
        [(_, result)] = parts.results()
        assert isinstance(result.value(), errors.NotRegistered)
    run(scenario)


def test_task_events_follow_the_outcomes():
    async def scenario(parts: Parts) -> None:
        request = request_for(parts)
        parts.outcomes.started(request, pid=1)
        parts.outcomes.finished(request, success(request))
        await parts.written()
        assert [(e['type'], e['uuid']) for e in parts.task_events()] == \
            [('task-started', request.id), ('task-succeeded', request.id)]
    run(scenario, task_events=True)

