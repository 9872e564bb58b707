"""Leveret's AMQP 0-9-1 broker: network, model, routing, store, auth, config."""

from leveret import __version__

__all__ = ['__version__']
