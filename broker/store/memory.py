"""A store that keeps nothing: every message and definition is transient."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Definitions, Recovered


class MemoryStore:
    persistent = False
    failed = None

    def open(self) -> None:
        pass

    def attach(self, loop: Any, live_messages: Any) -> None:
        pass

    def recover(self, restore: Any) -> Recovered:
        return Recovered()

    def delivered(self, message: Any) -> None:
        pass

    def confirm_failed(self, position: int) -> bool:
        return False

    def add(self, queue: Any, message: Any) -> None:
        pass

    def remove(self, queue: Any, message: Any) -> None:
        pass

    def write_position(self) -> int:
        return 0

    def synced_position(self) -> int:
        return 0

    def when_synced(self, callback: Callable[[], None]) -> None:
        callback()

    def save_definition(self, key: str, value: dict[str, Any]) -> None:
        pass

    def drop_definition(self, key: str) -> None:
        pass

    def replace_definitions(self, items: dict[str, dict[str, Any]]) -> None:
        pass

    def load_definitions(self) -> Definitions | None:
        return None

    def close(self) -> None:
        pass
