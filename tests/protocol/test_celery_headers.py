"""The Celery fields of a content header, read in place: against the headers
Celery itself builds, encoded by py-amqp (what kombu sends) and by pamqp
(what aio-pika sends), next to every other property."""

from __future__ import annotations

import struct

import amqp.basic_message
import pytest
from celery import Celery
from hypothesis import given
from hypothesis import strategies as st
from pamqp import commands
from pamqp.header import ContentHeader

from leveret.protocol.celery_headers import HEADERS_BIT, field, task_name


def celery_headers(**options: object) -> dict[str, object]:
    app = Celery('t', broker='memory://')
    return app.amqp.as_task_v2('7f0c-task-id', 'proj.tasks.add', args=(1, 2),
                               **options).headers


def py_amqp_header(headers: dict[str, object] | None, **properties: object) -> bytes:
    """A content-header payload as py-amqp (kombu's transport) encodes it."""
    message = amqp.basic_message.Message(b"{}", application_headers=headers, **properties)
    return struct.pack('>HHQ', 60, 0, 2) + message._serialize_properties()


def pamqp_header(headers: dict[str, object] | None, **properties: object) -> bytes:
    props = commands.Basic.Properties(headers=headers, **properties)
    return ContentHeader(0, 2, props).marshal()


ENCODERS = [py_amqp_header, pamqp_header]


@pytest.mark.parametrize('encode', ENCODERS)
def test_the_task_name_of_a_celery_message(encode):
    header = encode(celery_headers(), content_type='application/json',
                    content_encoding='utf-8', delivery_mode=2, priority=0,
                    correlation_id='7f0c-task-id', reply_to='reply.q')
    assert header[12] & HEADERS_BIT
    assert task_name(header) == b'proj.tasks.add'


@pytest.mark.parametrize('encode', ENCODERS)
def test_the_other_fields_are_read_on_demand(encode):
    headers = celery_headers(countdown=30, retries=3, parent_id='parent-1', root_id='root-1')
    header = encode(headers, content_type='application/json')
    assert field(header, 'id') == '7f0c-task-id'
    assert field(header, 'eta') == headers['eta']
    assert field(header, 'retries') == 3
    assert field(header, 'parent_id') == 'parent-1'
    assert field(header, 'root_id') == 'root-1'
    assert field(header, 'expires') is None         # void
    assert field(header, 'no-such-key') is None


@pytest.mark.parametrize('encode', ENCODERS)
def test_a_message_that_is_not_a_task(encode):
    header = encode({'x-foo': 'bar', 'tasks': 'plural, not a task'}, content_type='text/plain')
    assert task_name(header) is None
    assert field(pamqp_header(None), 'task') is None


def test_a_header_named_like_the_key_inside_a_value_after_the_table_is_ignored():
    # The search stays inside the table: a property after it cannot match.
    header = pamqp_header({'a': 1}, message_id='\x04taskS')
    assert task_name(header) is None


@given(name=st.text(min_size=1, max_size=300),
       extra=st.dictionaries(st.text(min_size=1, max_size=20).filter(lambda k: k != 'task'),
                             st.one_of(st.integers(-2**31, 2**31 - 1),
                                       st.text(max_size=50), st.booleans(), st.none()),
                             max_size=8),
       content_type=st.one_of(st.none(), st.text(max_size=40)))
def test_any_name_next_to_any_other_headers(name, extra, content_type):
    # Celery's order: lang and task first, whatever follows.
    headers = {'lang': 'py', 'task': name, **extra}
    header = pamqp_header(headers, content_type=content_type, delivery_mode=2)
    assert task_name(header) == name.encode()
