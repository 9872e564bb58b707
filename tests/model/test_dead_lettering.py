"""Dead-lettering: rejected, over-limit and over-delivered messages go to the DLX."""

from __future__ import annotations

import inspect
import sys

from .fakes import Subscriber, headers_of, make_vhost, publish


def with_dlx(arguments, routing_key=''):
    vhost, clock = make_vhost()
    vhost.declare_exchange('dlx', 'direct')
    dead = vhost.declare_queue('dead', None)
    vhost.bind(vhost.exchange('dlx'), dead, routing_key)
    queue = vhost.declare_queue('q', None, arguments={'x-dead-letter-exchange': 'dlx',
                                                      **arguments})
    return vhost, queue, dead


def test_a_rejected_message_goes_to_the_dead_letter_exchange_with_x_death():
    vhost, queue, dead = with_dlx({'x-dead-letter-routing-key': ''})
    consumer = Subscriber(queue).subscribe()
    publish(vhost, '', 'q', b'no', headers={'tenant': 'acme'})
    consumer.reject()
    [m] = list(dead.ready)
    headers = headers_of(m)
    assert headers['tenant'] == 'acme'
    [death] = headers['x-death']
    assert death['reason'] == 'rejected' and death['queue'] == 'q'
    assert death['routing-keys'] == ['q']
    assert headers['x-first-death-reason'] == 'rejected'
    assert (m.exchange, m.routing_key) == ('dlx', '')


def test_without_a_dead_letter_routing_key_the_original_key_is_used():
    vhost, queue, dead = with_dlx({}, routing_key='q')
    consumer = Subscriber(queue).subscribe()
    publish(vhost, '', 'q', b'no')
    consumer.reject()
    assert [m.routing_key for m in dead.ready] == ['q']


def test_a_message_requeued_past_the_delivery_limit_is_dead_lettered():
    vhost, queue, dead = with_dlx({'x-delivery-limit': 1, 'x-dead-letter-routing-key': ''})
    consumer = Subscriber(queue).subscribe()
    publish(vhost, '', 'q', b'poison')
    consumer.requeue()           # delivery count 1: still allowed
    assert consumer.bodies() == [b'poison', b'poison']
    consumer.requeue()           # 2 > 1: dead-lettered
    assert queue.message_count == 0 and not consumer.unacked
    [death] = headers_of(next(iter(dead.ready)))['x-death']
    assert death['reason'] == 'delivery_limit'


def test_a_dead_letter_cycle_without_rejection_is_dropped():
    vhost, clock = make_vhost()
    for name, other in (('a', 'b'), ('b', 'a')):
        vhost.declare_queue(name, None, arguments={'x-message-ttl': 10,
                                                   'x-dead-letter-exchange': '',
                                                   'x-dead-letter-routing-key': other})
    publish(vhost, '', 'a', b'round')
    clock.advance(0.05)      # a -> b
    assert vhost.queues['b'].message_count == 1
    clock.advance(0.05)      # b -> a: a is in x-death already, no rejection since
    assert vhost.queues['a'].message_count == 0
    assert vhost.queues['b'].message_count == 0


def test_a_missing_dead_letter_exchange_drops_the_message():
    vhost, clock = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-dead-letter-exchange': 'gone'})
    consumer = Subscriber(queue).subscribe()
    publish(vhost, '', 'q', b'x')
    consumer.reject()
    assert vhost.memory.held == 0


def test_full_queues_dead_lettering_into_each_other_do_not_recurse():
    # Each dead-lettered message pushes the head out of every other full
    # queue, and those out of the others: as recursion, that ran out of
    # stack (the fuzz test's RecursionError); here within a tight stack.
    vhost, clock = make_vhost()
    vhost.declare_exchange('spread', 'fanout')
    names = [f'q{i}' for i in range(4)]
    for name in names:
        queue = vhost.declare_queue(name, None, arguments={
            'x-max-length': 5, 'x-dead-letter-exchange': 'spread'})
        vhost.bind(vhost.exchange('spread'), queue, '')
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 60)
    try:
        for i in range(10):
            for name in names:
                publish(vhost, '', name, b'%d' % i)
        clock.advance(0)        # a long cascade goes on over loop turns
    finally:
        sys.setrecursionlimit(limit)
    assert all(vhost.queues[name].message_count == 5 for name in names)
    assert vhost.memory.held == sum(m.cost for name in names for m in vhost.queues[name].ready)
