"""Topic permissions, permissions changed at run time, user_id and
impersonators, and refusals seen by aio-pika and kombu."""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq.exceptions
import kombu
import pika
import pika.exceptions
import pytest

from .conftest import Api, quote


def url(broker, user: str, vhost: str = '/') -> str:
    return f'amqp://{user}:{user}@127.0.0.1:{broker.port}/{quote(vhost)}'


def add_user(admin: Api, name: str, vhost: str = '/', configure: str = '.*',
             write: str = '.*', read: str = '.*', tags: str = '') -> None:
    admin.ok('PUT', f'/users/{name}', {'password': name, 'tags': tags})
    admin.ok('PUT', f'/permissions/{quote(vhost)}/{name}',
             {'configure': configure, 'write': write, 'read': read})


def closed_with(action) -> pika.exceptions.ChannelClosedByBroker:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        action()
    return info.value


# --- topic permissions -----------------------------------------------------------------


def test_topic_permissions_restrict_the_routing_keys_of_publishes_and_bindings(
        own_broker, admin):
    add_user(admin, 'tp')
    admin.ok('PUT', '/topic-permissions/%2F/tp',
             {'exchange': 'amq.topic', 'write': '^{username}\\.', 'read': '^{vhost}-ro\\.'})
    with pika.BlockingConnection(pika.URLParameters(own_broker.url)) as guest:
        setup = guest.channel()
        setup.queue_declare('tp-q')
        setup.queue_bind('tp-q', 'amq.topic', 'tp.#')
        setup.exchange_declare('other.topic', 'topic')
    with pika.BlockingConnection(pika.URLParameters(url(own_broker, 'tp'))) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish('amq.topic', 'tp.allowed', b'1')
        ch.basic_publish('amq.topic', 'tp.allowed', b'2')       # the cached decision
        error = closed_with(lambda: ch.basic_publish('amq.topic', 'guest.nope', b'x'))
        assert error.reply_code == 403
        assert error.reply_text == (
            "ACCESS_REFUSED - access to topic 'guest.nope' in exchange topic 'amq.topic' in "
            "vhost '/' refused for user 'tp'")
        # Binding keys are checked with the read expression ({vhost} expanded).
        ch = conn.channel()
        ch.queue_declare('tp-mine')
        ch.queue_bind('tp-mine', 'amq.topic', '/-ro.anything')
        error = closed_with(lambda: ch.queue_bind('tp-mine', 'amq.topic', 'tp.#'))
        assert "access to topic 'tp.#' in exchange topic 'amq.topic'" in error.reply_text
        # Another topic exchange has no topic permission: it is open.
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish('other.topic', 'anything.at.all', b'x')
        ch.queue_bind('tp-mine', 'other.topic', 'any.#')
    with pika.BlockingConnection(pika.URLParameters(own_broker.url)) as guest:
        assert guest.channel().queue_declare('tp-q', passive=True).method.message_count == 2


def test_topic_permissions_apply_to_topic_exchanges_only(own_broker, admin):
    add_user(admin, 'tpd')
    with pika.BlockingConnection(pika.URLParameters(own_broker.url)) as guest:
        guest.channel().exchange_declare('direct.x', 'direct')
    admin.ok('PUT', '/topic-permissions/%2F/tpd',
             {'exchange': 'direct.x', 'write': '^never$', 'read': '^never$'})
    with pika.BlockingConnection(pika.URLParameters(url(own_broker, 'tpd'))) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish('direct.x', 'whatever', b'x', mandatory=False)


def test_a_bad_pattern_is_refused_by_the_api(admin):
    admin.ok('PUT', '/users/badre', {'password': 'x', 'tags': ''})
    status, answer = admin.call('PUT', '/permissions/%2F/badre',
                                {'configure': '(', 'write': '.*', 'read': '.*'})
    assert status == 400 and 'invalid regular expression' in answer['reason']
    status, answer = admin.call('PUT', '/topic-permissions/%2F/badre',
                                {'exchange': 'amq.topic', 'write': '[', 'read': '.*'})
    assert status == 400 and 'invalid regular expression' in answer['reason']


# --- run time -----------------------------------------------------------------------------


def test_a_permission_changed_at_run_time_applies_to_channels_opened_afterwards(
        own_broker, admin):
    add_user(admin, 'rt')
    with pika.BlockingConnection(pika.URLParameters(url(own_broker, 'rt'))) as conn:
        before = conn.channel()
        before.queue_declare('rt.one')
        admin.ok('PUT', '/permissions/%2F/rt', {'configure': '^nothing$', 'write': '.*',
                                                'read': '.*'})
        before.queue_declare('rt.two')            # opened before the change: as it was
        after = conn.channel()
        error = closed_with(lambda: after.queue_declare('rt.three'))
        assert error.reply_code == 403
        admin.ok('DELETE', '/permissions/%2F/rt')
        # With no entry left, a new channel may do nothing (connections stay).
        last = conn.channel()
        error = closed_with(lambda: last.basic_get('rt.one'))
        assert error.reply_text == ("ACCESS_REFUSED - access to queue 'rt.one' in vhost '/' "
                                    "refused for user 'rt'")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(pika.URLParameters(url(own_broker, 'rt')))


def test_permissions_set_at_run_time_survive_a_restart(own_broker, admin):
    add_user(admin, 'kept', configure='^kept\\.')
    admin.ok('PUT', '/topic-permissions/%2F/kept',
             {'exchange': 'amq.topic', 'write': '^kept\\.', 'read': '.*'})
    assert own_broker.stop() == 0
    own_broker.start(port=own_broker.port)
    with pika.BlockingConnection(pika.URLParameters(url(own_broker, 'kept'))) as conn:
        conn.channel().queue_declare('kept.q')
        ch = conn.channel()
        assert closed_with(lambda: ch.queue_declare('other.q')).reply_code == 403
        ch = conn.channel()
        ch.confirm_delivery()
        assert closed_with(lambda: ch.basic_publish('amq.topic', 'nope', b'')).reply_code \
            == 403


# --- user_id -------------------------------------------------------------------------------


def test_user_id_must_be_the_authenticated_user_unless_an_impersonator(own_broker, admin):
    add_user(admin, 'plainuser')
    add_user(admin, 'imp', tags='impersonator')
    with pika.BlockingConnection(pika.URLParameters(url(own_broker, 'plainuser'))) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish('', 'none', b'', pika.BasicProperties(user_id='plainuser'))
        error = closed_with(lambda: ch.basic_publish(
            '', 'none', b'', pika.BasicProperties(user_id='someone')))
        assert error.reply_code == 406
        assert error.reply_text == ("PRECONDITION_FAILED - user_id property set to 'someone' "
                                    "but authenticated user was 'plainuser'")
    with pika.BlockingConnection(pika.URLParameters(url(own_broker, 'imp'))) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish('', 'none', b'', pika.BasicProperties(user_id='someone'))


# --- other clients ------------------------------------------------------------------------


def test_aio_pika_sees_a_refused_publish_and_declare_as_403(own_broker, admin):
    add_user(admin, 'aio', configure='^aio\\.', write='^aio\\.', read='^aio\\.')

    async def run() -> None:
        connection = await aio_pika.connect(url(own_broker, 'aio'))
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue('aio.q')
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused) as info:
                await channel.declare_queue('other.q')
            assert "access to queue 'other.q' in vhost '/' refused for user 'aio'" in \
                str(info.value)
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused) as info:
                await channel.default_exchange.publish(aio_pika.Message(b'x'), 'aio.q')
            assert "exchange 'amq.default'" in str(info.value)
            channel = await connection.channel()
            exchange = await channel.declare_exchange('aio.x', aio_pika.ExchangeType.FANOUT)
            queue = await channel.get_queue('aio.q')
            await queue.bind(exchange)
            await exchange.publish(aio_pika.Message(b'ok'), '')
            message = await queue.get(timeout=5)
            assert message.body == b'ok'

    asyncio.run(run())


def test_kombu_sees_a_refused_consume_as_403(own_broker, admin):
    add_user(admin, 'kb', read='^kb\\.')
    with pika.BlockingConnection(pika.URLParameters(own_broker.url)) as guest:
        guest.channel().queue_declare('secret')
    with kombu.Connection(f'amqp://kb:kb@127.0.0.1:{own_broker.port}//') as conn:
        channel = conn.channel()
        with pytest.raises(Exception) as info:
            channel.basic_consume('secret', callback=lambda m: None)
            conn.drain_events(timeout=5)
        assert getattr(info.value, 'code', None) == 403 or \
            getattr(info.value, 'reply_code', None) == 403
        assert "access to queue 'secret' in vhost '/' refused for user 'kb'" in str(info.value)
