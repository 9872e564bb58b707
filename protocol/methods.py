"""Decoding and encoding of every method through pamqp (the cold path).

Decoding goes through pamqp's spec classes without their client-side
validation, and malformed payloads become AMQP errors.  Encoding mirrors
``pamqp.base.Frame.marshal`` but skips ``validate()``: pamqp's name regexes
are stricter than what RabbitMQ accepts (any UTF-8 queue name, say), and
the broker must be able to echo back whatever it accepted.
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import base, commands, encode

from .constants import FRAME_METHOD
from .errors import CommandInvalid, FrameError

_FRAME_HEADER = struct.Struct('>BHI')
_INDEX = struct.Struct('>I')
_END = b'\xce'

Method = base.Frame


def decode_method(payload: bytes) -> Method:
    """Decode a method-frame payload into a pamqp command instance."""
    if len(payload) < 4:
        raise FrameError('method frame too short')
    index = _INDEX.unpack_from(payload)[0]
    cls: Any = commands.INDEX_MAPPING.get(index)
    if cls is None:
        raise CommandInvalid(
            f'unknown method class {index >> 16} method {index & 0xFFFF}')
    method = cls.__new__(cls)
    try:
        method.unmarshal(payload[4:])
    except (struct.error, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise FrameError(f'cannot decode {cls.name}: {exc}',
                         index >> 16, index & 0xFFFF) from None
    return method


def encode_payload(method: Method) -> bytes:
    """Encode a method's payload (ids included) without pamqp's validation."""
    out = [_INDEX.pack(method.index)]
    byte, offset, in_bits = 0, 0, False
    value: Any
    for name in method.__slots__:
        data_type = method.amqp_type(name)
        value = getattr(method, name, None)
        if data_type == 'bit':
            if not in_bits:
                byte, offset, in_bits = 0, 0, True
            if value:
                byte |= 1 << offset
            offset += 1
            if offset == 8:
                out.append(bytes((byte,)))
                in_bits = False
            continue
        if in_bits:
            out.append(bytes((byte,)))
            in_bits = False
        if value is None:
            value = _DEFAULTS.get(data_type, 0)
        out.append(encode.by_type(value, data_type))
    if in_bits:
        out.append(bytes((byte,)))
    return b''.join(out)


_DEFAULTS: dict[str, object] = {'shortstr': '', 'longstr': '', 'table': {}}


def encode_method(channel: int, method: Method) -> bytes:
    """A complete method frame for ``method`` on ``channel``."""
    payload = encode_payload(method)
    return _FRAME_HEADER.pack(FRAME_METHOD, channel, len(payload)) + payload + _END


def method_ids(method: Method) -> tuple[int, int]:
    """``(class_id, method_id)`` of a pamqp command."""
    return method.index >> 16, method.index & 0xFFFF
