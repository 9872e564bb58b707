"""The task messages a finished task sends on: its retry, the next task of
its chain and its link callbacks (Celery's canvas carried in the message).

Pure functions, message in, messages out; the worker publishes what they
return (:meth:`~.writes.BrokerWrites.publish_task`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..messages import TaskMessage, make_task_message, parse_iso
from .execute import RetryPlan


@dataclass(frozen=True)
class Outgoing:
    """A task message to publish, and where to."""

    message: TaskMessage
    exchange: str
    routing_key: str


def retry_message(message: TaskMessage, plan: RetryPlan, *, exchange: str, routing_key: str,
                  hostname: str) -> Outgoing:
    """The task sent again for a retry: same id, retries + 1, the plan's eta,
    args and options; to the queue the plan names, else where it came from
    (``exchange``, ``routing_key`` of its delivery)."""
    headers, properties = message.headers, message.properties
    options = plan.options
    hard, soft = (list(headers.timelimit) + [None, None])[:2]
    retry = make_task_message(
        message.name, plan.args if plan.args is not None else message.args,
        plan.kwargs if plan.kwargs is not None else message.kwargs,
        task_id=message.id, eta=datetime.fromisoformat(plan.eta),
        expires=message.expires, priority=options.get('priority', properties.priority),
        reply_to=properties.reply_to, retries=headers.retries + 1,
        root_id=headers.root_id, parent_id=headers.parent_id, group_id=headers.group,
        group_index=headers.group_index, time_limit=options.get('time_limit', hard),
        soft_time_limit=options.get('soft_time_limit', soft),
        ignore_result=headers.ignore_result, shadow=headers.shadow,
        delivery_mode=properties.delivery_mode, origin=hostname)
    retry.properties.correlation_id = properties.correlation_id
    queue = options.get('queue')
    if queue:
        exchange, routing_key = '', queue
    return Outgoing(retry, exchange, routing_key)


def follow_ups(message: TaskMessage, value: Any, *, hostname: str, default_queue: str,
               now: datetime | None = None) -> Iterator[Outgoing]:
    """The next task of the message's chain, then its link callbacks, each
    with ``value`` (the task's return value) as first argument unless immutable.

    One at a time: each can be sent before the next is built."""
    embed = message.embed
    chain = list(embed.chain or [])
    if chain:
        yield signature_message(chain.pop(), value, message, chain, hostname=hostname,
                                default_queue=default_queue, now=now)
    for signature in embed.callbacks or []:
        yield signature_message(signature, value, message, [], hostname=hostname,
                                default_queue=default_queue, now=now)


def signature_message(signature: dict[str, Any], value: Any, parent: TaskMessage,
                      chain: list[Any], *, hostname: str, default_queue: str,
                      now: datetime | None = None) -> Outgoing:
    """The task message of a Celery signature (a dict) that ``parent`` sends,
    carrying the rest of the chain."""
    options = signature.get('options') or {}
    args = list(signature.get('args') or ())
    if not signature.get('immutable'):
        args.insert(0, value)
    headers = parent.headers
    expires, eta = options.get('expires'), options.get('eta')
    message = make_task_message(
        signature['task'], args, signature.get('kwargs') or {},
        task_id=options.get('task_id'), reply_to=options.get('reply_to'),
        root_id=headers.root_id or parent.id, parent_id=parent.id,
        priority=options.get('priority'), countdown=options.get('countdown'),
        eta=parse_iso(eta) if isinstance(eta, str) else eta,
        expires=parse_iso(expires) if isinstance(expires, str) else expires,
        group_id=options.get('group_id'), origin=hostname, now=now)
    message.embed.chain = chain or None
    message.embed.callbacks = options.get('link')
    message.embed.errbacks = options.get('link_error')
    queue = options.get('queue')
    if isinstance(queue, dict):
        queue = queue.get('name')
    exchange = options.get('exchange') or ''
    routing_key = options.get('routing_key') or queue or default_queue
    if exchange and not isinstance(exchange, str):
        exchange = exchange.get('name', '')
    return Outgoing(message, exchange, routing_key)
