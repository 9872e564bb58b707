"""Message TTL and queue expiry (x-message-ttl, expiration, x-expires), on a manual clock."""

from __future__ import annotations

from .fakes import Subscriber, headers_of, make_vhost, publish


def test_a_message_past_the_queue_ttl_is_dropped_without_waiting_for_a_consumer():
    vhost, clock = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-message-ttl': 1000})
    publish(vhost, '', 'q', b'old')
    clock.advance(0.5)
    publish(vhost, '', 'q', b'new')
    clock.advance(0.6)
    assert [m.body for m in queue.ready] == [b'new']
    clock.advance(0.5)
    assert queue.message_count == 0
    assert vhost.memory.held == 0


def test_the_shorter_of_message_and_queue_ttl_applies():
    vhost, clock = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-message-ttl': 10_000})
    publish(vhost, '', 'q', b'short', expiration='100')
    publish(vhost, '', 'q', b'long')
    clock.advance(0.2)
    assert [m.body for m in queue.ready] == [b'long']


def test_an_expired_message_is_not_delivered_to_a_late_consumer():
    vhost, clock = make_vhost()
    queue = vhost.declare_queue('q', None)
    publish(vhost, '', 'q', b'soon', expiration='100')
    clock.time += 1.0       # time passes, the expiry timer has not run yet
    consumer = Subscriber(queue).subscribe()
    assert consumer.delivered == []


def test_ttl_zero_reaches_only_a_consumer_that_can_take_it_now():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    publish(vhost, '', 'q', b'nobody', expiration='0')
    assert queue.message_count == 0
    consumer = Subscriber(queue).subscribe()
    publish(vhost, '', 'q', b'taken', expiration='0')
    assert consumer.bodies() == [b'taken']


def test_expired_messages_are_dead_lettered_with_reason_expired():
    vhost, clock = make_vhost()
    vhost.declare_exchange('dlx', 'fanout')
    dead = vhost.declare_queue('dead', None)
    vhost.bind(vhost.exchange('dlx'), dead, '')
    vhost.declare_queue('q', None, arguments={'x-message-ttl': 100,
                                              'x-dead-letter-exchange': 'dlx'})
    publish(vhost, '', 'q', b'late')
    clock.advance(0.2)
    [m] = list(dead.ready)
    assert m.body == b'late'
    [death] = headers_of(m)['x-death']
    assert (death['reason'], death['queue'], death['count']) == ('expired', 'q', 1)


def test_an_unused_queue_expires_and_a_consumer_keeps_it_alive():
    vhost, clock = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-expires': 1000})
    consumer = Subscriber(queue).subscribe()
    clock.advance(5)
    assert 'q' in vhost.queues
    queue.remove_consumer(consumer)
    clock.advance(0.9)
    assert 'q' in vhost.queues
    clock.advance(0.2)
    assert 'q' not in vhost.queues and queue.deleted


def test_a_redeclare_restarts_the_expiry_countdown():
    vhost, clock = make_vhost()
    vhost.declare_queue('q', None, arguments={'x-expires': 1000})
    clock.advance(0.8)
    vhost.declare_queue('q', None, arguments={'x-expires': 1000})
    clock.advance(0.8)
    assert 'q' in vhost.queues
    clock.advance(0.3)
    assert 'q' not in vhost.queues
