"""JSON as Celery (kombu) writes it, type markers included.

kombu's encoder wraps the values JSON has no type for in
``{"__type__": ..., "__value__": ...}`` envelopes; decoding turns them
back. Using the same envelopes lets a datetime or a UUID travel between a
Celery peer and a Leveret peer unchanged. The output matches
``kombu.utils.json.dumps`` byte for byte (default separators,
``ensure_ascii``), so a message body built here is the body Celery builds.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

JSON = 'application/json'
UTF8 = 'utf-8'


def _as(marker: str, value: Any) -> dict[str, Any]:
    return {'__type__': marker, '__value__': value}


# Order matters: datetime is a date.
_ENCODERS: list[tuple[type, Callable[[Any], dict[str, Any]]]] = [
    (datetime, lambda o: _as('datetime', o.isoformat())),
    (date, lambda o: _as('date', o.isoformat())),
    (time, lambda o: _as('time', o.isoformat())),
    (Decimal, lambda o: _as('decimal', str(o))),
    (uuid.UUID, lambda o: _as('uuid', {'hex': o.hex})),
]

_DECODERS: dict[str, Callable[[Any], Any]] = {
    'datetime': datetime.fromisoformat,
    'date': lambda v: datetime.fromisoformat(v).date(),
    'time': time.fromisoformat,
    'decimal': Decimal,
    'uuid': lambda v: uuid.UUID(**v),
    'bytes': lambda v: v.encode('utf-8'),
    'base64': lambda v: base64.b64decode(v.encode('utf-8')),
}


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        reducer = getattr(o, '__json__', None)
        if reducer is not None:
            return reducer()
        for kind, encode in _ENCODERS:
            if isinstance(o, kind):
                return encode(o)
        if isinstance(o, bytes):
            try:
                return _as('bytes', o.decode('utf-8'))
            except UnicodeDecodeError:
                return _as('base64', base64.b64encode(o).decode('utf-8'))
        return super().default(o)


def _object_hook(o: dict[str, Any]) -> Any:
    if len(o) == 2 and '__type__' in o and '__value__' in o:
        decode = _DECODERS.get(o['__type__'])
        if decode is None:
            raise ValueError(f'unsupported JSON type marker {o["__type__"]!r}')
        return decode(o['__value__'])
    return o


_encoder = _Encoder()
#: One decoder for every call (json.loads with a hook builds a new one each time).
_decoder = json.JSONDecoder(object_hook=_object_hook)


def dumps(value: Any) -> bytes:
    """``value`` as UTF-8 JSON bytes, exactly as kombu writes it."""
    return _encoder.encode(value).encode('utf-8')


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    if isinstance(data, memoryview):
        data = data.tobytes()
    if isinstance(data, bytes | bytearray):
        data = data.decode('utf-8')
    if data.startswith('\ufeff'):  # json.loads refuses it too
        raise json.JSONDecodeError('Unexpected UTF-8 BOM (decode using utf-8-sig)', data, 0)
    return _decoder.decode(data)


class UnsupportedContentType(ValueError):
    """A message body in a serialization this side does not accept."""


def decode_body(body: bytes, content_type: str | None, content_encoding: str | None) -> Any:
    """Decode a message body; only JSON is accepted (as Celery's default)."""
    if content_type not in (JSON, None, ''):
        raise UnsupportedContentType(
            f'refusing to decode content type {content_type!r}: only {JSON} is accepted')
    if content_encoding not in (UTF8, 'utf8', None, '', 'binary'):
        body = body.decode(content_encoding).encode('utf-8')
    return loads(body)
