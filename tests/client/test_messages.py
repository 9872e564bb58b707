"""The Celery message protocol: what the Leveret client sends is what Celery
sends, and each side reads the other's task and result messages.

Celery's messages are captured from a real Celery client (in this process)
publishing to the broker, then read raw from the queue."""

from __future__ import annotations

import decimal
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kombu.utils.json import dumps as kombu_dumps

from leveret.client import App, errors, serialization, states
from leveret.client.messages import (
    ExceptionInfo,
    ResultMessage,
    TaskMessage,
    make_task_message,
    result_properties,
)

from ..client_fixtures import celery_client, close_celery_client, declare_queue, raw_get


@pytest.fixture
def celery_app(amqp_url):
    app = celery_client(amqp_url)
    yield app
    close_celery_client(app)


@pytest.fixture
def app(amqp_url):
    app = App(amqp_url)
    yield app
    app.close()


def _send_both(celery_app, app, amqp_url, queue, name, args, kwargs, **options):
    """The wire form of the same send_task call from Celery, then from Leveret."""
    celery_app.send_task(name, args=args, kwargs=kwargs, queue=queue, **options)
    theirs = raw_get(amqp_url, queue)
    app.send_task(name, args, kwargs, queue=queue, **options)
    ours = raw_get(amqp_url, queue)
    return theirs, ours


def test_a_task_message_is_the_one_celery_sends(celery_app, app, amqp_url, unique):
    options = dict(task_id=str(uuid.uuid4()), reply_to=f'{unique}.reply', priority=5,
                   headers={'tenant': 'acme'})
    (their_props, their_body), (our_props, our_body) = _send_both(
        celery_app, app, amqp_url, unique, 'proj.add', (2, 2),
        {'z': [1, 'a', None], 'when': datetime(2030, 1, 2, 3, 4, 5)}, **options)
    assert our_body == their_body
    # aiormq gives every message a message_id (it matches confirms to returns
    # with it); Celery sets none and ignores it.
    assert our_props.pop('message_id')
    assert our_props == their_props
    # The model keeps Celery's header order; on the wire pamqp sorts table
    # keys (a field table is a map: RabbitMQ re-sorts it too, for x-death).
    message = TaskMessage.from_wire(our_props['headers'], our_props, our_body)
    assert list(message.header_table()) == list(their_props['headers'])


def test_countdown_and_expires_are_written_as_celery_writes_them(celery_app, app, amqp_url,
                                                                 unique):
    options = dict(task_id=str(uuid.uuid4()), reply_to='r', countdown=30, expires=60)
    (their_props, their_body), (our_props, our_body) = _send_both(
        celery_app, app, amqp_url, unique, 'proj.add', (1,), {}, **options)
    assert our_body == their_body
    theirs, ours = their_props['headers'], our_props['headers']
    for key in ('eta', 'expires'):
        their_time = datetime.fromisoformat(theirs[key])
        our_time = datetime.fromisoformat(ours[key])
        assert our_time.utcoffset() == their_time.utcoffset() == timedelta(0)
        assert abs((our_time - their_time).total_seconds()) < 10
    assert abs(int(our_props['expiration']) - int(their_props['expiration'])) < 10000
    assert int(our_props['expiration']) in range(50000, 60001)
    for props in (their_props, our_props):
        props.pop('message_id', None)
        props.pop('expiration')
        for key in ('eta', 'expires'):
            props['headers'].pop(key)
    assert our_props == their_props


def test_a_message_from_celery_reads_as_sent(celery_app, amqp_url, unique):
    task_id = str(uuid.uuid4())
    celery_app.send_task('proj.mul', args=(3, 4), kwargs={'k': 'v'}, task_id=task_id,
                         queue=unique, countdown=5, priority=3)
    props, body = raw_get(amqp_url, unique)
    message = TaskMessage.from_wire(props.pop('headers'), props, body)
    assert (message.protocol, message.name, message.id) == (2, 'proj.mul', task_id)
    assert (message.args, message.kwargs) == ([3, 4], {'k': 'v'})
    assert message.properties.priority == 3
    assert message.properties.reply_to == celery_app.thread_oid
    assert message.eta is not None and message.eta > datetime.now(UTC)
    assert message.headers.root_id == task_id and message.headers.retries == 0


def test_protocol_v1_messages_are_read(amqp_url, unique):
    old = celery_client(amqp_url, task_protocol=1)
    try:
        task_id = str(uuid.uuid4())
        old.send_task('proj.add', args=(1, 2), kwargs={'x': 1}, task_id=task_id, queue=unique,
                      countdown=10)
        props, body = raw_get(amqp_url, unique)
    finally:
        close_celery_client(old)
    message = TaskMessage.from_wire(props.pop('headers', None), props, body)
    assert (message.protocol, message.name, message.id) == (1, 'proj.add', task_id)
    assert (message.args, message.kwargs) == ([1, 2], {'x': 1})
    assert message.eta is not None and message.eta > datetime.now(UTC)


def _celery_request(reply_to: str, task_id: str):
    from celery.app.task import Context
    return Context(reply_to=reply_to, correlation_id=task_id, id=task_id)


def test_a_success_result_is_the_one_celery_sends(celery_app, amqp_url, unique):
    declare_queue(amqp_url, unique)
    task_id = str(uuid.uuid4())
    value = {'sum': 4, 'items': [1, 'two', None]}
    celery_app.backend.store_result(task_id, value, states.SUCCESS,
                                    request=_celery_request(unique, task_id))
    their_props, their_body = raw_get(amqp_url, unique)
    ours = ResultMessage.success(task_id, value)
    theirs = ResultMessage.from_wire(their_props, their_body)
    assert theirs.status == states.SUCCESS and theirs.value() == value
    # Same bytes but for the completion time.
    assert ours.body() == their_body.replace(theirs.date_done.encode(), ours.date_done.encode())
    their_props.pop('message_id', None)
    assert their_props == result_properties(task_id)


def test_a_failure_result_is_the_one_celery_sends(celery_app, amqp_url, unique):
    declare_queue(amqp_url, unique)
    task_id = str(uuid.uuid4())
    exc = KeyError('missing', 3)
    celery_app.backend.mark_as_failure(task_id, exc, traceback='Traceback: ...',
                                       request=_celery_request(unique, task_id))
    their_props, their_body = raw_get(amqp_url, unique)
    theirs = ResultMessage.from_wire(their_props, their_body)
    ours = ResultMessage.failure(task_id, exc, traceback='Traceback: ...')
    assert ours.body() == their_body.replace(theirs.date_done.encode(), ours.date_done.encode())
    rebuilt = theirs.value()
    assert type(rebuilt) is KeyError and rebuilt.args == ('missing', 3)


def test_exceptions_keep_celery_names_both_ways(celery_app):
    for ours, celery_name in [(errors.TimeLimitExceeded(5), 'billiard.exceptions'),
                              (errors.NotRegistered('x'), 'celery.exceptions'),
                              (errors.WorkerLostError('gone'), 'billiard.exceptions')]:
        info = ExceptionInfo.from_exception(ours).model_dump()
        assert info['exc_module'] == celery_name
        rebuilt = celery_app.backend.exception_to_python(info)
        assert type(rebuilt).__name__ == type(ours).__name__
        assert type(rebuilt).__module__ == celery_name
        # ... and a Celery-made one reads back as ours.
        theirs = celery_app.backend.prepare_exception(rebuilt, 'json')
        assert type(ExceptionInfo.model_validate(theirs).to_exception()) is type(ours)


def test_unknown_remote_exceptions_are_never_imported():
    info = ExceptionInfo(exc_type='PaymentDeclined', exc_message=['card'], exc_module='shop.errors')
    exc = info.to_exception()
    assert isinstance(exc, errors.RemoteError)
    assert (type(exc).__name__, type(exc).__module__, exc.args) == \
        ('PaymentDeclined', 'shop.errors', ('card',))
    # A non-exception "class" is refused, not called.
    info = ExceptionInfo(exc_type='system', exc_message=['echo pwned'], exc_module='os')
    assert isinstance(info.to_exception(), errors.RemoteError)


@pytest.mark.parametrize('value', [
    datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    datetime(2030, 5, 6).date(),
    uuid.UUID(int=12345),
    decimal.Decimal('3.14159'),
    b'plain bytes',
    b'\xff\xfe binary',
    {'nested': [datetime(2031, 1, 1), {'id': uuid.UUID(int=1)}], 'text': 'caf\u00e9'},
])
def test_json_is_kombu_json(value):
    assert serialization.dumps(value) == kombu_dumps(value).encode()
    assert serialization.loads(serialization.dumps(value)) == value


def test_make_task_message_converts_countdown_and_expires():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    message = make_task_message('t', (), task_id='id', countdown=90, expires=120, now=now)
    assert message.eta == now + timedelta(seconds=90)
    assert message.expires == now + timedelta(seconds=120)
    assert message.properties.expiration == '120000'
    past = make_task_message('t', expires=now - timedelta(seconds=5), now=now)
    assert past.properties.expiration == '0'
    with pytest.raises(TypeError):
        make_task_message('t', args='not a list')  # type: ignore[arg-type]


# --- the pool process's reading: read_parts agrees with from_wire ----------------
def _wire(message: TaskMessage, **header_changes):
    """A message as the pool process gets it: the headers table through the
    AMQP codec and back, the properties as the worker reads them."""
    from leveret.client.worker.delivery import decode_table
    from leveret.protocol.fieldtable import encode_table

    headers = {**message.header_table(), **header_changes}
    headers = decode_table(encode_table(headers), 0)[0]
    return headers, message.properties.model_dump(), message.body()


def _both(headers, properties, body):
    """What read_parts and from_wire make of one message (or the exception type)."""
    try:
        parts = TaskMessage.read_parts(headers, properties, body)
    except Exception as exc:  # noqa: BLE001 - compared below
        parts = type(exc)
    try:
        message = TaskMessage.from_wire(headers, properties, body)
        theirs = (message.name, message.args, message.kwargs, message.embed.model_dump())
    except Exception as exc:  # noqa: BLE001 - compared below
        theirs = type(exc)
    return parts, theirs


def test_the_plain_check_covers_every_field_of_the_models():
    from leveret.client import messages
    from leveret.client.messages import TaskEmbed, TaskHeaders, TaskProperties

    assert set(messages._HEADER_TYPES) == set(TaskHeaders.model_fields)
    assert set(messages._PROPERTY_TYPES) == set(TaskProperties.model_fields)
    assert set(messages._EMBED_TYPES) == set(TaskEmbed.model_fields)


def test_what_celery_and_leveret_send_is_read_without_pydantic():
    from leveret.client.messages import _plainly_valid

    message = make_task_message('proj.add', (2, 2), {'k': [1, None]}, countdown=5, expires=60,
                                reply_to='replies', group_id='g', group_index=1,
                                time_limit=10, soft_time_limit=5.5,
                                headers={'tenant': 'acme', 'celery_beat_task': True})
    message.embed.callbacks = [{'task': 'proj.cb', 'args': [], 'kwargs': {}}]
    message.embed.chord = {'task': 'proj.body'}
    headers, properties, body = _wire(message)
    assert _plainly_valid(headers, properties, *serialization.loads(body))
    parts, theirs = _both(headers, properties, body)
    assert parts == theirs
    assert parts[0] == 'proj.add' and parts[3]['callbacks'][0]['task'] == 'proj.cb'


@pytest.mark.parametrize('changes', [
    {'retries': '3'},             # pydantic coerces it: accepted, by from_wire
    {'retries': True},
    {'retries': 'many'},          # refused
    {'id': 7},
    {'timelimit': ['1', None]},
    {'timelimit': [1, 'x']},
    {'stamped_headers': [1]},
    {'ignore_result': 'yes'},
    {'group_index': 2.5},
    {'eta': b'\xff'},
    {'lang': None},
])
def test_a_message_with_other_types_is_read_by_from_wire(changes):
    from leveret.client.messages import _plainly_valid

    headers, properties, body = _wire(make_task_message('proj.add', (1,)), **changes)
    assert not _plainly_valid(headers, properties, *serialization.loads(body))
    parts, theirs = _both(headers, properties, body)
    assert parts == theirs


@pytest.mark.parametrize('body', [
    b'[[1], {}, null]', b'[[1], {}, []]', b'[[1], {}, {"chain": null, "other": 1}]',
    b'[[1], {}, {"chain": {"not": "a list"}}]', b'[[1], {}, [1]]', b'[1, {}, {}]',
    b'[[1], [], {}]', b'[[1], {}]', b'{"a": 1, "b": 2, "c": 3}', b'not json',
])
def test_odd_bodies_read_the_same_both_ways(body):
    headers, properties, _ = _wire(make_task_message('proj.add', (1,)))
    parts, theirs = _both(headers, properties, body)
    assert parts == theirs


@pytest.mark.parametrize('changes', [
    {'priority': '5'}, {'delivery_mode': 2.0}, {'reply_to': 5}, {'content_encoding': None},
])
def test_odd_properties_read_the_same_both_ways(changes):
    headers, properties, body = _wire(make_task_message('proj.add', (1,)))
    parts, theirs = _both(headers, {**properties, **changes}, body)
    assert parts == theirs


def test_a_message_without_its_id_is_refused_both_ways():
    headers, properties, body = _wire(make_task_message('proj.add', (1,)))
    del headers['id']
    parts, theirs = _both(headers, properties, body)
    assert parts == theirs and isinstance(parts, type)
