"""The LINE API client: a proxy named in the environment is taken at start, not per request."""

from collections.abc import Iterator

import pytest

from handlers.line.client import api_client, env_proxy
from handlers.line.sender import LineSender, Outcome
from tests.fakes.line_api import FakeLine
from tests.fakes.line_api import app as line_app
from tests.fakes.loopback import serving
from tests.line_support import TOKEN

USER = "U" + "c" * 32
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Clear the proxy variables for the test, both spellings."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
def line_fake() -> Iterator[tuple[FakeLine, str]]:
    """Serve a fake Messaging API; yield it and its URL."""
    fake = FakeLine()
    with serving(line_app(fake)) as server:
        yield fake, server.url
    fake.release()


def test_the_environment_names_the_proxy_per_host(no_proxy_settings: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY applies to LINE's hosts unless NO_PROXY spares one."""
    assert env_proxy("https://api.line.me") is None
    no_proxy_settings.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    no_proxy_settings.setenv("NO_PROXY", "api-data.line.me")
    assert env_proxy("https://api.line.me") == "http://proxy.example:3128"
    assert env_proxy("https://api-data.line.me") is None


async def test_a_reply_does_not_look_up_the_proxy_again(
    no_proxy_settings: pytest.MonkeyPatch, line_fake: tuple[FakeLine, str]
) -> None:
    """A proxy variable set after start is not read by each request (it cost a thread hop)."""
    fake, url = line_fake
    client = api_client(url, TOKEN)
    sender = LineSender(client, first_delay=0.01)
    no_proxy_settings.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    message = {"type": "text", "text": "สวัสดีค่ะ"}
    assert await sender.reply(fake.issue_token(USER), [message]) is Outcome.SENT
    assert fake.texts_to(USER) == ["สวัสดีค่ะ"]
    await client.close()
