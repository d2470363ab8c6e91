"""Settings from the environment and .env files, and the data directory they live in."""

import os
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.domain.retention import Retention

HOME_VARIABLE = "WELFAREBOT_HOME"
DATABASE_FILE = "welfarebot.db"


def data_home() -> Path:
    """Return the data directory: WELFAREBOT_HOME, or the platform's user data directory."""
    chosen = os.environ.get(HOME_VARIABLE, "").strip()
    if chosen:
        return Path(chosen).expanduser().absolute()
    return platformdirs.user_data_path("welfarebot", appauthor=False)


def env_files() -> tuple[Path, ...]:
    """Return the .env files read, later ones winning: the data directory's, then the cwd's."""
    # the working directory's .env is kept so that a checkout with its own .env runs as before
    return (data_home() / ".env", Path(".env"))


class _DotEnvFiles(DotEnvSettingsSource):
    """The .env files, less WELFAREBOT_HOME: where they are read from depends on it."""

    def __call__(self) -> dict[str, Any]:
        """Return the .env files' values without the data directory."""
        values = super().__call__()
        values.pop("data_dir", None)
        return values


class Settings(BaseSettings):
    """Every setting of the bot; see .env.example and the README for what each one does."""

    model_config = SettingsConfigDict(
        env_file=None, env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # where .env, the default SQLite file, exports and media live; only from the environment
    data_dir: Path = Field(
        default_factory=data_home, validation_alias=AliasChoices("data_dir", HOME_VARIABLE)
    )
    # empty means the SQLite file welfarebot.db in the data directory
    database_url: str = ""
    province: str = "CM"
    # th or en, checked with the other settings in bot/app/settings_check.py
    bot_language: str = "th"
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base_url: str = "https://api.line.me"
    # where LINE serves the content users send (photos)
    line_data_api_base_url: str = "https://api-data.line.me"
    # photos larger than this are refused (LINE's own limit for an image message is 10 MB)
    photo_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    # the public https address of this server, for download links to chat exports on LINE
    public_url: str | None = None
    terminal_user: str = "terminal"
    # Bangkok time in which no broadcast or reminder is sent ("" for none)
    quiet_hours: str = "21:00-07:00"
    # broadcast messages a second on Telegram (its limit is about 30 across chats)
    telegram_broadcast_rate: float = 28.0
    # a worker holds a broadcast this long between renewals; after a crash, the wait to resume
    broadcast_lease_seconds: float = 30.0
    # "json" logs one JSON object a line (for a log collector); "text" reads better by eye
    log_format: str = Field(default="text", pattern="^(text|json)$")
    # on SIGTERM, how long a process may finish the work in hand before it exits anyway
    drain_seconds: float = 20.0
    # volunteers a queue worker (PostgreSQL) handles at once; each holds a database connection
    worker_concurrency: int = Field(default=8, ge=1, le=16)
    # a volunteer who writes after this many hours of silence is greeted and told where they were
    return_after_hours: float = Field(default=12.0, gt=0)
    # the web desk's cookies need HTTPS (browsers also accept them from http://127.0.0.1);
    # switch off only to test from another machine over plain http
    desk_secure_cookies: bool = True
    # the first administrators, as platform:user_id separated by commas (telegram:12345,line:U…)
    admins: str = ""
    # retention in days: raw inbound events; the platform account on broadcast deliveries;
    # the details of audit entries (chat exports go 24 hours after they are made)
    retention_inbound_days: int = Field(default=30, ge=1)
    retention_delivery_days: int = Field(default=90, ge=1)
    retention_audit_detail_days: int = Field(default=365, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read the .env files of the data directory and the cwd unless one was passed."""
        if isinstance(dotenv_settings, DotEnvSettingsSource) and dotenv_settings.env_file is None:
            dotenv_settings = _DotEnvFiles(settings_cls, env_file=env_files())
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _default_database(self) -> "Settings":
        """Put the default SQLite file in the data directory, creating the directory."""
        if not self.database_url.strip():
            self.data_subdir("")
            self.database_url = f"sqlite:///{self.data_dir / DATABASE_FILE}"
        return self

    def data_subdir(self, name: str) -> Path:
        """Return a folder of the data directory (exports, media), created private if missing."""
        path = self.data_dir / name if name else self.data_dir
        # personal data lives here: only the bot's own user may read it
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    @property
    def web_url(self) -> str:
        """Return the address officers open the web desk at (PUBLIC_URL, else this machine)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "::", "") else self.web_host
        return f"http://{host}:{self.web_port}"

    @property
    def retention(self) -> Retention:
        """Return the retention periods."""
        return Retention(
            self.retention_inbound_days,
            self.retention_delivery_days,
            self.retention_audit_detail_days,
        )

    @property
    def telegram_enabled(self) -> bool:
        """Tell whether a Telegram bot token is configured."""
        return bool(self.telegram_bot_token and self.telegram_bot_token.get_secret_value())

    @property
    def line_enabled(self) -> bool:
        """Tell whether both LINE credentials are configured."""
        secret, token = self.line_channel_secret, self.line_channel_access_token
        return bool(secret and secret.get_secret_value() and token and token.get_secret_value())


class SettingsError(Exception):
    """Settings the bot cannot start with: one line per mistake, naming the setting and a fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
