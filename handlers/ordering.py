"""Per-user ordering: one user's events run one at a time, in arrival order; users in parallel."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable


class InOrder:
    """FIFO locks by key, dropped as soon as no event of that key is waiting."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._waiting: dict[Hashable, int] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        """Wait for this key's earlier events (asyncio locks are FIFO), then run."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]
