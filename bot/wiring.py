"""Builds the service from settings: database, migrations, province."""

from bot.province import load_province
from bot.service import WelfareService
from bot.settings import Settings
from storage.db import make_engine, make_sessions, normalize_url, upgrade


def build_service(settings: Settings, migrate_sqlite: bool = True) -> WelfareService:
    """Return the service on the configured database (SQLite is upgraded on start)."""
    url = normalize_url(settings.database_url)
    if migrate_sqlite and url.startswith("sqlite"):
        upgrade(url)
    sessions = make_sessions(make_engine(url))
    return WelfareService(sessions, load_province(settings.province), settings.bot_language)
