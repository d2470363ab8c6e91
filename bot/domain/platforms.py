"""The platforms a person can reach the bot on, and the form of their user ids."""

import re

# where broadcasts, notices and reminders can be delivered
MESSAGING = ("telegram", "line")
# where a volunteer or an officer can be: the messaging platforms and this machine's terminal
ALL = (*MESSAGING, "terminal")

# LINE user ids are U and 32 hex digits (Messaging API reference, "Get profile")
LINE_USER_ID = re.compile(r"U[0-9a-f]{32}")


def valid_user_id(platform: str, user_id: str) -> bool:
    """Tell whether a user id has its platform's form (Telegram: a number; LINE: U and 32 hex)."""
    if platform == "telegram":
        return user_id.isascii() and user_id.isdigit()
    if platform == "line":
        return LINE_USER_ID.fullmatch(user_id) is not None
    return platform in ALL and bool(user_id.strip())
