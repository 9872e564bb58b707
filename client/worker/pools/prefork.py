"""The prefork pool: one forked child process per slot.

Jobs go to a child through a pipe and outcomes come back through another
(the messages of :mod:`.pipes`; the child's side is :mod:`.prefork_child`).
The parent watches the outcome pipes on its event loop: end-of-file means
a child is gone, and every lost child is replaced. A child reports when it
starts a job: the job's hard time limit runs from then (past it the child
is killed) and the consumer acks it then, unless acks_late.

A child may have jobs queued behind the one it runs (up to
``PIPELINE_DEPTH`` in all), so that it does not wait a round trip through
the busy main process between short tasks, and takes several per wake-up.
Only while the tasks ahead are known to be short: their recent runtimes
add up to less than ``PIPELINE_RUNTIME``, and the running one has not run
that long already. A queued job cannot move to another child that frees up
meanwhile, so it should not wait long. A
queued job is taken back with CANCEL (a revoke, a warm shutdown, a lost
connection): the child skips it when it gets to it and reports it
UNSTARTED, unless it started it already. When a child dies, the jobs
queued behind its running one come back unstarted too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ... import errors
from ..execute import INVALID, UNSTARTED, Job, Outcome, failure_outcome
from . import pipes
from .base import Pool
from .prefork_child import child_main

log = logging.getLogger(__name__)

#: Queue a job behind others only when they usually take less in all (seconds).
PIPELINE_RUNTIME = 0.01
#: Jobs a child holds at most: the running one and those queued behind it.
PIPELINE_DEPTH = 3
#: Weight of the newest runtime in a task's average (a longer one counts at once).
RUNTIME_WEIGHT = 0.2


@dataclass(eq=False)
class Child:
    pid: int
    job_fd: int
    outcome_fd: int
    inbox: bytearray = field(default_factory=bytearray)
    #: Bytes for the job pipe not written yet.
    outbox: bytearray = field(default_factory=bytearray)
    writing: bool = False
    #: Jobs handed to it, in order, until their outcome; the first may be running.
    jobs: deque[Job] = field(default_factory=deque)
    running: Job | None = None
    started: float = 0.0
    timer: asyncio.TimerHandle | None = None
    #: Why the parent killed it, if it did: the outcome to report for its job.
    killed_for: BaseException | None = None


class PreforkPool(Pool):
    name = 'prefork'
    reports_start = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.children: dict[int, Child] = {}
        #: Children taken out of service (pool_shrink, pool_restart): they exit
        #: once their jobs are done and are not replaced.
        self.retiring: dict[int, Child] = {}
        #: Replace a process after this many tasks / past this resident memory (KiB).
        self.max_tasks_per_child: int | None = None
        self.max_memory_per_child: int | None = None
        self._stopping = False
        #: Task name -> recent runtime (seconds).
        self._runtimes: dict[str, float] = {}
        self._unflushed: list[Child] = []
        #: What has_capacity() found, for the apply() that follows it.
        self._candidate: Child | None = None

    # --- processes -----------------------------------------------------------
    def start(self) -> None:
        for _ in range(self.concurrency):
            self._spawn()

    def _spawn(self) -> Child:
        job_r, job_w = os.pipe()
        outcome_r, outcome_w = os.pipe()
        siblings = [fd for c in self._every_child() for fd in (c.job_fd, c.outcome_fd)
                    if fd >= 0]
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            code = 1
            try:
                os.close(job_w)
                os.close(outcome_r)
                child_main(self.registry, job_r, outcome_w, siblings,
                           self.max_tasks_per_child, self.max_memory_per_child)
                code = 0
            except BaseException:
                log.exception('pool process crashed')
            finally:
                os._exit(code)
        os.close(job_r)
        os.close(outcome_w)
        os.set_blocking(outcome_r, False)
        os.set_blocking(job_w, False)
        child = Child(pid, job_w, outcome_r)
        self.children[pid] = child
        self.loop.add_reader(outcome_r, self._readable, child)
        return child

    def _readable(self, child: Child) -> None:
        try:
            data = os.read(child.outcome_fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b''
        if not data:
            self._lost(child)
            return
        child.inbox += data
        for kind, value in pipes.split(child.inbox):
            if kind == pipes.OUTCOME:
                self._finished(child, value)
            elif kind == pipes.STARTED:
                self._started(child, value)
            elif kind == pipes.UNSTARTED:
                self._unstarted(child, value)
            elif kind == pipes.INVALID:
                self._unstarted(child, value[0], Outcome(value[0], INVALID, summary=value[1]))

    def _started(self, child: Child, job_id: int) -> None:
        job = _find(child.jobs, job_id)
        if job is None:
            return
        child.running = job
        child.started = time.monotonic()
        if job.time_limit:
            child.timer = self.loop.call_later(job.time_limit, self._time_limit_hit, child, job)
        if self.on_started is not None:
            self.on_started(job_id, child.pid)

    def _finished(self, child: Child, outcome: Outcome) -> None:
        job = child.running
        if job is not None and job.job_id == outcome.job_id:
            self._settle(child)
            child.jobs.remove(job)
            self._note_runtime(job.name, outcome.runtime)
        self._done(outcome)
        if not child.jobs and child.pid in self.retiring:
            self._close_job_pipe(child)  # it exits now: _lost does not replace it

    def _unstarted(self, child: Child, job_id: int, outcome: Outcome | None = None) -> None:
        job = _find(child.jobs, job_id)
        if job is not None:
            child.jobs.remove(job)
        self._done(outcome or Outcome(job_id, UNSTARTED))

    def _settle(self, child: Child) -> None:
        if child.timer is not None:
            child.timer.cancel()
            child.timer = None
        child.running = None

    def _note_runtime(self, name: str, runtime: float) -> None:
        average = self._runtimes.get(name)
        if average is None or runtime > average:
            self._runtimes[name] = runtime
        else:
            self._runtimes[name] = average + (runtime - average) * RUNTIME_WEIGHT

    def _lost(self, child: Child) -> None:
        """The child exited (or was killed): report its jobs, replace it."""
        self._close_pipes(child)
        self.children.pop(child.pid, None)
        self.retiring.pop(child.pid, None)
        status = _reap(child.pid)
        job = child.running
        queued = [j for j in child.jobs if j is not job]
        elapsed = time.monotonic() - child.started
        self._settle(child)
        child.jobs.clear()
        if not self._stopping and len(self.children) < self.concurrency:
            self._spawn()
        for waiting in queued:  # never started: the consumer runs them elsewhere
            self._done(Outcome(waiting.job_id, UNSTARTED))
        if job is not None:
            job.decode()  # read in the child, which got as far as starting it
            exc = child.killed_for or errors.WorkerLostError(
                f'Worker exited prematurely: {status}.')
            log.error('pool process %d lost while running %s[%s]: %s',
                      child.pid, job.name, job.request.id, exc)
            self._note_runtime(job.name, elapsed)
            outcome = failure_outcome(job, exc, elapsed, None)
            outcome.pid = child.pid
            outcome.worker_lost = isinstance(exc, errors.WorkerLostError)
            outcome.error = exc
            self._done(outcome)

    # --- jobs ----------------------------------------------------------------
    def has_capacity(self) -> bool:
        self._candidate = self._pick()
        return self._candidate is not None

    def _pick(self) -> Child | None:
        """An idle child, else the least busy one that can queue a job."""
        behind = None
        for child in self.children.values():
            if not child.jobs:
                return child
            if (behind is None or len(child.jobs) < len(behind.jobs)) and self._soon_free(child):
                behind = child
        return behind

    def _soon_free(self, child: Child) -> bool:
        """Whether the child's jobs should all be over within PIPELINE_RUNTIME."""
        if len(child.jobs) >= PIPELINE_DEPTH:
            return False
        if child.running is not None and \
                time.monotonic() - child.started >= PIPELINE_RUNTIME:
            return False  # longer than usual this time
        ahead = 0.0
        for job in child.jobs:
            runtime = self._runtimes.get(job.name)
            if runtime is None:
                return False  # not known to be short
            ahead += runtime
        return ahead < PIPELINE_RUNTIME

    def apply(self, job: Job) -> None:
        child, self._candidate = self._candidate, None
        if child is None or self.children.get(child.pid) is not child:
            child = self._pick()
        if child is None:
            raise RuntimeError('no pool process can take a job')
        child.jobs.append(job)
        self.running[job.job_id] = job
        self._send(child, pipes.job_message(job))

    def cancel_job(self, job_id: int) -> bool:
        for child in self._every_child():
            for job in child.jobs:
                if job.job_id == job_id and job is not child.running:
                    self._send(child, pipes.job_id_message(pipes.CANCEL, job_id))
                    return True
        return False

    def cancel_waiting(self) -> int:
        count = 0
        for child in self._every_child():
            for job in child.jobs:
                if job is not child.running:
                    self._send(child, pipes.job_id_message(pipes.CANCEL, job.job_id))
                    count += 1
        return count

    def _send(self, child: Child, data: bytes) -> None:
        """Write to the child's job pipe at the end of this loop turn."""
        if not child.outbox and not child.writing:
            if not self._unflushed:
                self.loop.call_soon(self._flush)
            self._unflushed.append(child)
        child.outbox += data

    def _flush(self) -> None:
        children, self._unflushed = self._unflushed, []
        for child in children:
            self._write(child)

    def _write(self, child: Child) -> None:
        if child.job_fd < 0:
            return  # lost: its jobs were reported
        try:
            written = os.write(child.job_fd, child.outbox)
        except BlockingIOError:
            written = 0
        except OSError:
            written = len(child.outbox)  # it died just now: _lost reports its jobs
        del child.outbox[:written]
        if child.outbox and not child.writing:
            child.writing = True  # the pipe is full: go on when the child has read
            self.loop.add_writer(child.job_fd, self._write, child)
        elif not child.outbox and child.writing:
            child.writing = False
            self.loop.remove_writer(child.job_fd)

    def _time_limit_hit(self, child: Child, job: Job) -> None:
        if child.running is job:
            job.decode()  # read in the child, which got as far as starting it
            log.error('hard time limit (%ss) exceeded for %s[%s]: replacing process %d',
                      job.time_limit, job.name, job.request.id, child.pid)
            self._kill(child, errors.TimeLimitExceeded(job.time_limit))

    def _kill(self, child: Child, reason: BaseException, signum: int = signal.SIGKILL) -> None:
        child.killed_for = reason
        try:
            os.kill(child.pid, signum)
        except ProcessLookupError:
            pass

    # --- the pool's size -------------------------------------------------------
    def _every_child(self) -> list[Child]:
        return [*self.children.values(), *self.retiring.values()]

    def grow(self, n: int = 1) -> None:
        self.concurrency += n
        while len(self.children) < self.concurrency:
            self._spawn()

    def shrink(self, n: int = 1) -> None:
        """Take ``n`` processes out of service, idle ones first (a busy one
        exits once its jobs are done)."""
        if n >= self.concurrency:
            raise ValueError(f"can't shrink the pool to {self.concurrency - n} processes")
        self.concurrency -= n
        by_idleness = sorted(self.children.values(), key=lambda c: len(c.jobs))
        for child in by_idleness[:len(self.children) - self.concurrency]:
            self._retire(child)

    def restart(self) -> None:
        """Replace every process (each once its jobs are done)."""
        for child in list(self.children.values()):
            self._retire(child)
        while len(self.children) < self.concurrency:
            self._spawn()

    def _retire(self, child: Child) -> None:
        self.children.pop(child.pid, None)
        self.retiring[child.pid] = child
        if not child.jobs:
            self._close_job_pipe(child)

    def _close_job_pipe(self, child: Child) -> None:
        """No more jobs for ``child``: it exits, and _lost sees its outcome pipe end."""
        if child.job_fd < 0:
            return
        if child.writing:
            self.loop.remove_writer(child.job_fd)
            child.writing = False
        try:
            os.close(child.job_fd)
        except OSError:
            pass
        child.job_fd = -1

    def terminate_job(self, job_id: int, signum: int | None = None) -> bool:
        for child in self._every_child():
            if child.running is not None and child.running.job_id == job_id:
                self._kill(child, errors.TaskRevokedError('terminated'),
                           signum or signal.SIGTERM)
                return True
        return self.cancel_job(job_id)

    def worker_pid(self, job_id: int) -> int | None:
        for child in self._every_child():
            if child.running is not None and child.running.job_id == job_id:
                return child.pid
        return None

    def _close_pipes(self, child: Child) -> None:
        """Stop watching and close the child's pipes (an idle child then exits)."""
        if child.outcome_fd >= 0:
            self.loop.remove_reader(child.outcome_fd)
        if child.writing and child.job_fd >= 0:
            self.loop.remove_writer(child.job_fd)
        for fd in (child.job_fd, child.outcome_fd):
            if fd < 0:
                continue
            try:
                os.close(fd)
            except OSError:
                pass
        child.job_fd = child.outcome_fd = -1

    def stop(self) -> None:
        """Close the job pipes (idle children exit) and kill the rest."""
        self._stopping = True
        for child in self._every_child():
            self._close_pipes(child)
        deadline = time.monotonic() + 2.0
        for child in self._every_child():
            while _reap(child.pid, block=False) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                os.kill(child.pid, signal.SIGKILL)
                _reap(child.pid)
            except ProcessLookupError:
                pass
        self.children.clear()
        self.retiring.clear()

    def kill(self) -> None:
        self._stopping = True
        for child in self._every_child():
            try:
                os.kill(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for child in self._every_child():
            _reap(child.pid)
        self.children.clear()
        self.retiring.clear()

    def info(self) -> dict[str, Any]:
        info = super().info()
        info['processes'] = sorted(self.children)
        return info


def _find(jobs: deque[Job], job_id: int) -> Job | None:
    for job in jobs:
        if job.job_id == job_id:
            return job
    return None


def _reap(pid: int, block: bool = True) -> str | None:
    """Wait for ``pid``; how it ended, or None if it is still running."""
    try:
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return 'exitcode unknown'
    if done == 0:
        return None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f'signal {sig} ({signal.Signals(sig).name})'
    return f'exitcode {os.WEXITSTATUS(status)}'
