"""A Leveret app for the client and worker tests (tasks named ``interop.*``,
the same names as the Celery app in ``cel_tasks``)."""

import asyncio
import os
import time

from leveret.client import App, SoftTimeLimitExceeded

app = App(os.environ.get('LEVERET_BROKER_URL'))


@app.task(name='interop.add')
def add(x, y):
    return x + y


@app.task(name='interop.fail')
def fail(message):
    raise ValueError(message)


@app.task(name='interop.flaky', bind=True)
def flaky(self, failures):
    """Asks for a retry (countdown 1 s) until it has been retried ``failures`` times."""
    if self.request.retries < failures:
        raise self.retry(countdown=1)
    return self.request.retries


@app.task(name='interop.request', bind=True)
def request(self):
    r = self.request
    return {'id': r.id, 'retries': r.retries, 'hostname': r.hostname,
            'routing_key': r.delivery_info.get('routing_key'), 'root_id': r.root_id,
            'parent_id': r.parent_id}


@app.task(name='interop.sleep')
def sleep(seconds):
    time.sleep(seconds)
    return os.getpid()


@app.task(name='interop.asleep')
async def asleep(seconds):
    await asyncio.sleep(seconds)
    return 'awake'


@app.task(name='interop.gather')
async def gather(n, seconds):
    """Concurrency inside one task: n sleeps at once."""
    await asyncio.gather(*(asyncio.sleep(seconds) for _ in range(n)))
    return n


@app.task(name='interop.pid')
def pid():
    return os.getpid()


@app.task(name='interop.soft_limited', soft_time_limit=1)
def soft_limited(seconds):
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:  # short sleeps: the limit lands between them
            time.sleep(0.02)
    except SoftTimeLimitExceeded:
        return 'soft limit reached'
    return 'finished'


@app.task(name='interop.asoft_limited', soft_time_limit=1)
async def asoft_limited(seconds):
    await asyncio.sleep(seconds)
    return 'finished'


@app.task(name='interop.hard_limited', time_limit=1)
def hard_limited(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
    return 'finished'


@app.task(name='interop.ahard_limited', time_limit=1)
async def ahard_limited(seconds):
    await asyncio.sleep(seconds)
    return 'finished'


@app.task(name='interop.tracked', track_started=True)
def tracked(path):
    """Runs until ``path`` exists (STARTED is visible meanwhile)."""
    return gate(path, 'tracked')


@app.task(name='interop.gate')
def gate(path, label):
    """Marks ``path.<label>.started``, then waits (up to 120 s) for ``path`` to exist."""
    open(f'{path}.{label}.started', 'w').close()
    deadline = time.monotonic() + 120
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return label


@app.task(name='interop.gate_late', acks_late=True)
def gate_late(path, label):
    return gate(path, label)


@app.task(name='interop.always_retry', bind=True, max_retries=1)
def always_retry(self):
    raise self.retry(countdown=0.2, exc=KeyError('still failing'))


_arrived = 0


@app.task(name='interop.rendezvous')
async def rendezvous(expected, timeout):
    """True if ``expected`` calls are running at once in this process."""
    global _arrived
    _arrived += 1
    deadline = time.monotonic() + timeout
    while _arrived < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return _arrived >= expected


@app.task(name='interop.reject', acks_late=True)
def reject():
    from leveret.client import Reject
    raise Reject('not for me', requeue=False)


@app.task(name='interop.die')
def die():
    os._exit(3)


@app.task(name='interop.die_late', acks_late=True, reject_on_worker_lost=True)
def die_late(marker):
    """Dies the first time (the message is requeued), succeeds the second."""
    if not os.path.exists(marker):
        open(marker, 'w').close()
        os._exit(3)
    return 'second time lucky'


@app.task(name='interop.record', acks_late=True)
def record(path, value, seconds=0):
    time.sleep(seconds)
    with open(path, 'a') as f:
        f.write(f'{value}\n')
    return value


@app.task(name='interop.noop', ignore_result=True)
def noop():
    return None


@app.task(name='interop.spawn', bind=True)
def spawn(self, queue):
    """Sends a child task (its result to our caller): root and parent ids follow."""
    child = request.apply_async(queue=queue, reply_to=self.request.reply_to)
    return child.id


@app.task(name='interop.note')
def note(value, path):
    """A link callback: writes the value it was given."""
    with open(path, 'a') as f:
        f.write(f'{value}\n')
    return value
