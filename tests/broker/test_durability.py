"""Durable definitions and persistent messages survive restarts and kill -9."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pika
import pika.exceptions
import pytest
from pamqp import commands as C
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from ..rawamqp import RawClient

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)


def connect(broker) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(broker.url))


def restart(broker, how: str):
    port = broker.port
    if how == 'kill':
        broker.kill()
    else:
        assert broker.stop() == 0
    return broker.start(port=port)


def segment_bytes(broker) -> int:
    total = 0
    for path in (Path(broker.data_dir) / 'messages').glob('*.seg'):
        try:
            total += path.stat().st_size
        except FileNotFoundError:  # the running broker deleted it after the listing
            pass
    return total


@pytest.mark.parametrize('how', ['graceful', 'kill'])
def test_durable_topology_survives_and_transient_does_not(fresh_broker, how):
    broker = fresh_broker.start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.exchange_declare('d.x', 'topic', durable=True,
                            arguments={'alternate-exchange': 'd.ae'})
        ch.exchange_declare('t.x', 'fanout', durable=False)
        ch.queue_declare('d.q', durable=True, arguments={'x-max-priority': 5})
        ch.queue_declare('t.q', durable=False)
        ch.queue_bind('d.q', 'd.x', 'a.*')
        ch.queue_bind('t.q', 'd.x', 'b.*')     # transient queue: binding not kept
    restart(broker, how)
    with connect(broker) as conn:
        ch = conn.channel()
        ch.exchange_declare('d.x', 'topic', durable=True, passive=True)
        # Same arguments as before: an inequivalent re-declare would be 406.
        ch.exchange_declare('d.x', 'topic', durable=True,
                            arguments={'alternate-exchange': 'd.ae'})
        ch.queue_declare('d.q', durable=True, arguments={'x-max-priority': 5})
        ch.basic_publish('d.x', 'a.1', b'routed by the saved binding')
        assert ch.queue_declare('d.q', passive=True).method.message_count == 1
        for kind, name in (('exchange', 't.x'), ('queue', 't.q')):
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
                if kind == 'exchange':
                    conn.channel().exchange_declare(name, 'fanout', passive=True)
                else:
                    conn.channel().queue_declare(name, passive=True)
            assert info.value.reply_code == 404


@pytest.mark.parametrize('how', ['graceful', 'kill'])
def test_persistent_messages_survive_in_order_with_redelivered_and_count(fresh_broker, how):
    broker = fresh_broker.start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare('q', durable=True)
        for i in range(100):
            ch.basic_publish('', 'q', b'%03d' % i, PERSISTENT)
        ch.basic_publish('', 'q', b'transient', TRANSIENT)
        # Deliver the first two: one requeued (count 1), one left unacked.
        first, _, _ = ch.basic_get('q')
        ch.basic_nack(first.delivery_tag, requeue=True)
        again, _, body = ch.basic_get('q')
        assert body == b'000'
        ch.basic_get('q')        # b'001', unacked when the broker goes
        # A confirmed publish is synced with everything logged before it.
        ch.basic_publish('', 'q', b'last', PERSISTENT)
    restart(broker, how)
    with connect(broker) as conn:
        ch = conn.channel()
        assert ch.queue_declare('q', durable=True, passive=True).method.message_count == 101
        got = []
        for _ in range(101):
            method, props, body = ch.basic_get('q', auto_ack=True)
            got.append((body, method.redelivered,
                        (props.headers or {}).get('x-delivery-count', 0)))
        assert [b for b, _, _ in got] == [b'%03d' % i for i in range(100)] + [b'last']
        assert got[0][1:] == (True, 2)     # delivered twice before, acked never
        assert got[1][1:] == (True, 1)
        # After a clean stop the rest were never delivered.  After kill -9 the
        # broker cannot know that (a delivery may not have reached the log):
        # everything comes back flagged as possibly delivered.
        rest_flag = how == 'kill'
        assert all(g[1:] == (rest_flag, 0) for g in got[2:])
        assert ch.basic_get('q') == (None, None, None)   # the transient one is gone


def test_acked_messages_never_come_back(fresh_broker):
    broker = fresh_broker.start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.queue_declare('q', durable=True)
        for i in range(20):
            ch.basic_publish('', 'q', b'%d' % i, PERSISTENT)
        ch.tx_select()
        for _ in range(10):
            method, _, _ = ch.basic_get('q')
            ch.basic_ack(method.delivery_tag)
        ch.tx_commit()     # commit-ok: the acks are on disk
    broker.kill()
    broker.start(port=broker.port)
    with connect(broker) as conn:
        ch = conn.channel()
        bodies = [ch.basic_get('q', auto_ack=True)[2] for _ in range(10)]
        assert bodies == [b'%d' % i for i in range(10, 20)]
        assert ch.basic_get('q') == (None, None, None)


def test_messages_of_a_deleted_queue_stay_deleted(fresh_broker):
    broker = fresh_broker.start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.queue_declare('q', durable=True)
        ch.basic_publish('', 'q', b'old', PERSISTENT)
        ch.basic_get('q')                        # held unacked while deleted
        conn.channel().queue_delete('q')
        ch2 = conn.channel()
        ch2.queue_declare('q', durable=True)     # a new queue of the same name
        ch2.confirm_delivery()
        ch2.basic_publish('', 'q', b'new', PERSISTENT)
    restart(broker, 'kill')
    with connect(broker) as conn:
        ch = conn.channel()
        assert ch.basic_get('q', auto_ack=True)[2] == b'new'
        assert ch.basic_get('q') == (None, None, None)


def test_transient_messages_never_touch_the_disk(fresh_broker):
    broker = fresh_broker.start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.queue_declare('q', durable=True)
        for _ in range(2000):
            ch.basic_publish('', 'q', b'x' * 100, TRANSIENT)
        ch.queue_declare('nd', durable=False)
        for _ in range(2000):
            ch.basic_publish('', 'nd', b'x' * 100, PERSISTENT)   # queue not durable
        ch.queue_declare('q', passive=True)
    assert segment_bytes(broker) == 0


def test_a_second_broker_on_the_same_data_dir_refuses_to_start(broker_factory):
    first = broker_factory().start()
    second = broker_factory()
    with pytest.raises(RuntimeError, match='in use by another broker'):
        second.start()
    assert second.proc.returncode == 1
    assert first.proc.poll() is None


def test_a_torn_tail_is_cut_and_the_rest_recovered(fresh_broker):
    broker = fresh_broker.start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare('q', durable=True)
        for i in range(50):
            ch.basic_publish('', 'q', b'%d' % i, PERSISTENT)
    broker.kill()
    segment = sorted((Path(broker.data_dir) / 'messages').glob('*.seg'))[-1]
    with open(segment, 'ab') as f:
        f.write(b'\x50\x00\x00\x00P' + b'half a record')     # a record cut short
    broker.start(port=broker.port)
    assert 'cut 18 bytes of torn or corrupt data' in broker.log()
    with connect(broker) as conn:
        ch = conn.channel()
        assert ch.queue_declare('q', passive=True).method.message_count == 50


def confirm_one(client: RawClient, queue: str, body: bytes) -> bool:
    """Publish one persistent message and wait for its confirm: True if acked."""
    client.publish(1, '', queue, body, C.Basic.Properties(delivery_mode=2))
    while True:
        _, frame = client.read_frame(timeout=10)
        if isinstance(frame, C.Basic.Ack):
            return True
        if isinstance(frame, C.Basic.Nack):
            return False


def test_disk_full_nacks_persistent_publishes_and_consumers_keep_going(broker_factory):
    broker = broker_factory(file_size_limit=256 * 1024).start()
    body = b'x' * 4096
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue='q', durable=True), C.Queue.DeclareOk)
        client.rpc(1, C.Queue.Declare(queue='t', durable=False), C.Queue.DeclareOk)
        client.rpc(1, C.Confirm.Select(), C.Confirm.SelectOk)
        outcomes = [confirm_one(client, 'q', body) for _ in range(100)]   # 400 KiB
        # Acked while the file had room, then a nack for each one after.
        first_nack = outcomes.index(False)
        assert first_nack > 10 and not any(outcomes[first_nack:])
        # Transient messages and consumers are still served.
        client.publish(1, '', 't', b'transient', C.Basic.Properties(delivery_mode=1))
        client.expect(C.Basic.Ack, 1)          # transient: confirmed without the disk
        for queue in ('t', 'q'):
            client.send_method(1, C.Basic.Get(queue=queue, no_ack=True))
            client.expect(C.Basic.GetOk, 1)
            client.expect(ContentHeader, 1)
            client.expect(ContentBody, 1)
    assert 'writing the message store failed' in broker.log()


def test_persistent_publishes_are_confirmed_again_once_writes_succeed(broker_factory):
    # The size limit is per file: the segment after the failed one has room,
    # as a disk has once space is freed.
    broker = broker_factory(file_size_limit=64 * 1024).start()
    body = b'x' * 4096
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue='q', durable=True), C.Queue.DeclareOk)
        client.rpc(1, C.Confirm.Select(), C.Confirm.SelectOk)
        outcomes = [confirm_one(client, 'q', body) for _ in range(40)]   # 160 KiB
        assert not all(outcomes)
        deadline = time.monotonic() + 30
        while 'message store writable again' not in broker.log():
            assert time.monotonic() < deadline, broker.log()
            time.sleep(0.1)
        assert confirm_one(client, 'q', body)
    # Every confirmed message is on disk: a crash keeps them all.
    broker = restart(broker, 'kill')
    with connect(broker) as conn:
        count = conn.channel().queue_declare('q', passive=True).method.message_count
    assert count >= outcomes.count(True) + 1


def test_disk_full_without_confirms_is_a_channel_error(broker_factory):
    broker = broker_factory(file_size_limit=64 * 1024).start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.queue_declare('q', durable=True)
        deadline = time.monotonic() + 20
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            # The failed write is noticed after the fact: the publishes that
            # follow it are refused with a channel error.
            while time.monotonic() < deadline:
                ch.basic_publish('', 'q', b'x' * 4096, PERSISTENT)
                ch.queue_declare('q', passive=True)
        assert info.value.reply_code == 406
        assert 'cannot store persistent message' in info.value.reply_text
        assert conn.channel().queue_declare('q', passive=True).method.message_count > 0


def test_disk_use_stays_bounded_in_a_long_publish_and_consume_run(broker_factory):
    broker = broker_factory(extra_env={'LEVERET_SEGMENT_SIZE': str(256 * 1024)}).start()
    body = b'p' * 1000
    with connect(broker) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare('q', durable=True)
        ch.basic_publish('', 'q', b'long-lived', PERSISTENT)   # pins the first segment
        ch.basic_get('q')                                      # held unacked throughout
        peak = 0
        for _ in range(40):        # ~20 MiB through a 256 KiB-segment log
            for _ in range(500):
                ch.basic_publish('', 'q', body, PERSISTENT)
            for _ in range(500):
                method, _, _ = ch.basic_get('q')
                ch.basic_ack(method.delivery_tag)
            peak = max(peak, segment_bytes(broker))
        ch.queue_declare('q', passive=True)
        time.sleep(0.2)
        final = segment_bytes(broker)
    assert peak < 4 * 1024 * 1024, peak
    assert final < 2 * 1024 * 1024, final
    # The long-lived message was moved forward, not lost.
    restart(broker, 'kill')
    with connect(broker) as conn:
        method, _, body = conn.channel().basic_get('q', auto_ack=True)
        assert body == b'long-lived' and method.redelivered


def test_sigterm_flushes_the_log(fresh_broker):
    broker = fresh_broker.start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.queue_declare('q', durable=True)
        for i in range(500):
            ch.basic_publish('', 'q', b'%d' % i, PERSISTENT)   # no confirms asked
        ch.queue_declare('q', passive=True)
    broker.send_signal(signal.SIGTERM)
    assert broker.proc.wait(15) == 0
    broker.start(port=broker.port)
    with connect(broker) as conn:
        assert conn.channel().queue_declare('q', passive=True).method.message_count == 500


def test_expiry_deadlines_survive_a_restart(fresh_broker):
    broker = fresh_broker.start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.queue_declare('q', durable=True)
        ch.basic_publish('', 'q', b'short', pika.BasicProperties(delivery_mode=2,
                                                                  expiration='1500'))
        ch.basic_publish('', 'q', b'long', pika.BasicProperties(delivery_mode=2,
                                                                 expiration='600000'))
        ch.queue_declare('q', passive=True)
    restart(broker, 'graceful')
    time.sleep(2.0)
    with connect(broker) as conn:
        ch = conn.channel()
        assert ch.basic_get('q', auto_ack=True)[2] == b'long'
        assert ch.basic_get('q') == (None, None, None)


def test_data_dir_lock_names_the_holder_pid(broker_factory):
    first = broker_factory().start()
    lock = Path(first.data_dir) / 'leveret.lock'
    assert lock.read_text().strip() == str(first.proc.pid)
    assert os.path.isdir(Path(first.data_dir) / 'messages')


def test_fsync_off_still_persists_across_a_clean_restart(broker_factory):
    broker = broker_factory(extra_env={'LEVERET_FSYNC': 'false'}).start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare('q', durable=True)
        for i in range(100):
            ch.basic_publish('', 'q', b'%d' % i, PERSISTENT)
    assert broker.stop() == 0
    broker.start(port=broker.port)
    with connect(broker) as conn:
        assert conn.channel().queue_declare('q', passive=True).method.message_count == 100


def test_confirms_flow_after_recovery_reclaimed_a_dead_segment(fresh_broker):
    # Recovery deletes the emptied segment before the loop runs: the first
    # confirms after the restart must still go out.
    broker = fresh_broker.start()
    with connect(broker) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare('q', durable=True)
        ch.basic_publish('', 'q', b'one', PERSISTENT)
        method, _, _ = ch.basic_get('q')
        ch.basic_ack(method.delivery_tag)
    restart(broker, 'graceful')
    with connect(broker) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish('', 'q', b'two', PERSISTENT)     # raises if never confirmed
        assert ch.basic_get('q', auto_ack=True)[2] == b'two'
