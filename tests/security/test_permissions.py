"""RabbitMQ's permission table, row by row, allowed and refused, with pika.

The user ``limited`` has, on ``/``, one pattern per kind that reads a name's
prefix: a resource called ``cr.x`` may be configured and read but not
written, ``w.x`` only written, ``-.x`` nothing.  ``guest`` (every permission)
makes what the rows need beforehand.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from ..conftest import BrokerProcess

CONFIG = r'''
[[users]]
name = "limited"
password = "limited"
[users.permissions."/"]
configure = "^[a-z]*c[a-z]*\\."
write = "^[a-z]*w[a-z]*\\."
read = "^[a-z]*r[a-z]*\\."

[[users]]
name = "nothing"
password = "nothing"
[users.permissions."/"]
configure = ""
write = ""
read = ""
'''


@pytest.fixture(scope='module')
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    base = tmp_path_factory.mktemp('permissions')
    config = base / 'leveret.toml'
    config.write_text(CONFIG)
    proc = BrokerProcess(base / 'data', base / 'broker.log',
                         args=['--config', str(config)]).start()
    yield proc
    assert proc.stop() == 0, proc.log()


def connect(broker: BrokerProcess, user: str = 'limited') -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(
        f'amqp://{user}:{user}@127.0.0.1:{broker.port}/%2F'))


@pytest.fixture(scope='module')
def setup(broker: BrokerProcess) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """guest's channel, to make what a row needs."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    yield conn.channel()
    conn.close()


@pytest.fixture
def limited(broker: BrokerProcess) -> Iterator[pika.BlockingConnection]:
    conn = connect(broker)
    yield conn
    if conn.is_open:
        conn.close()


def refused(conn: pika.BlockingConnection, action, text: str) -> None:
    """``action(channel)`` closes that channel with 403 and ``text``; the
    connection goes on (another channel works)."""
    channel = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        action(channel)
    assert info.value.reply_code == 403
    assert info.value.reply_text == f'ACCESS_REFUSED - {text}'
    assert conn.is_open
    conn.channel().close()


def denied(kind: str, name: str, user: str = 'limited') -> str:
    return f"access to {kind} '{name}' in vhost '/' refused for user '{user}'"


# --- exchange.declare / exchange.delete ---------------------------------------------


def test_exchange_declare_needs_configure_on_the_exchange(limited):
    ch = limited.channel()
    ch.exchange_declare('c.declared', 'direct')
    ch.exchange_declare('c.declared', 'direct')           # again: still configure
    refused(limited, lambda c: c.exchange_declare('rw.declared', 'direct'),
            denied('exchange', 'rw.declared'))


def test_a_passive_exchange_declare_needs_nothing(limited, setup):
    setup.exchange_declare('none.passive', 'fanout')
    limited.channel().exchange_declare('none.passive', passive=True)


def test_an_alternate_exchange_needs_read_on_the_exchange_and_write_on_the_ae(limited, setup):
    setup.exchange_declare('w.ae', 'fanout')
    setup.exchange_declare('r.ae', 'fanout')
    limited.channel().exchange_declare('cr.with-ae', 'direct',
                                       arguments={'alternate-exchange': 'w.ae'})
    refused(limited, lambda c: c.exchange_declare('cr.bad-ae', 'direct',
                                                  arguments={'alternate-exchange': 'r.ae'}),
            denied('exchange', 'r.ae'))
    refused(limited, lambda c: c.exchange_declare('c.unread', 'direct',
                                                  arguments={'alternate-exchange': 'w.ae'}),
            denied('exchange', 'c.unread'))


def test_exchange_delete_needs_configure(limited, setup):
    setup.exchange_declare('c.to-delete', 'direct')
    setup.exchange_declare('rw.to-delete', 'direct')
    limited.channel().exchange_delete('c.to-delete')
    refused(limited, lambda c: c.exchange_delete('rw.to-delete'),
            denied('exchange', 'rw.to-delete'))
    setup.exchange_declare('rw.to-delete', 'direct', passive=True)     # still there


# --- queue.declare / queue.delete -----------------------------------------------------


def test_queue_declare_needs_configure_on_the_queue(limited):
    ch = limited.channel()
    ch.queue_declare('c.queue')
    refused(limited, lambda c: c.queue_declare('rw.queue'), denied('queue', 'rw.queue'))


def test_a_server_named_queue_is_checked_under_its_generated_name(limited):
    channel = limited.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        channel.queue_declare('')
    assert info.value.reply_code == 403
    assert "access to queue 'amq.gen-" in info.value.reply_text


def test_a_passive_queue_declare_needs_nothing(limited, setup):
    setup.queue_declare('none.passive-q')
    limited.channel().queue_declare('none.passive-q', passive=True)


def test_a_dead_letter_exchange_needs_read_on_the_queue_and_write_on_the_dlx(limited, setup):
    setup.exchange_declare('w.dlx', 'fanout')
    setup.exchange_declare('r.dlx', 'fanout')
    limited.channel().queue_declare('cr.dlq', arguments={'x-dead-letter-exchange': 'w.dlx'})
    refused(limited, lambda c: c.queue_declare(
        'cr.dlq-bad', arguments={'x-dead-letter-exchange': 'r.dlx'}),
        denied('exchange', 'r.dlx'))
    refused(limited, lambda c: c.queue_declare(
        'c.dlq-unread', arguments={'x-dead-letter-exchange': 'w.dlx'}),
        denied('queue', 'c.dlq-unread'))
    # The default exchange as the DLX is checked as amq.default.
    refused(limited, lambda c: c.queue_declare(
        'cr.dlq-default', arguments={'x-dead-letter-exchange': ''}),
        denied('exchange', 'amq.default'))


def test_queue_delete_needs_configure(limited, setup):
    setup.queue_declare('c.q-delete')
    setup.queue_declare('rw.q-delete')
    limited.channel().queue_delete('c.q-delete')
    refused(limited, lambda c: c.queue_delete('rw.q-delete'), denied('queue', 'rw.q-delete'))
    setup.queue_declare('rw.q-delete', passive=True)


# --- bindings -------------------------------------------------------------------------


def test_queue_bind_and_unbind_need_write_on_the_queue_and_read_on_the_exchange(
        limited, setup):
    setup.exchange_declare('r.src', 'direct')
    setup.exchange_declare('w.src', 'direct')
    for queue in ('w.bound', 'r.bound'):
        setup.queue_declare(queue)
    ch = limited.channel()
    ch.queue_bind('w.bound', 'r.src', 'k')
    ch.queue_unbind('w.bound', 'r.src', 'k')
    for action in ('queue_bind', 'queue_unbind'):
        refused(limited, lambda c, a=action: getattr(c, a)('r.bound', 'r.src', 'k'),
                denied('queue', 'r.bound'))
        refused(limited, lambda c, a=action: getattr(c, a)('w.bound', 'w.src', 'k'),
                denied('exchange', 'w.src'))


def test_exchange_bind_and_unbind_need_write_on_the_destination_and_read_on_the_source(
        limited, setup):
    for name in ('w.dest', 'r.dest', 'r.source', 'w.source'):
        setup.exchange_declare(name, 'fanout')
    ch = limited.channel()
    ch.exchange_bind('w.dest', 'r.source')
    ch.exchange_unbind('w.dest', 'r.source')
    for action in ('exchange_bind', 'exchange_unbind'):
        refused(limited, lambda c, a=action: getattr(c, a)('r.dest', 'r.source'),
                denied('exchange', 'r.dest'))
        refused(limited, lambda c, a=action: getattr(c, a)('w.dest', 'w.source'),
                denied('exchange', 'w.source'))


# --- messages -------------------------------------------------------------------------


def test_basic_publish_needs_write_on_the_exchange(limited, setup):
    setup.exchange_declare('w.pub', 'fanout')
    setup.exchange_declare('r.pub', 'fanout')
    setup.queue_declare('r.pub-q')
    setup.queue_bind('r.pub-q', 'w.pub')
    ch = limited.channel()
    ch.confirm_delivery()
    ch.basic_publish('w.pub', '', b'allowed')
    assert setup.basic_get('r.pub-q', auto_ack=True)[2] == b'allowed'

    def publish(exchange: str):
        def action(c):
            c.confirm_delivery()
            c.basic_publish(exchange, 'r.pub-q', b'refused')
        return action

    refused(limited, publish('r.pub'), denied('exchange', 'r.pub'))
    # The default exchange is checked as amq.default.
    refused(limited, publish(''), denied('exchange', 'amq.default'))
    # No write permission: 403 before 404, as RabbitMQ.
    refused(limited, publish('r.missing'), denied('exchange', 'r.missing'))
    assert setup.queue_declare('r.pub-q', passive=True).method.message_count == 0


def test_publishing_again_to_an_allowed_exchange_is_allowed(limited, setup):
    """The cached decision: many publishes, one check."""
    setup.exchange_declare('w.again', 'fanout')
    setup.queue_declare('r.again-q')
    setup.queue_bind('r.again-q', 'w.again')
    ch = limited.channel()
    ch.confirm_delivery()
    for i in range(50):
        ch.basic_publish('w.again', '', str(i).encode())
    assert setup.queue_declare('r.again-q', passive=True).method.message_count == 50


def test_basic_get_basic_consume_and_purge_need_read_on_the_queue(limited, setup):
    setup.queue_declare('r.readable')
    setup.queue_declare('cw.unreadable')
    setup.basic_publish('', 'r.readable', b'one')
    ch = limited.channel()
    assert ch.basic_get('r.readable', auto_ack=True)[2] == b'one'
    ch.basic_consume('r.readable', lambda *args: None)
    ch.queue_purge('r.readable')
    refused(limited, lambda c: c.basic_get('cw.unreadable'), denied('queue', 'cw.unreadable'))
    refused(limited, lambda c: c.basic_consume('cw.unreadable', lambda *args: None),
            denied('queue', 'cw.unreadable'))
    refused(limited, lambda c: c.queue_purge('cw.unreadable'), denied('queue', 'cw.unreadable'))


# --- who may open what ---------------------------------------------------------------


def test_empty_patterns_match_nothing(broker, setup):
    setup.queue_declare('crw.anything')
    with connect(broker, 'nothing') as conn:
        conn.channel().queue_declare('crw.anything', passive=True)   # no check
        refused(conn, lambda c: c.queue_declare('crw.anything'),
                denied('queue', 'crw.anything', 'nothing'))
        refused(conn, lambda c: c.basic_get('crw.anything'),
                denied('queue', 'crw.anything', 'nothing'))


def test_a_user_with_no_entry_for_a_vhost_cannot_open_it(broker, tmp_path):
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(pika.URLParameters(
            f'amqp://limited:limited@127.0.0.1:{broker.port}/other'))


def test_refusals_are_logged(broker):
    log = broker.log()
    assert ("operation Basic.Publish caused a channel exception: ACCESS_REFUSED - access to "
            "exchange 'r.pub' in vhost '/' refused for user 'limited'") in log
    assert "(vhost '/', user 'limited'), channel" in log


def test_the_settings_give_full_permissions_to_a_vhost_listed_without_patterns(tmp_path: Path):
    from leveret.broker.config import load_settings
    config = tmp_path / 'leveret.toml'
    config.write_text('[[users]]\nname = "app"\npassword = "x"\nvhosts = ["a"]\n'
                      '[users.permissions.b]\nread = "^b"\n')
    [user] = load_settings(config).users
    entries = user.permission_entries()
    assert {v: (p.configure, p.write, p.read) for v, p in entries.items()} == {
        'a': ('.*', '.*', '.*'), 'b': ('.*', '.*', '^b')}
    config.write_text('[[users]]\nname = "app"\npassword = "x"\n'
                      '[users.permissions.b]\nread = "("\n')
    with pytest.raises(ValueError, match='invalid regular expression'):
        load_settings(config)


def test_the_readmes_users_example_is_valid_settings(tmp_path: Path):
    from leveret.broker.auth import check_password
    from leveret.broker.config import load_settings
    readme = (Path(__file__).resolve().parents[2] / 'README.md').read_text()
    block = readme.split('```toml\n')[1].split('```')[0]
    assert 'password_hash' in block
    config = tmp_path / 'leveret.toml'
    config.write_text(block)
    app, reporter = load_settings(config).users
    assert set(app.permission_entries()) == {'/', 'reports'}
    [(vhost, entry)] = reporter.permission_entries().items()
    assert vhost == 'reports' and entry.configure == '^reporter\\.' and entry.read == '.*'
    assert check_password('r3port', reporter.password_hash)
