"""Every statistics counter the broker keeps, in one place.

The management API's ``message_stats`` and ``churn_rates`` (and the
Prometheus exporter) read these.  Counting must cost the per-message path
almost nothing, so a counter is a plain ``int`` attribute of an object the
hot path already holds (the queue, the channel, the connection), bumped with
``+= 1`` inline: no dict lookup, no function call per message.  Nothing ever
resets or decrements them; rates come from :class:`Sampler`, which copies
them every :data:`SAMPLE_INTERVAL` seconds.

Names follow RabbitMQ's ``message_stats`` keys, prefixed ``stat_``.

Per queue (:class:`QueueCounters`, a base of ``model.Queue``):

``stat_publish``
    messages that entered the queue (routed to it, dead-lettered into it);
``stat_deliver`` / ``stat_deliver_no_ack``
    deliveries to consumers that must ack / that do not ack;
``stat_get`` / ``stat_get_no_ack``
    basic.get answered with a message, acked later / auto-acked;
``stat_get_empty``
    basic.get answered with get-empty;
``stat_ack``
    deliveries acked by the client;
``stat_redeliver``
    deliveries (or gets) of a message flagged redelivered.

Per channel (:class:`ChannelCounters`, a base of ``session.Channel``), and
per virtual host for the channels that closed (``VirtualHost.closed_channels``):
the seven delivery counters above, plus

``stat_publish``
    messages published on the channel;
``stat_confirm``
    publisher confirms sent (basic.ack, each message counted once);
``stat_return_unroutable``
    mandatory messages returned for want of a queue;
``stat_drop_unroutable``
    non-mandatory messages no queue took.

Per exchange (:class:`ExchangeCounters`): ``stat_publish_in`` (messages
published to it) and ``stat_publish_out`` (queue deliveries it routed).
The default exchange is not counted (the hot path never looks it up).

Per connection (:class:`ConnectionCounters`): ``recv_oct`` / ``recv_cnt``
(bytes and reads from the socket) and ``send_oct`` / ``send_cnt`` (bytes
and writes to it); counted per read and per write, not per message.

For the whole broker (:class:`ChurnCounters`, one object shared by the
sessions and the vhosts): ``connection_created``, ``connection_closed``,
``channel_created``, ``channel_closed``, ``queue_declared`` (every
successful queue.declare, new or not), ``queue_created``, ``queue_deleted``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import ClassVar

#: Seconds between two samples of the counters (RabbitMQ's
#: ``collect_statistics_interval`` is 5 s).
SAMPLE_INTERVAL = 5.0

#: The delivery counters queues and channels share (without ``stat_``).
DELIVERY = ('deliver', 'deliver_no_ack', 'get', 'get_no_ack', 'get_empty', 'ack',
            'redeliver')


class Counted:
    """Something with counters that :class:`Sampler` turns into rates.

    ``COUNTERS`` names the attributes sampled; the last two samples are
    kept as ``(wall time, values)``.
    """

    COUNTERS: ClassVar[tuple[str, ...]] = ()
    sample_last: tuple[float, tuple[int, ...]] | None = None
    sample_prev: tuple[float, tuple[int, ...]] | None = None

    def take_sample(self, now: float) -> None:
        self.sample_prev = self.sample_last
        self.sample_last = (now, tuple([getattr(self, name) for name in self.COUNTERS]))

    def rates(self) -> dict[str, float]:
        """Per-second rate of each counter over the last sample interval."""
        last, prev = self.sample_last, self.sample_prev
        if last is None or prev is None or last[0] <= prev[0]:
            return dict.fromkeys(self.COUNTERS, 0.0)
        span = last[0] - prev[0]
        return {name: round((a - b) / span, 1)
                for name, a, b in zip(self.COUNTERS, last[1], prev[1], strict=True)}


class QueueCounters(Counted):
    #: ``message_count`` (ready) and ``sampled_unacked`` (set by whoever
    #: samples, from the sessions) give the length rates.
    COUNTERS = (('stat_publish',) + tuple(f'stat_{name}' for name in DELIVERY)
                + ('message_count', 'sampled_unacked'))

    def init_counters(self) -> None:
        self.stat_publish = 0
        self.stat_deliver = 0
        self.stat_deliver_no_ack = 0
        self.stat_get = 0
        self.stat_get_no_ack = 0
        self.stat_get_empty = 0
        self.stat_ack = 0
        self.stat_redeliver = 0
        self.sampled_unacked = 0
        #: Wall-clock time since which nothing happened (set by the sampler).
        self.idle_since: float | None = time.time()

    def length_rates(self) -> tuple[float, float]:
        """How fast the ready and the unacked messages grow, per second: the
        two last counters' rates, without :meth:`rates` for all of them (the
        overview sums these over every queue)."""
        last, prev = self.sample_last, self.sample_prev
        if last is None or prev is None or last[0] <= prev[0]:
            return 0.0, 0.0
        span = last[0] - prev[0]
        now, before = last[1], prev[1]
        return round((now[-2] - before[-2]) / span, 1), round((now[-1] - before[-1]) / span, 1)


class ChannelCounters(Counted):
    COUNTERS = ('stat_publish', 'stat_confirm', 'stat_return_unroutable',
                'stat_drop_unroutable') + tuple(f'stat_{name}' for name in DELIVERY)

    def init_counters(self) -> None:
        self.stat_publish = 0
        self.stat_confirm = 0
        self.stat_return_unroutable = 0
        self.stat_drop_unroutable = 0
        self.stat_deliver = 0
        self.stat_deliver_no_ack = 0
        self.stat_get = 0
        self.stat_get_no_ack = 0
        self.stat_get_empty = 0
        self.stat_ack = 0
        self.stat_redeliver = 0
        self.idle_since: float | None = time.time()

    def add_counters(self, other: ChannelCounters) -> None:
        """Fold ``other``'s counts into these (a closed channel's, into its vhost's)."""
        for name in ChannelCounters.COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class ClosedChannels(ChannelCounters):
    """What the channels of a vhost that are closed now had counted."""

    def __init__(self) -> None:
        self.init_counters()


class ExchangeCounters(Counted):
    COUNTERS = ('stat_publish_in', 'stat_publish_out')

    def init_counters(self) -> None:
        self.stat_publish_in = 0
        self.stat_publish_out = 0


class ConnectionCounters(Counted):
    COUNTERS = ('recv_oct', 'recv_cnt', 'send_oct', 'send_cnt')

    def init_counters(self) -> None:
        self.recv_oct = 0
        self.recv_cnt = 0
        self.send_oct = 0
        self.send_cnt = 0


class ChurnCounters(Counted):
    COUNTERS = ('connection_created', 'connection_closed', 'channel_created',
                'channel_closed', 'queue_declared', 'queue_created', 'queue_deleted')

    def __init__(self) -> None:
        self.connection_created = 0
        self.connection_closed = 0
        self.channel_created = 0
        self.channel_closed = 0
        self.queue_declared = 0
        self.queue_created = 0
        self.queue_deleted = 0


class Sampler:
    """Copies counters every :data:`SAMPLE_INTERVAL` seconds.

    ``sources`` yields every counted object of the broker at that moment
    (queues, channels, connections, exchanges, the churn counters...); a
    queue or channel whose counters did not move since the previous sample
    is idle from then on (``idle_since``).
    """

    def sample(self, objects: Iterable[Counted], now: float | None = None) -> None:
        now = time.time() if now is None else now
        for obj in objects:
            last = obj.sample_last
            obj.take_sample(now)
            if hasattr(obj, 'idle_since'):
                if last is not None and last[1] == obj.sample_last[1]:  # type: ignore[index]
                    if obj.idle_since is None:
                        obj.idle_since = last[0]
                elif last is not None:
                    obj.idle_since = None
