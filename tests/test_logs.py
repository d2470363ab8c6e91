"""LOG_FORMAT=json: one JSON object a line, an error by its type and frames, not its message."""

import json
import logging
import sys

from handlers.logs import JsonFormatter


def test_a_failure_is_one_json_line_without_its_message() -> None:
    """The exception's text (which may quote a volunteer) stays out; its type and frames stay."""
    try:
        raise ValueError("เบอร์ 0812345678 ของสมศรี")
    except ValueError:
        record = logging.LogRecord(
            "handlers.worker", logging.ERROR, __file__, 1, "a %s failed", ("LINE event",), None
        )
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert entry["message"] == "a LINE event failed"
    assert entry["error"] == "ValueError"
    assert any("test_a_failure_is_one_json_line" in frame for frame in entry["frames"])
    assert "0812345678" not in line
    assert "สมศรี" not in line
