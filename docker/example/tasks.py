"""The example's tasks: run by the bundled worker (``leveret worker -A tasks``).

A plain Leveret app; a Celery app (``Celery('tasks', broker=...)``) works
the same way with ``leveret worker`` or ``celery worker``.
"""

from __future__ import annotations

import os
import time

from leveret.client import App

app = App(os.environ.get('LEVERET_BROKER_URL', 'amqp://guest:guest@127.0.0.1:5672//'),
          main='tasks')


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def resize_image(name: str, seconds: float = 0.2) -> str:
    """Stands for real work: takes a while."""
    time.sleep(seconds)
    return f'{name} resized'


@app.task
def send_reminder(user: str) -> str:
    """Sent with a countdown: the worker holds it until it is due."""
    return f'reminded {user}'
