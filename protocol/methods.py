"""Decoding and encoding of every method but the per-message ones (the cold path).

pamqp's spec classes name each method's fields and their types; the
values are read and written here, over the payload with an offset (pamqp's
own ``unmarshal`` copies the rest of the payload per field, and its table
decoder per value: a long argument array made it quadratic).  Field tables
go through :mod:`.fieldtable`, bounded in depth and size.

Decoding skips pamqp's client-side validation, and a malformed payload
becomes a 501 frame error.  Encoding skips ``validate()`` as well: pamqp's
name regexes are stricter than what RabbitMQ accepts (any UTF-8 queue name,
say), and the broker must be able to echo back whatever it accepted.
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import base, commands

from . import fieldtable
from .constants import FRAME_METHOD
from .errors import CommandInvalid, FrameError

_FRAME_HEADER = struct.Struct('>BHI')
_INDEX = struct.Struct('>I')
_U16 = struct.Struct('>H')
_U32 = struct.Struct('>I')
_U64 = struct.Struct('>Q')
_END = b'\xce'

Method = base.Frame

#: Per method class: its fields as (name, AMQP type).
_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _fields(cls: Any) -> tuple[tuple[str, str], ...]:
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = tuple((name, cls.amqp_type(name)) for name in cls.__slots__)
    return fields


class _Short(ValueError):
    """The payload ended before the method's last field."""


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
        _unmarshal(method, _fields(cls), payload)
    except (struct.error, IndexError, _Short):
        raise FrameError(f'cannot decode {cls.name}: the payload ends before its last field',
                         index >> 16, index & 0xFFFF) from None
    except UnicodeDecodeError:
        raise FrameError(f'cannot decode {cls.name}: a short string is not valid UTF-8',
                         index >> 16, index & 0xFFFF) from None
    except fieldtable.TableError as exc:
        raise FrameError(f'cannot decode {cls.name}: field table: {exc}',
                         index >> 16, index & 0xFFFF) from None
    return method


def _unmarshal(method: Any, fields: tuple[tuple[str, str], ...], data: bytes) -> None:
    pos = 4
    n = len(data)
    bits = -1       # the octet bits are being read from, -1 when none
    bit = 0
    for name, kind in fields:
        if kind == 'bit':
            if bits < 0 or bit == 8:
                bits = data[pos]
                pos += 1
                bit = 0
            setattr(method, name, bool(bits & (1 << bit)))
            bit += 1
            continue
        bits = -1
        if kind == 'shortstr':
            size = data[pos]
            end = pos + 1 + size
            if end > n:
                raise _Short()
            value: Any = data[pos + 1:end].decode()
            pos = end
        elif kind == 'table':
            value, pos = fieldtable.decode_table_at(data, pos)
        elif kind == 'short':
            value = _U16.unpack_from(data, pos)[0]
            pos += 2
        elif kind == 'long':
            value = _U32.unpack_from(data, pos)[0]
            pos += 4
        elif kind == 'longlong':
            value = _U64.unpack_from(data, pos)[0]
            pos += 8
        elif kind == 'octet':
            value = data[pos]
            pos += 1
        elif kind == 'longstr':
            size = _U32.unpack_from(data, pos)[0]
            end = pos + 4 + size
            if end > n:
                raise _Short()
            raw = data[pos + 4:end]
            try:
                value = raw.decode()
            except UnicodeDecodeError:
                value = raw         # binary (a SASL response, say): as pamqp
            pos = end
        elif kind == 'timestamp':
            value = _U64.unpack_from(data, pos)[0]
            pos += 8
        else:   # pragma: no cover - every type of the 0-9-1 spec is above
            raise ValueError(f'unknown field type {kind}')
        setattr(method, name, value)


def encode_payload(method: Method) -> bytes:
    """Encode a method's payload (ids included) without pamqp's validation."""
    out = [_INDEX.pack(method.index)]
    byte, offset, in_bits = 0, 0, False
    value: Any
    for name, data_type in _fields(type(method)):
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
        out.append(_encode(value, data_type))
    if in_bits:
        out.append(bytes((byte,)))
    return b''.join(out)


def _encode(value: Any, data_type: str) -> bytes:
    if data_type == 'shortstr':
        raw = (value or '').encode() if not isinstance(value, bytes) else value
        if len(raw) > 255:
            raise ValueError('short string longer than 255 bytes')
        return bytes((len(raw),)) + raw
    if data_type == 'longstr':
        raw = (value or '').encode() if not isinstance(value, (bytes, bytearray)) else value
        return _U32.pack(len(raw)) + bytes(raw)
    if data_type == 'table':
        return fieldtable.encode_table(value)
    if data_type == 'short':
        return _U16.pack(value or 0)
    if data_type == 'long':
        return _U32.pack(value or 0)
    if data_type in ('longlong', 'timestamp'):
        return _U64.pack(value or 0)
    if data_type == 'octet':
        return bytes((value or 0,))
    raise ValueError(f'unknown field type {data_type}')  # pragma: no cover


def encode_method(channel: int, method: Method) -> bytes:
    """A complete method frame for ``method`` on ``channel``."""
    payload = encode_payload(method)
    return _FRAME_HEADER.pack(FRAME_METHOD, channel, len(payload)) + payload + _END


def method_ids(method: Method) -> tuple[int, int]:
    """``(class_id, method_id)`` of a pamqp command."""
    return method.index >> 16, method.index & 0xFFFF
