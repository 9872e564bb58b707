"""The same trivial tasks as a Celery app."""

from celery import Celery

app = Celery('bench', backend='rpc://')


@app.task(name='bench.noop', ignore_result=True)
def noop(i):
    return None


@app.task(name='bench.add')
def add(x, y):
    return x + y
