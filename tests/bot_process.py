"""The bot (`python -m bot run`, web or worker) as a child process tests can start, kill, stop."""

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


class BotProcess:
    """The real bot in its own process, on an SQLite file in a workdir (or on DATABASE_URL)."""

    def __init__(
        self,
        workdir: Path,
        settings: dict[str, str],
        ready: str | None = None,
        role: str = "run",
    ) -> None:
        self.workdir = workdir
        self.ready = ready
        self.role = role
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "LINE_"))}
        env.update(
            DATABASE_URL=f"sqlite:///{workdir / 'bot.db'}",
            WELFAREBOT_HOME=str(workdir / "home"),
            PYTHONPATH=str(ROOT),
        )
        env.update(settings)
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        # what the bot logged, for a failing test to show
        self.output: list[str] = []

    @property
    def database_url(self) -> str:
        """Return the bot's database URL."""
        return self.env["DATABASE_URL"]

    def start(self) -> None:
        """Start a fresh process; wait for its `ready` log line when one is set."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", self.role],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE if self.ready else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if self.ready is None:
            return
        assert self.proc.stdout is not None
        seen = self.output
        for line in self.proc.stdout:
            seen.append(line)
            if self.ready in line:
                # keep reading, so a full pipe never blocks the bot's logging
                threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
                return
        raise RuntimeError("the bot exited before it was ready:\n" + "".join(seen))

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.output.append(line)

    def kill(self) -> None:
        """Kill the process at once, as a power cut or the OOM killer would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        """Stop the process gently; return its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        return self.proc.returncode

    def cleanup(self) -> None:
        """Make sure no process is left behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def role_process(workdir: Path, settings: dict[str, str], role: str) -> BotProcess:
    """Return a web or worker process with its own port (webhooks, or health and metrics)."""
    mine = {**settings, "WEB_PORT": str(free_port())}
    return BotProcess(workdir, mine, ready=f"{role} ready", role=role)
