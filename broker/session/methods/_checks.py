"""Argument checks shared by the method handlers."""

from __future__ import annotations

from typing import Any

from leveret.protocol.errors import PreconditionFailed


def check_name(name: str | bytes, kind: str) -> str:
    """Names arrive as short strings; reject what cannot be a name."""
    if isinstance(name, bytes):
        raise PreconditionFailed(f'{kind} name is not valid UTF-8')
    return name


def argument_name(arguments: dict[str, Any] | None, key: str) -> str | None:
    """An argument naming an exchange (alternate or dead-letter), if it is text."""
    value = (arguments or {}).get(key)
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode(errors='replace')
    return value if isinstance(value, str) else None
