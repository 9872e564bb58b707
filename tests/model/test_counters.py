"""Counters on queues and the churn counters, and the sampler's rates and idle time."""

from __future__ import annotations

from leveret.broker.model.counters import Sampler

from .fakes import Subscriber, make_vhost, publish


def test_a_queue_counts_what_enters_it_and_the_vhost_counts_declarations():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    vhost.declare_queue('q', None)
    vhost.declare_queue('q', None, passive=True)
    for body in (b'1', b'2', b'3'):
        publish(vhost, '', 'q', body)
    assert queue.stat_publish == 3
    assert (vhost.churn.queue_declared, vhost.churn.queue_created) == (3, 1)
    vhost.delete_queue(queue)
    assert vhost.churn.queue_deleted == 1


def test_the_sampler_turns_counters_into_rates_per_second():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    sampler = Sampler()
    sampler.sample([queue], now=100.0)
    for _ in range(10):
        publish(vhost, '', 'q', b'x')
    sampler.sample([queue], now=105.0)
    rates = queue.rates()
    assert rates['stat_publish'] == 2.0
    assert rates['message_count'] == 2.0
    assert rates['stat_ack'] == 0.0
    # The length rates alone (what the overview sums) are the same numbers.
    assert queue.length_rates() == (2.0, 0.0) == (rates['message_count'],
                                                  rates['sampled_unacked'])
    queue.sampled_unacked = 4           # as the sampler sets it from the sessions
    sampler.sample([queue], now=110.0)
    assert queue.length_rates() == (0.0, 0.8) == (queue.rates()['message_count'],
                                                  queue.rates()['sampled_unacked'])


def test_a_queue_is_idle_from_the_first_sample_that_saw_no_change():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    sampler = Sampler()
    sampler.sample([queue], now=100.0)
    publish(vhost, '', 'q', b'x')
    sampler.sample([queue], now=105.0)
    assert queue.idle_since is None
    sampler.sample([queue], now=110.0)
    assert queue.idle_since == 105.0
    Subscriber(queue).subscribe()       # takes the message: activity again
    sampler.sample([queue], now=115.0)
    assert queue.idle_since is None
