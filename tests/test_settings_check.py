"""Settings are checked at start: each mistake is one line naming the setting and its fix."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app.service import WelfareService
from bot.app.settings import Settings, SettingsError
from bot.app.wiring import build_service
from bot.desk import members
from bot.domain.roles import ADMIN
from handlers.cli.main import app
from storage import staff

LINE_ID = "U" + "0123456789abcdef" * 2


def welfarebot(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str], str]:
    """Run the real command line; return the exit code, stderr's lines and stdout."""
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stderr.splitlines(), result.stdout


MISTAKES = [
    (
        {"LINE_CHANNEL_SECRET": "s"},
        "LINE_CHANNEL_ACCESS_TOKEN is not set but LINE_CHANNEL_SECRET is",
    ),
    ({"LINE_CHANNEL_ACCESS_TOKEN": "t"}, "LINE_CHANNEL_SECRET is not set"),
    ({"ADMINS": "12345"}, "ADMINS: '12345' is not platform:user_id; write e.g. telegram:12345"),
    ({"ADMINS": "telegram:abc"}, "ADMINS: 'telegram:abc' is not platform:user_id"),
    ({"ADMINS": "line:12345"}, "ADMINS: 'line:12345' is not platform:user_id"),
    ({"QUIET_HOURS": "25:00-07:00"}, "QUIET_HOURS: '25:00-07:00' is not HH:MM-HH:MM"),
    ({"PROVINCE": "XX"}, "PROVINCE: 'XX' is not a province the bot has data for; use one of CM"),
    ({"BOT_LANGUAGE": "fr"}, "BOT_LANGUAGE: 'fr' is not a language of the bot; use one of th, en"),
    ({"WEB_PORT": "eighty"}, "WEB_PORT: Input should be a valid integer"),
    (
        {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/welfarebot"},
        "DATABASE_URL: cannot open postgresql://postgres@127.0.0.1:1/welfarebot (connection",
    ),
    ({"DATABASE_URL": "welfarebot.db"}, "DATABASE_URL is not a database URL; write e.g. sqlite"),
    (
        {"TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_WEBHOOK_URL": "https://x.org/telegram/webhook"},
        "TELEGRAM_WEBHOOK_SECRET is not set: webhook mode needs it",
    ),
]


@pytest.mark.parametrize(("env", "line"), MISTAKES)
def test_each_mistake_is_one_line_and_exit_code_2(env: dict[str, str], line: str) -> None:
    """`welfarebot run` with a bad setting starts nothing and says what to fix, in one line."""
    code, errors, _out = welfarebot("run", env=env)
    assert code == 2
    assert len(errors) == 1, errors
    assert errors[0].startswith("welfarebot: " + line), errors[0]


def test_every_mistake_is_listed_at_once() -> None:
    """Several mistakes give several lines, not one per attempt."""
    code, errors, _out = welfarebot("staff", "list", env={"PROVINCE": "XX", "ADMINS": "1"})
    assert code == 2
    assert [e.split(":")[1].strip() for e in errors] == ["ADMINS", "PROVINCE"]


def test_debug_shows_the_traceback() -> None:
    """--debug lets the error through, for a developer."""
    result = CliRunner().invoke(app, ["--debug", "staff", "list"], env={"PROVINCE": "XX"})
    assert isinstance(result.exception, SettingsError)


def test_a_webhook_secret_telegram_would_refuse_is_named() -> None:
    """Telegram accepts only A-Z a-z 0-9 _ - in a secret; a space is caught before it asks."""
    env = {
        "TELEGRAM_BOT_TOKEN": "1:x",
        "TELEGRAM_WEBHOOK_URL": "https://x.org/telegram/webhook",
        "TELEGRAM_WEBHOOK_SECRET": "two words",
    }
    code, errors, _out = welfarebot("run", env=env)
    assert (code, len(errors)) == (2, 1)
    assert "TELEGRAM_WEBHOOK_SECRET: Telegram accepts only" in errors[0]


def test_good_admins_pass(sqlite_url: str) -> None:
    """Telegram numbers and LINE user ids, with spaces around, are fine."""
    env = {"ADMINS": f" telegram:12345 , line:{LINE_ID}", "DATABASE_URL": sqlite_url}
    code, errors, _out = welfarebot("staff", "list", "--json", env=env)
    assert (code, errors) == (0, [])


def test_admins_only_bootstrap_an_empty_staff_table(
    service: WelfareService, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADMINS makes the first administrators once; a later removal is not undone by a restart."""
    monkeypatch.setenv("ADMINS", "telegram:7")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    build_service(Settings())
    with service.db.begin() as connection:
        assert staff.find(connection, "telegram", "7")["role"] == ADMIN  # type: ignore[index]
        members.put(connection, "telegram", "8", ADMIN, (), "test", service.clock())
        members.remove(connection, "telegram", "7", "test", service.clock())
    build_service(Settings())
    with service.db.begin() as connection:
        assert staff.find(connection, "telegram", "7") is None


def test_admins_do_not_join_existing_staff(
    service: WelfareService, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once anyone is staff, ADMINS adds nobody (staff are managed with `welfarebot staff`)."""
    with service.db.begin() as connection:
        members.put(connection, "telegram", "8", ADMIN, (), "test", service.clock())
    monkeypatch.setenv("ADMINS", "telegram:7")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    build_service(Settings())
    with service.db.begin() as connection:
        assert staff.find(connection, "telegram", "7") is None


def test_an_unwritable_database_folder_is_one_line(tmp_path: Path) -> None:
    """An SQLite file that cannot be created names DATABASE_URL, not a 40-line traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, errors, _out = welfarebot(
        "db", "upgrade", env={"DATABASE_URL": f"sqlite:///{blocker}/x.db"}
    )
    assert code == 2
    assert len(errors) == 1
    assert errors[0].startswith("welfarebot: DATABASE_URL: cannot open")
