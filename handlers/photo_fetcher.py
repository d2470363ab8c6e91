"""Downloads the photos volunteers send, after the reply, and retries those that failed."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from bot.app.photos import Due, PhotoGone, PhotoKeeper
from bot.app.service import WelfareService

log = logging.getLogger(__name__)
RETRY_SWEEP_SECONDS = 30.0

# fetches a photo's bytes from its platform by file id; raises PhotoGone when it never will
Download = Callable[[str], Awaitable[bytes]]


class PhotoFetcher:
    """Fetches each photo as it is recorded, and on a timer those whose download is due again.

    A download never holds up the volunteer's answer: the service records the photo as pending
    in the event's transaction and this fetches it afterwards, on its own task.
    """

    def __init__(
        self, service: WelfareService, keeper: PhotoKeeper, downloads: Mapping[str, Download]
    ) -> None:
        self.service = service
        self.keeper = keeper
        self.downloads = dict(downloads)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        # at most a few downloads at once, so photos never crowd out the replies
        self._slots = asyncio.Semaphore(4)

    def start(self, sweep_every: float = RETRY_SWEEP_SECONDS) -> None:
        """Fetch photos as they arrive, and retry due ones periodically."""
        removed = self.keeper.sweep()
        if removed:
            log.info("deleted %d photo files of erased volunteers", removed)
        self.service.on_photo = self.fetch_soon
        self._sweeper = asyncio.create_task(self._retry_forever(sweep_every))

    async def stop(self) -> None:
        """Stop retrying and finish the downloads in flight."""
        self.service.on_photo = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.idle()

    def fetch_soon(self, platform: str, file_id: str) -> None:
        """Start downloading a photo just recorded, if this process has its platform."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # called off the event loop: the retry sweep fetches it
        if platform not in self.downloads:
            return  # a process with that channel retries it
        task = loop.create_task(self._fetch_new(platform, file_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch_new(self, platform: str, file_id: str) -> None:
        photo = self.keeper.pending(platform, file_id)
        if photo is not None:
            await self.fetch(photo)

    async def fetch(self, photo: Due) -> str:
        """Download one photo and keep it (or note why not); return its status."""
        async with self._slots:
            try:
                content = await self.downloads[photo.platform](photo.file_id)
            except PhotoGone as gone:
                self.keeper.gone(photo, str(gone))
                return "failed"
            except Exception as error:
                log.warning("a %s photo download failed (%s); it will be retried",
                            photo.platform, type(error).__name__)  # fmt: skip
                self.keeper.failed(photo, type(error).__name__)
                return "pending"
            return self.keeper.keep(photo, content)

    async def retry_due(self) -> int:
        """Download every photo whose retry is due; return how many were tried."""
        due = self.keeper.due(self.downloads)
        for photo in due:
            await self.fetch(photo)
        return len(due)

    async def _retry_forever(self, every: float) -> None:
        while True:
            try:
                await self.retry_due()
            except Exception:
                log.exception("the photo retry sweep failed; trying again next time")
            await asyncio.sleep(every)

    async def idle(self) -> None:
        """Wait until every download started so far has ended."""
        while self._tasks:
            await asyncio.gather(*self._tasks)
