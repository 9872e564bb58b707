"""What one event loop uses to send tasks: a connection and the consumer of
the process's reply queue (results come back there, in the ``rpc://`` format)."""

from __future__ import annotations

import logging

from aio_pika.abc import AbstractIncomingMessage

from .config import Settings
from .messages import ResultMessage, TaskMessage
from .result import ResultStore
from .transport import QueueSpec, Transport

log = logging.getLogger(__name__)


def reply_queue_spec(name: str, settings: Settings) -> QueueSpec:
    """The reply queue as Celery's rpc backend declares it."""
    return QueueSpec(name, durable=True, auto_delete=True,
                     arguments={'x-expires': int(settings.result_expires * 1000)})


class Producer:
    def __init__(self, settings: Settings, reply_queue: str, store: ResultStore) -> None:
        self.settings = settings
        self.store = store
        self.reply_queue = reply_queue_spec(reply_queue, settings)
        self.transport = Transport(settings.broker_url, connect_timeout=settings.publish_timeout,
                                   publish_timeout=settings.publish_timeout,
                                   confirm=settings.confirm_publish,
                                   broker_use_ssl=settings.broker_use_ssl)
        self._consuming = False

    async def ensure_reply_consumer(self) -> None:
        if not self._consuming:
            self._consuming = True
            try:
                await self.transport.consume(self.reply_queue, self._on_result)
            except BaseException:
                self._consuming = False
                raise

    async def _on_result(self, message: AbstractIncomingMessage) -> None:
        try:
            result = ResultMessage.from_wire(
                {'content_type': message.content_type,
                 'content_encoding': message.content_encoding,
                 'correlation_id': message.correlation_id}, message.body)
        except Exception as exc:
            log.warning('dropping an unreadable result message: %r', exc)
            return
        self.store.put(result)

    async def send(self, message: TaskMessage, *, exchange: str, routing_key: str,
                   declare: list[QueueSpec], timeout: float | None = None) -> None:
        if message.properties.reply_to:
            await self.ensure_reply_consumer()
        properties = message.properties.model_dump(exclude_none=True)
        properties['headers'] = message.header_table()
        await self.transport.publish(message.body(), exchange=exchange, routing_key=routing_key,
                                     properties=properties, declare=declare, timeout=timeout)

    async def close(self) -> None:
        await self.transport.close()
