"""Run the command-line interface as `python -m handlers.cli`."""

from handlers.cli.main import app

app(prog_name="welfarebot")
