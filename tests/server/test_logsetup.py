"""Every log line is one the chosen format can parse, whoever logged it."""

from __future__ import annotations

import io
import json
import logging

import structlog

from oxide_csi.logsetup import configure_logging


def test_library_records_are_json_lines_in_json_mode() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    try:
        logging.getLogger("grpc._cython.cygrpc").debug("Loaded running loop: %s", 1)
        logging.getLogger("httpx").warning("HTTP Request: Authorization: Bearer s3cr3t-token")
        structlog.get_logger("oxide_csi.test").info("own event", answer=42)
    finally:
        configure_logging("info", "json", io.StringIO())
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entries[0]["event"] == "Loaded running loop: 1"
    assert entries[0]["logger"] == "grpc._cython.cygrpc" and entries[0]["level"] == "debug"
    assert "s3cr3t-token" not in stream.getvalue()  # library lines are scrubbed too
    assert entries[2]["answer"] == 42
