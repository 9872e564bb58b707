"""``leveret ctl``: operate a running broker over its management HTTP API.

It speaks HTTP only and imports nothing of the broker: it works against any
broker with RabbitMQ's management API.
"""
