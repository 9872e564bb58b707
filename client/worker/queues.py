"""The task queues a worker consumes from, picked as ``celery worker`` picks
them, and declared as kombu declares them.

A Celery app: without ``-Q``, every queue of ``task_queues`` (or
``task_default_queue`` when there are none); ``-Q a,b`` selects (a queue
the app does not define is created when ``task_create_missing_queues`` is
on, as Celery's ``Queues.select``; otherwise it is an error), ``-X a``
leaves out. The kombu ``Queue`` objects of ``app.amqp.queues`` are declared
by kombu itself (exchange, queue with its arguments, its bindings) on a
connection of its own, in a thread: exactly what Celery declares.

A Leveret app: the named queues, each durable with a direct exchange of its
name (what Celery declares for a queue it creates), declared through aio-pika.

``active_queues`` answers with kombu's ``Queue.as_dict(recurse=True)`` in
both cases; ``add``/``cancel`` change the queues at run time
(``control add_consumer``/``cancel_consumer``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger('leveret.worker')


class QueueSelectionError(ValueError):
    """``-Q``/``-X`` name a queue the app does not define (and may not create)."""


def plain_queue_dict(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """kombu's ``Queue(name, Exchange(name), name).as_dict(recurse=True)``."""
    return {
        'name': name,
        'exchange': {'name': name, 'type': 'direct', 'arguments': None, 'durable': True,
                     'passive': False, 'auto_delete': False, 'delivery_mode': None,
                     'no_declare': False},
        'routing_key': name, 'queue_arguments': arguments or None, 'binding_arguments': None,
        'consumer_arguments': None, 'durable': True, 'exclusive': False,
        'auto_delete': False, 'no_ack': False, 'alias': None, 'bindings': [],
        'no_declare': None, 'expires': None, 'message_ttl': None, 'max_length': None,
        'max_length_bytes': None, 'max_priority': None,
    }


class TaskQueues:
    """The queues of a Leveret app (names, with the app's queue arguments)."""

    def __init__(self, names: list[str], arguments: dict[str, dict[str, Any]] | None = None
                 ) -> None:
        self.arguments = arguments or {}
        #: Consumed now, in order.
        self.consuming: dict[str, Any] = {name: None for name in names}

    @property
    def names(self) -> list[str]:
        return list(self.consuming)

    def consumer_arguments(self, name: str) -> dict[str, Any] | None:
        return None

    def as_dicts(self) -> list[dict[str, Any]]:
        return [plain_queue_dict(name, self.arguments.get(name)) for name in self.consuming]

    def describe(self, name: str) -> str:
        """The banner's line for a queue (as Celery's)."""
        return f'{name:<16} exchange={name}(direct) key={name}'

    def add(self, name: str, exchange: str | None = None, exchange_type: str | None = None,
            routing_key: str | None = None, **options: Any) -> bool:
        """Consume ``name`` too; False if it is consumed already."""
        if name in self.consuming:
            return False
        self.consuming[name] = None
        return True

    def cancel(self, name: str) -> bool:
        """Stop consuming ``name``; False if it was not consumed."""
        if name not in self.consuming:
            return False
        del self.consuming[name]
        return True

    async def declare(self, names: list[str], connection: Any) -> None:
        """Each queue as Celery declares one: durable, a direct exchange of its
        name, bound with its name (``connection``: the aio-pika connection)."""
        import aio_pika

        channel = await connection.channel(publisher_confirms=False)
        for queue in names:
            arguments = self.arguments.get(queue)
            try:
                declared = await channel.declare_queue(queue, durable=True, arguments=arguments)
                exchange = await channel.declare_exchange(queue, 'direct', durable=True)
                await declared.bind(exchange, routing_key=queue)
            except aio_pika.exceptions.ChannelPreconditionFailed as exc:
                # Declared elsewhere with other arguments: consume it as it is.
                log.warning('queue %s exists with other arguments: %s', queue, exc)
                await channel.reopen()
        await channel.close()


class CeleryQueues(TaskQueues):
    """A Celery app's queues: kombu ``Queue`` objects of ``app.amqp.queues``."""

    def __init__(self, app: Any, include: list[str], exclude: list[str]) -> None:
        super().__init__([])
        self.app = app
        queues = app.amqp.queues
        try:
            queues.select(include)
        except KeyError as exc:
            raise QueueSelectionError(
                f'-Q {",".join(include)}: queue {exc} is not in task_queues '
                '(and task_create_missing_queues is off)') from None
        queues.deselect(exclude)
        self.consuming = dict(queues.consume_from)
        if not self.consuming:
            raise QueueSelectionError('no queue left to consume from (-X left out every one)')

    def consumer_arguments(self, name: str) -> dict[str, Any] | None:
        queue = self.consuming.get(name)
        return dict(queue.consumer_arguments) if queue is not None and \
            queue.consumer_arguments else None

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(queue.as_dict(recurse=True)) for queue in self.consuming.values()]

    def describe(self, name: str) -> str:
        queue = self.consuming[name]
        exchange = queue.exchange
        return f'{name:<16} exchange={exchange.name}({exchange.type}) key={queue.routing_key}'

    def add(self, name: str, exchange: str | None = None, exchange_type: str | None = None,
            routing_key: str | None = None, **options: Any) -> bool:
        """As Celery's ``Consumer.add_task_queue``."""
        if name in self.consuming:
            return False
        queues = self.app.amqp.queues
        if name in queues:  # 'in': queues[name] would create a missing one
            queue = queues[name]
        else:
            queue = queues.select_add(name, exchange=name if exchange is None else exchange,
                                      exchange_type=exchange_type or 'direct',
                                      routing_key=routing_key, **options)
        self.consuming[queue.name] = queue
        return True

    def cancel(self, name: str) -> bool:
        queues = self.app.amqp.queues
        queues.deselect(name)
        alias = queues.aliases.get(name)
        return self.consuming.pop(alias.name if alias is not None else name, None) is not None

    async def declare(self, names: list[str], connection: Any) -> None:
        """kombu declares them, on a connection of its own (in a thread)."""
        queues = [self.consuming[name] for name in names if name in self.consuming]
        await asyncio.get_running_loop().run_in_executor(None, self._declare, queues)

    def _declare(self, queues: list[Any]) -> None:
        with self.app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in queues:
                queue(channel).declare()


def task_queues(app: Any, include: list[str], exclude: list[str], default_queue: str,
                arguments: dict[str, dict[str, Any]] | None = None) -> TaskQueues:
    """The queues of ``app`` to consume from (raises :class:`QueueSelectionError`)."""
    from ..app import App

    if not isinstance(app, App):
        return CeleryQueues(app, include, exclude)
    names = [name for name in (include or [default_queue]) if name not in exclude]
    if not names:
        raise QueueSelectionError('no queue left to consume from (-X left out every one)')
    return TaskQueues(names, arguments)
