"""Builds the service from settings: database, migrations, province."""

from bot.province import load_province
from bot.service import WelfareService
from bot.settings import Settings
from storage.db import make_engine, normalize_url, upgrade


def build_service(settings: Settings, migrate_sqlite: bool = True) -> WelfareService:
    """Return the service on the configured database (SQLite is upgraded on start)."""
    url = normalize_url(settings.database_url)
    if migrate_sqlite and url.startswith("sqlite"):
        upgrade(url)
    return WelfareService(make_engine(url), load_province(settings.province), settings.bot_language)
