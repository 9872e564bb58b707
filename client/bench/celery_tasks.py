"""The same trivial tasks as a Celery app (results: ``BENCH_RESULT_BACKEND``,
rpc:// unless set)."""

import os

from celery import Celery

app = Celery('bench', backend=os.environ.get('BENCH_RESULT_BACKEND', 'rpc://'))


@app.task(name='bench.noop', ignore_result=True)
def noop(i):
    return None


@app.task(name='bench.add')
def add(x, y):
    return x + y
