"""The command line checks its arguments and files: one line and exit code 2 for each mistake."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app.service import WelfareService
from handlers.cli.main import app
from tests.staff_support import add_proposals
from tests.test_exports import service_url


def welfarebot(
    service: WelfareService, *args: str, columns: int = 200
) -> tuple[int, list[str], str]:
    """Run the real command line on the service's database; return code, stderr lines, stdout."""
    env = {"DATABASE_URL": service_url(service), "COLUMNS": str(columns)}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stderr.splitlines(), result.stdout


def refused(service: WelfareService, *args: str) -> str:
    """Run a command that must be refused; return its one line."""
    code, errors, _out = welfarebot(service, *args)
    assert code == 2, errors
    assert len(errors) == 1, errors
    return errors[0]


def test_report_never_overwrites_the_database_or_any_file(
    service: WelfareService, tmp_path: Path
) -> None:
    """`report -o` checks the ending, and overwrites an existing file only with --force."""
    database = Path(service_url(service).removeprefix("sqlite:///"))
    before = database.read_bytes()
    assert "must end in .xlsx" in refused(service, "report", "-y", "2570", "-o", str(database))
    assert database.read_bytes() == before
    target = tmp_path / "report.xlsx"
    target.write_bytes(b"keep me")
    line = refused(service, "report", "-y", "2570", "-o", str(target))
    assert line.endswith("exists; add --force to overwrite it")
    assert target.read_bytes() == b"keep me"
    assert welfarebot(service, "report", "-y", "2570", "-o", str(target), "--force")[0] == 0
    assert target.read_bytes() != b"keep me"


def test_export_checks_its_file(service: WelfareService, tmp_path: Path) -> None:
    """An unknown ending, a missing folder or an existing file are refused in one line."""
    existing = tmp_path / "out.csv"
    existing.write_text("old")
    assert "must end in .csv or .xlsx" in refused(
        service, "proposals", "export", str(tmp_path / "x.txt")
    )
    assert "does not exist" in refused(
        service, "proposals", "export", str(tmp_path / "no" / "x.csv")
    )
    assert "add --force" in refused(service, "proposals", "export", str(existing))
    assert existing.read_text() == "old"
    assert welfarebot(service, "proposals", "export", str(existing), "--force")[0] == 0


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("staff", "add", "telegram", "abc", "admin"), "'abc' is not a telegram user id"),
        (("staff", "add", "line", "12345", "viewer"), "'12345' is not a line user id"),
        (("broadcast", "create", "--text", "   "), "--text: the message is empty"),
        (("broadcast", "create", "--text", "x", "--at", "1/1/2560 09:00"), "is in the past"),
        (("proposals", "list", "--limit", "-1"), "--limit"),
        (("proposals", "list", "--limit", "0"), "--limit"),
        (("proposals", "list", "--from", "1/12/2569", "--to", "1/11/2569"), "is after --to"),
        (("proposals", "list", "--format", "xml"), "'xml' is not one of"),
        (("proposals", "stats", "--format", "xml"), "'xml' is not one of"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_code_2(
    service: WelfareService, args: tuple[str, ...], said: str
) -> None:
    """Each mistake names what is wrong, in one line, and the command does nothing."""
    line = refused(service, *args)
    assert line.startswith("welfarebot: ")
    assert said in line


def test_tables_never_cut_the_reference_number(service: WelfareService) -> None:
    """On a narrow terminal the reference number still shows whole, to be copied."""
    (reference,) = add_proposals(service, [{}])
    code, _errors, shown = welfarebot(service, "proposals", "list", columns=60)
    assert code == 0
    assert reference in shown
