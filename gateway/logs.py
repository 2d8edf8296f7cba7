"""structlog setup: JSON lines in production, readable console output on a terminal.

Log events carry ids, parties, states and rule codes, never a BSN, a payload or another
personal value. As a second line of defence a processor withholds payload-like keys and keys
named after a personal element, and masks nine-digit numbers in every value.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from gateway.core.privacy import PERSONAL_ELEMENTS, mask_free_text

# Payloads, and any key named after a personal element (privacy.py decides which those are).
_FORBIDDEN_KEYS = frozenset(
    {"payload", "raw", "body", "xml", "content", *(name.lower() for name in PERSONAL_ELEMENTS)}
)


def _scrub(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in _FORBIDDEN_KEYS:
            event_dict[key] = "(withheld)"
        elif isinstance(event_dict[key], str):
            event_dict[key] = mask_free_text(event_dict[key])
    return event_dict


def configure_logging(
    *, json: bool | None = None, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Set up structlog once for the process; ``json=None`` picks JSON unless on a TTY."""
    out = stream or sys.stderr
    use_json = not out.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger for a module (typed loosely: structlog's proxies are dynamic)."""
    return structlog.get_logger(name)
