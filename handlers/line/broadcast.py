"""Sends broadcast messages on LINE: multicasts of up to 500, each with its own retry key."""

import asyncio
import logging
import uuid
from collections.abc import Callable

from linebot.v3.messaging import ApiException, AsyncApiClient, AsyncMessagingApi

from bot.app.service import WelfareService
from handlers.broadcaster import Outcome
from handlers.line.quota import remaining
from storage import broadcasts

log = logging.getLogger(__name__)
PLATFORM = "line"
MULTICAST_SIZE = 500
ATTEMPTS = 5
# a multicast's retry key follows from its run and batch, so a resend after a crash reuses it
BATCH_NAMESPACE = uuid.UUID("6f1c9d0e-3b0f-4d1e-9a57-3c51d0b2e4a1")


def retry_key(run_id: int, batch: int) -> str:
    """Return the X-Line-Retry-Key of one multicast of a run."""
    return str(uuid.uuid5(BATCH_NAMESPACE, f"{run_id}:{batch}"))


class LineBroadcastSender:
    """Sends a run's LINE messages in multicasts, resuming batches begun before a crash."""

    platform = PLATFORM

    def __init__(self, service: WelfareService, client: AsyncApiClient) -> None:
        self.service = service
        self.client = client
        self.requests = 0

    async def quota_left(self) -> int | None:
        """Return the messages left this month (None when the plan has no limit)."""
        api = AsyncMessagingApi(self.client)
        quota = await api.get_message_quota()
        if quota.type != "limited":
            return None
        return remaining(quota, (await api.get_message_quota_consumption()).total_usage)

    async def send(
        self, run_id: int, texts: dict[str, str], record: Outcome, open_now: Callable[[], bool]
    ) -> None:
        """Send the batches begun and not confirmed, then new ones, while open_now() holds."""
        with self.service.db.begin() as connection:
            unfinished = broadcasts.line_batches(connection, run_id)
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
        """Send one batch until LINE accepts it (409: it did before); False to stop for now."""
        number, language, ids, recipients = batch
        message = {"type": "text", "text": texts.get(language, texts["th"])}
        body = {"to": recipients, "messages": [message]}
        headers = {
            "Content-Type": "application/json",
            "X-Line-Retry-Key": retry_key(run_id, number),
        }
        delay = 1.0
        for _attempt in range(ATTEMPTS):
            self.requests += 1
            try:
                await self.client.call_api(
                    "/v2/bot/message/multicast", "POST", header_params=headers, body=body,
                    auth_settings=["Bearer"], response_types_map={},
                    _return_http_data_only=True, _preload_content=True,
                )  # fmt: skip
            except ApiException as error:
                if error.status == 409:
                    record(ids, "sent")  # this retry key was accepted before
                    return True
                if error.status not in (429, 500, 502, 503, 504):
                    record(ids, "failed", f"LINE {error.status}: {str(error.body)[:150]}")
                    return True
                log.info("LINE multicast failed (%s); retrying in %.0f s", error.status, delay)
                await asyncio.sleep(delay)
                delay *= 2
                continue
            record(ids, "sent")
            return True
        log.warning("LINE multicast kept failing; the batch is resent with its key later")
        return False
