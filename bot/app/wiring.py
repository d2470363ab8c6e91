"""Builds the service from settings: database, migrations, province."""

from bot.app.photos import PhotoKeeper
from bot.app.service import WelfareService
from bot.app.settings import Settings
from bot.domain.province import load_province
from bot.domain.roles import ADMIN
from bot.domain.schedule import QuietHours
from storage import staff
from storage.db import check_schema, make_engine, normalize_url, upgrade
from storage.photo_files import PhotoFiles


def build_service(settings: Settings, migrate_sqlite: bool = True) -> WelfareService:
    """Return the service on the configured database (SQLite is upgraded, others checked)."""
    url = normalize_url(settings.database_url)
    sqlite = url.startswith("sqlite")
    if migrate_sqlite and sqlite:
        upgrade(url)
    engine = make_engine(url)
    if not sqlite:
        # several workers share PostgreSQL: upgrading is an operator's step, not every start's
        check_schema(engine)
    service = WelfareService(
        engine,
        load_province(settings.province),
        settings.bot_language,
        quiet=QuietHours.parse(settings.quiet_hours),
        photo_keeper=PhotoKeeper(engine, photo_files(settings), settings.photo_max_bytes),
    )
    ensure_admins(service, settings.admins)
    return service


def ensure_admins(service: WelfareService, admins: str) -> None:
    """Make the administrators named in the settings administrators (adding, never removing)."""
    named = [a.strip().split(":", 1) for a in admins.split(",") if ":" in a]
    if not named:
        return
    with service.db.begin() as connection:
        for platform, user_id in named:
            found = staff.find(connection, platform, user_id)
            if found is None or found["role"] != ADMIN:
                staff.add(connection, platform, user_id, ADMIN, (), "settings", service.clock())


def photo_files(settings: Settings) -> PhotoFiles:
    """Return the folder of stored photos, under the data directory."""
    return PhotoFiles(settings.data_subdir("media"))
