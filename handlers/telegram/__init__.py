"""The Telegram channel, on python-telegram-bot."""

import os

# opt in to PTB's coming behaviour: retry_after as a timedelta (handled by channel.seconds)
os.environ.setdefault("PTB_TIMEDELTA", "true")
