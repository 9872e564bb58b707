"""From a delivery to an outcome, in process: the intake reading deliveries
made from real frames, the solo pool running the tasks, the outcomes
writing to recording connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from leveret.client import App, errors, states
from leveret.client.messages import ExceptionInfo, make_task_message
from leveret.client.worker.intake import Intake
from leveret.client.worker.pools.solo import SoloPool
from leveret.client.worker.tasks import registry_for

from .parts import HOSTNAME, FakeConsumerConnection, Parts, delivery_of

app = App('amqp://unused/')
calls: list[tuple[int, int]] = []


@app.task(name='intake.add')
def add(x: int, y: int) -> int:
    calls.append((x, y))
    return x + y


registry = registry_for(app)


def run(scenario: Callable[[Parts, Intake], Awaitable[Any]], **options: Any) -> Any:
    async def main() -> Any:
        calls.clear()
        parts = Parts(**options)
        intake = Intake(registry, HOSTNAME, parts.state, parts.writes, parts.outcomes,
                        parts.events)
        intake.attach_pool(SoloPool(registry, 1, asyncio.get_running_loop(), intake.on_outcome,
                                    intake.on_started))
        try:
            return await scenario(parts, intake)
        finally:
            await parts.close()
    return asyncio.run(main())


async def loop_turns(count: int = 5) -> None:
    """Let callbacks queued on the loop run (the solo pool reports outcomes so)."""
    for _ in range(count):
        await asyncio.sleep(0)


def task(*args: Any, **options: Any) -> Any:
    options.setdefault('reply_to', 'replies')
    return make_task_message('intake.add', args or (2, 3), **options)


def test_a_due_task_runs_and_its_result_and_ack_go_out():
    async def scenario(parts: Parts, intake: Intake) -> None:
        message = task()
        intake.on_message(delivery_of(message, 1))
        await loop_turns()
        await parts.written()
        assert calls == [(2, 3)]
        assert [(q, r.task_id, r.result) for q, r in parts.results()] == \
            [('replies', message.id, 5)]
        assert parts.connection.sent == [('ack', 1, True)]
        assert parts.state.total == {'intake.add': 1} and not parts.state.active
    run(scenario)


def test_a_task_due_later_is_held_unacked_with_one_more_prefetch():
    async def scenario(parts: Parts, intake: Intake) -> None:
        message = task(countdown=3600)
        intake.on_message(delivery_of(message, 1))
        await loop_turns()
        await parts.written()
        assert calls == []
        [held] = parts.state.held.values()
        assert held.id == message.id and not held.acknowledged
        assert parts.connection.sent == [('qos', 9)]  # 8 + 1 held
        # A reconnect: the broker redelivers it; the prefetch count starts over.
        intake.forget_deliveries()
        assert not parts.state.held and held.eta_handle.cancelled()
        assert parts.state.prefetch.value == 8
    run(scenario, prefetch=8)


def test_a_task_revoked_before_it_is_due_is_discarded():
    async def scenario(parts: Parts, intake: Intake) -> None:
        message = task()
        parts.state.revoke(message.id)
        intake.on_message(delivery_of(message, 1))
        await parts.written()
        assert calls == []
        [(_, result)] = parts.results()
        assert result.status == states.REVOKED
        assert parts.connection.sent == [('ack', 1, True)]
    run(scenario)


def test_a_task_past_its_expiry_is_discarded_as_expired():
    async def scenario(parts: Parts, intake: Intake) -> None:
        message = task(expires=datetime.now(UTC) - timedelta(seconds=5))
        intake.on_message(delivery_of(message, 1))
        await parts.written()
        assert calls == []
        [(_, result)] = parts.results()
        assert result.status == states.REVOKED
        assert ExceptionInfo.model_validate(result.result).exc_message == ['expired']
    run(scenario)


def test_an_unregistered_task_is_rejected_with_a_failure_result():
    async def scenario(parts: Parts, intake: Intake) -> None:
        message = make_task_message('intake.unknown', (), reply_to='replies')
        intake.on_message(delivery_of(message, 4))
        await parts.written()
        assert parts.connection.sent == [('reject', 4, False)]
        [(_, result)] = parts.results()
        assert isinstance(result.value(), errors.NotRegistered)
    run(scenario)


def test_a_message_that_is_not_a_task_is_rejected_for_good():
    async def scenario(parts: Parts, intake: Intake) -> None:
        intake.on_message(delivery_of(task(), 2, body=b'not json'))
        await parts.written()
        assert parts.connection.sent == [('reject', 2, False)]
        assert parts.results() == [] and calls == []
    run(scenario)


def test_deliveries_during_a_warm_shutdown_go_back_to_the_broker():
    async def scenario(parts: Parts, intake: Intake) -> None:
        parts.state.shutting_down = True
        intake.on_message(delivery_of(task(), 3))
        await parts.written()
        assert parts.connection.sent == [('reject', 3, True)]
        assert calls == []
    run(scenario)


def test_a_task_delivered_before_a_reconnect_is_not_run():
    async def scenario(parts: Parts, intake: Intake) -> None:
        intake.on_message(delivery_of(task(1, 1), 1))
        intake.on_message(delivery_of(task(2, 2), 2))  # waits: the one slot is taken
        assert len(parts.state.ready) == 1
        parts.writes.attach_consumer(FakeConsumerConnection())  # type: ignore[arg-type]
        await loop_turns()
        assert calls == [(1, 1)]  # the broker redelivers the second
        assert not parts.state.ready
    run(scenario)


def test_a_received_event_carries_the_message_fields():
    async def scenario(parts: Parts, intake: Intake) -> None:
        message = task(4, 5, countdown=3600)
        intake.on_message(delivery_of(message, 1))
        await parts.written()
        [event] = parts.task_events()
        assert (event['type'], event['uuid'], event['name'], event['args']) == \
            ('task-received', message.id, 'intake.add', '(4, 5)')
        assert event['eta'] == message.headers.eta
        intake.drop_waiting()
    run(scenario, task_events=True)
