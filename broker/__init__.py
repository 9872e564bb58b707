"""Leveret's AMQP 0-9-1 broker: network, model, routing, store, auth, config."""

__version__ = '0.1.0'
