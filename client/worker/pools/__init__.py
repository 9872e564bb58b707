"""Worker pools by name."""

from __future__ import annotations

from .aio import AsyncioPool
from .base import Pool
from .prefork import PreforkPool
from .solo import SoloPool
from .threads import ThreadPool

POOLS: dict[str, type[Pool]] = {
    'prefork': PreforkPool,
    'threads': ThreadPool,
    'asyncio': AsyncioPool,
    'solo': SoloPool,
}

__all__ = ['POOLS', 'AsyncioPool', 'Pool', 'PreforkPool', 'SoloPool', 'ThreadPool']
