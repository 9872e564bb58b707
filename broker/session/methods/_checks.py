"""Argument checks shared by the method handlers."""

from __future__ import annotations

from leveret.protocol.errors import PreconditionFailed


def check_name(name: str | bytes, kind: str) -> str:
    """Names arrive as short strings; reject what cannot be a name."""
    if isinstance(name, bytes):
        raise PreconditionFailed(f'{kind} name is not valid UTF-8')
    return name
