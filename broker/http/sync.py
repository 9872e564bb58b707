"""Waiting, without blocking the loop, until the store has synced what a
change wrote (a declaration's journal record, a persistent message)."""

from __future__ import annotations

import asyncio

from ..store.base import Store
from .errors import ApiError


async def durable(store: Store, position: int) -> None:
    """Return once everything written up to ``position`` is on disk."""
    if store.synced_position() >= position:
        return
    loop = asyncio.get_running_loop()
    while store.synced_position() < position:
        if store.confirm_failed(position):
            raise ApiError(500, 'internal_error',
                           f'the change could not be written to disk: {store.failed}')
        done: asyncio.Future[None] = loop.create_future()

        def wake(future: asyncio.Future[None] = done) -> None:
            if not future.done():
                future.set_result(None)
        store.when_synced(wake)
        await done


async def after(store: Store, position: int) -> None:
    """Wait for the sync when the store's position moved past ``position``."""
    now = store.write_position()
    if now != position:
        await durable(store, now)
