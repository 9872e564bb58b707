"""Field tables: what pamqp encodes decodes the same, every decoded value
encodes back, any bytes either decode or raise TableError, and the bounds
on depth and size hold."""

from __future__ import annotations

import datetime
import decimal
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import decode as pdecode
from pamqp import encode as pencode

from leveret.protocol import fieldtable, properties
from leveret.protocol.fieldtable import MAX_DEPTH, MAX_VALUES, TableError, Timestamp

from ..strategies import short_texts, timestamps

keys = st.text(min_size=1, max_size=12).filter(lambda k: len(k.encode()) <= 128)

# Values pamqp both encodes and decodes to an equal value.
pamqp_scalars = st.one_of(
    st.booleans(), st.none(), short_texts,
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    timestamps.map(lambda d: d.replace(tzinfo=datetime.UTC)),
    st.binary(max_size=20).map(bytearray))
pamqp_values = st.recursive(
    pamqp_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20)
pamqp_tables = st.dictionaries(keys, pamqp_values, max_size=6)

# Every kind of value our decoder produces.
own_scalars = st.one_of(
    pamqp_scalars,
    st.floats(allow_nan=False),
    st.binary(max_size=20).filter(lambda b: _not_utf8(b)),
    st.integers(min_value=2**32, max_value=2**64 - 1).map(Timestamp),
    st.builds(lambda scale, value: decimal.Decimal(value).scaleb(-scale),
              st.integers(0, 255), st.integers(0, 2**32 - 1)))
own_values = st.recursive(
    own_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20)
own_tables = st.dictionaries(keys, own_values, max_size=6)


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return True
    return False


def table_bytes(content: bytes) -> bytes:
    return struct.pack('>I', len(content)) + content


@given(pamqp_tables)
def test_what_pamqp_encodes_decodes_as_pamqp_decodes_it(table):
    wire = pencode.field_table(table)
    assert fieldtable.decode_table(wire) == pdecode.field_table(wire)[1]


@given(own_tables)
def test_every_decoded_value_encodes_back_to_the_same_value(table):
    wire = fieldtable.encode_table(table)
    assert fieldtable.decode_table(wire) == table
    # ... and to the same bytes once more.
    assert fieldtable.encode_table(fieldtable.decode_table(wire)) == wire


@settings(max_examples=300)
@given(own_tables, st.data())
def test_any_mutation_either_decodes_or_is_a_table_error(table, data):
    wire = bytearray(fieldtable.encode_table(table))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at] = data.draw(st.integers(0, 255))
    try:
        decoded = fieldtable.decode_table(bytes(wire))
    except TableError:
        return
    fieldtable.encode_table(decoded)      # whatever decoded also encodes


@given(st.binary(max_size=200))
def test_random_bytes_either_decode_or_are_a_table_error(raw):
    try:
        fieldtable.decode_table(table_bytes(raw))
    except TableError:
        pass


@pytest.mark.parametrize('content, reason', [
    (b'\x01ko', "unknown field type 'o'"),
    (b'\x01kS\x00\x00\x00\x09abc', 'runs past the end'),
    (b'\x01kI\x00\x01', 'runs past the end'),
    (b'\x05k', 'field name without a value'),
    (b'\x01kF\x00\x00\x00\x10\x00', 'nested table runs past'),
    (b'\x01kS\x00\x00', 'length of a string cut short'),
])
def test_malformed_tables_say_what_is_wrong(content, reason):
    with pytest.raises(TableError, match=reason):
        fieldtable.decode_table(table_bytes(content))


def nested(depth: int) -> bytes:
    """A table holding ``depth`` tables inside one another."""
    inner = b''
    for _ in range(depth):
        inner = b'\x01kF' + table_bytes(inner)
    return table_bytes(inner)


def test_nesting_up_to_the_bound_is_accepted_and_past_it_refused():
    value = fieldtable.decode_table(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH):
        value = value['k']
    assert value == {}
    with pytest.raises(TableError, match=f'nested more than {MAX_DEPTH} deep'):
        fieldtable.decode_table(nested(MAX_DEPTH + 1))


def test_twenty_thousand_levels_are_refused_without_recursion():
    with pytest.raises(TableError, match='nested'):
        fieldtable.check_table_at(nested(20000), 0)


def test_a_table_of_more_values_than_the_bound_is_refused():
    at_bound = b'\x01kA' + table_bytes(b'V' * (MAX_VALUES - 1))
    assert len(fieldtable.decode_table(table_bytes(at_bound))['k']) == MAX_VALUES - 1
    past = b'\x01kA' + table_bytes(b'V' * MAX_VALUES)
    with pytest.raises(TableError, match=f'more than {MAX_VALUES} values'):
        fieldtable.decode_table(table_bytes(past))


def test_a_timestamp_past_datetime_decodes_and_encodes_back():
    wire = table_bytes(b'\x01tT' + struct.pack('>Q', 2**63 - 1))
    table = fieldtable.decode_table(wire)
    assert table == {'t': Timestamp(2**63 - 1)}
    assert fieldtable.encode_table(table) == wire


def test_invalid_utf8_strings_and_names_are_kept_byte_for_byte():
    wire = table_bytes(b'\x02\xff\xfeS\x00\x00\x00\x02\xc3\x28')
    table = fieldtable.decode_table(wire)
    assert list(table.values()) == [b'\xc3\x28']
    assert fieldtable.encode_table(table) == wire


def test_entries_locate_each_top_level_value():
    wire = fieldtable.encode_table({'a': 1, 'b': [1, {'c': 'x'}], 'd': 'text'})
    found = fieldtable.entries(wire, 4, len(wire))
    assert list(found) == ['a', 'b', 'd']
    start, end = found['b']
    assert fieldtable.decode_value(wire, start) == [1, {'c': 'x'}]
    assert wire[start:end] == fieldtable.encode_value([1, {'c': 'x'}])


REWRITTEN = ('x-delivery-count', 'x-death')


def test_a_well_formed_table_is_readable_from_its_start():
    wire = fieldtable.encode_table({'a': 1, 'x-death': []})
    assert fieldtable.readable_from(wire, 4, len(wire), REWRITTEN) == 4


def test_after_an_unreadable_table_the_appended_entries_are_found():
    unreadable = b'\x01ko\x07x-death'         # an unknown type, then the key as junk
    appended = fieldtable.encode_table({'x-death': [{'count': 1}], 'x-delivery-count': 2})[4:]
    wire = table_bytes(unreadable + appended)
    split = fieldtable.readable_from(wire, 4, len(wire), REWRITTEN)
    assert split == 4 + len(unreadable)
    assert list(fieldtable.entries(wire, split, len(wire))) == ['x-death', 'x-delivery-count']


def test_an_unreadable_table_with_nothing_appended_is_readable_from_its_end():
    wire = table_bytes(b'\x01ko\x10x-delivery-count')
    assert fieldtable.readable_from(wire, 4, len(wire), REWRITTEN) == len(wire)


def content_header(table: bytes) -> bytes:
    return struct.pack('>HHQH', 60, 0, 0, 0x3000) + table + b'\x01'


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.lists(st.integers(0, 2**40), min_size=1, max_size=5))
def test_rewrites_of_any_table_keep_it_and_read_their_own_fields_back(content, counts):
    # What the broker does to a message's headers on requeue and
    # dead-lettering, on a table that is anything at all.
    header = original = content_header(table_bytes(content))
    try:
        fieldtable.check_table(content, 0, len(content))
        readable = True
    except TableError:
        readable = False
    for count in counts:
        header = properties.with_headers(
            header, {'x-death': [{'count': count}], 'x-first-death-queue': 'q'},
            keep=('x-first-death-queue',))
        header = properties.with_header(header, 'x-delivery-count', count)
        assert properties.scan(header) == properties.scan(original)
        if not readable:            # kept byte for byte, first
            assert header[18:18 + len(content)] == content
    # Set in place, not appended again.  (Once at most the unreadable content
    # takes the appended fields into a value of its own and the table reads
    # as well formed; from then on its fields are entries like any other.)
    header = properties.with_header(header, 'x-delivery-count', counts[-1])
    size = len(header)
    header = properties.with_header(header, 'x-delivery-count', counts[-1])
    assert len(header) == size
    try:
        fieldtable.check_table(header, 18, len(header) - 1)
        now_readable = True
    except TableError:
        now_readable = False
    # Read back after what could not be read; or, from a readable table,
    # unless the unreadable content took the fields in as part of its own
    # (``b'\x08'``: a field name of 8 bytes, ``\x07x-death`` once appended).
    if readable or not now_readable:
        assert properties.header_value(header, 'x-delivery-count') == counts[-1]
        assert properties.header_value(header, 'x-death') == [{'count': counts[-1]}]
