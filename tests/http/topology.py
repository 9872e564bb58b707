"""A topology like the one the RabbitMQ 3.10 captures were taken with:
exchanges of every type, classic, quorum and single-active-consumer queues,
bindings with and without arguments and between exchanges, a consumer that
holds unacked messages, a publisher in confirm mode, a channel in tx mode."""

from __future__ import annotations

import pika

from .client import Api


class Topology:
    def __init__(self, amqp_url: str, api: Api) -> None:
        self.api = api
        assert api.put('/vhosts/v2', {'description': 'second vhost'}).status == 201
        params = pika.URLParameters(amqp_url)
        params.client_properties = {'connection_name': 'ref-consumer'}
        self.consumer = pika.BlockingConnection(params)
        params = pika.URLParameters(amqp_url)
        params.client_properties = {'connection_name': 'ref-publisher'}
        self.publisher = pika.BlockingConnection(params)
        ch = self.publisher.channel()
        for name, kind in (('ex.direct', 'direct'), ('ex.fanout', 'fanout'),
                           ('ex.topic', 'topic'), ('ex.headers', 'headers'),
                           ('ex.dlx', 'fanout')):
            ch.exchange_declare(name, kind, durable=True)
        ch.exchange_declare('ex.alt-args', 'direct', durable=True,
                            arguments={'alternate-exchange': 'ex.dlx'})
        ch.queue_declare('q.classic', durable=True)
        ch.queue_declare('q.args', durable=True, arguments={
            'x-message-ttl': 60000, 'x-max-length': 100, 'x-dead-letter-exchange': 'ex.dlx',
            'x-max-priority': 10})
        ch.queue_declare('q.dead', durable=True)
        ch.queue_declare('q.quorum', durable=True, arguments={'x-queue-type': 'quorum'})
        ch.queue_declare('q.sac', durable=True, arguments={'x-single-active-consumer': True})
        ch.queue_bind('q.classic', 'ex.direct', 'rk.classic')
        ch.queue_bind('q.classic', 'ex.direct', 'rk.args', arguments={'x-foo': 'bar',
                                                                       'x-num': 42})
        ch.exchange_bind('ex.fanout', 'ex.direct', 'to.fanout')
        ch.queue_bind('q.args', 'ex.fanout', '')
        ch.queue_bind('q.quorum', 'ex.topic', 'a.*.c')
        ch.queue_bind('q.sac', 'ex.headers', '', arguments={'x-match': 'all', 'h1': 'v1'})
        ch.queue_bind('q.dead', 'ex.dlx', '')
        ch.confirm_delivery()
        for i in range(20):
            ch.basic_publish('ex.direct', 'rk.classic', f'm{i}'.encode(),
                             pika.BasicProperties(delivery_mode=2))
        ch.basic_publish('ex.topic', 'a.b.c', b'quorum')
        ch.basic_publish('', 'q.classic', b'x', mandatory=True)
        self.plain = self.publisher.channel()
        self.plain.basic_get('q.quorum', auto_ack=False)
        self.tx = self.publisher.channel()
        self.tx.tx_select()
        self.tx.basic_publish('', 'q.dead', b'held')
        held = self.consumer.channel()
        held.basic_qos(prefetch_count=5)
        held.basic_consume('q.classic', lambda *a: None, consumer_tag='ctag-held')
        sac = self.consumer.channel()
        sac.basic_consume('q.sac', lambda *a: None, consumer_tag='ctag-sac-1',
                          arguments={'x-priority': 10})
        sac2 = self.consumer.channel()
        sac2.basic_consume('q.sac', lambda *a: None, consumer_tag='ctag-sac-2')
        self.consumer.process_data_events(time_limit=0.3)

    def close(self) -> None:
        for conn in (self.consumer, self.publisher):
            if conn.is_open:
                conn.close()
