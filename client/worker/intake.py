"""From a delivery to a job in the pool: the request, the eta hold, the
prefetch count, dispatch; and the pool's reports routed to the outcomes.

Life of a task message::

    delivered -> request (unregistered: rejected, FAILURE result; invalid: rejected)
              -> received event -> eta in the future? held, unacked, prefetch +1
              -> ready -> a pool slot frees -> (revoked or expired: REVOKED)
              -> job applied -> started (see :mod:`.outcomes`) -> outcome

This is the worker's hot path: it runs on the event loop thread, never
awaits, and reads only the headers it acts on when a pool process can read
the rest (:func:`~.request.scan_headers`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from typing import Any

from ..messages import TaskMessage
from .delivery import Delivery
from .events import EventDispatcher
from .execute import Job, Outcome
from .outcomes import Outcomes
from .pools import Pool
from .rate_limits import RateLimits
from .request import TaskRequest, scan_headers, wire_properties
from .state import WorkerState
from .tasks import Registry
from .writes import BrokerWrites

log = logging.getLogger('leveret.worker')


class Intake:
    def __init__(self, registry: Registry, hostname: str, state: WorkerState,
                 writes: BrokerWrites, outcomes: Outcomes, events: EventDispatcher,
                 disable_rate_limits: bool = False,
                 time_limits: tuple[float | None, float | None] = (None, None)) -> None:
        self.registry = registry
        self.hostname = hostname
        self.state = state
        self.writes = writes
        self.outcomes = outcomes
        self.events = events
        self.pool: Pool | None = None
        #: (hard, soft) for tasks that set none (``--time-limit``, ``--soft-time-limit``).
        self.default_hard, self.default_soft = time_limits
        #: Token buckets of rate-limited tasks and the requests waiting in them.
        self.limits = RateLimits({name: runner.spec.rate_limit
                                  for name, runner in registry.runners.items()},
                                 disabled=disable_rate_limits)
        #: Task names whose bucket has a timer set for its next token.
        self._bucket_timers: set[str] = set()

    def attach_pool(self, pool: Pool) -> None:
        self.pool = pool

    # --- receiving -----------------------------------------------------------
    def on_message(self, delivery: Delivery) -> None:
        """A task message from the consumer connection (called by it, on the loop)."""
        writes = self.writes
        connection, settler = writes.connection, writes.settler
        assert settler is not None
        tag = delivery.delivery_tag
        settler.delivered(tag)
        if self.state.shutting_down:
            settler.reject(tag, requeue=True)
            return
        props = delivery.properties
        assert props is not None
        request = None
        # A pool process reads the message whole before it starts the task (and
        # reports it invalid); here only what the worker acts on.
        if props.headers_raw is not None and self._read_in_pool():
            hot = scan_headers(props.headers_raw)
            if hot is not None:
                runner = self.registry.get(hot['task'])
                if runner is not None:
                    request = TaskRequest.unread(hot, props, runner.spec, delivery, connection)
        try:
            if request is None:
                request = self._read(delivery, props, connection)
                if request is None:
                    return
            eta = request.eta if request.eta_text is not None else None
            if request.expires_text is not None:
                request.expires  # noqa: B018 - a malformed time is refused now, not later
        except Exception as exc:
            log.error('rejecting an invalid task message (%s): %r', delivery.routing_key, exc)
            settler.reject(tag, requeue=False)
            return
        if eta is not None and eta > datetime.now(UTC):
            self._hold(request, eta)
        elif self.limits.buckets and request.name in self.limits.buckets:
            self._limit(request)
        else:
            self.state.ready.append(request)
            self.dispatch()

    def _read_in_pool(self) -> bool:
        """Whether messages may be left for the pool process to read (task-received
        events need the whole message here)."""
        pool = self.pool
        return pool is not None and pool.reports_start and not self.events.task_events

    def _read(self, delivery: Delivery, props: Any, connection: Any) -> TaskRequest | None:
        """Read and validate the whole message here (raises if it is invalid);
        None if it was handled already (an unregistered task)."""
        message = TaskMessage.from_wire(props.headers, wire_properties(props), delivery.body)
        runner = self.registry.get(message.name)
        if runner is None:
            self.outcomes.unregistered(
                message, delivery.delivery_tag, props.headers,
                {'exchange': delivery.exchange, 'routing_key': delivery.routing_key,
                 'priority': props.priority, 'redelivered': delivery.redelivered})
            return None
        request = TaskRequest.read(message, props.headers or {}, runner.spec, delivery,
                                   connection)
        if self.events.task_events:
            headers = message.headers
            self.events.task('task-received', uuid=request.id, name=request.name,
                             args=headers.argsrepr, kwargs=headers.kwargsrepr,
                             root_id=headers.root_id, parent_id=headers.parent_id,
                             retries=headers.retries, eta=headers.eta, expires=headers.expires)
        return request

    # --- eta/countdown: held unacked without blocking other work -------------
    def _hold(self, request: TaskRequest, eta: datetime) -> None:
        loop = asyncio.get_running_loop()
        delay = (eta - datetime.now(UTC)).total_seconds()
        request.job_id = self.state.next_job_id()
        self.state.held[request.job_id] = request
        request.eta_handle = loop.call_later(delay, self._eta_reached, request)
        self._change_prefetch(+1)

    def _eta_reached(self, request: TaskRequest) -> None:
        if self.state.held.pop(request.job_id, None) is None:
            return
        request.eta_handle = None
        self._change_prefetch(-1)
        self.admit(request)

    def admit(self, request: TaskRequest) -> None:
        """A request that is due: ready now, or waiting for its rate limit's token."""
        if self.limits.buckets and request.name in self.limits.buckets:
            self._limit(request)
        else:
            self.state.ready.append(request)
            self.dispatch()

    # --- rate limits: waiting for a token without blocking other work --------
    def _limit(self, request: TaskRequest) -> None:
        bucket = self.limits.buckets[request.name]
        bucket.add(request)
        self._change_prefetch(+1)
        self._drain_bucket(request.name)

    def _drain_bucket(self, name: str) -> None:
        """Move the requests of ``name`` that have a token to ready (Celery's
        ``_schedule_bucket_request``); wait for the next token for the rest."""
        self._bucket_timers.discard(name)
        bucket = self.limits.buckets.get(name)
        if bucket is None:
            return
        moved = False
        while bucket.contents:
            if not bucket.can_consume(1):
                self._bucket_timers.add(name)
                asyncio.get_running_loop().call_later(bucket.expected_time(1),
                                                      self._drain_bucket, name)
                break
            self._change_prefetch(-1)
            self.state.ready.append(bucket.pop())
            moved = True
        if moved:
            self.dispatch()

    def set_rate_limit(self, name: str, rate_limit: Any) -> None:
        """``control rate_limit``: a new bucket for ``name`` (raises ValueError);
        what waited in the old one is admitted again."""
        waiting = self.limits.set(name, rate_limit)
        self._change_prefetch(-len(waiting))
        for request in waiting:
            self.admit(request)

    def _change_prefetch(self, delta: int) -> None:
        connection = self.writes.connection
        if self.state.prefetch.change(delta) and connection is not None:
            connection.qos(self.state.prefetch.value, global_=True)

    def drop_waiting(self) -> list[TaskRequest]:
        """Let go of the requests not handed to the pool yet (ready, then held)."""
        state = self.state
        limited = self.limits.clear()
        dropped = list(state.ready) + list(state.held.values()) + limited
        state.ready.clear()
        for request in state.held.values():
            if request.eta_handle is not None:
                request.eta_handle.cancel()
        state.held.clear()
        return dropped

    def forget_deliveries(self) -> None:
        """After a reconnect the broker redelivers what we held but had not run."""
        if self.pool is not None:
            self.pool.cancel_waiting()
        self.drop_waiting()
        self.state.prefetch.reset()

    # --- running -------------------------------------------------------------
    def dispatch(self) -> None:
        """Start ready tasks while the pool has free slots."""
        pool, state, writes = self.pool, self.state, self.writes
        ready, revoked = state.ready, state.revoked
        assert pool is not None
        while ready and pool.has_capacity():
            request = ready.popleft()
            if writes.is_stale(request):
                continue  # delivered before a reconnect: the broker redelivers it
            if request.id in revoked:
                self.outcomes.revoked(request, expired=False)
            elif request.expires_text is not None and request.expires is not None \
                    and request.expires < datetime.now(UTC):
                self.outcomes.revoked(request, expired=True)
            else:
                self._start(request, pool)

    def _start(self, request: TaskRequest, pool: Pool) -> None:
        if not request.job_id:
            request.job_id = self.state.next_job_id()
        hard, soft = request.time_limits
        hard, soft = hard or self.default_hard, soft or self.default_soft
        if request.raw is not None:  # read where it runs
            job = Job(request.job_id, request.name, [], {}, {}, request.delivery_info,
                      request.reply_to or None, request.correlation_id, self.hostname,
                      request.ignore_result, request.wants_result, soft, hard, raw=request.raw)
        else:
            message = request.message
            embed = message.embed
            headers = request.raw_headers if message.protocol == 2 else message.header_table()
            job = Job(request.job_id, request.name, message.args, message.kwargs,
                      headers or {}, request.delivery_info, request.reply_to or None,
                      request.correlation_id, self.hostname, request.ignore_result,
                      request.wants_result, soft, hard,
                      wants_value=bool(embed.chain or embed.callbacks))
            if request.spec.traced:  # Celery's tracer reads the canvas and properties
                job.embed = embed.model_dump()
                job.properties = message.properties.model_dump()
        self.state.active[request.job_id] = request
        if not pool.reports_start:
            self.outcomes.started(request, os.getpid())
        pool.apply(job)

    # --- what the pool reports -----------------------------------------------
    def on_started(self, job_id: int, pid: int) -> None:
        request = self.state.active.get(job_id)
        if request is not None:
            self.outcomes.started(request, pid)

    def on_outcome(self, outcome: Outcome) -> None:
        request = self.state.active.pop(outcome.job_id, None)
        if request is None:
            return
        self.outcomes.finished(request, outcome)
        if not self.state.shutting_down:
            self.dispatch()

    def revoke(self, task_id: str, terminate: bool = False, signum: int | None = None) -> bool:
        """Remember ``task_id`` as revoked; take it back from the pool if it is
        queued there, or stop it if it runs and ``terminate``; whether it was stopped."""
        self.state.revoke(task_id)
        stopped = False
        if self.pool is not None:
            for job_id, request in list(self.state.active.items()):
                if request.id != task_id:
                    continue
                if request.time_start is None:  # queued in the pool: take it back
                    self.pool.cancel_job(job_id)
                elif terminate:
                    stopped = self.pool.terminate_job(job_id, signum) or stopped
        return stopped
