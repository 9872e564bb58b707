"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import time
from typing import Any

import pika


def pika_connection(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def get_within(ch: Any, queue: str, timeout: float = 5.0) -> tuple[Any, Any, Any]:
    """basic.get (auto-ack) until a message shows up or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is not None or time.monotonic() > deadline:
            return method, props, body
        time.sleep(0.02)


def count(ch: Any, queue: str) -> int:
    return ch.queue_declare(queue, passive=True).method.message_count
