"""Sends outbox messages meant for others: notices at once, and rows nobody sent on a timer.

Every message is sent on a task of its own, so neither platform waits on the other and one
slow or refused recipient holds back nobody but themselves; one recipient's messages still
go one after another, in the order queued.
"""

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping

from bot.app.service import Delivery, WelfareService
from handlers.ordering import InOrder

log = logging.getLogger(__name__)
SWEEP_SECONDS = 5.0
# messages one sweep sends at once per platform (the Telegram pacer sets the real pace)
IN_FLIGHT = 16

# sends a delivery; False when it is kept in the outbox to try again later
Deliver = Callable[[Delivery], Awaitable[bool]]


class Courier:
    """Hands each queued notice to its platform's channel, whichever channel caused it.

    A status change made on Telegram reaches a LINE volunteer through the LINE channel of the
    same process at once; one made from the CLI (or by a worker without that channel) is
    picked up by the sweep of whichever running process has the channel.
    """

    def __init__(self, service: WelfareService, channels: Mapping[str, Deliver]) -> None:
        self.service = service
        self.channels = dict(channels)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._order = InOrder()

    def start(self, sweep_every: float | None = SWEEP_SECONDS) -> None:
        """Send notices as they are queued, and sweep for forgotten ones periodically."""
        self.service.on_outbox = self.dispatch
        if sweep_every is not None:
            self._sweeper = asyncio.create_task(self._sweep_forever(sweep_every))

    async def stop(self) -> None:
        """Stop sweeping and finish the sends in flight."""
        self.service.on_outbox = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.idle()

    def dispatch(self, delivery: Delivery) -> None:
        """Send one queued message through its platform's channel, if this process has it."""
        deliver = self.channels.get(delivery.platform)
        if deliver is None:
            return  # another process's sweep sends it
        # a fresh context: a queue worker's turn (its connection) stays with the turn's own task
        task = asyncio.get_running_loop().create_task(
            self._send(deliver, delivery), context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, deliver: Deliver, delivery: Delivery) -> None:
        sent = False
        try:
            async with self._order.turn((delivery.platform, delivery.recipient)):
                sent = await deliver(delivery)
        except Exception:
            log.exception("a queued message failed; the sweep tries it again later")
        if sent:
            return
        try:
            # on the shared queue this worker owns the row: hand it to the sweep, after a wait
            self.service.retry_later([delivery.outbox_id])
        except Exception:
            log.exception("a failed message could not be handed back; a restart sends it")

    async def sweep(self) -> int:
        """Send every outbox message that nobody has been sending; return how many.

        The platforms are swept at once, and each platform's messages a few at a time.
        """
        counts = await asyncio.gather(
            *(self._sweep(platform, deliver) for platform, deliver in self.channels.items())
        )
        return sum(counts)

    async def _sweep(self, platform: str, deliver: Deliver) -> int:
        claimed = self.service.claim_stale(platform)
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def send(delivery: Delivery) -> None:
            async with slots:
                await self._send(deliver, delivery)

        await asyncio.gather(*(send(delivery) for delivery in claimed))
        return len(claimed)

    async def _sweep_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.sweep()
            except Exception:
                log.exception("the outbox sweep failed; trying again next time")

    async def idle(self) -> None:
        """Wait until every notice dispatched so far has been sent."""
        while self._tasks:
            await asyncio.gather(*self._tasks)
