"""The worker's parts wired as the worker wires them, in process, with only
the sockets replaced: a consumer connection that records acks, rejects and
qos; an aiormq channel whose write queue collects the result frames; a
publisher that records confirmed publishes and events."""

from __future__ import annotations

import asyncio
from typing import Any

from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from leveret.client.messages import ResultMessage, TaskMessage, make_task_message
from leveret.client.worker.delivery import Delivery, decode_content_header, decode_deliver
from leveret.client.worker.events import EventDispatcher, LamportClock
from leveret.client.worker.outcomes import Outcomes
from leveret.client.worker.publisher import Outbox
from leveret.client.worker.request import TaskRequest, wire_properties
from leveret.client.worker.state import WorkerState
from leveret.client.worker.tasks import TaskSpec
from leveret.client.worker.writes import BrokerWrites

HOSTNAME = 'worker@test'


class FakeConsumerConnection:
    """Stands in for ConsumerConnection: records what would go on the wire."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.is_closed = False

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.sent.append(('ack', delivery_tag, multiple))

    def reject(self, delivery_tag: int, requeue: bool) -> None:
        self.sent.append(('reject', delivery_tag, requeue))

    def qos(self, prefetch_count: int, global_: bool = True) -> None:
        self.sent.append(('qos', prefetch_count))

    def write_queued(self) -> None:
        """Nothing is buffered here: every write is recorded at once."""

    async def flush(self) -> None:
        """Nothing is buffered here: every write is recorded at once."""


class FakeChannel:
    """The aiormq channel a FrameWriter hands its frames to."""

    number = 1
    max_content_size = 131064
    is_closed = False

    def __init__(self) -> None:
        self.write_queue: asyncio.Queue[Any] = asyncio.Queue()

    def frames(self) -> list[Any]:
        data = b''
        while not self.write_queue.empty():
            data += self.write_queue.get_nowait().payload
        frames = []
        while data:
            used, _, frame = pframe.unmarshal(data)
            frames.append(frame)
            data = data[used:]
        return frames


class FakePublisher:
    """The producer connection: confirmed task publishes and JSON (events)."""

    def __init__(self) -> None:
        self.tasks: list[tuple[TaskMessage, str, str]] = []
        self.json: list[tuple[Any, str, str]] = []

    async def publish(self, body: bytes, exchange: str, routing_key: str, properties: Any,
                      confirm: bool = False, timeout: float = 30.0) -> None:
        assert confirm, 'tasks are published with confirms'
        message = TaskMessage.from_wire(
            properties.headers, {'content_type': properties.content_type,
                                 'content_encoding': properties.content_encoding,
                                 'correlation_id': properties.correlation_id,
                                 'reply_to': properties.reply_to,
                                 'priority': properties.priority,
                                 'delivery_mode': properties.delivery_mode}, body)
        self.tasks.append((message, exchange, routing_key))

    async def publish_json(self, payload: Any, exchange: str, routing_key: str,
                           headers: dict[str, Any], delivery_mode: int = 1) -> None:
        self.json.append((payload, exchange, routing_key))


class Parts:
    """State, writes, events and outcomes of one worker; build it on a running loop."""

    def __init__(self, task_events: bool = False, prefetch: int = 8) -> None:
        self.publisher = FakePublisher()
        self.outbox = Outbox()
        self.outbox.start()
        self.events = EventDispatcher(self.publisher, self.outbox, HOSTNAME,  # type: ignore
                                      LamportClock(), task_events)
        self.state = WorkerState(prefetch)
        self.writes = BrokerWrites(self.publisher, self.outbox,  # type: ignore[arg-type]
                                   self.state.acks_may_wait)
        self.connection = FakeConsumerConnection()
        self.writes.attach_consumer(self.connection)  # type: ignore[arg-type]
        self.channel = FakeChannel()
        self.writes.attach_results(self.channel)
        self.outcomes = Outcomes(self.state, self.writes, self.events, HOSTNAME, 'celery')

    async def written(self) -> None:
        """Let everything queued go out (acks, results, publishes, events)."""
        assert self.writes.settler is not None
        self.writes.settler.flush()
        self.events.flush()
        await self.writes.flush()

    def results(self) -> list[tuple[str, ResultMessage]]:
        """(reply queue, result) of every result published."""
        found = []
        frames = self.channel.frames()
        for i, frame in enumerate(frames):
            if isinstance(frame, C.Basic.Publish):
                header = frames[i + 1]
                assert isinstance(header, pheader.ContentHeader)
                body = b''
                for part in frames[i + 2:]:
                    if len(body) == header.body_size:
                        break
                    body += part.value
                props = header.properties
                found.append((frame.routing_key, ResultMessage.from_wire(
                    {'content_type': props.content_type,
                     'content_encoding': props.content_encoding,
                     'correlation_id': props.correlation_id}, body)))
        return found

    def task_events(self) -> list[dict[str, Any]]:
        return [event for payload, _, key in self.publisher.json if key == 'task.multi'
                for event in payload]

    async def close(self) -> None:
        assert self.writes.results is not None
        self.writes.results.stop()
        await self.outbox.stop()


def delivery_of(message: TaskMessage, delivery_tag: int = 1, *, routing_key: str = 'celery',
                body: bytes | None = None) -> Delivery:
    """The Delivery the consumer connection makes of ``message``'s frames."""
    deliver = pframe.marshal(C.Basic.Deliver(consumer_tag='ctag', delivery_tag=delivery_tag,
                                             exchange='', routing_key=routing_key), 1)
    properties = message.properties.model_dump(exclude_none=True)
    properties['headers'] = message.header_table()
    body = message.body() if body is None else body
    header = pframe.marshal(pheader.ContentHeader(0, len(body),
                                                  C.Basic.Properties(**properties)), 1)
    delivery = decode_deliver(deliver[7:-1])
    _, delivery.properties = decode_content_header(header[7:-1])
    delivery.body_size = len(body)
    delivery.body = body
    return delivery


def request_for(parts: Parts, name: str = 'proj.add', args: tuple[Any, ...] = (2, 3), *,
                spec: TaskSpec | None = None, delivery_tag: int = 1,
                **options: Any) -> TaskRequest:
    """A request as the intake makes it from a delivery it reads whole (the
    delivery noted as outstanding, as the intake does)."""
    options.setdefault('reply_to', 'replies')
    message = make_task_message(name, args, **options)
    delivery = delivery_of(message, delivery_tag)
    props = delivery.properties
    assert props is not None
    read = TaskMessage.from_wire(props.headers, wire_properties(props), delivery.body)
    assert parts.writes.settler is not None
    parts.writes.settler.delivered(delivery_tag)
    return TaskRequest.read(read, props.headers or {}, spec or TaskSpec(name), delivery,
                            parts.connection)
