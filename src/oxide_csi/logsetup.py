"""structlog configuration: JSON lines for machines, readable lines for people, never a secret.

Every event passes through :func:`_scrub_secrets` as the last step before rendering, so a token
that slips into a message, an exception or a nested field is replaced wherever it came from. The
standard library's loggers (httpx, grpc) are routed through the same scrubbing filter.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from oxide_csi.secrets import scrub, scrub_value

LEVELS = ("debug", "info", "warning", "error", "critical")


def _scrub_secrets(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return {key: scrub_value(value) for key, value in event_dict.items()}


class _ScrubFilter(logging.Filter):
    """Scrubs stdlib log records (httpx logs request lines, which could carry headers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog and stdlib logging once for the process.

    ``fmt`` is ``json``, ``console`` or ``auto`` (console when the stream is a terminal).
    """
    stream = stream or sys.stderr
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if use_console
        else structlog.processors.JSONRenderer()
    )
    numeric = logging.getLevelName(level.upper())
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            _scrub_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ScrubFilter())
    # The libraries' records are rendered like our own events (a JSON object per line in JSON
    # mode), so a log shipper never meets a line it cannot parse.
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                stamp,
                structlog.processors.format_exc_info,
                _scrub_secrets,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Third-party libraries stay quiet unless we debug: httpx logs every request at INFO.
    root.setLevel(max(numeric, logging.WARNING) if level != "debug" else logging.DEBUG)
