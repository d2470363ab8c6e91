"""The served processes run on libuv's event loop and parse HTTP with httptools."""

import asyncio

import uvicorn
from starlette.applications import Starlette

from handlers.runner import run_loop


def test_the_bot_runs_on_uvloop() -> None:
    """`welfarebot run`, `web` and `worker` run their coroutine on uvloop's loop."""
    loops: list[str] = []

    async def main() -> None:
        loops.append(type(asyncio.get_running_loop()).__module__)

    run_loop(main())
    assert loops[0].startswith("uvloop")


def test_the_web_server_parses_http_with_httptools() -> None:
    """uvicorn, as the runner configures it, takes the C parser when it is installed."""
    config = uvicorn.Config(Starlette(), log_level="warning", access_log=False)
    config.load()
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"
