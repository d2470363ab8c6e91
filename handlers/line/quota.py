"""LINE's monthly message quota, asked synchronously (for the command line)."""

from linebot.v3.messaging import ApiClient, Configuration, MessageQuotaResponse, MessagingApi


def remaining(quota: MessageQuotaResponse, used: int | None) -> int | None:
    """Return what a quota leaves after what was used (None when the plan has no limit)."""
    if quota.type != "limited" or quota.value is None:
        return None
    return max(0, quota.value - (used or 0))


def quota_left(base_url: str, access_token: str) -> int | None:
    """Return the messages left this month (None when the plan has no limit)."""
    with ApiClient(Configuration(host=base_url, access_token=access_token)) as client:
        api = MessagingApi(client)
        quota = api.get_message_quota()
        if quota.type != "limited":
            return None
        return remaining(quota, api.get_message_quota_consumption().total_usage)
