"""The terminal channel and the command line, run as a user would run them."""

import io
import os
import subprocess
import sys
from pathlib import Path

from bot.app.service import WelfareService
from bot.desk import review
from bot.domain.calendar import fiscal_year, utcnow
from bot.domain.messages import Notice, Reply
from bot.domain.roles import STAFF, Officer
from handlers.terminal import TerminalChat
from tests.helpers import Chat, en, th
from tests.transcripts import FIRST_PROPOSAL

ROOT = Path(__file__).resolve().parent.parent

PIPED = """สวัสดี
1
สมศรี ใจดี
๐๘๑ ๒๓๔ ๕๖๗๘
8
/skip
3
2
1
ผู้สูงอายุในหมู่บ้านไม่รู้สิทธิเบี้ยยังชีพ
๓๕
1
/skip
2
ให้ อพม. ลงพื้นที่ช่วยลงทะเบียน
ผู้สูงอายุ 35 คนได้รับเบี้ยยังชีพ
/skip
1
1
2
10
2
พาผู้สูงอายุลงทะเบียนเบี้ยยังชีพ
/skip
1
/status
"""


def welfarebot(args: list[str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `python -m bot` with a database in a working directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_conversation_piped_from_a_file_ends_cleanly(tmp_path: Path, data_home: Path) -> None:
    """Numbered choices, Thai digits and commands work; end of input exits with 0."""
    result = welfarebot(["chat"], tmp_path, PIPED)
    assert result.returncode == 0, result.stderr
    assert th("consent") in result.stdout
    assert "  1) " + th("opt.target_group.children_youth") in result.stdout
    assert "  2) ✏️ " + th("label.title") in result.stdout, "the title heads the card"
    reference = f"CM-{fiscal_year(utcnow())}-00001"
    assert th("submitted", reference=reference).splitlines()[1] in result.stdout
    assert th("result.received") in result.stdout
    assert (data_home / "welfarebot.db").exists(), "the default database is in the data directory"
    assert not (tmp_path / "welfarebot.db").exists()


def test_run_without_tokens_explains_how_to_connect_and_chats(tmp_path: Path) -> None:
    """`welfarebot run` with nothing configured says how to connect, then is the terminal chat."""
    result = welfarebot(["run"], tmp_path, "สวัสดี\n")
    assert result.returncode == 0, result.stderr
    assert "TELEGRAM_BOT_TOKEN" in result.stderr
    assert th("consent") in result.stdout


def test_help_explains_every_command(tmp_path: Path, data_home: Path) -> None:
    """`welfarebot --help` lists run, chat and db."""
    result = welfarebot(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("run", "chat", "db"):
        assert command in result.stdout
    upgraded = welfarebot(["db", "upgrade"], tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (data_home / "welfarebot.db").exists()


def test_data_dir_holds_env_and_database_wherever_the_command_runs(tmp_path: Path) -> None:
    """`--data-dir` reads .env from there and keeps the default database there, not in the cwd."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".env").write_text("BOT_LANGUAGE=en\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = welfarebot(["--data-dir", str(home), "chat"], elsewhere, "hello\n")
    assert result.returncode == 0, result.stderr
    assert en("consent") in result.stdout, "the .env in the data directory was read"
    assert (home / "welfarebot.db").exists()
    assert list(elsewhere.iterdir()) == []


def test_a_env_in_the_working_directory_still_wins(tmp_path: Path, data_home: Path) -> None:
    """A checkout's own .env overrides the data directory's, as before the data directory."""
    data_home.mkdir()
    (data_home / ".env").write_text("BOT_LANGUAGE=en\n", encoding="utf-8")
    (tmp_path / ".env").write_text("BOT_LANGUAGE=th\n", encoding="utf-8")
    result = welfarebot(["chat"], tmp_path, "hello\n")
    assert result.returncode == 0, result.stderr
    assert th("consent") in result.stdout


def test_tests_never_touch_the_real_data_directory(data_home: Path) -> None:
    """The suite's data directory is a temporary folder, for the service and the bot process."""
    from bot.app.settings import Settings
    from tests.bot_process import BotProcess

    assert Settings().data_dir == data_home
    assert BotProcess(data_home, {}).env["WELFAREBOT_HOME"].startswith(str(data_home))


def test_the_terminal_shows_only_its_own_users_messages(service: WelfareService) -> None:
    """A notice for another terminal user is neither printed nor marked delivered."""
    with service.db.begin() as connection:
        service.queue(connection, Notice("terminal", "someone-else", (Reply("ของคนอื่น"),)))
        service.queue(connection, Notice("terminal", "me", (Reply("ของฉัน"),)))
    shown = io.StringIO()
    TerminalChat(service, "me", io.StringIO(""), shown).run()
    assert "ของฉัน" in shown.getvalue()
    assert "ของคนอื่น" not in shown.getvalue()
    left = service.undelivered("terminal")
    assert [d.recipient for d in left] == ["someone-else"]


class _Typing(io.StringIO):
    """Typed lines; before a given line is read, something happens elsewhere (an officer acts)."""

    def __init__(self, lines: list[str], meanwhile: dict[int, object]) -> None:
        super().__init__("".join(line + "\n" for line in lines))
        self.read_count = 0
        self.meanwhile = meanwhile

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        """Return the next line, after running what happens before it."""
        self.read_count += 1
        action = self.meanwhile.get(self.read_count)
        if callable(action):
            action()
        return super().readline(size if size is not None else -1)


def test_a_status_change_reaches_the_terminal_volunteer_and_its_button_works(
    service: WelfareService,
) -> None:
    """The notice shows with the next answer, and its number opens the card to revise."""
    Chat(service, "me").run(FIRST_PROPOSAL)

    def send_back() -> None:
        with service.db.begin() as connection:
            changed = review.change_status(
                connection, Officer("s", STAFF), "CM-2570-00001", "needs_revision",
                service.clock(), comment="กรุณาเพิ่มจำนวนผู้สูงอายุ",
            )  # fmt: skip
            for notice in changed.notices:
                service.queue(connection, notice)

    shown = io.StringIO()
    typing = _Typing(["สถานะ", "1"], {1: send_back})
    TerminalChat(service, "me", typing, shown).run()
    printed = shown.getvalue()
    assert "กรุณาเพิ่มจำนวนผู้สูงอายุ" in printed
    assert printed.index("กรุณาเพิ่มจำนวนผู้สูงอายุ") < printed.index(th("status.header", count=1))
    assert th("revise.intro", reference="CM-2570-00001") in printed
    assert service.undelivered("terminal") == []
