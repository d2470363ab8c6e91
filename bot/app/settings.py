"""Settings from the environment and an optional .env file."""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the bot; see .env.example and the README for what each one does."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite:///welfarebot.db"
    province: str = "CM"
    bot_language: str = Field(default="th", pattern="^(th|en)$")
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base_url: str = "https://api.line.me"
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
    # the first administrators, as platform:user_id separated by commas (telegram:12345,line:U…)
    admins: str = ""

    @property
    def telegram_enabled(self) -> bool:
        """Tell whether a Telegram bot token is configured."""
        return bool(self.telegram_bot_token and self.telegram_bot_token.get_secret_value())

    @property
    def line_enabled(self) -> bool:
        """Tell whether both LINE credentials are configured."""
        secret, token = self.line_channel_secret, self.line_channel_access_token
        return bool(secret and secret.get_secret_value() and token and token.get_secret_value())
