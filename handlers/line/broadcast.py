"""Sends broadcast messages on LINE: multicasts of up to 500, each with its own retry key."""

import uuid
from collections.abc import Callable

from bot.app.service import WelfareService
from handlers.broadcaster import RETRY, Outcome
from handlers.line.sender import LineSender
from handlers.line.sender import Outcome as Sent
from storage import broadcasts

PLATFORM = "line"
MULTICAST_SIZE = 500
# a multicast's retry key follows from its run and batch, so a resend after a crash reuses it
BATCH_NAMESPACE = uuid.UUID("6f1c9d0e-3b0f-4d1e-9a57-3c51d0b2e4a1")


def retry_key(run_id: int, batch: int) -> str:
    """Return the X-Line-Retry-Key of one multicast of a run."""
    return str(uuid.uuid5(BATCH_NAMESPACE, f"{run_id}:{batch}"))


class LineBroadcastSender:
    """Sends a run's LINE messages in multicasts, resuming batches begun before a crash."""

    platform = PLATFORM

    def __init__(self, service: WelfareService, sender: LineSender) -> None:
        self.service = service
        # the channel's own sender: one view of the quota for notices and broadcasts
        self.sender = sender

    async def quota_left(self) -> int | None:
        """Return the messages left this month (None when the plan has no limit)."""
        return await self.sender.quota_left()

    async def send(
        self, run_id: int, texts: dict[str, str], record: Outcome, open_now: Callable[[], bool]
    ) -> None:
        """Send the batches begun and not confirmed, then new ones, while open_now() holds."""
        with self.service.db.begin() as connection:
            unfinished = broadcasts.line_batches(connection, run_id, self.service.clock())
        for batch in unfinished:
            if not open_now() or not await self._multicast(run_id, batch, texts, record):
                return
        while open_now():
            now = self.service.clock()
            with self.service.db.begin() as connection:
                fresh = broadcasts.next_line_batch(connection, run_id, MULTICAST_SIZE, now)
            if fresh is None or not await self._multicast(run_id, fresh, texts, record):
                return

    async def _multicast(
        self, run_id: int, batch: broadcasts.Batch, texts: dict[str, str], record: Outcome
    ) -> bool:
        """Send one batch and record it; False to stop for now (LINE keeps failing)."""
        number, language, ids, recipients = batch
        message = {"type": "text", "text": texts.get(language, texts["th"])}
        failures: list[str] = []
        key = retry_key(run_id, number)
        outcome = await self.sender.multicast(recipients, [message], key, failures)
        if outcome is Sent.SENT:
            record(ids, "sent")
        elif outcome is Sent.QUOTA:
            # recorded at once, not slept on: the administrator sees who did not get it
            record(ids, "failed", "LINE quota exhausted")
        elif outcome is Sent.REFUSED:
            record(ids, "failed", "LINE refused the message")
        else:
            # resent later in the same batch, with the same key, after a back-off
            record(ids, RETRY, f"LINE kept failing ({', '.join(failures[-1:]) or 'unknown'})")
        return outcome is not Sent.FAILED
