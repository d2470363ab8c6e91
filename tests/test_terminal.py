"""The terminal channel and the command line, run as a user would run them."""

import os
import subprocess
import sys
from pathlib import Path

from bot.domain.calendar import fiscal_year, utcnow
from tests.helpers import th

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
1
2
8
2
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


def test_a_conversation_piped_from_a_file_ends_cleanly(tmp_path: Path) -> None:
    """Numbered choices, Thai digits and commands work; end of input exits with 0."""
    result = welfarebot(["chat"], tmp_path, PIPED)
    assert result.returncode == 0, result.stderr
    assert th("consent") in result.stdout
    assert "  1) " + th("opt.target_group.children_youth") in result.stdout
    assert "  2) ✏️ " + th("label.target_group") in result.stdout
    reference = f"CM-{fiscal_year(utcnow())}-00001"
    assert th("submitted", reference=reference).splitlines()[1] in result.stdout
    assert th("status.received") in result.stdout
    assert (tmp_path / "welfarebot.db").exists(), "the default database is a file in the cwd"


def test_run_without_tokens_explains_how_to_connect_and_chats(tmp_path: Path) -> None:
    """`welfarebot run` with nothing configured says how to connect, then is the terminal chat."""
    result = welfarebot(["run"], tmp_path, "สวัสดี\n")
    assert result.returncode == 0, result.stderr
    assert "TELEGRAM_BOT_TOKEN" in result.stderr
    assert th("consent") in result.stdout


def test_help_explains_every_command(tmp_path: Path) -> None:
    """`welfarebot --help` lists run, chat and db."""
    result = welfarebot(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("run", "chat", "db"):
        assert command in result.stdout
    upgraded = welfarebot(["db", "upgrade"], tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "welfarebot.db").exists()
