"""A channel: published messages, deliveries and their acks, confirms, tx.

Method handlers live in :mod:`.methods`, one module per AMQP class; this
module holds the channel's state and the per-message mechanics that the
frame loop calls directly.  The channel owns its state (the sentinels and
transition table of :mod:`leveret.protocol.states`): only its own methods
change it, through :meth:`Channel._to`.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterable
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pamqp import commands

from leveret.protocol import codec, properties
from leveret.protocol.assembler import Content, ContentAssembler
from leveret.protocol.celery_headers import HEADERS_BIT, task_name
from leveret.protocol.codec import Publish
from leveret.protocol.errors import AccessRefused, AMQPError, NotFound, PreconditionFailed
from leveret.protocol.states import CHANNEL, OPEN, RELEASE, SEND_CLOSE, EventKey, State, transition

from ..access import Grants
from ..model import celery
from ..model.clock import Clock
from ..model.counters import ChannelCounters
from ..model.exchanges import Exchange
from ..model.message import Message
from ..model.queue import SLICE, Queue
from ..store.base import StoreFailed
from .bugs import log_bug
from .consumer import Consumer

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger(__name__)

#: During a memory alarm a message with at most this much of its body still
#: to come is let in whole; one with more holds its publisher mid-body.
FINISH_LIMIT = 4 << 20

# An unacked delivery: the message, its queue, and the consumer (None for get).
Unacked = tuple[Message, Queue, 'Consumer | None']
_MESSAGE = itemgetter(0)
_QUEUE = itemgetter(1)


class Channel(ChannelCounters):
    def __init__(self, connection: 'Connection', channel_id: int) -> None:
        self.conn = connection
        self.id = channel_id
        self.vhost = connection.vhost
        self.store = self.vhost.store
        self.state: State = OPEN
        #: The user's permissions on the vhost as they were when the channel
        #: opened (RabbitMQ's rule: changes apply to channels opened later).
        self.access = Grants.of(connection.sessions.users, connection.username,
                                self.vhost.name)
        #: Exchanges a publish was allowed to with no routing-key rule to check:
        #: the hot path's permission check is this one set lookup.
        self._may_publish: set[Exchange] = set()
        self._may_publish_default = False
        #: For methods that name no queue (the spec's "current queue").
        self.last_queue_name: str | None = None
        #: basic.publish -> content header -> body frames (read by the hot path).
        self.assembler: ContentAssembler[Publish] = ContentAssembler(
            connection.sessions.settings.max_message_size)
        #: Bytes of a body still arriving, counted by the memory alarm.
        self.partial = 0
        # --- deliveries ---
        self.next_tag = 0
        self.unacked: dict[int, Unacked] = {}
        self.unacked_count = 0
        self.consumers: dict[str, Consumer] = {}
        #: The queues those consumers take from, with how many each (an ack
        #: kicks each queue once, however many consumers the channel has).
        self._consumed: dict[Queue, int] = {}
        #: prefetch_count for new consumers (basic.qos global=false).
        self.prefetch = 0
        #: Channel-wide limit over all its consumers (basic.qos global=true).
        self.global_prefetch = 0
        #: Unacked deliveries at most, for consumers that set no prefetch.
        self.unacked_cap = connection.sessions.settings.unacked_max_per_channel
        self.flow_active = True
        #: May deliveries go out now (flow on, socket writable)?
        self.deliverable = connection.writable
        # --- publisher confirms ---
        self.confirm_mode = False
        self.publish_seq = 0
        self._confirmed = 0
        #: [last seq, ack?, store position] runs waiting to be sent.
        self._pending_confirms: list[list[Any]] = []
        self._confirm_waiting_sync = False
        # --- transactions ---
        self.tx_mode = False
        self._tx_publishes: list[tuple[Publish, bytes, bytes]] = []
        self._tx_settles: list[tuple[str, list[tuple[int, Unacked]], bool]] = []
        self._ended = False
        #: Celery-aware accounting on (model.celery): task names are read
        #: from the headers of routed messages.
        self.task_names = (connection.sessions.task_names
                           if connection.sessions.settings.celery_accounting else None)
        self.init_counters()
        connection.sessions.churn.channel_created += 1

    def __repr__(self) -> str:
        return f'<Channel {self.id} of {self.conn!r}>'

    def _to(self, event: EventKey) -> None:
        self.state = transition(CHANNEL, self.state, event)

    # --- output -------------------------------------------------------------
    def send_method(self, method: Any) -> None:
        self.conn.send_method(self.id, method)

    def reply_durably(self, method: Any, position: int) -> None:
        """Send ``method``, once the store synced whatever was written since
        ``position`` (a durable declaration's journal record)."""
        if self.store.write_position() == position:
            self.send_method(method)
        else:
            self.conn.reply_when_synced(self, method)

    def update_deliverable(self) -> None:
        was = self.deliverable
        self.deliverable = self.flow_active and self.conn.writable
        if self.deliverable and not was:
            self.kick()

    def kick(self) -> None:
        """Let the queues this channel consumes from deliver again."""
        for queue in list(self._consumed):
            queue.drain()

    # --- publishing ---------------------------------------------------------
    def body_part(self, size: int) -> None:
        """A body frame that does not complete its message: the memory alarm
        counts it.  During the alarm the publisher is blocked at once unless
        what is left of the body is small (then the whole message goes in,
        and the publisher is blocked after it, as any other)."""
        memory = self.vhost.memory
        memory.held += size
        self.partial += size
        if memory.held > memory.high:
            memory.check()
        if memory.alarm and self.assembler.body_size - self.partial > FINISH_LIMIT:
            memory.block(self.conn)

    def body_done(self) -> None:
        """The body arrived whole (or never will): the message counts it now."""
        memory = self.vhost.memory
        memory.held -= self.partial
        self.partial = 0
        if memory.alarm:
            memory.check()

    def publish_complete(self, content: Content[Publish]) -> None:
        """The assembler has a whole message: route it (or hold it for tx.commit)."""
        publish, header, body = content
        self.stat_publish += 1
        if self.confirm_mode:
            self.publish_seq += 1
        if self.tx_mode:
            # Checked now, as RabbitMQ does, not at commit.
            self.authorize_publish(publish.exchange, publish.routing_key)
            self._tx_publishes.append((publish, header, body))
            return
        self.route_publish(publish, header, body)

    def authorize_publish(self, exchange_name: str, routing_key: str) -> Exchange | None:
        """RabbitMQ's checks of a publish, in its order: write on the exchange
        (403), the exchange exists (404), it is not internal (403), the topic
        permission allows the routing key (403).  An exchange with no topic
        rule is remembered, so the next publish to it costs a set lookup."""
        self.access.check('write', 'exchange', exchange_name)
        vhost = self.vhost
        if exchange_name == '':
            self._may_publish_default = True
            return None
        exchange = vhost.exchanges.get(exchange_name)
        if exchange is None:
            raise NotFound(f"no exchange '{exchange_name}' in vhost '{vhost.name}'")
        if exchange.internal:
            raise AccessRefused(
                f"cannot publish to internal exchange '{exchange_name}' in vhost "
                f"'{vhost.name}'")
        if exchange.kind == 'topic' and self.access.has_topic_rule(exchange_name):
            self.access.check_topic('write', exchange_name, routing_key)
        else:
            may_publish = self._may_publish
            if len(may_publish) >= 256:     # deleted exchanges would stay in it
                may_publish.clear()
            may_publish.add(exchange)
        return exchange

    def route_publish(self, publish: Publish, header: bytes, body: bytes) -> None:
        """Route one complete message and confirm it if in confirm mode."""
        vhost = self.vhost
        exchange_name = publish.exchange
        # The permission first, as RabbitMQ (one set lookup once allowed).
        exchange = None
        if exchange_name == '':
            if not self._may_publish_default:
                self.authorize_publish('', publish.routing_key)
        else:
            exchange = vhost.exchanges.get(exchange_name)
            if exchange not in self._may_publish:
                exchange = self.authorize_publish(exchange_name, publish.routing_key)
        try:
            delivery_mode, priority, expiration, user_id = properties.scan(header)
        except UnicodeDecodeError:
            raise PreconditionFailed(
                'invalid content header properties: a short string is not valid UTF-8'
            ) from None
        except properties.InvalidProperties as exc:
            raise PreconditionFailed(f'invalid content header properties: {exc}') from None
        except (IndexError, ValueError, struct.error):
            raise PreconditionFailed(
                'invalid content header properties: truncated') from None
        if (exchange is not None and exchange.kind == 'headers'
                and header[12] & HEADERS_BIT):
            # Only this exchange reads the table on the way in: a publisher
            # is told when it cannot, rather than routed on a guess.
            try:
                properties.check_headers(header)
            except properties.InvalidProperties as exc:
                raise PreconditionFailed(f'invalid content header properties: {exc}') from None
        if (user_id is not None and user_id != self.conn.username
                and not self.access.impersonator):
            raise PreconditionFailed(
                f"user_id property set to '{user_id}' but authenticated user was "
                f"'{self.conn.username}'")
        if delivery_mode > 2:
            raise PreconditionFailed(f'invalid message: {{delivery_mode_unknown,{delivery_mode}}}')
        ttl = None
        if expiration is not None:
            ttl = _parse_expiration(expiration)
        message = Message(exchange_name, publish.routing_key, header, body, priority,
                          delivery_mode == 2, ttl, publish.exchange_and_key)
        task = None
        if header[12] & HEADERS_BIT and self.task_names is not None:
            raw_name = task_name(header)
            if raw_name is not None:
                task = message.task = (self.task_names.name(raw_name), time.monotonic())
        if exchange is None:
            queue = vhost.queues.get(publish.routing_key)
            queues: Any = (queue,) if queue is not None else ()
        else:
            queues = vhost.route(exchange, publish.routing_key, message)
        accepted = True
        first = True
        conn = self.conn
        if vhost.memory.alarm:
            vhost.memory.block(conn)
        for queue in queues:
            try:
                if not queue.publish(message if first else message.copy(), conn):
                    accepted = False
                elif task is not None:
                    celery.published(queue.celery_tasks, task)
            except StoreFailed as exc:
                if not self.confirm_mode:
                    raise PreconditionFailed(
                        f"cannot store persistent message for queue '{queue.name}': "
                        f"{exc}") from None
                accepted = False
            first = False
        if first:
            if publish.mandatory:
                self.conn.send_return(self.id, 312, 'NO_ROUTE', message)
                self.stat_return_unroutable += 1
            else:
                self.stat_drop_unroutable += 1
        if exchange is not None:
            exchange.stat_publish_in += 1
            if not first:
                exchange.stat_publish_out += 1
        if self.confirm_mode:
            self.confirm(accepted, self.vhost.store.write_position()
                         if message.persistent and not first else 0)

    # --- publisher confirms -------------------------------------------------
    def confirm(self, ok: bool, position: int) -> None:
        """Record the outcome of publish ``publish_seq`` for confirmation."""
        seq = self.publish_seq
        pending = self._pending_confirms
        if pending:
            last = pending[-1]
            if last[1] == ok:
                last[0] = seq
                if position > last[2]:
                    last[2] = position
                return
        else:
            self.conn.confirms_due(self)
        pending.append([seq, ok, position])

    def send_confirms(self) -> None:
        """Send every confirm whose message is safe (synced when persistent)."""
        pending = self._pending_confirms
        if not pending:
            return
        store = self.store
        synced = store.synced_position()
        sent = 0
        for entry in pending:
            seq, ok, position = entry
            if position > synced:
                if not store.confirm_failed(position):
                    if not self._confirm_waiting_sync:
                        self._confirm_waiting_sync = True
                        store.when_synced(self._synced)
                    break
                ok = False      # the write it waited for failed: nack
            multiple = seq - self._confirmed > 1
            if ok:
                frame = codec.ack_frame(self.id, seq, multiple)
                self.stat_confirm += seq - self._confirmed
            else:
                frame = codec.nack_frame(self.id, seq, multiple)
            self.conn.send_raw(frame)
            self._confirmed = seq
            sent += 1
        if sent:
            del pending[:sent]

    def _synced(self) -> None:
        self._confirm_waiting_sync = False
        if self.state is OPEN:
            self.send_confirms()
            self.conn.flush_soon()

    # --- deliveries and acks ------------------------------------------------
    def deliver_get(self, queue: Queue, message: Message, no_ack: bool) -> None:
        tag = self.next_tag + 1
        self.next_tag = tag
        if no_ack:
            queue.settle(message)
            self.stat_get_no_ack += 1
            queue.stat_get_no_ack += 1
        else:
            if message.store_id:
                self.store.delivered(message)
            self.unacked[tag] = (message, queue, None)
            self.unacked_count += 1
            self.stat_get += 1
            queue.stat_get += 1
        if message.redelivered:
            self.stat_redeliver += 1
            queue.stat_redeliver += 1
        if message.task is not None:
            celery.delivered(queue.celery_tasks, message, message.task)
        self.conn.send_get_ok(self.id, tag, message, queue.message_count)

    def _take(self, tag: int, multiple: bool) -> list[tuple[int, Unacked]]:
        """Remove and return the unacked deliveries an ack/nack refers to."""
        unacked = self.unacked
        if multiple:
            if tag == 0:
                taken = list(unacked.items())
                unacked.clear()
                return taken
            keys = []
            for key in unacked:
                if key > tag:
                    break
                keys.append(key)
            if not keys:
                raise PreconditionFailed(f'unknown delivery tag {tag}')
            return [(key, unacked.pop(key)) for key in keys]
        entry = unacked.pop(tag, None)
        if entry is None:
            raise PreconditionFailed(f'unknown delivery tag {tag}')
        return [(tag, entry)]

    def _release(self, taken: list[tuple[int, Unacked]]) -> None:
        """Give back the credit the deliveries held."""
        self.unacked_count -= len(taken)
        for _, (_message, _queue, consumer) in taken:
            if consumer is not None:
                consumer.unacked -= 1

    def _kick_after(self, taken: list[tuple[int, Unacked]]) -> None:
        """Let the queues deliver again after ``taken`` gave their credit back,
        naming the consumers that got it (a queue whose consumers were all
        busy asks only those).  A global prefetch gives credit to every
        consumer of this channel: then each queue is told about those on it."""
        hints: dict[Queue, list[Consumer]] = {queue: [] for queue in self._consumed}
        credited: Iterable[Consumer | None] = (
            self.consumers.values() if self.global_prefetch
            else (consumer for _, (_message, _queue, consumer) in taken))
        for consumer in credited:
            if consumer is not None:
                listed = hints.get(consumer.queue)
                if listed is not None:
                    listed.append(consumer)
        for queue, consumers in hints.items():
            queue.drain(consumers)      # type: ignore[arg-type]

    def ack(self, tag: int, multiple: bool) -> None:
        taken = self._take(tag, multiple)
        if self.tx_mode:
            self._tx_settles.append(('ack', taken, False))
            return
        self._settle(taken)

    def _settle(self, taken: list[tuple[int, Unacked]]) -> None:
        self._release(taken)
        acked = 0
        for _, (message, queue, _consumer) in taken:
            queue.settle(message)
            queue.stat_ack += 1
            acked += 1
            if message.task is not None:
                celery.acked(queue.celery_tasks, message.task)
        self.stat_ack += acked
        self._kick_after(taken)

    def nack(self, tag: int, multiple: bool, requeue: bool) -> None:
        taken = self._take(tag, multiple)
        if self.tx_mode:
            self._tx_settles.append(('nack', taken, requeue))
            return
        self._reject(taken, requeue)

    def _reject(self, taken: list[tuple[int, Unacked]], requeue: bool,
                by_client: bool = True) -> None:
        self._release(taken)
        by_queue: dict[Queue, list[Message]] = {}
        for _, (message, queue, _consumer) in taken:
            by_queue.setdefault(queue, []).append(message)
            if message.task is not None and by_client:
                celery.rejected(queue.celery_tasks, message.task)
        for queue, messages in by_queue.items():
            if requeue:
                queue.requeue(messages)
            else:
                queue.reject(messages)
        self._kick_after(taken)

    def recover(self) -> None:
        """basic.recover: requeue every unacked delivery of the channel."""
        taken = list(self.unacked.items())
        self.unacked.clear()
        self._reject(taken, True, by_client=False)

    # --- what the management API shows ----------------------------------------
    def tx_pending_acks(self) -> int:
        """Acks and rejects held for the next tx.commit."""
        return sum(len(taken) for _kind, taken, _requeue in self._tx_settles)

    def tx_pending_publishes(self) -> int:
        return len(self._tx_publishes)

    def unconfirmed(self) -> int:
        """Publishes in confirm mode not confirmed yet."""
        return self.publish_seq - self._confirmed if self.confirm_mode else 0

    # --- transactions -------------------------------------------------------
    def tx_commit(self) -> None:
        publishes, self._tx_publishes = self._tx_publishes, []
        settles, self._tx_settles = self._tx_settles, []
        for publish, header, body in publishes:
            self.route_publish(publish, header, body)
        for kind, taken, requeue in settles:
            if kind == 'ack':
                self._settle(taken)
            else:
                self._reject(taken, requeue)

    def tx_rollback(self) -> None:
        self._tx_publishes = []
        settles, self._tx_settles = self._tx_settles, []
        # Rolled-back acks leave the deliveries unacked, in tag order.
        restored = dict(self.unacked)
        for _kind, taken, _requeue in settles:
            restored.update(taken)
        self.unacked = dict(sorted(restored.items()))

    # --- consumers ----------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers[consumer.tag] = consumer
        consumed = self._consumed
        consumed[consumer.queue] = consumed.get(consumer.queue, 0) + 1
        consumer.queue.add_consumer(consumer)

    def _forget_consumer(self, consumer: Consumer) -> None:
        consumed = self._consumed
        left = consumed.get(consumer.queue, 0) - 1
        if left > 0:
            consumed[consumer.queue] = left
        else:
            consumed.pop(consumer.queue, None)

    def cancel_consumer(self, tag: str) -> Consumer | None:
        consumer = self.consumers.pop(tag, None)
        if consumer is not None:
            self._forget_consumer(consumer)
            consumer.queue.remove_consumer(consumer)
        return consumer

    def consumer_cancelled_by_server(self, consumer: Consumer) -> None:
        """The consumer's queue was deleted: tell the client if it listens."""
        if self.consumers.pop(consumer.tag, None) is None:
            return
        self._forget_consumer(consumer)
        if self.state is OPEN and self.conn.client_capability('consumer_cancel_notify'):
            self.conn.notify(self, commands.Basic.Cancel(consumer_tag=consumer.tag, nowait=True))

    def set_qos(self, prefetch_count: int, global_: bool) -> None:
        if global_:
            self.global_prefetch = prefetch_count
        else:
            # Unlike RabbitMQ, a new per-consumer prefetch also applies to
            # the consumers already running: Celery changes it at run time.
            self.prefetch = prefetch_count
            for consumer in self.consumers.values():
                consumer.prefetch = prefetch_count

    # --- closing ------------------------------------------------------------
    def close_with(self, exc: AMQPError) -> None:
        """A channel error: release everything, send channel.close and wait
        for close-ok (frames until then are dropped by the connection)."""
        if exc.code == 403:
            # Refusals are worth an operator's attention (RabbitMQ logs them too).
            method = commands.INDEX_MAPPING.get((exc.class_id << 16) | exc.method_id)
            log.warning("channel error on connection '%s' (vhost '%s', user '%s'), channel %d:"
                        " operation %s caused a channel exception: %s", self.conn.name,
                        self.vhost.name, self.conn.username, self.id,
                        method.name if method is not None else 'none', exc.text)
        else:
            log.debug('%r error: %s', self, exc.text)
        self._release_all()
        self._to(SEND_CLOSE)
        self.conn.forget_confirms(self)
        self.send_method(commands.Channel.Close(
            reply_code=exc.code, reply_text=exc.text[:255], class_id=exc.class_id,
            method_id=exc.method_id))

    def closed_by_client(self) -> None:
        """channel.close from the client (answered by the handler)."""
        self._release_all()
        self._to(commands.Channel.Close)
        self._end()
        self.conn.channel_closed(self)

    def finish_close(self, event: type) -> None:
        """close-ok for the close we sent (or the client's own close, which
        crossed ours): the channel is gone."""
        self._to(event)
        self._end()
        self.conn.channel_closed(self)

    def release(self) -> None:
        """The connection is going away: drop consumers, requeue unacked deliveries."""
        if self.state is OPEN:
            self._release_all()
        self._to(RELEASE)
        self._end()

    def _end(self) -> None:
        """The channel is gone: its counts go on in its vhost's totals."""
        if self._ended:
            return
        self._ended = True
        self.conn.sessions.churn.channel_closed += 1
        self.vhost.closed_channels.add_counters(self)

    def _release_all(self) -> None:
        self.deliverable = False
        self.assembler.reset()
        if self.partial:
            self.body_done()
        by_queue_consumers: dict[Queue, list[Consumer]] = {}
        for consumer in self.consumers.values():
            by_queue_consumers.setdefault(consumer.queue, []).append(consumer)
        self.consumers.clear()
        self._consumed.clear()
        for _kind, taken, _requeue in self._tx_settles:
            self.unacked.update(taken)
        self._tx_settles = []
        self._tx_publishes = []
        taken = list(self.unacked.values())     # the queues put them back in order
        self.unacked.clear()
        self.unacked_count = 0
        # Grouped by queue at C speed (500,000 unacked take a Python loop of
        # a tenth of a second); most often they are all of one queue.
        by_queue: dict[Queue, list[Message]] = {}
        queues = set(map(_QUEUE, taken))
        if len(queues) == 1:
            by_queue[queues.pop()] = list(map(_MESSAGE, taken))
        else:
            for queue, run in groupby(taken, key=_QUEUE):
                messages = list(map(_MESSAGE, run))
                if queue in by_queue:
                    by_queue[queue] += messages
                else:
                    by_queue[queue] = messages
        if len(taken) > SLICE:
            # Freeing 500,000 (message, queue, consumer) entries takes tens
            # of milliseconds: a slice per loop turn.
            clock = self.vhost.clock
            clock.call_soon(lambda: _free_in_slices(taken, clock))
        # Requeue before removing consumers: an auto-delete queue must not
        # vanish with deliveries still out (RabbitMQ requeues first too);
        # this channel is no longer deliverable, so nothing comes back here.
        # Each step runs whatever the others did: a clean-up that stopped
        # half-way would lose messages or leave a consumer behind.
        for queue, messages in by_queue.items():
            try:
                queue.requeue(messages)
            except Exception as exc:   # a bug: log it, and clean up the rest all the same
                log_bug(log, f'{self!r}: requeue of {len(messages)} messages to {queue!r} '
                             f'failed', exc)
        for queue, consumers in by_queue_consumers.items():
            try:
                queue.remove_consumers(consumers)   # type: ignore[arg-type]
            except Exception as exc:
                log_bug(log, f'{self!r}: removing {len(consumers)} consumers of {queue!r} '
                             f'failed', exc)


def _free_in_slices(items: list[Any], clock: Clock) -> None:
    del items[-SLICE:]
    if items:
        clock.call_soon(lambda: _free_in_slices(items, clock))


def _parse_expiration(value: str) -> int:
    """The ``expiration`` property: milliseconds as a decimal string."""
    try:
        ttl = int(value)
    except ValueError:
        raise PreconditionFailed(f"invalid expiration '{value}': no_integer") from None
    if ttl < 0:
        raise PreconditionFailed(f"invalid expiration '{value}': {{value_negative,{ttl}}}")
    return ttl
