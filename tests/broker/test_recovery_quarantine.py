"""Recovery never stops at one record: a record it cannot read goes to the
quarantine file beside the log with one log line, everything else comes
back, and the broker starts (after a clean stop and after kill -9 alike).

The bad records are written as an older version (or a bad disk) could have
left them: a headers table longer than its content header, an exchange name that is
not UTF-8, a segment file that cannot be read at all.
"""

from __future__ import annotations

import os
import signal
import struct

import pika
import pytest

from leveret.broker.store.journal import Journal
from leveret.broker.store.records import publish_record, queue_key, read_records

QUEUE = 'q'


def fill(broker, stop_signal: int) -> None:
    """Two persistent messages in a durable queue, then stop the broker."""
    broker.start()
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        ch.confirm_delivery()
        for body in (b'one', b'two'):
            ch.basic_publish('', QUEUE, body, pika.BasicProperties(delivery_mode=2))
    assert broker.stop(stop_signal) in (0, -signal.SIGKILL)


def append_record(data_dir, exchange_and_key: bytes, header: bytes, body: bytes) -> bytes:
    """A publish record for QUEUE at the end of the newest segment."""
    items = Journal(data_dir / 'definitions.log').load()
    incarnation = next(value['incarnation'] for key, value in items.items()
                       if key.startswith('queues') and value['name'] == QUEUE)
    segments = sorted((data_dir / 'messages').glob('*.seg'))
    newest = segments[-1]
    store_id = (int(newest.stem) << 32) | 0xFFFF
    record = publish_record(store_id, 1000, 0, 0, queue_key('/', QUEUE, incarnation),
                            exchange_and_key, header, body)
    with open(newest, 'ab') as f:
        f.write(record)
    return record


def bad_headers_header(size: int) -> bytes:
    """A content header whose headers table claims more bytes than it has."""
    table = b'\x01kt\x01'
    return (struct.pack('>HHQH', 60, 0, size, 0x3000) + struct.pack('>I', 500) + table
            + b'\x02')


GOOD_HEADER = struct.pack('>HHQH', 60, 0, 3, 0x1000) + b'\x02'


def depth(url: str) -> int:
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        return conn.channel().queue_declare(QUEUE, durable=True).method.message_count


@pytest.mark.parametrize('stop_signal', [signal.SIGTERM, signal.SIGKILL],
                         ids=['clean-stop', 'kill-9'])
@pytest.mark.parametrize('bad', ['headers-refused', 'exchange-not-utf8'])
def test_an_unreadable_record_is_quarantined_and_the_rest_recovered(fresh_broker, stop_signal,
                                                                    bad):
    fill(fresh_broker, stop_signal)
    if bad == 'headers-refused':
        record = append_record(fresh_broker.data_dir, b'\x00\x01q', bad_headers_header(3), b'bad')
        reason = 'runs past the end of the content header'
    else:
        record = append_record(fresh_broker.data_dir, b'\x02\xff\xfe\x01q', GOOD_HEADER, b'bad')
        reason = 'unreadable record'
    fresh_broker.start()
    assert depth(fresh_broker.url) == 2
    log = fresh_broker.log()
    moved = [line for line in log.splitlines() if 'moved to' in line]
    assert len(moved) == 1, log
    assert reason in moved[0] and '.seg:' in moved[0]
    if bad == 'headers-refused':
        assert "queue 'q' in vhost '/'" in moved[0]
    quarantine = (fresh_broker.data_dir / 'messages' / 'quarantine').read_bytes()
    assert quarantine == record
    assert len(read_records(quarantine)[0]) == 1
    assert 'Traceback' not in log
    # Acked in the log: the next start neither recovers nor moves it again.
    assert fresh_broker.stop() == 0
    fresh_broker.start()
    assert depth(fresh_broker.url) == 2
    assert len([line for line in fresh_broker.log().splitlines() if 'moved to' in line]) == 1
    assert (fresh_broker.data_dir / 'messages' / 'quarantine').read_bytes() == record


def test_a_segment_that_cannot_be_read_is_set_aside(fresh_broker):
    fill(fresh_broker, signal.SIGTERM)
    # A directory where a segment should be: reading it fails.
    broken = fresh_broker.data_dir / 'messages' / '0000009999.seg'
    os.mkdir(broken)
    fresh_broker.start()
    assert depth(fresh_broker.url) == 2
    assert 'cannot read 0000009999.seg' in fresh_broker.log()
    assert (fresh_broker.data_dir / 'messages' / '0000009999.seg.unreadable').is_dir()
    assert 'Traceback' not in fresh_broker.log()
