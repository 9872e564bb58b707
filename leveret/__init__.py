"""Leveret: an AMQP 0-9-1 message broker, a Celery-protocol client and a worker.

The three layers are sub-packages of this one namespace, so that a user's
own ``client.py`` or ``broker.py`` never shadows them:

* :mod:`leveret.protocol`: the AMQP 0-9-1 wire layer (sans-IO);
* :mod:`leveret.broker`: the broker;
* :mod:`leveret.client`: Celery's message protocol, ``App`` and the worker.

In the source tree they live in the top-level folders ``protocol/``,
``broker/`` and ``client/``; ``leveret/`` holds links to them.
"""

__version__ = '0.1.0'

__all__ = ['__version__']
