"""Checks the settings before anything starts, so each mistake is one line naming its fix."""

import re
import secrets
from urllib.parse import urlparse

from bot.app.settings import Settings, SettingsError
from bot.domain import platforms
from bot.domain.i18n import LANGUAGES
from bot.domain.province import known_provinces
from bot.domain.schedule import QuietHours

DATABASES = ("sqlite", "postgresql", "postgres")
# what Telegram accepts as a webhook's secret_token
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def admin_problems(admins: str) -> list[str]:
    """Return a line for each ADMINS entry that is not platform:user_id."""
    found = []
    for entry in (e.strip() for e in admins.split(",")):
        if not entry:
            continue
        platform, _, user_id = entry.partition(":")
        platform, user_id = platform.strip(), user_id.strip()
        if not platforms.valid_user_id(platform, user_id):
            found.append(
                f"ADMINS: {entry!r} is not platform:user_id; write e.g. telegram:12345 "
                "(a Telegram user id is a number) or line:U… (U and 32 hex digits), "
                "separated by commas."
            )
    return found


def admin_ids(admins: str) -> list[tuple[str, str]]:
    """Return the (platform, user id) pairs ADMINS names."""
    return [
        (platform.strip(), user_id.strip())
        for platform, _, user_id in (e.strip().partition(":") for e in admins.split(","))
        if platform.strip() and user_id.strip()
    ]


def telegram_problems(settings: Settings) -> list[str]:
    """Return the lines for Telegram's webhook settings."""
    if not settings.telegram_enabled or not settings.telegram_webhook_url:
        return []
    found = []
    url = urlparse(settings.telegram_webhook_url)
    if url.scheme != "https" or not url.netloc:
        found.append(
            f"TELEGRAM_WEBHOOK_URL: {settings.telegram_webhook_url!r} is not an https:// address; "
            "Telegram only calls https webhooks (or leave it empty for long polling)."
        )
    secret = settings.telegram_webhook_secret
    if secret is None or not secret.get_secret_value():
        found.append(
            "TELEGRAM_WEBHOOK_SECRET is not set: webhook mode needs it so that only Telegram can "
            f"post updates; set e.g. TELEGRAM_WEBHOOK_SECRET={secrets.token_urlsafe(32)}"
        )
    elif not WEBHOOK_SECRET.fullmatch(secret.get_secret_value()):
        found.append(
            "TELEGRAM_WEBHOOK_SECRET: Telegram accepts only 1-256 characters of A-Z a-z 0-9 _ -; "
            f"set e.g. TELEGRAM_WEBHOOK_SECRET={secrets.token_urlsafe(32)}"
        )
    return found


def line_problems(settings: Settings) -> list[str]:
    """Return a line when only one of the two LINE credentials is set."""
    secret = bool(settings.line_channel_secret and settings.line_channel_secret.get_secret_value())
    token = bool(
        settings.line_channel_access_token and settings.line_channel_access_token.get_secret_value()
    )
    if secret == token:
        return []
    have, lack = (
        ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN")
        if secret
        else ("LINE_CHANNEL_ACCESS_TOKEN", "LINE_CHANNEL_SECRET")
    )
    return [
        f"{lack} is not set but {have} is: LINE needs both (LINE Developers console, Messaging "
        f"API channel); set {lack}, or empty {have} to run without LINE."
    ]


def problems(settings: Settings) -> list[str]:
    """Return one line per mistake in the settings (none when they are fine)."""
    found = [*line_problems(settings), *telegram_problems(settings)]
    found += admin_problems(settings.admins)
    try:
        QuietHours.parse(settings.quiet_hours)
    except ValueError:
        found.append(
            f"QUIET_HOURS: {settings.quiet_hours!r} is not HH:MM-HH:MM (Bangkok time); "
            "write e.g. QUIET_HOURS=21:00-07:00, or leave it empty for none."
        )
    if settings.province not in known_provinces():
        found.append(
            f"PROVINCE: {settings.province!r} is not a province the bot has data for; "
            f"use one of {', '.join(known_provinces())} (bot/domain/data/provinces.json)."
        )
    backend = urlparse(settings.database_url).scheme.split("+")[0]
    # a URL with no scheme at all has its own line where the database is opened
    if backend and backend not in DATABASES:
        found.append(
            f"DATABASE_URL: {backend!r} is not a database the bot runs on; "
            "use sqlite:///path/to/file.db or postgresql://user@host/db (or leave it empty)."
        )
    if not settings.telegram_broadcast_rate > 0:
        found.append(
            f"TELEGRAM_BROADCAST_RATE: {settings.telegram_broadcast_rate!r} messages a second "
            "cannot be sent; use a number above 0 (Telegram allows about 30)."
        )
    if settings.bot_language not in LANGUAGES:
        found.append(
            f"BOT_LANGUAGE: {settings.bot_language!r} is not a language of the bot; "
            f"use one of {', '.join(LANGUAGES)}."
        )
    return found


def check(settings: Settings) -> None:
    """Raise SettingsError listing every mistake, if there is any."""
    found = problems(settings)
    if found:
        raise SettingsError(found)
