"""A queue: ready messages, consumers in round-robin, expiry and limits.

Consumers take turns within their x-priority, highest first; with
x-single-active-consumer only the first in line is served.

Delivery is synchronous and has no per-message task: publishing into a
queue with a consumer that has credit writes the delivery at once, and
every event that can create credit (an ack, a new consumer, a qos change,
a writable socket) calls :meth:`Queue.drain`.

Consumers are :class:`~.ports.Subscriber` objects and publishers
:class:`~.ports.Publisher` objects: the queue knows nothing of channels or
connections.  What it needs of its virtual host (the clock, the store, the
memory alarm, deletion and dead-lettering) comes in a :class:`QueueContext`.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from leveret.protocol.properties import with_header

from ..store.base import Store
from . import queue_args
from .celery import TaskTable
from .clock import Clock, TimerHandle
from .counters import QueueCounters
from .memory import MemoryMonitor
from .message import Message
from .ports import Publisher, QueueOwner, Subscriber
from .ready import FifoReady, PriorityReady

log = logging.getLogger(__name__)

# Flow control: a queue whose consumers are taking messages but whose
# backlog keeps growing pauses reading from its publishers (RabbitMQ's credit
# flow plays this part), so the one CPU goes to delivering rather than to
# piling up messages.  Consumers that take nothing for FLOW_STALL seconds
# (a Celery worker holding ETA tasks) never hold publishers back.
FLOW_HIGH = 4000
FLOW_LOW = 1000
FLOW_STALL = 0.5

#: Work over more messages than this (a requeue, a purge, a deletion) goes
#: in slices of this many, one per turn of the event loop: one client's big
#: operation must not stall every other client (a slice takes some 30 ms).
SLICE = 5000

# Why a message leaves a queue without being acked (x-death reasons).
EXPIRED = 'expired'
REJECTED = 'rejected'
MAXLEN = 'maxlen'
DELIVERY_LIMIT = 'delivery_limit'


@dataclass(frozen=True, slots=True)
class QueueContext:
    """What a virtual host lends each of its queues."""

    vhost: str
    clock: Clock
    store: Store
    memory: MemoryMonitor
    #: The queue asks to be deleted (auto-delete, x-expires).
    delete: Callable[['Queue'], object]
    #: Messages that leave without an ack, to the dead-letter exchange.
    dead_letter: Callable[['Queue', list[Message], str], None]


class Queue(QueueCounters):
    def __init__(self, context: QueueContext, name: str, durable: bool = False,
                 exclusive_owner: QueueOwner | None = None, auto_delete: bool = False,
                 arguments: dict[str, Any] | None = None) -> None:
        self.context = context
        self.vhost_name = context.vhost
        self.name = name
        self.durable = durable
        #: The connection that owns an exclusive queue, else None.
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        #: The user who declared it ('' if unknown): who its user limit counts.
        self.declared_by = ''
        self.arguments = dict(arguments or {})
        self.args = queue_args.parse(name, context.vhost, self.arguments)
        max_priority = self.args.max_priority
        self.ready: FifoReady | PriorityReady = (
            PriorityReady(max_priority) if max_priority else FifoReady())
        self.ready_bytes = 0
        self.consumers: list[Subscriber] = []
        self._rr = 0
        self._next_seq = 1
        self.had_consumer = False
        self.deleted = False
        self._draining = False
        self._ttl_timer: TimerHandle | None = None
        self._ttl_deadline = 0.0
        self._expires_timer: TimerHandle | None = None
        self._clock = context.clock
        self._store = context.store
        self._memory = context.memory
        #: Publishers paused by this queue's flow control.
        self.throttled: set[Publisher] = set()
        self.delivered_total = 0
        self._flow_seen = 0
        self._flow_timer: TimerHandle | None = None
        self._stalled = False
        #: Persistent messages are written only in durable queues.
        self.persists = durable and self._store.persistent
        #: How the store names this queue (set by the vhost for durable queues):
        #: vhost, name and an incarnation id unique to this declaration.
        self.store_key = b''
        self.incarnation = ''
        self._limited = (self.args.max_length is not None
                         or self.args.max_length_bytes is not None)
        self._ttl_ms = self.args.message_ttl
        #: x-single-active-consumer: only the longest-registered consumer gets
        #: messages; the next one in line takes over when it goes.
        self._single_active = self.args.single_active_consumer
        #: Consumers of more than one x-priority: :attr:`consumers` is then
        #: kept highest first and round-robin runs within a priority.
        self._prioritised = False
        self._rr_by_priority: dict[int, int] = {}
        #: Consumers per x-priority, and how many are exclusive.
        self._priorities: dict[int, int] = {}
        self._exclusive_consumers = 0
        #: A big requeue's messages not back in :attr:`ready` yet, by seq;
        #: each slice takes the oldest (they go in at their place).
        self.returning: list[Message] = []
        #: Whether :attr:`returning` is in delivery order yet.
        self._returning_sorted = True
        #: Messages of a big purge or deletion not settled yet.
        self._settling: list[Message] = []
        self._slice_timer: TimerHandle | None = None
        #: The last drain stopped with messages left and no consumer with
        #: credit: a publish then only appends (every event that gives
        #: credit calls :meth:`drain`), instead of asking every consumer.
        self._starved = False
        #: During a drain for an ack: the consumers it gave credit back to.
        #: While every other consumer is known to be busy (``_starved``) only
        #: these are asked (with 10,000 consumers, the walk was the cost).
        self._credit_from: list[Subscriber] = []
        self.init_counters()
        #: Celery task name -> its counts in this queue (model.celery).
        self.celery_tasks: TaskTable = {}
        self.touch()

    def __repr__(self) -> str:
        return f'<Queue {self.name!r} ready={len(self.ready)} consumers={len(self.consumers)}>'

    @property
    def exclusive(self) -> bool:
        return self.exclusive_owner is not None

    @property
    def message_count(self) -> int:
        return len(self.ready) + len(self.returning)

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    # --- publishing ---------------------------------------------------------
    def publish(self, message: Message, publisher: Publisher | None = None) -> bool:
        """Enqueue ``message``; False when overflow refused it.

        ``publisher`` is where it came from, for flow control.
        """
        if self._limited:
            verdict = self._make_room(message)
            if verdict is not None:
                return verdict
        message.seq = self._next_seq
        self._next_seq += 1
        self.stat_publish += 1
        ttl = self._ttl_ms
        expiration = message.expiration
        if expiration is not None and (ttl is None or expiration < ttl):
            ttl = expiration
        if ttl is not None:
            if ttl == 0:
                # TTL 0: deliverable only to a consumer that can take it now.
                self._count_in(message)
                if not self._deliver_now(message):
                    self._dead_letter([message], EXPIRED)
                return True
            message.expires_at = self._clock.now() + ttl / 1000.0
        if self.persists and message.persistent:
            self._store.add(self, message)      # raises StoreFailed when it cannot
        # _count_in(message), inlined: once per message and queue.
        memory = self._memory
        held = memory.held = memory.held + message.cost
        if held > memory.peak:
            memory.peak = held
            if held > memory.high:
                memory.check()
        self.ready.append(message)
        self.ready_bytes += len(message.body)
        if self.consumers:
            if not self._starved:
                self.drain()
            if (publisher is not None and len(self.ready) > FLOW_HIGH
                    and not self._stalled and publisher not in self.throttled):
                self._throttle(publisher)
        if ttl is not None and self.ready:
            self._arm_ttl_timer()
        return True

    def _count_in(self, message: Message) -> None:
        memory = self._memory
        held = memory.held = memory.held + message.cost
        if held > memory.peak:
            memory.peak = held
            if held > memory.high:
                memory.check()

    def restore(self, messages: list[Message]) -> None:
        """Messages recovered from the store at start-up, in queue order."""
        for message in messages:
            self._count_in(message)
            self.ready.append(message)
            self.ready_bytes += len(message.body)
        if messages:
            self._next_seq = max(self._next_seq, messages[-1].seq + 1)
            if any(m.expires_at for m in messages):
                self._arm_ttl_timer()

    def _deliver_now(self, message: Message) -> bool:
        for _ in range(len(self.consumers)):
            consumer = self._next_consumer()
            if consumer is None:
                return False
            consumer.deliver(message)
            return True
        return False

    def _make_room(self, message: Message) -> bool | None:
        """Apply x-max-length / x-max-length-bytes before enqueueing.

        None: go on and enqueue.  True: the message was dropped but counts
        as accepted (drop-head).  False: refused (reject-publish*), which a
        publisher in confirm mode sees as basic.nack.
        """
        args = self.args
        max_len, max_bytes = args.max_length, args.max_length_bytes
        size = len(message.body)

        def over() -> bool:
            return ((max_len is not None and len(self.ready) + 1 > max_len)
                    or (max_bytes is not None and self.ready_bytes + size > max_bytes))

        if not over():
            return None
        if args.overflow == 'drop-head':
            dropped = []
            while self.ready and over():
                dropped.append(self._pop_head())
            if dropped:
                self._dead_letter(dropped, MAXLEN)
            if over():
                # Larger than the whole limit: dropped too, but never refused.
                self._dead_letter([message], MAXLEN, settle=False)
                return True
            return None
        if args.overflow == 'reject-publish-dlx':
            self._dead_letter([message], MAXLEN, settle=False)
        return False

    def _pop_head(self) -> Message:
        message = self.ready.drop_head()
        self.ready_bytes -= len(message.body)
        return message

    # --- delivering ---------------------------------------------------------
    def _next_consumer(self) -> Subscriber | None:
        consumers = self.consumers
        n = len(consumers)
        if self._prioritised:
            return self._next_by_priority()
        if n == 1 or (self._single_active and n):
            consumer = consumers[0]
            return consumer if consumer.has_credit() else None
        if self._starved:
            # Everyone was busy at the last look: only those given credit since.
            hints = self._credit_from
            while hints:
                hint = hints[-1]
                if hint.has_credit():
                    return hint
                hints.pop()
            return None
        start = self._rr
        for i in range(n):
            idx = (start + i) % n
            consumer = consumers[idx]
            if consumer.has_credit():
                self._rr = idx + 1
                return consumer
        return None

    def _next_by_priority(self) -> Subscriber | None:
        """The next consumer with credit in the highest priority that has one."""
        consumers = self.consumers
        n = len(consumers)
        first = 0
        while first < n:
            priority = consumers[first].priority
            end = first + 1
            while end < n and consumers[end].priority == priority:
                end += 1
            size = end - first
            start = self._rr_by_priority.get(priority, 0)
            for i in range(size):
                idx = (start + i) % size
                consumer = consumers[first + idx]
                if consumer.has_credit():
                    self._rr_by_priority[priority] = idx + 1
                    return consumer
            first = end
        return None

    def drain(self, credit_from: list[Subscriber] | None = None) -> None:
        """Deliver ready messages to consumers while any has credit.

        ``credit_from``: an ack gave credit back to these consumers only (they
        are asked first, and alone if every other was busy); None: credit may
        have come from anywhere (a new consumer, a qos, a writable socket)."""
        if self._draining or self.deleted:
            return
        if self.returning:
            self._return_in_order()
        ready = self.ready
        if credit_from is None or not ready:
            # Credit from anywhere, or nothing waits (a get, a purge or
            # expiry took it): the next publish asks everyone again.
            self._starved = False
        if not ready or not self.consumers:
            return
        if credit_from and self._starved:
            self._credit_from = list(credit_from)
        self._draining = True
        try:
            now = 0.0
            consumers = self.consumers
            next_consumer = self._next_consumer
            while ready:
                if len(consumers) == 1:
                    # _next_consumer() for a lone consumer, inlined: the
                    # commonest case, once per delivery.
                    consumer = consumers[0]
                    if not consumer.has_credit():
                        self._starved = True
                        break
                else:
                    found = next_consumer()
                    if found is None:
                        self._starved = True
                        break
                    consumer = found
                message = ready.popleft()
                self.ready_bytes -= len(message.body)
                if message.expires_at:
                    if not now:
                        now = self._clock.now()
                    if message.expires_at <= now:
                        self._dead_letter([message], EXPIRED)
                        continue
                consumer.deliver(message)
                self.delivered_total += 1
                self._stalled = False
        finally:
            self._draining = False
            if self._credit_from:
                self._credit_from = []
        if not ready:
            self._starved = False       # it stopped for want of messages, not of credit
        if self.throttled and len(ready) < FLOW_LOW:
            self._release_throttled()

    def get(self) -> Message | None:
        """Take the next live message for basic.get."""
        self.touch()
        if self.returning:
            self._return_in_order()
        ready = self.ready
        now = self._clock.now()
        while ready:
            message = ready.popleft()
            self.ready_bytes -= len(message.body)
            if message.expires_at and message.expires_at <= now:
                self._dead_letter([message], EXPIRED)
                continue
            return message
        return None

    def settle(self, message: Message) -> None:
        """The message left this queue for good (acked, dropped, expired...)."""
        memory = self._memory
        memory.held -= message.cost
        if memory.alarm:
            memory.check()
        if message.store_id:
            self._store.remove(self, message)

    def requeue(self, messages: list[Message]) -> None:
        """Put unacked messages back at their original position (more than
        :data:`SLICE` go back a slice per loop turn)."""
        if self.deleted:
            self._settle_all(messages)
            return
        if len(messages) > SLICE:
            # Counted at once; sorted into delivery order (the ready
            # container's) in a loop turn of its own, so that each slice then
            # goes back whole before the messages it precedes.
            self.returning = self.returning + messages if self.returning else list(messages)
            self._returning_sorted = False
            self._schedule_slice()
            return
        self._requeue_now(messages)

    def _requeue_now(self, messages: list[Message], drain: bool = True) -> None:
        limit = self.args.delivery_limit
        back = []
        over = []
        for message in messages:
            message.redelivered = True
            message.delivery_count += 1
            if limit is not None and message.delivery_count > limit:
                over.append(message)
            else:
                # Every queue type tells consumers how often this failed before.
                try:
                    self._memory.held += message.set_header(with_header(
                        message.header, 'x-delivery-count', message.delivery_count))
                except (ValueError, IndexError, struct.error) as exc:
                    # Rewrites work on any headers table the door let in, so
                    # this is a bug: the message goes back all the same, uncounted.
                    log.error('queue %r: cannot set x-delivery-count: %s', self.name, exc)
                back.append(message)
        if over:
            self._dead_letter(over, DELIVERY_LIMIT)
        if not back:
            return
        back.sort(key=_seq)
        self.ready.requeue(back)
        self.ready_bytes += sum(len(m.body) for m in back)
        if self._ttl_ms is not None or any(m.expires_at for m in back):
            self._arm_ttl_timer()
        if drain:
            self.drain()

    def reject(self, messages: list[Message]) -> None:
        """Messages rejected without requeue: dead-letter or drop them."""
        self._dead_letter(messages, REJECTED)

    def purge(self) -> int:
        count = self.message_count
        messages = list(self.ready)
        self.ready.clear()
        self.ready_bytes = 0
        if self.returning:
            messages += self.returning
            self.returning = []
        self._settle_all(messages)
        return count

    # --- big operations, in slices ------------------------------------------
    def _settle_all(self, messages: list[Message]) -> None:
        """Settle ``messages`` now, or a slice per loop turn when they are many."""
        if len(messages) <= SLICE:
            for message in messages:
                self.settle(message)
            return
        self._settling.extend(messages)
        self._schedule_slice()

    def _schedule_slice(self) -> None:
        if self._slice_timer is None:
            self._slice_timer = self._clock.call_soon(self._next_slice)

    def _next_slice(self) -> None:
        self._slice_timer = None
        if self._settling:
            part = self._settling[-SLICE:]
            del self._settling[-SLICE:]
            for message in part:
                self.settle(message)
        elif self.returning:
            if self._returning_sorted:
                self._return_slice()
                self.drain()
            else:
                self._sort_returning()
        if self._settling or self.returning:
            self._schedule_slice()

    def _sort_returning(self) -> None:
        if not self._returning_sorted:
            self.returning.sort(key=self.ready.order_key)
            self._returning_sorted = True

    def _return_slice(self) -> None:
        self._sort_returning()
        part = self.returning[:SLICE]
        del self.returning[:SLICE]
        self._requeue_now(part, drain=False)

    def _return_in_order(self) -> None:
        """Before taking a message during a big requeue: bring back the
        oldest slice now if it goes before the ready head."""
        self._sort_returning()
        ready = self.ready
        key = ready.order_key
        while self.returning and (not ready or key(ready.peek()) > key(self.returning[0])):
            self._return_slice()

    def finish_slices(self) -> None:
        """Do what is left of the big operations at once (the broker stops)."""
        if self._slice_timer is not None:
            self._slice_timer.cancel()
        while self._settling or self.returning:
            self._next_slice()
        if self._slice_timer is not None:
            self._slice_timer.cancel()
            self._slice_timer = None

    # --- flow control -------------------------------------------------------
    def _throttle(self, publisher: Publisher) -> None:
        self.throttled.add(publisher)
        publisher.throttle(self)
        if self._flow_timer is None:
            self._flow_seen = self.delivered_total
            self._flow_timer = self._clock.call_at(
                self._clock.now() + FLOW_STALL, self._flow_watchdog)

    def _flow_watchdog(self) -> None:
        self._flow_timer = None
        if not self.throttled:
            return
        if self.delivered_total == self._flow_seen:
            # The consumers took nothing: they are not keeping up at all,
            # so holding publishers back gains nothing.
            self._stalled = True
            self._release_throttled()
            return
        self._flow_seen = self.delivered_total
        self._flow_timer = self._clock.call_at(
            self._clock.now() + FLOW_STALL, self._flow_watchdog)

    def forget_publisher(self, publisher: Publisher) -> None:
        self.throttled.discard(publisher)

    def _release_throttled(self) -> None:
        publishers, self.throttled = self.throttled, set()
        for publisher in publishers:
            publisher.unthrottle(self)

    # --- expiry -------------------------------------------------------------
    def _arm_ttl_timer(self) -> None:
        head = self.ready.peek()
        if head is None or not head.expires_at:
            return
        if self._ttl_timer is not None:
            if self._ttl_deadline <= head.expires_at:
                return
            self._ttl_timer.cancel()
        self._ttl_deadline = head.expires_at
        self._ttl_timer = self._clock.call_at(head.expires_at, self._expire_head)

    def _expire_head(self) -> None:
        self._ttl_timer = None
        if self.deleted:
            return
        now = self._clock.now()
        expired = []
        ready = self.ready
        while ready:
            head = ready.peek()
            if head is None or not head.expires_at or head.expires_at > now:
                break
            expired.append(self._pop_head())
        if expired:
            self._dead_letter(expired, EXPIRED)
        self._arm_ttl_timer()

    def touch(self) -> None:
        """Restart the x-expires countdown (the queue was used)."""
        expires = self.args.expires
        if expires is None or self.deleted:
            return
        if self._expires_timer is not None:
            self._expires_timer.cancel()
        self._expires_timer = self._clock.call_at(
            self._clock.now() + expires / 1000.0, self._expire_queue)

    def _expire_queue(self) -> None:
        self._expires_timer = None
        if self.deleted:
            return
        if self.consumers:
            self.touch()
            return
        log.info('queue %r in vhost %r expired (x-expires)', self.name, self.vhost_name)
        self.context.delete(self)

    # --- dead-lettering -----------------------------------------------------
    def _dead_letter(self, messages: list[Message], reason: str, settle: bool = True) -> None:
        """Messages leave without an ack: to the dead-letter exchange, or dropped.

        ``settle`` is False for a message refused before it was enqueued.
        """
        if self.args.dead_letter_exchange is not None:
            self.context.dead_letter(self, messages, reason)
        if settle:
            for message in messages:
                self.settle(message)

    # --- consumers ----------------------------------------------------------
    def add_consumer(self, consumer: Subscriber) -> None:
        consumers = self.consumers
        if self._single_active:
            consumers.append(consumer)  # in line by arrival, whatever its priority
        else:
            at = len(consumers)
            while at and consumers[at - 1].priority < consumer.priority:
                at -= 1
            consumers.insert(at, consumer)
        priorities = self._priorities
        priorities[consumer.priority] = priorities.get(consumer.priority, 0) + 1
        if not self._single_active:
            self._prioritised = len(priorities) > 1
        if consumer.exclusive:
            self._exclusive_consumers += 1
        self.had_consumer = True
        self.touch()

    def remove_consumer(self, consumer: Subscriber) -> None:
        self.remove_consumers([consumer])

    def remove_consumers(self, gone: list[Subscriber]) -> None:
        """Remove ``gone`` (a channel's consumers of this queue) in one pass."""
        consumers = self.consumers
        was_active = bool(consumers) and consumers[0] in gone
        if len(gone) == 1:
            try:
                consumers.remove(gone[0])
            except ValueError:
                return
            removed = gone
        else:
            leaving = set(gone)
            removed = [c for c in consumers if c in leaving]
            if not removed:
                return
            consumers[:] = [c for c in consumers if c not in leaving]
        priorities = self._priorities
        for consumer in removed:
            left = priorities[consumer.priority] - 1
            if left:
                priorities[consumer.priority] = left
            else:
                del priorities[consumer.priority]
            if consumer.exclusive:
                self._exclusive_consumers -= 1
        if self._single_active and was_active and consumers:
            self.drain()  # the next consumer in line takes over
        if self._prioritised:
            self._prioritised = len(priorities) > 1
        if not consumers:
            self.touch()
            if self.auto_delete and self.had_consumer and not self.deleted:
                self.context.delete(self)

    def has_exclusive_consumer(self) -> bool:
        return self._exclusive_consumers > 0

    # --- deletion -----------------------------------------------------------
    def on_deleted(self) -> None:
        """Called by the vhost once the queue is gone: release everything."""
        self.deleted = True
        for timer in (self._ttl_timer, self._expires_timer, self._flow_timer):
            if timer is not None:
                timer.cancel()
        self._ttl_timer = self._expires_timer = self._flow_timer = None
        self._release_throttled()
        consumers, self.consumers = self.consumers, []
        self._priorities.clear()
        self._exclusive_consumers = 0
        for consumer in consumers:
            consumer.cancelled_by_server()
        messages = list(self.ready)
        self.ready.clear()
        self.ready_bytes = 0
        if self.returning:
            messages += self.returning
            self.returning = []
        self._settle_all(messages)


#: A message's place in its queue (a C-level key: sorts of big requeues).
_seq = attrgetter('seq')
