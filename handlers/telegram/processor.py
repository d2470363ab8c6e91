"""An update processor that keeps each user's updates in order and runs different users at once."""

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from handlers.ordering import InOrder


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Handles one user's updates one after another, in arrival order; other users concurrently."""

    def __init__(
        self, max_concurrent_updates: int, after: Callable[[object], Awaitable[None]]
    ) -> None:
        super().__init__(max_concurrent_updates)
        self._order = InOrder()
        self._after = after

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the handlers once the user's earlier updates are done, then close the entry.

        Updates take a concurrency slot in arrival order (asyncio's semaphore is fair), so
        taking the user's FIFO lock next keeps each user's order; other users run meanwhile.
        """
        async with self._order.turn(user_key(update)):
            try:
                await coroutine
            finally:
                await self._after(update)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def user_key(update: object) -> int:
    """Return whose update this is: the user, else the chat (0 when neither is known)."""
    if isinstance(update, Update):
        if update.effective_user is not None:
            return update.effective_user.id
        if update.effective_chat is not None:
            return update.effective_chat.id
    return 0
