"""Message priorities (x-max-priority), consumer priorities (x-priority) and
single active consumer."""

from __future__ import annotations

from .fakes import Subscriber, make_vhost, publish


def test_higher_priority_messages_are_delivered_first_fifo_within_a_level():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-max-priority': 5})
    for body, priority in ((b'low-1', 1), (b'high-1', 5), (b'low-2', 1), (b'high-2', 5),
                           (b'none', 0)):
        publish(vhost, '', 'q', body, priority=priority)
    consumer = Subscriber(queue).subscribe()
    assert consumer.bodies() == [b'high-1', b'high-2', b'low-1', b'low-2', b'none']


def test_priorities_above_the_maximum_count_as_the_maximum():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-max-priority': 2})
    publish(vhost, '', 'q', b'two', priority=2)
    publish(vhost, '', 'q', b'nine', priority=9)
    assert Subscriber(queue).subscribe().bodies() == [b'two', b'nine']


def test_a_requeued_message_goes_back_into_its_priority_level():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-max-priority': 5})
    consumer = Subscriber(queue, prefetch=1).subscribe()
    publish(vhost, '', 'q', b'high', priority=5)
    publish(vhost, '', 'q', b'low', priority=1)
    consumer.prefetch = 0
    consumer.requeue()
    assert [m.body for m in queue.ready] == [b'high', b'low']


def test_higher_priority_consumers_are_served_while_they_have_credit():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    low = Subscriber(queue, name='low').subscribe()
    high = Subscriber(queue, prefetch=2, priority=10, name='high').subscribe()
    for body in (b'1', b'2', b'3', b'4'):
        publish(vhost, '', 'q', body)
    assert high.bodies() == [b'1', b'2']
    assert low.bodies() == [b'3', b'4']


def test_consumers_of_one_priority_take_turns():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    low = Subscriber(queue, name='low').subscribe()
    a = Subscriber(queue, prefetch=2, priority=5, name='a').subscribe()
    b = Subscriber(queue, prefetch=2, priority=5, name='b').subscribe()
    for body in (b'1', b'2', b'3', b'4', b'5'):
        publish(vhost, '', 'q', body)
    assert (a.bodies(), b.bodies(), low.bodies()) == ([b'1', b'3'], [b'2', b'4'], [b'5'])


def test_with_single_active_consumer_only_the_first_in_line_is_served():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-single-active-consumer': True})
    first = Subscriber(queue, prefetch=1, name='first').subscribe()
    second = Subscriber(queue, priority=100, name='second').subscribe()
    for body in (b'1', b'2', b'3'):
        publish(vhost, '', 'q', body)
    assert first.bodies() == [b'1'] and second.bodies() == []
    first.prefetch = 0          # the first consumer takes nothing more, gives '1' back
    first.requeue()
    assert second.bodies() == []
    queue.remove_consumer(first)    # the next in line takes over
    assert second.bodies() == [b'1', b'2', b'3']
