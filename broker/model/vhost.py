"""A virtual host: its exchanges, queues and bindings, and routing.

Everything here is synchronous and raises AMQP errors with RabbitMQ's
reply texts; the session's method handlers translate methods into these
calls.  The vhost hands each queue a :class:`~.queue.QueueContext` whose
callbacks (delete, dead-letter) lead back here; queues hold no reference to
the vhost itself.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from leveret.protocol.errors import (
    AccessRefused,
    NotFound,
    PreconditionFailed,
    ResourceLocked,
)

from ..store.base import Store
from ..store.records import queue_key
from . import deadletter, queue_args
from .clock import Clock
from .counters import ChurnCounters, ClosedChannels
from .exchanges import EXCHANGE_TYPES, Exchange
from .exchanges.default import DefaultExchange
from .exchanges.headers import validate_binding
from .memory import MemoryMonitor
from .message import Message
from .ports import DurableTopology, QueueOwner
from .queue import Queue, QueueContext

log = logging.getLogger(__name__)

PREDECLARED = (
    ('', 'direct'),
    ('amq.direct', 'direct'),
    ('amq.fanout', 'fanout'),
    ('amq.topic', 'topic'),
    ('amq.headers', 'headers'),
    ('amq.match', 'headers'),
)


def generated_name(prefix: str) -> str:
    """A name like RabbitMQ's ``amq.gen-<22 chars of base64url>``."""
    return prefix + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip('=')


#: Messages dead-lettered per loop turn at most (a cascade goes on next turn).
DEAD_LETTER_SLICE = 5000


class VirtualHost:
    def __init__(self, name: str, store: Store, clock: Clock,
                 memory: MemoryMonitor | None = None,
                 topology: DurableTopology | None = None,
                 churn: ChurnCounters | None = None) -> None:
        self.name = name
        #: Queues declared, created and deleted (shared by the broker's vhosts).
        self.churn = churn if churn is not None else ChurnCounters()
        #: The counts of this vhost's channels that have closed.
        self.closed_channels = ClosedChannels()
        self.store = store
        self.clock = clock
        self.memory = memory if memory is not None else MemoryMonitor(1 << 62)
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        #: How many queues of this vhost each user declared (the user limits).
        self.queues_by_user: dict[str, int] = {}
        #: RabbitMQ's vhost limits: ``max-connections``, ``max-queues`` (a
        #: negative value or none: no limit).
        self.limits: dict[str, int] = {}
        #: destination (queue or exchange) -> {source exchange: bindings}
        self._sources: dict[Any, dict[Exchange, int]] = {}
        self.topology: DurableTopology = topology or _Unsaved()
        #: What the API shows and the definitions export (RabbitMQ's vhost metadata).
        self.description = ''
        self.tags: list[str] = []
        self.default_queue_type = 'undefined'
        #: Exclusive queues by the owner that declared them.
        self._exclusive: dict[QueueOwner, set[Queue]] = {}
        #: Dead-lettering waiting its turn (see :meth:`dead_letter`).
        self._dead_letters: deque[tuple[Queue, list[Message], str]] = deque()
        self._dead_lettering = False
        self._dead_letter_timer: Any = None
        self._queue_context = QueueContext(name, clock, store, self.memory,
                                           self.delete_queue, self.dead_letter)
        self.exchanges[''] = DefaultExchange(name, self.queues)
        for exchange_name, kind in PREDECLARED[1:]:
            self.exchanges[exchange_name] = EXCHANGE_TYPES[kind](
                name, exchange_name, durable=True)

    def __repr__(self) -> str:
        return f'<VirtualHost {self.name!r}>'

    # --- lookups ------------------------------------------------------------
    def exchange(self, name: str) -> Exchange:
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise NotFound(f"no exchange '{name}' in vhost '{self.name}'")
        return exchange

    def queue(self, name: str, owner: QueueOwner | None = None) -> Queue:
        """The queue called ``name``; 405 if another owner has it exclusively."""
        queue = self.queues.get(name)
        if queue is None:
            raise NotFound(f"no queue '{name}' in vhost '{self.name}'")
        if queue.exclusive_owner is not None and queue.exclusive_owner is not owner:
            raise self._locked(name)
        return queue

    def _locked(self, name: str) -> ResourceLocked:
        return ResourceLocked(
            f"cannot obtain exclusive access to locked queue '{name}' in vhost "
            f"'{self.name}'. It could be originally declared on another connection "
            f"or the exclusive property value does not match that of the original "
            f"declaration.")

    # --- exchanges ----------------------------------------------------------
    def declare_exchange(self, name: str, kind: str, passive: bool = False,
                         durable: bool = False, auto_delete: bool = False,
                         internal: bool = False,
                         arguments: dict[str, Any] | None = None) -> Exchange:
        arguments = arguments or {}
        if name == '':      # passive or not, as RabbitMQ
            raise AccessRefused(
                "operation not permitted on the default exchange")
        if passive:
            return self.exchange(name)
        if name.startswith('amq.') and name not in self.exchanges:
            raise AccessRefused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
        cls = EXCHANGE_TYPES.get(kind)
        existing = self.exchanges.get(name)
        if existing is not None:
            self._assert_exchange_equivalent(existing, kind, durable, auto_delete,
                                             internal, arguments)
            return existing
        if cls is None:
            # RabbitMQ 3.10 closes the connection (503); 4.x closes the
            # channel with 406, which hurts fewer clients.
            raise PreconditionFailed(f"invalid exchange type '{kind}'")
        exchange = cls(self.name, name, durable=durable, auto_delete=auto_delete,
                       internal=internal, arguments=arguments)
        self.exchanges[name] = exchange
        if durable:
            self.topology.exchange_saved(self.name, exchange)
        return exchange

    def _assert_exchange_equivalent(self, existing: Exchange, kind: str, durable: bool,
                                    auto_delete: bool, internal: bool,
                                    arguments: dict[str, Any]) -> None:
        def differ(field: str, received: Any, current: Any) -> PreconditionFailed:
            return PreconditionFailed(
                f"inequivalent arg '{field}' for exchange '{existing.name}' in vhost "
                f"'{self.name}': received '{_render(received)}' but current is "
                f"'{_render(current)}'")

        if existing.kind != kind:
            raise differ('type', kind, existing.kind)
        if existing.durable != durable:
            raise differ('durable', durable, existing.durable)
        if existing.auto_delete != auto_delete:
            raise differ('auto_delete', auto_delete, existing.auto_delete)
        if existing.internal != internal:
            raise differ('internal', internal, existing.internal)
        old_ae = existing.arguments.get('alternate-exchange')
        new_ae = arguments.get('alternate-exchange')
        if old_ae != new_ae:
            raise PreconditionFailed(
                f"inequivalent arg 'alternate-exchange' for exchange '{existing.name}' "
                f"in vhost '{self.name}': received {_describe(new_ae)} but current is "
                f"{_describe(old_ae)}")

    def delete_exchange(self, name: str, if_unused: bool = False) -> None:
        if name == '':
            raise AccessRefused('operation not permitted on the default exchange')
        if name.startswith('amq.') and name in self.exchanges:
            raise AccessRefused(
                f"deletion of system exchange '{name}' in vhost '{self.name}' not allowed")
        exchange = self.exchanges.get(name)
        if exchange is None:
            return      # RabbitMQ answers delete-ok for a missing exchange
        if if_unused and (exchange.bindings or self._sources.get(exchange)):
            raise PreconditionFailed(f"exchange '{name}' in vhost '{self.name}' in use")
        self._remove_exchange(exchange)

    def _remove_exchange(self, exchange: Exchange) -> None:
        del self.exchanges[exchange.name]
        exchange.deleted = True
        for (destination, key, _), arguments in list(exchange.bindings.items()):
            self._forget_source(destination, exchange)
            self._binding_dropped(exchange, destination, key, arguments)
        exchange.clear_bindings()
        # Bindings where this exchange is the destination go too.
        self._unbind_destination(exchange)
        if exchange.durable:
            self.topology.exchange_dropped(self.name, exchange.name)

    def _unbind_destination(self, destination: Queue | Exchange) -> None:
        for source in list(self._sources.pop(destination, {})):
            for key, arguments in source.bindings_to(destination):
                self._binding_dropped(source, destination, key, arguments)
            source.unbind_destination(destination)
            self._maybe_auto_delete(source)

    def _binding_dropped(self, source: Exchange, destination: Queue | Exchange, key: str,
                         arguments: dict[str, Any]) -> None:
        if source.durable and _is_durable(destination):
            self.topology.binding_dropped(self.name, source.name, destination, key, arguments)

    # --- queues -------------------------------------------------------------
    def declare_queue(self, name: str, owner: QueueOwner | None, passive: bool = False,
                      durable: bool = False, exclusive: bool = False,
                      auto_delete: bool = False,
                      arguments: dict[str, Any] | None = None,
                      incarnation: str | None = None,
                      authorize: Callable[[str, Queue | None], None] | None = None,
                      declared_by: str = '') -> Queue:
        """Declare (or find) a queue for ``owner`` (who owns it if exclusive).

        ``incarnation`` is given when the queue is recreated from the store
        at start-up.  ``authorize(name, existing)`` is called once the name
        is known (a server-named queue's too), before anything is checked
        against an existing queue or created: the session checks permissions
        and limits there and raises to refuse.  ``declared_by`` is the user
        a new queue is counted against (:attr:`queues_by_user`)."""
        arguments = arguments or {}
        if passive:
            queue = self.queue(name, owner)
            queue.touch()
            self.churn.queue_declared += 1
            return queue
        if name == '':
            name = generated_name('amq.gen-')
        elif name.startswith('amq.') and name not in self.queues:
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        existing = self.queues.get(name)
        if authorize is not None:
            authorize(name, existing)
        if existing is not None:
            if existing.exclusive_owner is not None and existing.exclusive_owner is not owner:
                raise self._locked(name)
            self._assert_queue_equivalent(existing, durable, exclusive, auto_delete,
                                          arguments)
            existing.touch()
            self.churn.queue_declared += 1
            return existing
        if arguments.get('x-queue-type') == 'quorum':
            if exclusive:
                raise PreconditionFailed(
                    f"invalid property 'exclusive-owner' for queue '{name}' in vhost "
                    f"'{self.name}'")
            durable = True     # quorum queues are always durable
        queue = Queue(self._queue_context, name, durable=durable,
                      exclusive_owner=owner if exclusive else None,
                      auto_delete=auto_delete, arguments=arguments)
        self.queues[name] = queue
        if declared_by:
            queue.declared_by = declared_by
            self.queues_by_user[declared_by] = self.queues_by_user.get(declared_by, 0) + 1
        self.churn.queue_declared += 1
        self.churn.queue_created += 1
        if exclusive and owner is not None:
            self._exclusive.setdefault(owner, set()).add(queue)
        if queue.persists and not exclusive:
            queue.incarnation = incarnation or uuid.uuid4().hex[:16]
            queue.store_key = queue_key(self.name, name, queue.incarnation)
        # Every queue is bound to the default exchange by its name; that
        # binding is implicit (routing looks the queue up by name).
        if durable and not exclusive:
            self.topology.queue_saved(self.name, queue)
        return queue

    def _assert_queue_equivalent(self, existing: Queue, durable: bool, exclusive: bool,
                                 auto_delete: bool, arguments: dict[str, Any]) -> None:
        def differ(field: str, received: bool, current: bool) -> PreconditionFailed:
            return PreconditionFailed(
                f"inequivalent arg '{field}' for queue '{existing.name}' in vhost "
                f"'{self.name}': received '{_render(received)}' but current is "
                f"'{_render(current)}'")

        if existing.exclusive != exclusive:
            raise self._locked(existing.name)      # RabbitMQ checks this first, with 405
        if existing.args.queue_type == 'quorum':
            durable = True     # as at creation: quorum implies durable
        if existing.durable != durable:
            raise differ('durable', durable, existing.durable)
        if existing.auto_delete != auto_delete:
            raise differ('auto_delete', auto_delete, existing.auto_delete)
        queue_args.assert_equivalent(existing.name, self.name, existing.arguments, arguments)

    def delete_queue(self, queue: Queue, if_unused: bool = False,
                     if_empty: bool = False) -> int:
        """Delete ``queue``; return how many ready messages it had."""
        if queue.deleted:
            return 0
        if if_unused and queue.consumers:
            raise PreconditionFailed(f"queue '{queue.name}' in vhost '{self.name}' in use")
        if if_empty and queue.ready:
            raise PreconditionFailed(
                f"queue '{queue.name}' in vhost '{self.name}' is not empty")
        count = queue.message_count
        if self.queues.get(queue.name) is queue:
            del self.queues[queue.name]
        user = queue.declared_by
        if user:
            left = self.queues_by_user.get(user, 0) - 1
            if left > 0:
                self.queues_by_user[user] = left
            else:
                self.queues_by_user.pop(user, None)
        self._unbind_destination(queue)
        owner = queue.exclusive_owner
        if owner is not None:
            owned = self._exclusive.get(owner)
            if owned is not None:
                owned.discard(queue)
                if not owned:
                    del self._exclusive[owner]
        queue.on_deleted()
        self.churn.queue_deleted += 1
        if queue.durable and not queue.exclusive:
            self.topology.queue_dropped(self.name, queue.name)
        return count

    # --- bindings -----------------------------------------------------------
    def bind(self, source: Exchange, destination: Queue | Exchange, routing_key: str,
             arguments: dict[str, Any] | None = None) -> None:
        arguments = arguments or {}
        if source.name == '':
            raise AccessRefused(
                "operation not permitted on the default exchange")
        if source.kind == 'headers':
            problem = validate_binding(arguments)
            if problem:
                raise PreconditionFailed(problem)
        if source.bind(destination, routing_key, arguments):
            sources = self._sources.setdefault(destination, {})
            sources[source] = sources.get(source, 0) + 1
            if source.durable and _is_durable(destination):
                self.topology.binding_saved(self.name, source.name, destination, routing_key,
                                            arguments)

    def unbind(self, source: Exchange, destination: Queue | Exchange, routing_key: str,
               arguments: dict[str, Any] | None = None) -> None:
        if source.name == '':
            raise AccessRefused(
                "operation not permitted on the default exchange")
        stored = source.binding_arguments(destination, routing_key, arguments or {})
        if stored is not None and source.unbind(destination, routing_key, stored):
            self._forget_source(destination, source)
            self._binding_dropped(source, destination, routing_key, stored)
            self._maybe_auto_delete(source)

    def _forget_source(self, destination: Any, source: Exchange) -> None:
        sources = self._sources.get(destination)
        if not sources:
            return
        left = sources.get(source, 0) - 1
        if left > 0:
            sources[source] = left
        else:
            sources.pop(source, None)
            if not sources:
                del self._sources[destination]

    def _maybe_auto_delete(self, exchange: Exchange) -> None:
        if exchange.auto_delete and not exchange.bindings and not exchange.deleted:
            self._remove_exchange(exchange)

    def bindings_of(self, destination: Any) -> Iterable[tuple[Exchange, str, dict[str, Any]]]:
        for source in self._sources.get(destination, ()):
            for key, arguments in source.bindings_to(destination):
                yield source, key, arguments

    # --- routing ------------------------------------------------------------
    def route(self, exchange: Exchange, routing_key: str, message: Message) -> Iterable[Queue]:
        """The queues a message published to ``exchange`` goes to."""
        found = exchange.route(routing_key, message)
        if not exchange.exchange_destinations and found:
            return found
        queues: dict[Queue, None] = {}
        self._route_into(exchange, routing_key, message, queues, set())
        return queues

    def _route_into(self, exchange: Exchange, routing_key: str, message: Message,
                    queues: dict[Queue, None], seen: set[Exchange]) -> None:
        seen.add(exchange)
        matched = False
        for destination in exchange.route(routing_key, message):
            matched = True
            if isinstance(destination, Queue):
                queues[destination] = None
            elif destination not in seen:
                self._route_into(destination, routing_key, message, queues, seen)
        if not matched:
            alternate = exchange.alternate_exchange
            if alternate is not None:
                target = self.exchanges.get(alternate)
                if target is not None and target not in seen:
                    self._route_into(target, routing_key, message, queues, seen)

    def dead_letter(self, queue: Queue, messages: list[Message], reason: str) -> None:
        """Republish ``messages`` to ``queue``'s dead-letter exchange.

        One after the other, never inside one another: a dead-lettered
        message can push another out of a full queue, and that one a third
        (queues with x-max-length dead-lettering into each other), which as
        recursion ran out of stack.  The first call works through what it
        caused before it returns, at most :data:`DEAD_LETTER_SLICE` messages
        per loop turn (such a cascade can be long)."""
        self._dead_letters.append((queue, messages, reason))
        if not self._dead_lettering:
            self._work_dead_letters()

    def _work_dead_letters(self) -> None:
        self._dead_letter_timer = None
        self._dead_lettering = True
        budget = DEAD_LETTER_SLICE
        pending = self._dead_letters
        try:
            while pending and budget > 0:
                queue, messages, reason = pending.popleft()
                budget -= len(messages)
                deadletter.dead_letter(self, queue, messages, reason)
        finally:
            self._dead_lettering = False
        if pending and self._dead_letter_timer is None:
            self._dead_letter_timer = self.clock.call_soon(self._work_dead_letters)

    # --- owners of exclusive queues ----------------------------------------
    def owner_gone(self, owner: QueueOwner) -> None:
        """Delete the exclusive queues of an owner that went away."""
        for queue in list(self._exclusive.pop(owner, ())):
            self.delete_queue(queue)


def _is_durable(destination: Any) -> bool:
    """A durable exchange, or a durable queue that is not exclusive."""
    if isinstance(destination, Queue):
        return destination.durable and not destination.exclusive
    return bool(getattr(destination, 'durable', False))


class _Unsaved:
    """The topology of a vhost nobody journals (tests, transient stores)."""

    def exchange_saved(self, vhost: str, exchange: Any) -> None:
        pass

    def exchange_dropped(self, vhost: str, name: str) -> None:
        pass

    def queue_saved(self, vhost: str, queue: Any) -> None:
        pass

    def queue_dropped(self, vhost: str, name: str) -> None:
        pass

    def binding_saved(self, vhost: str, source: str, destination: Any, routing_key: str,
                      arguments: dict[str, Any]) -> None:
        pass

    def binding_dropped(self, vhost: str, source: str, destination: Any, routing_key: str,
                        arguments: dict[str, Any]) -> None:
        pass


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _describe(value: Any) -> str:
    if value is None:
        return 'none'
    return f"the value '{value}' of type 'longstr'"
