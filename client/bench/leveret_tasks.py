"""Trivial tasks for the worker benchmark, as a Leveret app."""

from leveret.client import App

app = App()


@app.task(name='bench.noop', ignore_result=True)
def noop(i):
    return None


@app.task(name='bench.add')
def add(x, y):
    return x + y
