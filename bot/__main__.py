"""Run the command-line interface as `python -m bot`."""

from bot.cli import app

app(prog_name="welfarebot")
