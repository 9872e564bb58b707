"""Messages over HTTP: publishing from JSON, and messages as JSON for /get.

Properties travel as RabbitMQ's API writes them: an object of the basic
properties that are set (``[]`` when none is), headers as JSON values.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from pamqp import commands

from leveret.protocol import properties as props_codec
from leveret.protocol.errors import AccessRefused, NotFound

from ..model.message import Message
from ..model.vhost import VirtualHost
from .errors import bad_request
from .shapes import to_json

#: Basic properties in AMQP order (RabbitMQ lists them the other way round).
PROPERTY_NAMES = ('content_type', 'content_encoding', 'headers', 'delivery_mode', 'priority',
                  'correlation_id', 'reply_to', 'expiration', 'message_id', 'timestamp',
                  'type', 'user_id', 'app_id', 'cluster_id')
_INT_PROPERTIES = ('delivery_mode', 'priority', 'timestamp')
#: The largest value each fits in: an octet, an octet, a 64-bit timestamp.
_INT_LIMITS = {'delivery_mode': 255, 'priority': 255, 'timestamp': 2 ** 63 - 1}


def properties_json(header: bytes) -> dict[str, Any] | list[Any]:
    # The headers with the broker's own decoder, which reads any table a
    # message can carry (pamqp's raises on some); the rest with pamqp.
    decoded = props_codec.decode(props_codec.without_headers(header))
    if header[12] & props_codec.HEADERS >> 8:
        decoded.headers = props_codec.headers(header)
    out: dict[str, Any] = {}
    for name in reversed(PROPERTY_NAMES):
        value = getattr(decoded, name, None)
        if value is None or (name == 'cluster_id' and value == ''):
            continue        # pamqp reads an absent cluster_id as ''
        if name == 'timestamp' and isinstance(value, datetime.datetime):
            value = int(value.replace(tzinfo=value.tzinfo or datetime.UTC)
                        .timestamp())
        out[name] = to_json(value)
    return out or []


def properties_from_json(value: Any) -> commands.Basic.Properties:
    if not isinstance(value, dict):
        raise bad_request(['not_a_table', 'properties'])
    kwargs: dict[str, Any] = {}
    for name, item in value.items():
        if name not in PROPERTY_NAMES:
            continue
        if name in _INT_PROPERTIES:
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise bad_request(['not_int', name])
            try:
                item = int(item)
            except ValueError:
                raise bad_request(['not_int', name]) from None
            if not 0 <= item <= _INT_LIMITS[name]:
                raise bad_request(f'{name} must be between 0 and {_INT_LIMITS[name]}')
            if name == 'timestamp':
                try:
                    item = datetime.datetime.fromtimestamp(item, datetime.UTC)
                except (OverflowError, OSError, ValueError):
                    raise bad_request('timestamp out of range') from None
        elif name == 'headers':
            if not isinstance(item, dict):
                raise bad_request(['not_a_table', 'headers'])
        elif not isinstance(item, str):
            item = str(item)
        kwargs[name] = item
    try:
        return commands.Basic.Properties(**kwargs)
    except (TypeError, ValueError) as exc:
        raise bad_request(str(exc)) from None


def payload_bytes(payload: Any, encoding: Any) -> bytes:
    if encoding == 'string':
        return str(payload).encode()
    if encoding == 'base64':
        try:
            return base64.b64decode(str(payload), validate=True)
        except ValueError:
            raise bad_request(['invalid_base64', 'payload']) from None
    raise bad_request(['unsupported_encoding', encoding])


def publish(vhost: VirtualHost, exchange_name: str, routing_key: str, header: bytes,
            body: bytes) -> tuple[bool, bool]:
    """Route one message as basic.publish would; returns (routed, persistent).

    Raises the AMQP errors basic.publish would (unknown or internal exchange).
    """
    delivery_mode, priority, expiration, _user_id = props_codec.scan(header)
    ttl = int(expiration) if expiration is not None and expiration.isdigit() else None
    message = Message(exchange_name, routing_key, header, body, priority,
                      delivery_mode == 2, ttl)
    if exchange_name == '':
        queue = vhost.queues.get(routing_key)
        queues: Any = (queue,) if queue is not None else ()
        exchange = None
    else:
        exchange = vhost.exchanges.get(exchange_name)
        if exchange is None:
            raise NotFound(f"no exchange '{exchange_name}' in vhost '{vhost.name}'")
        if exchange.internal:
            raise AccessRefused(f"cannot publish to internal exchange '{exchange_name}' in "
                                f"vhost '{vhost.name}'")
        queues = list(vhost.route(exchange, routing_key, message))
    first = True
    for queue in queues:
        queue.publish(message if first else message.copy(), None)
        first = False
    if exchange is not None:
        exchange.stat_publish_in += 1
        if not first:
            exchange.stat_publish_out += 1
    return not first, message.persistent


def header_for(properties: commands.Basic.Properties, body: bytes) -> bytes:
    return props_codec.encode(properties, len(body))


def message_json(message: Message, remaining: int, encoding: str,
                 truncate: int | None) -> dict[str, Any]:
    body = message.body
    size = len(body)
    if truncate is not None:
        body = body[:truncate]
    payload: str
    payload_encoding = 'base64'
    if encoding == 'auto':
        try:
            payload = body.decode()
            payload_encoding = 'string'
        except UnicodeDecodeError:
            payload = base64.b64encode(body).decode()
    else:
        payload = base64.b64encode(body).decode()
    return {
        'payload_bytes': size,
        'redelivered': message.redelivered,
        'exchange': message.exchange,
        'routing_key': message.routing_key,
        'message_count': remaining,
        'properties': properties_json(message.header),
        'payload': payload,
        'payload_encoding': payload_encoding,
    }
