"""The one way the bot sends on LINE: replies, pushes and multicasts, aware of the quota.

Every call ends in an `Outcome` instead of sleeping through a spent quota: once LINE says the
month's messages are used up, further pushes and multicasts answer `QUOTA` at once, without a
request, until a request now and then shows the quota is back. Replies cost nothing and are
never held back.
"""

import asyncio
import enum
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from linebot.v3.messaging import ApiException, AsyncApiClient, AsyncMessagingApi

from handlers import metrics
from handlers.line.quota import remaining

log = logging.getLogger(__name__)
Message = dict[str, Any]
# LINE's answer to a reply token that expired or was used already
INVALID_TOKEN = "Invalid reply token"
# LINE's 429 when the monthly quota is spent (other 429s are its rate limit: retried)
MONTHLY_LIMIT = "monthly limit"
TRANSIENT = (429, 500, 502, 503, 504)
ATTEMPTS = 4
FIRST_DELAY = 0.5
# how long pushes are refused without asking once LINE said the quota is spent
QUOTA_RECHECK_SECONDS = 600.0


class Outcome(enum.Enum):
    """What became of one request."""

    SENT = "sent"  # accepted (or accepted before: the retry key was known)
    TOKEN_GONE = "token gone"  # the reply token expired or was used: push instead
    REFUSED = "refused"  # LINE rejected the request itself (a 4xx): sending again cannot help
    QUOTA = "quota exhausted"  # the month's messages are spent: keep it for later
    FAILED = "failed"  # LINE or the network kept failing: try again later


def _message(error: ApiException) -> str:
    """Return the `message` of a LINE error body ('' when there is none)."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return str(error.body or "")
    return str(body.get("message", "")) if isinstance(body, dict) else ""


class LineSender:
    """Sends Messaging API requests as plain JSON and says what became of each."""

    def __init__(
        self,
        client: AsyncApiClient,
        recheck: float = QUOTA_RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        first_delay: float = FIRST_DELAY,
    ) -> None:
        self.client = client
        self.recheck = recheck
        self.clock = clock
        self.first_delay = first_delay
        self.requests = 0
        self._spent_until = 0.0

    @property
    def quota_spent(self) -> bool:
        """Tell whether LINE said lately that this month's messages are used up."""
        return self.clock() < self._spent_until

    async def reply(self, token: str, messages: list[Message]) -> Outcome:
        """Reply with a token (free of quota); TOKEN_GONE only when LINE refuses the token."""
        body = {"replyToken": token, "messages": messages}
        return await self._request("/v2/bot/message/reply", body)

    async def push(self, to: str, messages: list[Message], retry_key: str) -> Outcome:
        """Push to one user; the same retry key for the same messages makes LINE send once."""
        if self.quota_spent:
            return Outcome.QUOTA
        body = {"to": to, "messages": messages}
        return await self._request("/v2/bot/message/push", body, retry_key)

    async def multicast(
        self,
        to: list[str],
        messages: list[Message],
        retry_key: str,
        failures: list[str] | None = None,
    ) -> Outcome:
        """Send to up to 500 users at once, with a retry key as for a push (failures noted)."""
        if self.quota_spent:
            return Outcome.QUOTA
        body = {"to": to, "messages": messages}
        return await self._request("/v2/bot/message/multicast", body, retry_key, failures)

    async def quota_left(self) -> int | None:
        """Return the messages left this month (None when the plan has no limit)."""
        api = AsyncMessagingApi(self.client)
        quota = await api.get_message_quota()
        if quota.type != "limited":
            return None
        return remaining(quota, (await api.get_message_quota_consumption()).total_usage)

    async def _request(
        self,
        path: str,
        body: dict[str, Any],
        retry_key: str | None = None,
        failures: list[str] | None = None,
    ) -> Outcome:
        """POST one request, retrying LINE's rate limit, its 5xx and network failures.

        Each failure worth retrying (a status or an error's type) is appended to `failures`.
        """
        headers = {"Content-Type": "application/json"}
        if retry_key is not None:
            headers["X-Line-Retry-Key"] = retry_key
        delay = self.first_delay
        for attempt in range(1, ATTEMPTS + 1):
            self.requests += 1
            try:
                await self.client.call_api(
                    path, "POST", header_params=headers, body=body, auth_settings=["Bearer"],
                    response_types_map={}, _return_http_data_only=True, _preload_content=True,
                )  # fmt: skip
                return Outcome.SENT
            except ApiException as error:
                if error.status != 409:
                    metrics.send_failed("line", error.status or "error")
                outcome = self._judge(path, error)
                if outcome is not None:
                    return outcome
                failure = str(error.status)
            except (aiohttp.ClientError, TimeoutError) as error:
                failure = type(error).__name__
                metrics.send_failed("line", failure)
            if failures is not None:
                failures.append(failure)
            if attempt < ATTEMPTS:
                log.info("LINE %s failed (%s); retrying in %.1f s", path, failure, delay)
                await asyncio.sleep(delay)
                delay *= 2
        log.warning("LINE %s kept failing; it is kept to send later", path)
        return Outcome.FAILED

    def _judge(self, path: str, error: ApiException) -> Outcome | None:
        """Return what an error means for the request, or None when it is worth retrying."""
        message = _message(error)
        if error.status == 409:
            return Outcome.SENT  # this retry key was accepted before
        if error.status == 400 and path.endswith("/reply") and message == INVALID_TOKEN:
            return Outcome.TOKEN_GONE
        if error.status == 429 and MONTHLY_LIMIT in message:
            self._spent_until = self.clock() + self.recheck
            log.warning("LINE's monthly message quota is used up; pushes wait for it")
            return Outcome.QUOTA
        if error.status in TRANSIENT:
            return None
        log.warning("LINE refused %s (%s): %s", path, error.status, message[:200])
        return Outcome.REFUSED
