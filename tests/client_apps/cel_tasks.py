"""A Celery app with the tasks of ``lv_tasks`` (same names), and a few for
the result backends (``CELERY_RESULT_BACKEND``: rpc:// unless set; the
default queue from ``CELERY_DEFAULT_QUEUE``, where chord_unlock goes;
``CELERY_RESULT_EXPIRES`` and ``CELERY_TASK_IGNORE_RESULT`` when set)."""

import os
import time

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

app = Celery('cel_tasks', broker=os.environ.get('CELERY_BROKER_URL'),
             backend=os.environ.get('CELERY_RESULT_BACKEND', 'rpc://'))
app.conf.update(broker_connection_retry_on_startup=True,
                result_extended=bool(os.environ.get('CELERY_RESULT_BACKEND')),
                task_default_queue=os.environ.get('CELERY_DEFAULT_QUEUE', 'celery'))
if os.environ.get('CELERY_RESULT_EXPIRES'):
    app.conf.result_expires = int(os.environ['CELERY_RESULT_EXPIRES'])
if os.environ.get('CELERY_TASK_IGNORE_RESULT'):
    app.conf.task_ignore_result = True


@app.task(name='interop.add')
def add(x, y):
    return x + y


@app.task(name='interop.fail')
def fail(message):
    raise ValueError(message)


@app.task(name='interop.flaky', bind=True)
def flaky(self, failures):
    if self.request.retries < failures:
        raise self.retry(countdown=1)
    return self.request.retries


@app.task(name='interop.request', bind=True)
def request(self):
    r = self.request
    return {'id': r.id, 'retries': r.retries, 'hostname': r.hostname,
            'routing_key': (r.delivery_info or {}).get('routing_key'), 'root_id': r.root_id,
            'parent_id': r.parent_id}


@app.task(name='interop.sleep')
def sleep(seconds):
    time.sleep(seconds)
    return os.getpid()


@app.task(name='interop.pid')
def pid():
    return os.getpid()


@app.task(name='interop.soft_limited', soft_time_limit=1)
def soft_limited(seconds):
    try:
        time.sleep(seconds)
    except SoftTimeLimitExceeded:
        return 'soft limit reached'
    return 'finished'


@app.task(name='interop.noop', ignore_result=True)
def noop():
    return None


@app.task(name='interop.note')
def note(value, path):
    with open(path, 'a') as f:
        f.write(f'{value}\n')
    return value


@app.task(name='interop.tsum')
def tsum(values):
    return sum(values)


@app.task(name='interop.gated', track_started=True)
def gated(path):
    """Runs until ``path`` exists (STARTED meanwhile)."""
    while not os.path.exists(path):
        time.sleep(0.02)
    return 'opened'


@app.task(name='interop.late_add', acks_late=True)
def late_add(x, y):
    return x + y


@app.task(name='interop.retry_later', bind=True)
def retry_later(self, countdown):
    """Retried once, ``countdown`` seconds later (RETRY meanwhile)."""
    if not self.request.retries:
        raise self.retry(countdown=countdown)
    return self.request.retries
