"""Inside a prefork pool process: take jobs from the parent, run them one
at a time, report when each starts and how it ended (messages of
:mod:`.pipes`).

The parent may queue a job behind the running one. Before starting a job
the child reads whatever has arrived, so a CANCEL sent for a queued job is
seen in time, and it reads the job's message (the parent leaves that to
it): one that is not a valid task message is reported INVALID, not run.
The outcome of a job is written together with the start of the next one
when that one is already there: one write per job when busy.

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
import resource
import select
import signal
import stat
from collections import deque

from ... import errors
from ..execute import Job, Outcome, execute, failure_outcome, mark_child, soft_time_limit
from ..tasks import Registry
from . import pipes

PR_SET_PDEATHSIG = 1

log = logging.getLogger('leveret.worker')


def child_main(registry: Registry, job_fd: int, outcome_fd: int, siblings: list[int],
               max_tasks: int | None = None, max_memory: int | None = None) -> None:
    """Run jobs until the parent closes the job pipe, or (``--max-tasks-per-child``,
    ``--max-memory-per-child`` in KiB) until this process has run ``max_tasks``
    or grown past ``max_memory``: then it exits after the job, the parent
    replaces it and takes back what was queued here."""
    mark_child()
    _detach_from_parent({job_fd, outcome_fd}, siblings)
    registry.process_started()
    os.set_blocking(job_fd, False)
    waiter = select.poll()  # not select(): the fd may be past FD_SETSIZE
    waiter.register(job_fd, select.POLLIN)
    pid = os.getpid()
    inbox = bytearray()
    queued: deque[Job] = deque()
    out: list[bytes] = []
    done = 0
    try:
        while True:
            _take(inbox, queued, out)
            if not queued:
                _write(outcome_fd, out)  # the last outcome, before waiting
                waiter.poll()
                if not _read(job_fd, inbox):
                    return
                continue
            job = queued.popleft()
            try:
                job.decode()
            except Exception as exc:  # noqa: BLE001 - not a task message: never started
                out.append(pipes.pickled(pipes.INVALID, (job.job_id, repr(exc))))
                continue
            out.append(pipes.job_id_message(pipes.STARTED, job.job_id))
            _write(outcome_fd, out)
            outcome = _run(registry, job)
            outcome.pid = pid
            out.append(pipes.outcome_message(outcome))
            done += 1
            if max_tasks and done >= max_tasks:
                return
            if max_memory:
                used = resident_kib()
                if used > max_memory:
                    log.warning('pool process %d exits after its task: %d KiB resident '
                                '(--max-memory-per-child %d)', pid, used, max_memory)
                    return
            if not _read(job_fd, inbox):
                return
    finally:
        try:
            _write(outcome_fd, out)
        except OSError:
            pass  # the parent is gone
        registry.process_stopping()


def resident_kib() -> int:
    """This process's resident memory now (KiB), as psutil's rss reads it."""
    try:
        with open('/proc/self/statm') as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() // 1024
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _read(fd: int, inbox: bytearray) -> bool:
    """Add what the parent sent to ``inbox``; False at end of file."""
    try:
        data = os.read(fd, 1 << 16)
    except BlockingIOError:
        return True
    if not data:
        return False
    inbox += data
    return True


def _take(inbox: bytearray, queued: deque[Job], out: list[bytes]) -> None:
    for kind, value in pipes.split(inbox):
        if kind == pipes.JOB:
            queued.append(value)
        elif kind == pipes.CANCEL:
            for job in queued:
                if job.job_id == value:
                    queued.remove(job)
                    out.append(pipes.job_id_message(pipes.UNSTARTED, value))
                    break
            # Not queued: it ran already; the parent gets its outcome.


def _write(fd: int, out: list[bytes]) -> None:
    if not out:
        return
    view = memoryview(b''.join(out))
    out.clear()
    while view:
        view = view[os.write(fd, view):]


def _run(registry: Registry, job: Job) -> Outcome:
    runner = registry.get(job.name)
    if runner is None:
        return failure_outcome(job, errors.NotRegistered(job.name), 0.0, None)
    if not job.soft_time_limit:
        return execute(runner, job)
    try:
        with soft_time_limit(job.soft_time_limit, runner.soft_limit_error):
            return execute(runner, job)
    except runner.soft_limit_error as exc:  # fired as the task returned
        return failure_outcome(job, exc, job.soft_time_limit or 0.0, None)


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
