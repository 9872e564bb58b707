"""The ``x-`` arguments of queue.declare: validation and equivalence.

RabbitMQ's semantics: known arguments are validated and compared on
re-declare (a difference is 406 PRECONDITION_FAILED); unknown arguments
are accepted and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leveret.protocol.errors import PreconditionFailed

OVERFLOW_MODES = ('drop-head', 'reject-publish', 'reject-publish-dlx')
QUEUE_TYPES = ('classic', 'quorum')
DEAD_LETTER_STRATEGIES = ('at-most-once', 'at-least-once')

#: Arguments compared on re-declare, as RabbitMQ's declare_args().
COMPARED = (
    'x-expires', 'x-message-ttl', 'x-dead-letter-exchange',
    'x-dead-letter-routing-key', 'x-max-length', 'x-max-length-bytes',
    'x-max-priority', 'x-overflow', 'x-queue-mode', 'x-queue-type',
    'x-single-active-consumer', 'x-delivery-limit', 'x-dead-letter-strategy',
)


@dataclass(frozen=True, slots=True)
class QueueArgs:
    message_ttl: int | None = None
    expires: int | None = None
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: str = 'drop-head'
    max_priority: int | None = None
    queue_type: str = 'classic'
    delivery_limit: int | None = None
    dead_letter_strategy: str = 'at-most-once'
    single_active_consumer: bool = False


def type_name(value: Any) -> str:
    """RabbitMQ's name for a table value's type (ints as py-amqp sends them)."""
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'signedint' if -2**31 <= value < 2**31 else 'long'
    if isinstance(value, str):
        return 'longstr'
    if isinstance(value, float):
        return 'double'
    if isinstance(value, dict):
        return 'table'
    if isinstance(value, list):
        return 'array'
    if value is None:
        return 'void'
    return type(value).__name__


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def parse(name: str, vhost: str, arguments: dict[str, Any]) -> QueueArgs:
    """Validate ``arguments`` for queue ``name``; raise 406 on a bad value."""

    def fail(key: str, reason: str) -> PreconditionFailed:
        return PreconditionFailed(
            f"invalid arg '{key}' for queue '{name}' in vhost '{vhost}': {reason}")

    def integer(key: str, minimum: int = 0, zero_ok: bool = True,
                maximum: int | None = None) -> int | None:
        if key not in arguments:
            return None
        value = arguments[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(key, f'"expected integer, got {type_name(value)}"')
        if value < minimum:
            raise fail(key, f'{{value_negative,{value}}}')
        if value == 0 and not zero_ok:
            raise fail(key, f'{{value_zero,{value}}}')
        if maximum is not None and value > maximum:
            raise fail(key, f'{{max_value_exceeded,{value}}}')
        return value

    def string(key: str, allowed: tuple[str, ...] | None = None,
               unknown: str = 'unknown value') -> str | None:
        if key not in arguments:
            return None
        value = arguments[key]
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode(errors='replace')
        if not isinstance(value, str):
            raise fail(key, f'{{unacceptable_type,{type_name(value)}}}')
        if allowed is not None and value not in allowed:
            raise fail(key, unknown)
        return value

    queue_type = string('x-queue-type') or 'classic'
    if queue_type not in QUEUE_TYPES:
        raise fail('x-queue-type', f'"unsupported queue type \'{queue_type}\'" '
                   f'(Leveret supports {" and ".join(QUEUE_TYPES)})')
    sac = arguments.get('x-single-active-consumer', False)
    if not isinstance(sac, bool):
        raise fail('x-single-active-consumer', f'{{unacceptable_type,{type_name(sac)}}}')
    dlx = string('x-dead-letter-exchange')
    dlrk = string('x-dead-letter-routing-key')
    if dlrk is not None and dlx is None:
        raise fail('x-dead-letter-routing-key', 'routing_key_but_no_dlx_defined')
    return QueueArgs(
        message_ttl=integer('x-message-ttl'),
        expires=integer('x-expires', zero_ok=False),
        dead_letter_exchange=dlx,
        dead_letter_routing_key=dlrk,
        max_length=integer('x-max-length'),
        max_length_bytes=integer('x-max-length-bytes'),
        overflow=string('x-overflow', OVERFLOW_MODES, 'invalid_overflow') or 'drop-head',
        max_priority=integer('x-max-priority', maximum=255),
        queue_type=queue_type,
        delivery_limit=integer('x-delivery-limit'),
        dead_letter_strategy=string('x-dead-letter-strategy', DEAD_LETTER_STRATEGIES,
                                    'invalid_dead_letter_strategy') or 'at-most-once',
        single_active_consumer=sac,
    )


def assert_equivalent(name: str, vhost: str, current: dict[str, Any],
                      received: dict[str, Any]) -> None:
    """406 if a compared argument differs between two declarations."""
    for key in COMPARED:
        old, new = current.get(key), received.get(key)
        if key == 'x-queue-type':
            # An absent type and 'classic' are the same queue type.
            old = None if old == 'classic' else old
            new = None if new == 'classic' else new
        if old == new and type(old) is type(new) or _same_number(old, new):
            continue
        if new is not None and old is not None:
            got, cur = f"'{_render(new)}'", f"'{_render(old)}'"
        else:
            got = 'none' if new is None else (
                f"the value '{_render(new)}' of type '{type_name(new)}'")
            cur = 'none' if old is None else (
                f"the value '{_render(old)}' of type '{type_name(old)}'")
        raise PreconditionFailed(
            f"inequivalent arg '{key}' for queue '{name}' in vhost '{vhost}': "
            f"received {got} but current is {cur}")


def _same_number(a: Any, b: Any) -> bool:
    return (isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool)
            and not isinstance(b, bool) and a == b)
