"""The prefork pool: one forked child process per slot.

Each child runs one job at a time, reading jobs from a pipe and writing
outcomes to another (4-byte length + pickle). The parent watches the
outcome pipe on its event loop: end-of-file means the child is gone. A job
past its hard time limit has its child killed; every lost child is replaced.

Children are forked from the running worker, so right after the fork a
child lets go of what belongs to the parent: its sockets (broker
connections), the other children's pipes and the event loop's signal
wake-up fd. It ignores SIGINT (a Ctrl-C reaches the whole process group;
the parent decides) and dies with the parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import stat
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from ... import errors
from ..execute import Job, Outcome, _failure, execute, mark_child, soft_time_limit
from ..tasks import Registry
from .base import Pool

log = logging.getLogger(__name__)

_LENGTH = struct.Struct('>I')
PR_SET_PDEATHSIG = 1


def _write_frame(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b''.join(chunks)


@dataclass
class Child:
    pid: int
    job_fd: int
    outcome_fd: int
    buffer: bytearray = field(default_factory=bytearray)
    job: Job | None = None
    started: float = 0.0
    timer: Any = None
    #: Why the parent killed it, if it did: the outcome to report for its job.
    killed_for: BaseException | None = None


class PreforkPool(Pool):
    name = 'prefork'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.children: dict[int, Child] = {}
        self._stopping = False

    # --- processes -----------------------------------------------------------
    def start(self) -> None:
        for _ in range(self.concurrency):
            self._spawn()

    def _spawn(self) -> Child:
        job_r, job_w = os.pipe()
        outcome_r, outcome_w = os.pipe()
        siblings = [fd for c in self.children.values() for fd in (c.job_fd, c.outcome_fd)]
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            code = 1
            try:
                os.close(job_w)
                os.close(outcome_r)
                _child_main(self.registry, job_r, outcome_w, siblings)
                code = 0
            except BaseException:
                log.exception('pool process crashed')
            finally:
                os._exit(code)
        os.close(job_r)
        os.close(outcome_w)
        os.set_blocking(outcome_r, False)
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
        child.buffer += data
        while len(child.buffer) >= 4:
            (size,) = _LENGTH.unpack_from(child.buffer)
            if len(child.buffer) < 4 + size:
                break
            outcome: Outcome = pickle.loads(child.buffer[4:4 + size])
            del child.buffer[:4 + size]
            self._settle(child)
            self._done(outcome)

    def _settle(self, child: Child) -> None:
        if child.timer is not None:
            child.timer.cancel()
            child.timer = None
        child.job = None

    def _lost(self, child: Child) -> None:
        """The child exited (or was killed): report its job, replace it."""
        self.loop.remove_reader(child.outcome_fd)
        for fd in (child.job_fd, child.outcome_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.children.pop(child.pid, None)
        status = _reap(child.pid)
        job = child.job
        self._settle(child)
        if job is not None:
            exc = child.killed_for or errors.WorkerLostError(
                f'Worker exited prematurely: {status}.')
            log.error('pool process %d lost while running %s[%s]: %s',
                      child.pid, job.name, job.request.id, exc)
            outcome = _failure(job, exc, time.monotonic() - child.started, None)
            outcome.pid = child.pid
            outcome.worker_lost = isinstance(exc, errors.WorkerLostError)
            self._done(outcome)
        if not self._stopping:
            self._spawn()

    # --- jobs ----------------------------------------------------------------
    def apply(self, job: Job) -> None:
        child = next(c for c in self.children.values() if c.job is None)
        child.job = job
        child.started = time.monotonic()
        child.killed_for = None
        self.running[job.job_id] = job
        if job.time_limit:
            child.timer = self.loop.call_later(job.time_limit, self._time_limit_hit, child, job)
        try:
            _write_frame(child.job_fd, job)
        except OSError:
            # The child died just now: _lost will report the job.
            pass

    def has_capacity(self) -> bool:
        return any(c.job is None for c in self.children.values())

    def _time_limit_hit(self, child: Child, job: Job) -> None:
        if child.job is job:
            log.error('hard time limit (%ss) exceeded for %s[%s]: replacing process %d',
                      job.time_limit, job.name, job.request.id, child.pid)
            self._kill(child, errors.TimeLimitExceeded(job.time_limit))

    def _kill(self, child: Child, reason: BaseException) -> None:
        child.killed_for = reason
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def terminate_job(self, job_id: int) -> bool:
        for child in self.children.values():
            if child.job is not None and child.job.job_id == job_id:
                self._kill(child, errors.TaskRevokedError('terminated'))
                return True
        return False

    def worker_pid(self, job_id: int) -> int | None:
        for child in self.children.values():
            if child.job is not None and child.job.job_id == job_id:
                return child.pid
        return None

    def stop(self) -> None:
        """Close the job pipes (idle children exit) and kill the rest."""
        self._stopping = True
        for child in list(self.children.values()):
            self.loop.remove_reader(child.outcome_fd)
            for fd in (child.job_fd, child.outcome_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
        deadline = time.monotonic() + 2.0
        for child in list(self.children.values()):
            while _reap(child.pid, block=False) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                os.kill(child.pid, signal.SIGKILL)
                _reap(child.pid)
            except ProcessLookupError:
                pass
        self.children.clear()

    def kill(self) -> None:
        self._stopping = True
        for child in self.children.values():
            try:
                os.kill(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for child in self.children.values():
            _reap(child.pid)
        self.children.clear()

    def info(self) -> dict[str, Any]:
        info = super().info()
        info['processes'] = sorted(self.children)
        return info


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


# --- inside the child ---------------------------------------------------------
def _detach_from_parent(keep: set[int], siblings: list[int]) -> None:
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in siblings:
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        fds = [int(name) for name in os.listdir('/proc/self/fd')]
    except OSError:
        fds = []
    for fd in fds:
        if fd in keep or fd <= 2:
            continue
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:
            pass
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl
            os._exit(1)
    except (OSError, AttributeError):
        pass


def _child_main(registry: Registry, job_fd: int, outcome_fd: int, siblings: list[int]) -> None:
    mark_child()
    _detach_from_parent({job_fd, outcome_fd}, siblings)
    pid = os.getpid()
    while True:
        header = _read_exactly(job_fd, 4)
        if header is None:
            return
        data = _read_exactly(job_fd, _LENGTH.unpack(header)[0])
        if data is None:
            return
        job: Job = pickle.loads(data)
        runner = registry.get(job.name)
        if runner is None:
            outcome = _failure(job, errors.NotRegistered(job.name), 0.0, None)
        else:
            try:
                with soft_time_limit(job.soft_time_limit, runner.soft_limit_error):
                    outcome = execute(runner, job)
            except runner.soft_limit_error as exc:  # fired as the task returned
                outcome = _failure(job, exc, job.soft_time_limit or 0.0, None)
        outcome.pid = pid
        _write_frame(outcome_fd, outcome)
