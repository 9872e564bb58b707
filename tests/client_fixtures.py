"""Helpers for the client, worker and interop tests: workers (Leveret and
Celery) in subprocesses, raw message capture, Celery client clean-up."""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika

from . import processes
from .processes import wait_until  # noqa: F401 - the tests import it from here

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / 'client_apps'


def celery_url(amqp_url: str) -> str:
    """The same broker, spelled as Celery users spell it (``//`` is vhost ``/``)."""
    return amqp_url.rstrip('/') + '//'


class Background(processes.Background):
    """A subprocess run from the test apps' directory, which it can import."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path = APPS) -> None:
        full_env = dict(os.environ, PYTHONUNBUFFERED='1',
                        PYTHONPATH=os.pathsep.join([str(APPS), str(ROOT)]), **(env or {}))
        super().__init__(args, log_path, cwd=cwd, env=full_env)


def nodename(prefix: str) -> str:
    return f'{prefix}-{uuid.uuid4().hex[:6]}@testhost'


def leveret_worker(app: str, broker_url: str, queue: str, log_path: Path, *,
                   pool: str = 'prefork', concurrency: int = 2, name: str | None = None,
                   extra: list[str] | None = None, env: dict[str, str] | None = None,
                   wait: bool = True) -> Background:
    """``leveret worker`` (through ``python -m leveret``) in a subprocess; without
    mingle, as the tests' Celery workers (it waits a second for other workers)."""
    name = name or nodename('leveret')
    args = [sys.executable, '-m', 'leveret', 'worker', '-A', app, '-b', broker_url, '-Q', queue,
            '-c', str(concurrency), '--pool', pool, '-n', name, '--without-mingle',
            *(extra or [])]
    worker = Background(args, log_path, env=env)
    worker.nodename = name  # type: ignore[attr-defined]
    if wait:
        worker.wait_for_log(r'ready\.')
    return worker


def celery_worker(app: str, broker_url: str, queue: str, log_path: Path, *,
                  pool: str = 'solo', concurrency: int = 1, name: str | None = None,
                  extra: list[str] | None = None, env: dict[str, str] | None = None,
                  wait: bool = True) -> Background:
    """A real ``celery worker`` in a subprocess."""
    name = name or nodename('celery')
    args = [sys.executable, '-m', 'celery', '-A', app, '-b', celery_url(broker_url), 'worker',
            '-Q', queue, '-P', pool, '-c', str(concurrency), '-n', name, '-l', 'info',
            '--without-mingle', '--without-gossip', *(extra or [])]
    worker = Background(args, log_path, env=env)
    worker.nodename = name  # type: ignore[attr-defined]
    if wait:
        worker.wait_for_log(rf'{re.escape(name)} ready\.')
    return worker


def celery_client(broker_url: str, backend: str = 'rpc://', **conf: Any) -> Any:
    """A Celery app in the test process, to send tasks as Celery sends them."""
    from celery import Celery
    app = Celery(f'client{uuid.uuid4().hex[:6]}', broker=celery_url(broker_url),
                 backend=backend, set_as_current=False)
    app.conf.update(**conf)
    return app


def close_celery_client(app: Any) -> None:
    """Close a Celery client's connections with connection.close.

    ``Celery.close()`` only forgets its pools; a connection left open would make
    the broker's shutdown wait for a close-ok that nobody reads. kombu keeps
    producer and connection pools per broker URL for the whole process: this
    URL's are closed and forgotten, so that a later app on the URL starts afresh.
    """
    from kombu import pools
    from kombu.utils.collections import eqhash

    closers: list[Callable[[], object]] = []
    # rpc://'s result consumer has a broker connection; Redis' and the databases' none.
    consumer = getattr(getattr(app.backend, 'result_consumer', None), '_connection', None)
    if consumer is not None:
        closers.append(consumer.close)
    result_consumer = getattr(app.backend, 'result_consumer', None)
    if getattr(result_consumer, '_pubsub', None) is not None:
        # Redis: results garbage-collected later would unsubscribe on a closed pubsub.
        def close_pubsub() -> None:
            result_consumer.stop()
            result_consumer.subscribed_to.clear()
            result_consumer._pubsub = None
        closers.append(close_pubsub)
    connection = app.connection_for_write()
    for group in (pools.producers, pools.connections):
        if eqhash(connection) in group:
            closers.append(group.pop(eqhash(connection)).force_close_all)
    if app._pool is not None:
        closers.append(app._pool.force_close_all)
    for close in closers:
        try:
            close()
        except Exception:  # noqa: BLE001 - the broker may be gone already
            pass
    app.close()


def raw_get(amqp_url: str, queue: str, timeout: float = 15.0) -> tuple[dict[str, Any], bytes]:
    """One message from ``queue`` as it is on the wire: (properties, body)."""
    params = pika.URLParameters(amqp_url)
    with pika.BlockingConnection(params) as conn:
        channel = conn.channel()
        deadline = time.monotonic() + timeout
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is not None:
                fields = ('content_type', 'content_encoding', 'headers', 'delivery_mode',
                          'priority', 'correlation_id', 'reply_to', 'expiration', 'message_id',
                          'timestamp', 'type', 'user_id', 'app_id')
                return {f: getattr(props, f) for f in fields
                        if getattr(props, f) is not None}, body
            if time.monotonic() > deadline:
                raise AssertionError(f'no message on {queue} within {timeout}s')
            time.sleep(0.05)


def declare_queue(amqp_url: str, queue: str, **arguments: Any) -> None:
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as conn:
        conn.channel().queue_declare(queue, durable=True, arguments=arguments or None)


def delete_queue(amqp_url: str, queue: str) -> None:
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as conn:
        conn.channel().queue_delete(queue)
