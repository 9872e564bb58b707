"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import time
from typing import Any

import pika


def pika_connection(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def queue_depth(url: str, queue: str) -> int:
    """Ready messages in a durable queue (passive-style: declaring it changes nothing)."""
    with pika_connection(url) as conn:
        return conn.channel().queue_declare(queue, durable=True).method.message_count


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
