"""Exchange types, registered by name."""

from __future__ import annotations

from .base import Destination, Exchange, freeze
from .direct import DirectExchange
from .fanout import FanoutExchange
from .headers import HeadersExchange
from .topic import TopicExchange

EXCHANGE_TYPES: dict[str, type[Exchange]] = {
    cls.kind: cls
    for cls in (DirectExchange, FanoutExchange, TopicExchange, HeadersExchange)
}

__all__ = ['EXCHANGE_TYPES', 'Destination', 'DirectExchange', 'Exchange',
           'FanoutExchange', 'HeadersExchange', 'TopicExchange', 'freeze']
