"""The definitions journal: one record per change, compacted, torn tails cut,
and the whole-file definitions.json of earlier versions read and moved to it."""

from __future__ import annotations

import hashlib
import json
import os

import pika
import pytest

from leveret.broker.definitions import encode_table
from leveret.broker.store.journal import COMPACT_MIN

from ..helpers import pika_connection


def old_hex_hash(password: str) -> str:
    salt = os.urandom(4)
    return (salt + hashlib.sha256(salt + password.encode()).digest()).hex()


def test_a_data_directory_of_format_1_is_read_and_moved_to_the_journal(broker_factory,
                                                                       tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'definitions.json').write_text(json.dumps({
        'format': 1,
        'vhosts': ['/', 'old'],
        'users': [
            {'name': 'guest', 'password_hash': old_hex_hash('guest'), 'tags': ['administrator'],
             'vhosts': ['/'], 'loopback_only': True},
            {'name': 'olduser', 'password_hash': old_hex_hash('pw'), 'tags': [],
             'vhosts': ['old'], 'loopback_only': False}],
        'exchanges': [{'vhost': 'old', 'name': 'ex.old', 'type': 'direct',
                       'auto_delete': False, 'internal': False, 'arguments': encode_table({})}],
        'queues': [{'vhost': 'old', 'name': 'q.old', 'auto_delete': False,
                    'arguments': encode_table({'x-max-length': 5}),
                    'incarnation': 'abcdef0123456789'}],
        'bindings': [{'vhost': 'old', 'source': 'ex.old', 'destination': 'q.old',
                      'destination_type': 'queue', 'routing_key': 'k',
                      'arguments': encode_table({})}],
    }))
    broker = broker_factory().start()
    for _ in range(2):
        old = f'amqp://olduser:pw@127.0.0.1:{broker.port}/old'
        with pika_connection(old) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_publish('ex.old', 'k', b'routed', mandatory=True)
            assert ch.queue_declare('q.old', passive=True).method.message_count >= 1
            ch.queue_declare('q.old', durable=True, arguments={'x-max-length': 5})
        assert not (data / 'definitions.json').exists()
        assert (data / 'definitions.log').exists()
        assert broker.stop() == 0
        broker.start(port=broker.port)
    assert 'definitions moved from definitions.json to the journal' in broker.log()


def test_declarations_append_to_the_journal_and_it_is_compacted(broker_factory, tmp_path):
    broker = broker_factory().start()
    journal = tmp_path / 'data' / 'definitions.log'
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare('j.kept', durable=True)
        size = journal.stat().st_size
        ch.queue_declare('j.one', durable=True)
        grown = journal.stat().st_size - size
        assert 0 < grown < 300          # one record, not the whole file again
        # Declare and delete until the journal holds far more dead records
        # than live ones: it is then rewritten whole.
        for i in range(COMPACT_MIN // 2 + 10):
            ch.queue_declare(f'j.tmp{i}', durable=True)
            ch.queue_delete(f'j.tmp{i}')
        assert journal.stat().st_size < (COMPACT_MIN // 2) * grown
    assert broker.stop() == 0
    broker.start(port=broker.port)
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare('j.kept', passive=True)
        ch.queue_declare('j.one', passive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            ch.queue_declare('j.tmp3', passive=True)


def test_a_torn_last_record_is_cut_off(broker_factory, tmp_path):
    broker = broker_factory().start()
    journal = tmp_path / 'data' / 'definitions.log'
    with pika_connection(broker.url) as conn:
        conn.channel().queue_declare('t.kept', durable=True)
    broker.kill()
    with open(journal, 'ab') as f:
        f.write(b'\x40\x00\x00\x00S\x05\x00t.cut{"na')      # a record cut short
    size = journal.stat().st_size
    broker.start(port=broker.port)
    with pika_connection(broker.url) as conn:
        conn.channel().queue_declare('t.kept', passive=True)
    assert journal.stat().st_size < size
    assert 'definitions journal: cut' in broker.log()
