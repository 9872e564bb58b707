"""Back-pressure on publishers: the memory alarm and a queue's flow control."""

from __future__ import annotations

from leveret.broker.model.queue import FLOW_HIGH, FLOW_LOW, FLOW_STALL

from .fakes import Publisher, Subscriber, make_vhost, publish


def test_the_memory_alarm_blocks_publishers_until_memory_is_freed():
    vhost, _ = make_vhost(high_watermark=1000)
    memory = vhost.memory
    queue = vhost.declare_queue('q', None)
    publisher = Publisher()
    for _ in range(11):
        publish(vhost, '', 'q', b'x' * 100, publisher)
    assert memory.alarm
    # The channel blocks whoever publishes during the alarm.
    memory.block(publisher)
    memory.block(publisher)          # once is enough
    assert publisher.notices == ['blocked: low on memory']
    assert publisher.throttled_by == {memory}
    consumer = Subscriber(queue).subscribe()
    consumer.ack(2)                  # 900 bytes held: above the low watermark (800)
    assert memory.alarm and publisher.throttled_by == {memory}
    consumer.ack(2)                  # 700 bytes: cleared
    assert not memory.alarm
    assert publisher.notices == ['blocked: low on memory', 'unblocked']
    assert publisher.throttled_by == set()


def test_a_growing_backlog_with_busy_consumers_throttles_its_publishers():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    consumer = Subscriber(queue, prefetch=1).subscribe()
    publisher = Publisher()
    for _ in range(FLOW_HIGH + 2):     # one is delivered: FLOW_HIGH + 1 wait
        publish(vhost, '', 'q', b'm', publisher)
    assert publisher.throttled_by == {queue}
    # The consumer works the backlog down; below FLOW_LOW the publisher is let go.
    while queue.message_count >= FLOW_LOW:
        consumer.ack()
    assert publisher.throttled_by == set()


def test_consumers_that_take_nothing_never_hold_publishers_back():
    vhost, clock = make_vhost()
    queue = vhost.declare_queue('q', None)
    Subscriber(queue, prefetch=1).subscribe()     # takes one message, never acks
    publisher = Publisher()
    for _ in range(FLOW_HIGH + 2):     # one is delivered: FLOW_HIGH + 1 wait
        publish(vhost, '', 'q', b'm', publisher)
    assert publisher.throttled_by == {queue}
    clock.advance(FLOW_STALL)
    assert publisher.throttled_by == set()
    publish(vhost, '', 'q', b'm', publisher)      # stalled: no throttling again
    assert publisher.throttled_by == set()


def test_a_publisher_that_goes_away_is_forgotten():
    vhost, _ = make_vhost(high_watermark=10)
    memory = vhost.memory
    vhost.declare_queue('q', None)
    publisher = Publisher()
    publish(vhost, '', 'q', b'x' * 20, publisher)
    memory.block(publisher)
    memory.forget_publisher(publisher)
    assert memory.throttled == set()
