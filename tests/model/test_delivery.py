"""A queue delivers in order, in turns, within credit, and takes messages back."""

from __future__ import annotations

from .fakes import Subscriber, cost, headers_of, make_vhost, publish


def declare(arguments=None):
    vhost, clock = make_vhost()
    queue = vhost.declare_queue('q', None, arguments=arguments)
    return vhost, clock, queue


def test_messages_wait_in_order_until_a_consumer_comes():
    vhost, _, queue = declare()
    for body in (b'1', b'2', b'3'):
        publish(vhost, '', 'q', body)
    assert queue.message_count == 3
    consumer = Subscriber(queue).subscribe()
    assert consumer.bodies() == [b'1', b'2', b'3']
    assert queue.message_count == 0


def test_consumers_take_turns():
    vhost, _, queue = declare()
    a, b = Subscriber(queue, name='a').subscribe(), Subscriber(queue, name='b').subscribe()
    for body in (b'1', b'2', b'3', b'4'):
        publish(vhost, '', 'q', body)
    assert a.bodies() == [b'1', b'3']
    assert b.bodies() == [b'2', b'4']


def test_a_consumer_without_credit_gets_nothing_until_it_acks():
    vhost, _, queue = declare()
    consumer = Subscriber(queue, prefetch=2).subscribe()
    for body in (b'1', b'2', b'3'):
        publish(vhost, '', 'q', body)
    assert consumer.bodies() == [b'1', b'2']
    assert queue.message_count == 1
    consumer.ack(1)
    assert consumer.bodies() == [b'1', b'2', b'3']


def test_a_requeued_message_goes_back_to_its_place_flagged_redelivered():
    vhost, _, queue = declare()
    consumer = Subscriber(queue, prefetch=1).subscribe()
    for body in (b'1', b'2', b'3'):
        publish(vhost, '', 'q', body)
    consumer.prefetch = 0       # take nothing more for now
    consumer.requeue()
    assert [m.body for m in queue.ready] == [b'1', b'2', b'3']
    first = queue.ready.peek()
    assert first is not None and first.redelivered
    assert headers_of(first)['x-delivery-count'] == 1


def test_a_rejected_message_without_dead_letter_exchange_is_dropped():
    vhost, _, queue = declare()
    consumer = Subscriber(queue).subscribe()
    publish(vhost, '', 'q', b'1')
    consumer.reject()
    assert queue.message_count == 0
    assert vhost.memory.held == 0


def test_memory_held_counts_messages_until_they_are_acked():
    vhost, _, queue = declare()
    publish(vhost, '', 'q', b'x' * 100)
    assert vhost.memory.held == cost(b'x' * 100) > 100     # body, header, objects
    consumer = Subscriber(queue).subscribe()
    assert vhost.memory.held == cost(b'x' * 100)      # delivered, not acked yet
    consumer.ack()
    assert vhost.memory.held == 0


def test_purge_drops_ready_messages_only():
    vhost, _, queue = declare()
    consumer = Subscriber(queue, prefetch=1).subscribe()
    for body in (b'1', b'2', b'3'):
        publish(vhost, '', 'q', body)
    assert queue.purge() == 2
    assert consumer.bodies() == [b'1']
    assert vhost.memory.held == cost(b'1')
