"""Run the command-line interface as `python -m bot`."""

import runpy

# The program's entry point, not part of the core: it hands over to the command-line adapter by
# module name, so that nothing in bot/ imports handlers/ (checked by import-linter).
runpy.run_module("handlers.cli", run_name="__main__", alter_sys=True)
