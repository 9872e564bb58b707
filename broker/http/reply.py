"""What a handler returns: data (200, JSON) or a :class:`Reply`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int = 200
    data: Any = None
    #: No body at all (201 and 204 have none, as RabbitMQ).
    empty: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def created(location: str | None = None) -> Reply:
    return Reply(201, empty=True, headers={'location': location} if location else {})


def no_content() -> Reply:
    return Reply(204, empty=True)


def created_or_updated(created_now: bool) -> Reply:
    """201 for a new object, 204 when it was there already."""
    return created() if created_now else no_content()
