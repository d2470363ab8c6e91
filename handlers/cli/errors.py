"""Turns the errors an operator can fix into one line on stderr and exit code 2."""

from typing import Any

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from bot.app.settings import SettingsError
from storage.db import SchemaOutdated

# known: the operator can fix them from the message; anything else is a bug and keeps its traceback
# (alembic's CommandError: `db upgrade` to a revision that does not exist)
KNOWN = (
    SettingsError,
    SchemaOutdated,
    ValidationError,
    DBAPIError,
    OSError,
    CommandError,
    typer.TyperException,
)


def is_usage(error: BaseException) -> bool:
    """Tell whether an error is one of click's (vendored by typer) about the command line."""
    return isinstance(error, typer.TyperException) and hasattr(error, "format_message")


def lines(error: BaseException) -> list[str]:
    """Return what to tell the operator about a known error, one line per mistake."""
    if isinstance(error, SettingsError):
        return error.problems
    if isinstance(error, ValidationError):
        found = []
        for problem in error.errors():
            if not problem["loc"]:
                # a whole-settings error's input is every setting, tokens included
                found.append(f"settings: {problem['msg']}; see .env.example")
                continue
            name = str(problem["loc"][0]).upper()
            found.append(f"{name}: {problem['msg']} (got {problem['input']!r}); see .env.example")
        return found
    if is_usage(error):
        context = getattr(error, "ctx", None)
        # the command path starts with the program's name, which every line already starts with
        path = context.command_path.split(" ", 1)[1:] if context is not None else []
        where = f"{path[0]}: " if path else ""
        return [where + " ".join(error.format_message().split())]  # type: ignore[attr-defined]
    if isinstance(error, DBAPIError):
        reason = str(error.orig).strip().splitlines()
        return [f"the database failed: {reason[0] if reason else type(error.orig).__name__}"]
    if isinstance(error, OSError) and error.filename is not None:
        return [f"{error.filename}: {error.strerror or error}"]
    return [" ".join(str(error).split())]


class Guarded(TyperGroup):
    """The command group whose known errors end as one line each and exit code 2."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; report a known error in one line unless --debug was given."""
        try:
            return super().invoke(ctx)
        except KNOWN as error:
            if ctx.params.get("debug") or (
                isinstance(error, typer.TyperException) and not is_usage(error)
            ):
                raise
            for line in lines(error):
                typer.echo(f"welfarebot: {line}", err=True)
            raise typer.Exit(2) from None
