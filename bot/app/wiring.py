"""Builds the service from settings: checks, database, migrations, province."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from bot.app import settings_check
from bot.app.photos import PhotoKeeper
from bot.app.service import WelfareService
from bot.app.settings import Settings, SettingsError
from bot.desk import members
from bot.domain.normalize import count_words
from bot.domain.province import load_province
from bot.domain.roles import ADMIN
from bot.domain.schedule import QuietHours
from storage import staff
from storage.db import check_schema, make_engine, normalize_url, upgrade
from storage.photo_files import PhotoFiles

URL_EXAMPLES = "sqlite:////var/lib/welfarebot/welfarebot.db or postgresql://user@host:5432/db"


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn a database URL that cannot be read or reached into a SettingsError of one line."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # the text may hold a password, so it is not repeated
        raise SettingsError(
            [f"DATABASE_URL is not a database URL; write e.g. {URL_EXAMPLES}"]
        ) from None
    try:
        yield
    except ArgumentError as error:
        raise SettingsError(
            [f"DATABASE_URL: {shown} cannot be used ({error}); write e.g. {URL_EXAMPLES}"]
        ) from error
    except DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else ""
        raise SettingsError(
            [
                f"DATABASE_URL: cannot open {shown} ({reason or type(error.orig).__name__}); "
                "check that the server runs, the address, user and database exist, or that "
                "the file's folder is writable."
            ]
        ) from error


def open_database(settings: Settings, migrate_sqlite: bool = True) -> Engine:
    """Return an engine on the configured database: SQLite upgraded, others checked."""
    with database_errors(settings.database_url):
        url = normalize_url(settings.database_url)
        sqlite = url.startswith("sqlite")
        if migrate_sqlite and sqlite:
            upgrade(url)
        engine = make_engine(url)
        if not sqlite:
            # several workers share PostgreSQL: upgrading is an operator's step, not every start's
            check_schema(engine)
        return engine


def build_service(settings: Settings, migrate_sqlite: bool = True) -> WelfareService:
    """Check the settings, then return the service on the configured database."""
    settings_check.check(settings)
    engine = open_database(settings, migrate_sqlite)
    # load the Thai word list now (1-5 s), not while the first volunteer waits for an answer
    count_words("สวัสดี")
    service = WelfareService(
        engine,
        load_province(settings.province),
        settings.bot_language,
        quiet=QuietHours.parse(settings.quiet_hours),
        photo_keeper=PhotoKeeper(engine, photo_files(settings), settings.photo_max_bytes),
        return_after=timedelta(hours=settings.return_after_hours),
        web_url=settings.web_url,
        data_dir=settings.data_dir,
        retention=settings.retention,
    )
    bootstrap_admins(service, settings.admins)
    return service


def bootstrap_admins(service: WelfareService, admins: str) -> None:
    """Make the ADMINS administrators, only while nobody is staff yet (removals then stick)."""
    named = settings_check.admin_ids(admins)
    if not named:
        return
    with service.db.begin() as connection:
        if staff.members(connection):
            return
        for platform, user_id in named:
            members.put(connection, platform, user_id, ADMIN, (), "settings", service.clock())


def photo_files(settings: Settings) -> PhotoFiles:
    """Return the folder of stored photos, under the data directory."""
    return PhotoFiles(settings.data_subdir("media"))
