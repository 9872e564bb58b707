"""What the worker does when a task starts and when it ends: the outcome table.

Each outcome a pool reports (:class:`~.execute.Outcome`) maps to the broker
writes it needs, in this order: the result message, the republished retry
or the canvas follow-ups, the ack (or reject), then the task event and the
log line.

===========  =============================================  =========
outcome      writes                                         counted
===========  =============================================  =========
SUCCESS      result; retry(throw=False) republished;        yes
             chain and callbacks sent; ack if acks_late
FAILURE      result; ack if acks_late (a lost process with  yes
             reject_on_worker_lost: requeued instead)
RETRY        republished (unless Celery's retry() did);     yes
             RETRY result; ack if acks_late
REJECTED     reject (requeue if the task asked)             yes
IGNORED      ack if acks_late                               yes
UNSTARTED    none: back to ready (revoked: REVOKED;         no
             shutting down: requeued; stale: nothing)
INVALID      reject without requeue                         no
===========  =============================================  =========

Revoked and expired tasks (found when due) get a REVOKED result and are
acked; unregistered ones a NotRegistered failure and a reject.

Tasks run by Celery's tracer (a Celery app with a result backend of its
own, :mod:`.celery_trace`) had their states stored where they ran; here only
what Celery's main process stores goes to the app's backend
(:mod:`.app_backend`), and the ack of a late-acked task waits until that is
stored. UNSTORED (the task ran, its result could not be stored: the backend
cannot be reached) keeps a late-acked message: it is requeued after a pause
that doubles with each such outcome in a row (up to ``KEEP_DELAY_MAX``). An
early-acked one was acked when it started, as with Celery: its result is
lost, and the log says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from .. import errors, states
from ..messages import ResultMessage, TaskMessage
from . import canvas
from .app_backend import AppBackend
from .events import EventDispatcher
from .execute import IGNORED, INVALID, UNSTARTED, UNSTORED, Outcome
from .request import TaskRequest
from .state import WorkerState
from .writes import BrokerWrites

log = logging.getLogger('leveret.worker')

#: Longest pause before a message whose result could not be stored is requeued (seconds).
KEEP_DELAY_MAX = 30.0


class Outcomes:
    def __init__(self, state: WorkerState, writes: BrokerWrites, events: EventDispatcher,
                 hostname: str, default_queue: str, backend: AppBackend | None = None,
                 backend_uri: str = 'rpc://') -> None:
        self.state = state
        self.writes = writes
        self.events = events
        self.hostname = hostname
        #: Where chained tasks go when they name no queue.
        self.default_queue = default_queue
        #: The app's own result backend, for traced tasks (None: rpc:// results).
        self.backend = backend
        self.backend_uri = backend_uri
        #: UNSTORED outcomes in a row (the pause before a requeue doubles with each).
        self.unstored_in_a_row = 0

    # --- starting ------------------------------------------------------------
    def started(self, request: TaskRequest, pid: int) -> None:
        """The task runs now (in process ``pid``): ack it unless acks_late."""
        request.time_start = time.time()
        request.worker_pid = pid
        if not request.spec.acks_late:
            self.writes.ack(request)
        if self.events.task_events:
            self.events.task('task-started', uuid=request.id)
        if request.spec.track_started and request.wants_result:
            self.writes.publish_result(
                request.reply_to, request.correlation_id,
                ResultMessage.started(request.id, self.hostname, pid).body())

    # --- the outcome table ---------------------------------------------------
    def finished(self, request: TaskRequest, outcome: Outcome) -> None:
        """Act on what the pool reported for ``request``."""
        handler, counted = OUTCOME_TABLE.get(outcome.state, _UNKNOWN)
        if counted:
            self.state.count_done(request.name)
        handler(self, request, outcome)

    def succeeded(self, request: TaskRequest, outcome: Outcome) -> None:
        self._send_result(request, outcome)
        if outcome.retry is not None:  # retry(throw=False)
            self._republish(request, outcome)
        if outcome.follow_up:
            for follow_up in canvas.follow_ups(request.message, outcome.value,
                                               hostname=self.hostname,
                                               default_queue=self.default_queue):
                self.writes.publish_task(follow_up)
        self.writes.settle(request)
        if self.events.task_events:  # checked here: the call's keyword dict costs more
            self.events.task('task-succeeded', uuid=request.id, result=outcome.summary,
                             runtime=outcome.runtime)
        if request.spec.traced:
            self.unstored_in_a_row = 0
            return  # Celery's tracer logged it where it ran
        log.info('Task %s[%s] succeeded in %.6fs: %s', request.name, request.id,
                 outcome.runtime, outcome.summary)

    def failed(self, request: TaskRequest, outcome: Outcome) -> None:
        if outcome.worker_lost and request.spec.acks_late and request.spec.reject_on_worker_lost:
            log.error('Task %s[%s] lost with its process: requeued', request.name, request.id)
            self.writes.reject(request, requeue=True)
            return
        if request.spec.traced and outcome.error is not None and self.backend is not None:
            # Decided here (a lost process, a hard time limit, a terminate): stored
            # here, as Celery's main process does (a terminated task is REVOKED).
            def then(stored: bool) -> None:
                self._after_store(request, stored)

            if isinstance(outcome.error, errors.TaskRevokedError):
                self.backend.mark_as_revoked(request, 'terminated', then)
            else:
                self.backend.mark_as_failure(request, outcome.error, then)
        else:
            self._send_result(request, outcome)
            self.writes.settle(request)
        self.events.task('task-failed', uuid=request.id, exception=outcome.summary,
                         traceback=outcome.traceback)
        if request.spec.traced and outcome.error is None:
            return  # Celery's tracer logged it where it ran
        log.error('Task %s[%s] raised unexpected: %s in %.6fs%s', request.name, request.id,
                  outcome.summary, outcome.runtime,
                  f'\n{outcome.traceback.rstrip()}' if outcome.traceback else '')

    def retried(self, request: TaskRequest, outcome: Outcome) -> None:
        if outcome.retry is not None and outcome.retry.republish:
            self._republish(request, outcome)
        self._send_result(request, outcome)
        self.writes.settle(request)
        self.events.task('task-retried', uuid=request.id, exception=outcome.summary,
                         traceback=outcome.traceback)
        if request.spec.traced:
            return  # Celery's tracer logged it where it ran
        log.info('Task %s[%s] retry: %s (ran %.6fs)', request.name, request.id,
                 outcome.summary, outcome.runtime)

    def rejected(self, request: TaskRequest, outcome: Outcome) -> None:
        if request.spec.traced and not outcome.requeue and self.backend is not None:
            # Never to run again: a FAILURE result rather than PENDING forever (as Celery).
            from celery.exceptions import Reject
            self.backend.mark_as_failure(request, Reject(outcome.summary, requeue=False),
                                         lambda stored: None)
        self.writes.reject(request, requeue=outcome.requeue)
        self.events.task('task-rejected', uuid=request.id, requeue=outcome.requeue)
        log.info('Task %s[%s] rejected (requeue=%s): %s', request.name, request.id,
                 outcome.requeue, outcome.summary)

    def ignored(self, request: TaskRequest, outcome: Outcome) -> None:
        self.writes.settle(request)
        log.info('Task %s[%s] ignored in %.6fs', request.name, request.id, outcome.runtime)

    def unstarted(self, request: TaskRequest, outcome: Outcome) -> None:
        """A job the pool gave back before it ran (taken back, or its process died)."""
        if self.writes.is_stale(request):
            return  # the broker redelivers it
        if self.state.shutting_down:
            self.writes.reject(request, requeue=True)
        elif request.id in self.state.revoked:
            self.revoked(request, expired=False)
        else:
            self.state.ready.appendleft(request)

    def unstored(self, request: TaskRequest, outcome: Outcome) -> None:
        """The task ran, but the app's backend could not store its result."""
        self.events.task('task-failed', uuid=request.id, exception=outcome.summary,
                         traceback=None)
        self._keep(request, outcome.summary)

    def _after_store(self, request: TaskRequest, stored: bool) -> None:
        """The main process's write to the app's backend is done: settle the message."""
        if stored:
            self.writes.settle(request)
        else:
            self._keep(request, 'the result backend cannot be reached')

    def _keep(self, request: TaskRequest, reason: str) -> None:
        self.unstored_in_a_row += 1
        if request.acknowledged:
            log.error('Task %s[%s]: its result could not be stored in %s (%s); its message '
                      'was acked when the task started (early ack, as Celery does): the result '
                      'is lost', request.name, request.id, self.backend_uri, reason)
            return
        delay = min(2.0 ** (self.unstored_in_a_row - 1), KEEP_DELAY_MAX)
        log.error('Task %s[%s]: its result could not be stored in %s (%s); its message is '
                  'kept, requeued in %gs', request.name, request.id, self.backend_uri, reason,
                  delay)
        asyncio.get_running_loop().call_later(delay, self.writes.reject, request, True)

    def invalid(self, request: TaskRequest, outcome: Outcome) -> None:
        """The pool process found the message is not a valid task message."""
        log.error('rejecting an invalid task message (%s): %s', request.routing_key,
                  outcome.summary)
        self.writes.reject(request, requeue=False)

    # --- before a task runs --------------------------------------------------
    def revoked(self, request: TaskRequest, expired: bool) -> None:
        """Revoked, or expired, when due: discarded with a REVOKED result."""
        reason = 'expired' if expired else 'revoked'
        if request.spec.traced and self.backend is not None:
            # Stored, then acked (Celery's Request._announce_revoked).
            self.backend.mark_as_revoked(request, reason,
                                         lambda stored: self._after_store(request, stored))
        else:
            self.writes.ack(request)
        if request.wants_result:
            body = ResultMessage.failure(request.id, errors.TaskRevokedError(reason),
                                         status=states.REVOKED).body()
            self.writes.publish_result(request.reply_to, request.correlation_id, body)
        self.events.task('task-revoked', uuid=request.id, terminated=False, signum=None,
                         expired=expired)
        log.info('Task %s[%s] %s: discarded', request.name, request.id, reason)

    def unregistered(self, message: TaskMessage, delivery_tag: int,
                     headers: dict[str, Any] | None = None,
                     delivery_info: dict[str, Any] | None = None) -> None:
        """A task this worker does not know: rejected, with a NotRegistered failure."""
        log.error('received unregistered task %r (id %s): rejected', message.name, message.id)
        self.writes.reject_delivery(delivery_tag, requeue=False)
        if self.backend is not None:
            self.backend.mark_unregistered(message, headers or {}, delivery_info or {},
                                           errors.NotRegistered(message.name))
        elif message.properties.reply_to:
            exc = errors.NotRegistered(message.name)
            self.writes.publish_result(message.properties.reply_to,
                                       message.properties.correlation_id,
                                       ResultMessage.failure(message.id, exc).body())

    # --- writes --------------------------------------------------------------
    def _send_result(self, request: TaskRequest, outcome: Outcome) -> None:
        if outcome.result_body is not None and request.wants_result:
            self.writes.publish_result(request.reply_to, request.correlation_id,
                                       outcome.result_body)

    def _republish(self, request: TaskRequest, outcome: Outcome) -> None:
        assert outcome.retry is not None
        self.writes.publish_task(canvas.retry_message(
            request.message, outcome.retry, exchange=request.exchange,
            routing_key=request.routing_key, hostname=self.hostname))


Handler = Callable[[Outcomes, TaskRequest, Outcome], None]

#: Outcome state -> (what to do, whether it counts in the totals).
OUTCOME_TABLE: dict[str, tuple[Handler, bool]] = {
    states.SUCCESS: (Outcomes.succeeded, True),
    states.FAILURE: (Outcomes.failed, True),
    states.RETRY: (Outcomes.retried, True),
    states.REJECTED: (Outcomes.rejected, True),
    IGNORED: (Outcomes.ignored, True),
    UNSTARTED: (Outcomes.unstarted, False),
    INVALID: (Outcomes.invalid, False),
    UNSTORED: (Outcomes.unstored, True),
}
#: Any other state is a failure.
_UNKNOWN: tuple[Handler, bool] = (Outcomes.failed, True)
