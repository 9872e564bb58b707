"""AMQP field tables and arrays: checked, decoded and encoded in linear time.

A field table arrives from a client in method arguments (queue.declare's
``x-`` arguments, binding arguments, client properties) and in a message's
``headers`` property.  Everything here works on the buffer it is given, with
an offset: nothing copies the rest of the buffer per value (pamqp's decoder
does, which makes a long array quadratic).

Two bounds hold for every table, and anything past them is refused
(:class:`TableError`):

* nesting: at most :data:`MAX_DEPTH` tables and arrays inside one another;
* size: at most :data:`MAX_VALUES` values in one table, nested values
  included.

:func:`check_table` walks a table without building anything;
:func:`decode_table` only ever decodes what :func:`check_table` accepted, so
a table that passed the check always decodes, and :func:`encode_table`
encodes everything the decoder produces.  A message's headers are not
checked when it arrives: a rewrite (``x-death``, ``x-delivery-count``) works
on the entries :func:`readable_from` finds, and keeps what it cannot read
byte for byte.

Values decode as follows (``encode_value`` takes the same types back):

======  =============================  =========================================
type    wire                            Python
======  =============================  =========================================
``t``   boolean                         ``bool``
``b``   signed 8-bit ... ``l`` 64-bit   ``int`` (``B``, ``u``, ``i`` unsigned)
``f``   float, ``d`` double             ``float`` (encoded as ``d``: no loss)
``D``   decimal (scale, 32-bit value)   ``decimal.Decimal``
``S``   long string                     ``str``; ``bytes`` when not UTF-8
``x``   byte array                      ``bytearray``
``T``   timestamp (seconds)             ``datetime`` (UTC) up to 2^32 - 1, else
                                        :class:`Timestamp`
``F``   table                           ``dict``
``A``   array                           ``list``
``V``   void (and ``\\x00``, seen from   ``None``
        some clients, as pamqp)
======  =============================  =========================================

Field names are short strings; one that is not UTF-8 decodes with
``surrogateescape`` and encodes back to the same bytes.
"""

from __future__ import annotations

import datetime
import decimal
import struct
from typing import Any

#: Tables and arrays nested inside one another, at most (RabbitMQ has no
#: bound; 20,000 levels cost a traceback per connection before this).
MAX_DEPTH = 100
#: Values in one table, nested ones included.
MAX_VALUES = 10_000

_U32 = struct.Struct('>I')
_I8 = struct.Struct('>b')
_I16 = struct.Struct('>h')
_U16 = struct.Struct('>H')
_I32 = struct.Struct('>i')
_I64 = struct.Struct('>q')
_U64 = struct.Struct('>Q')
_F32 = struct.Struct('>f')
_F64 = struct.Struct('>d')
_DECIMAL = struct.Struct('>BI')

# What follows a type octet: a fixed size (>= 0) or one of these.
_LONG = -1          # u32 length, then that many bytes
_TABLE = -2
_ARRAY = -3
_UNKNOWN = -4

_KIND = [_UNKNOWN] * 256
for _code, _size in (('t', 1), ('b', 1), ('B', 1), ('s', 2), ('u', 2), ('I', 4), ('i', 4),
                     ('l', 8), ('L', 8), ('f', 4), ('d', 8), ('D', 5), ('T', 8), ('V', 0),
                     ('\x00', 0), ('S', _LONG), ('x', _LONG), ('F', _TABLE), ('A', _ARRAY)):
    _KIND[ord(_code)] = _size
_KINDS = tuple(_KIND)
del _KIND, _code, _size

#: Timestamps above this decode as :class:`Timestamp` (datetime cannot hold
#: every 64-bit value; pamqp raised on them).
_DATETIME_MAX = 0xFFFFFFFF
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class TableError(ValueError):
    """A field table that is not well formed, or past a bound."""


class Timestamp(int):
    """A timestamp value too large for ``datetime``: kept as its seconds."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f'Timestamp({int(self)})'


# --- checking ------------------------------------------------------------------
def check_table(data: bytes | memoryview, start: int, end: int) -> None:
    """Check that ``data[start:end]`` (a table's content, after its length)
    is a well-formed table within the bounds; raise :class:`TableError`.

    One pass, iterative, building nothing: the cost is linear in the number
    of values and bounded by :data:`MAX_VALUES`.
    """
    kinds = _KINDS
    unpack = _U32.unpack_from
    stack: list[tuple[int, bool]] = []
    pos = start
    in_table = True
    values = 0
    while True:
        if pos >= end:
            if pos > end:
                raise TableError(f'value runs past the end of its table at byte {end}')
            if not stack:
                return
            end, in_table = stack.pop()
            continue
        if in_table:
            pos += 1 + data[pos]            # the field name
            if pos >= end:
                raise TableError(f'field name without a value at byte {pos}')
        code = data[pos]
        kind = kinds[code]
        pos += 1
        values += 1
        if values > MAX_VALUES:
            raise TableError(f'more than {MAX_VALUES} values')
        if kind >= 0:
            pos += kind
        elif kind == _LONG:
            if pos + 4 > end:
                raise TableError(f'length of a string cut short at byte {pos}')
            pos += 4 + unpack(data, pos)[0]
        elif kind == _UNKNOWN:
            raise TableError(f'unknown field type {chr(code)!r} at byte {pos - 1}')
        else:
            if pos + 4 > end:
                raise TableError(f'length of a nested table cut short at byte {pos}')
            inner_end = pos + 4 + unpack(data, pos)[0]
            if inner_end > end:
                raise TableError(
                    f'nested table runs past the end of its table at byte {end}')
            if len(stack) >= MAX_DEPTH:
                raise TableError(f'tables nested more than {MAX_DEPTH} deep')
            stack.append((end, in_table))
            end = inner_end
            in_table = kind == _TABLE
            pos += 4


def check_table_at(data: bytes | memoryview, offset: int, limit: int | None = None) -> int:
    """Check the table (length prefix included) at ``offset``; return the
    offset after it.  ``limit`` is where the enclosing data ends."""
    limit = len(data) if limit is None else limit
    if offset + 4 > limit:
        raise TableError('table length cut short')
    end = offset + 4 + _U32.unpack_from(data, offset)[0]
    if end > limit:
        raise TableError(f'table length {end - offset - 4} exceeds the data ({limit - offset - 4})')
    check_table(data, offset + 4, end)
    return end


# --- decoding --------------------------------------------------------------------
def decode_table_at(data: bytes | memoryview, offset: int,
                    limit: int | None = None) -> tuple[dict[str, Any], int]:
    """Check and decode the table (length prefix included) at ``offset``;
    return it and the offset after it."""
    end = check_table_at(data, offset, limit)
    return _table(data, offset + 4, end), end


def decode_table(data: bytes | memoryview) -> dict[str, Any]:
    """A whole encoded table (length prefix included), nothing after it."""
    table, end = decode_table_at(data, 0)
    if end != len(data):
        raise TableError(f'{len(data) - end} bytes after the table')
    return table


def _table(data: bytes | memoryview, pos: int, end: int) -> dict[str, Any]:
    """Decode a table's content that :func:`check_table` accepted."""
    out: dict[str, Any] = {}
    while pos < end:
        n = data[pos]
        key = bytes(data[pos + 1:pos + 1 + n]).decode('utf-8', 'surrogateescape')
        out[key], pos = _value(data, pos + 1 + n)
    return out


def _array(data: bytes | memoryview, pos: int, end: int) -> list[Any]:
    out: list[Any] = []
    append = out.append
    while pos < end:
        value, pos = _value(data, pos)
        append(value)
    return out


def _value(data: bytes | memoryview, pos: int) -> tuple[Any, int]:
    code = data[pos]
    pos += 1
    decoder = _DECODERS[code]
    return decoder(data, pos)


def _long_bytes(data: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    n = _U32.unpack_from(data, pos)[0]
    return bytes(data[pos + 4:pos + 4 + n]), pos + 4 + n


def _longstr(data: bytes | memoryview, pos: int) -> tuple[str | bytes, int]:
    raw, pos = _long_bytes(data, pos)
    try:
        return raw.decode(), pos
    except UnicodeDecodeError:
        return raw, pos      # longstr is binary on the wire: kept as bytes


def _timestamp(data: bytes | memoryview, pos: int) -> tuple[Any, int]:
    seconds = _U64.unpack_from(data, pos)[0]
    if seconds <= _DATETIME_MAX:
        return _EPOCH + datetime.timedelta(seconds=seconds), pos + 8
    return Timestamp(seconds), pos + 8


def _decimal(data: bytes | memoryview, pos: int) -> tuple[decimal.Decimal, int]:
    scale, value = _DECIMAL.unpack_from(data, pos)
    return decimal.Decimal(value).scaleb(-scale), pos + 5


def _nested(decode: Any) -> Any:
    def read(data: bytes | memoryview, pos: int) -> tuple[Any, int]:
        end = pos + 4 + _U32.unpack_from(data, pos)[0]
        return decode(data, pos + 4, end), end
    return read


def _fixed(unpacker: struct.Struct) -> Any:
    size = unpacker.size
    unpack = unpacker.unpack_from

    def read(data: bytes | memoryview, pos: int) -> tuple[Any, int]:
        return unpack(data, pos)[0], pos + size
    return read


def _void(data: bytes | memoryview, pos: int) -> tuple[None, int]:
    return None, pos


def _bool(data: bytes | memoryview, pos: int) -> tuple[bool, int]:
    return data[pos] != 0, pos + 1


def _octet(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    return data[pos], pos + 1


def _bytearray(data: bytes | memoryview, pos: int) -> tuple[bytearray, int]:
    raw, pos = _long_bytes(data, pos)
    return bytearray(raw), pos


_DECODERS: list[Any] = [None] * 256
for _code, _decoder in (
        ('t', _bool), ('b', _fixed(_I8)), ('B', _octet), ('s', _fixed(_I16)),
        ('u', _fixed(_U16)), ('I', _fixed(_I32)), ('i', _fixed(_U32)), ('l', _fixed(_I64)),
        ('L', _fixed(_I64)), ('f', _fixed(_F32)), ('d', _fixed(_F64)), ('D', _decimal),
        ('T', _timestamp), ('V', _void), ('\x00', _void), ('S', _longstr), ('x', _bytearray),
        ('F', _nested(_table)), ('A', _nested(_array))):
    _DECODERS[ord(_code)] = _decoder
del _code, _decoder


# --- encoding --------------------------------------------------------------------
def encode_table(table: dict[str, Any] | None) -> bytes:
    """A table with its length prefix."""
    if not table:
        return b'\x00\x00\x00\x00'
    parts: list[bytes] = []
    for key, value in table.items():
        parts.append(_key(key))
        parts.append(encode_value(value))
    content = b''.join(parts)
    return _U32.pack(len(content)) + content


def encode_entries(entries: dict[str, bytes], prefix: bytes = b'') -> bytes:
    """A table from already encoded values (type octet included), with its
    length; ``prefix`` is content kept as it is, before them."""
    content = prefix + b''.join(_key(key) + value for key, value in entries.items())
    return _U32.pack(len(content)) + content


def _key(key: str) -> bytes:
    raw = key.encode('utf-8', 'surrogateescape')
    if len(raw) > 255:
        raise TableError(f'field name longer than 255 bytes: {key[:40]!r}...')
    return bytes((len(raw),)) + raw


def encode_value(value: Any) -> bytes:
    """One value with its type octet."""
    if isinstance(value, bool):
        return b't\x01' if value else b't\x00'
    if isinstance(value, Timestamp):
        return b'T' + _U64.pack(value)
    if isinstance(value, int):
        if -128 <= value <= 127:
            return b'b' + _I8.pack(value)
        if -32768 <= value <= 32767:
            return b's' + _I16.pack(value)
        if 0 <= value <= 65535:
            return b'u' + _U16.pack(value)
        if -2147483648 <= value <= 2147483647:
            return b'I' + _I32.pack(value)
        if 0 <= value <= 4294967295:
            return b'i' + _U32.pack(value)
        if -9223372036854775808 <= value <= 9223372036854775807:
            return b'l' + _I64.pack(value)
        raise TableError(f'integer out of range: {value}')
    if isinstance(value, str):
        raw = value.encode('utf-8', 'surrogateescape')
        return b'S' + _U32.pack(len(raw)) + raw
    if isinstance(value, float):
        return b'd' + _F64.pack(value)
    if isinstance(value, dict):
        return b'F' + encode_table(value)
    if isinstance(value, (list, tuple)):
        content = b''.join(encode_value(item) for item in value)
        return b'A' + _U32.pack(len(content)) + content
    if value is None:
        return b'V'
    if isinstance(value, bytearray):
        return b'x' + _U32.pack(len(value)) + bytes(value)
    if isinstance(value, bytes):
        return b'S' + _U32.pack(len(value)) + value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return b'T' + _U64.pack(max(0, int(value.timestamp())))
    if isinstance(value, decimal.Decimal):
        return b'D' + _encode_decimal(value)
    raise TableError(f'cannot encode a {type(value).__name__} in a field table')


def _encode_decimal(value: decimal.Decimal) -> bytes:
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise TableError(f'cannot encode {value} as a decimal')
    mantissa = int(''.join(map(str, digits)) or '0')
    if exponent > 0:
        mantissa *= 10 ** exponent
        exponent = 0
    if sign:
        mantissa = -mantissa
    scale = -exponent
    if not 0 <= scale <= 255 or not -2**31 <= mantissa < 2**32:
        raise TableError(f'decimal out of range: {value}')
    return _DECIMAL.pack(scale, mantissa & 0xFFFFFFFF)


# --- entries without decoding the rest ---------------------------------------------
def entries(data: bytes | memoryview, start: int, end: int) -> dict[str, tuple[int, int]]:
    """The top-level fields of a checked table's content ``data[start:end]``:
    name -> (start, end) of its encoded value (type octet included).

    Rewrites that change one field keep every other one byte for byte.
    """
    kinds = _KINDS
    unpack = _U32.unpack_from
    out: dict[str, tuple[int, int]] = {}
    pos = start
    while pos < end:
        n = data[pos]
        key = bytes(data[pos + 1:pos + 1 + n]).decode('utf-8', 'surrogateescape')
        value_start = pos = pos + 1 + n
        kind = kinds[data[pos]]
        pos += 1
        if kind >= 0:
            pos += kind
        else:
            pos += 4 + unpack(data, pos)[0]
        out[key] = (value_start, pos)
    return out


def decode_value(data: bytes | memoryview, start: int) -> Any:
    """The value (type octet first) at ``start`` of a checked table."""
    return _value(data, start)[0]


def readable_from(data: bytes, start: int, end: int, keys: tuple[str, ...]) -> int:
    """Where the entries a rewrite can work on begin in ``data[start:end]``.

    ``start`` when the whole table is well formed.  Otherwise a rewrite
    keeps the content it cannot read byte for byte and appends its own
    entries after it (see :mod:`.properties`); this finds them again: the
    leftmost entry named one of ``keys`` from which the rest of the table is
    well formed, or ``end`` when there is none.

    Candidates are taken right to left, each checked only up to the one
    after it, and the search stops at the first that is not an entry: one
    linear pass over the table at most.
    """
    try:
        check_table(data, start, end)
        return start
    except TableError:
        pass
    encoded = [_key(key) for key in keys]
    found = end
    limit = end
    while True:
        candidate = max(data.rfind(key, start, limit) for key in encoded)
        if candidate < 0:
            return found
        try:
            check_table(data, candidate, found)
        except TableError:
            return found
        found = limit = candidate
