"""Fanout exchange: every binding matches."""

from __future__ import annotations

from typing import Any

from .base import Destination, Exchange, add_count, remove_count


class FanoutExchange(Exchange):
    kind = 'fanout'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._destinations: dict[Destination, int] = {}

    def route(self, routing_key: str, message: Any) -> Any:
        return self._destinations

    def _index_add(self, destination: Destination, routing_key: str,
                   arguments: dict[str, Any]) -> None:
        add_count(self._destinations, destination)

    def _index_remove(self, destination: Destination, routing_key: str,
                      arguments: dict[str, Any]) -> None:
        remove_count(self._destinations, destination)
