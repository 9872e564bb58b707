"""Back-pressure on publishers: the memory alarm and a queue's flow control."""

from __future__ import annotations

from leveret.broker.model.queue import FLOW_HIGH, FLOW_LOW, FLOW_STALL

from .fakes import Publisher, Subscriber, cost, make_vhost, publish


def test_the_memory_alarm_blocks_publishers_until_memory_is_freed():
    one = cost(b'x' * 100)
    vhost, _ = make_vhost(high_watermark=10 * one)
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
    consumer.ack(2)                  # 9 messages held: above the low watermark (8)
    assert memory.alarm and publisher.throttled_by == {memory}
    consumer.ack(2)                  # 7 messages: cleared
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


def test_resident_memory_past_the_watermark_raises_the_alarm_with_nothing_counted():
    vhost, _ = make_vhost(high_watermark=100 << 20)
    memory = vhost.memory
    memory.set_base(40 << 20)
    memory.observe_resident(150 << 20)          # 110 MiB grown: within the slack
    assert not memory.alarm
    memory.observe_resident(170 << 20)          # 130 MiB grown
    assert memory.alarm
    publisher = Publisher()
    memory.block(publisher)
    memory.observe_resident(60 << 20)           # the connections went away
    assert not memory.alarm
    assert publisher.notices == ['blocked: low on memory', 'unblocked']


def test_memory_that_does_not_go_back_does_not_keep_the_alarm_on():
    vhost, _ = make_vhost(high_watermark=100 << 20)
    memory = vhost.memory
    memory.set_base(40 << 20)
    memory.observe_resident(200 << 20)
    assert memory.alarm
    memory.observe_resident(200 << 20)          # nothing counted, pages kept: cleared
    assert not memory.alarm
    memory.observe_resident(205 << 20)          # fragmentation reused: no new alarm
    assert not memory.alarm
    memory.observe_resident(240 << 20)          # the process grows again
    assert memory.alarm


def test_a_rewritten_header_is_counted_and_released():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    consumer = Subscriber(queue).subscribe()
    publish(vhost, '', 'q', b'body')
    consumer.requeue()                           # x-delivery-count: a longer header
    [message] = consumer.delivered[1:]
    assert vhost.memory.held == message.cost > cost(b'body')
    consumer.ack()
    assert vhost.memory.held == 0
