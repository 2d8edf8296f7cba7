"""structlog setup: JSON lines in production, readable console output on a terminal.

Log events carry ids, parties, states and rule codes, never a BSN, a payload or another
personal value. As a second line of defence the scrubber, the last step before rendering,
withholds payload-like keys and keys named after a personal element (:mod:`gateway.core.privacy`
decides which those are) and masks nine-digit numbers in every value, nested ones and a
formatted traceback included. Lines from the standard library's ``logging`` (apscheduler,
aiohttp, SQLAlchemy) go through the same steps and come out in the same format.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

from gateway.core.privacy import PERSONAL_ELEMENTS, WITHHELD, mask_free_text

# Payloads, and any key named after a personal element.
_FORBIDDEN_KEYS = frozenset(
    {"payload", "raw", "body", "xml", "content", *(name.lower() for name in PERSONAL_ELEMENTS)}
)
# Libraries whose INFO lines are routine chatter (apscheduler reports every job run), or
# said better elsewhere: aiohttp's access lines carry raw paths; the server logs its own.
_QUIET_LOGGERS = ("apscheduler", "aiohttp.access")


def _scrubbed(value: object) -> object:
    """``value`` fit for a log line: strings masked, containers scrubbed through, anything
    else (an exception, a path, a number) by its text when that text holds something to mask."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, str):
        return mask_free_text(value)
    if isinstance(value, Mapping):
        return {str(k): WITHHELD if _forbidden(k) else _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrubbed(item) for item in value]
    text = str(value)
    masked = mask_free_text(text)
    if isinstance(value, int):
        return value if masked == text else masked
    return masked


def _forbidden(key: object) -> bool:
    return str(key).lower() in _FORBIDDEN_KEYS


def scrub(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The privacy processor: runs after tracebacks are formatted, over every field."""
    for key in list(event_dict):
        if key.startswith("_"):  # structlog's own bookkeeping (the stdlib record), not output
            continue
        event_dict[key] = WITHHELD if _forbidden(key) else _scrubbed(event_dict[key])
    return event_dict


def configure_logging(
    *, json: bool | None = None, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Set up structlog and the standard library's root logger once for the process;
    ``json=None`` picks JSON unless on a TTY."""
    out = stream or sys.stderr
    use_json = not out.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    # Tracebacks become text first, so the scrubber sees them; the scrubber is the last step
    # before the renderer, so nothing added later escapes it.
    finish: list[Processor] = [structlog.processors.format_exc_info, scrub, renderer]
    stamp: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*stamp, *finish],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*stamp, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish],
    )
    handler = _OurHandler(out)
    handler.setFormatter(formatter)
    _remove_our_handlers()
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def reset_logging() -> None:
    """Undo :func:`configure_logging` (tests): structlog's defaults, our root handler gone."""
    structlog.reset_defaults()
    _remove_our_handlers()


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler :func:`configure_logging` installs (others, e.g. pytest's, stay)."""


def _remove_our_handlers() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _OurHandler):
            root.removeHandler(handler)


def get_logger(name: str) -> Any:
    """A structlog logger for a module (typed loosely: structlog's proxies are dynamic)."""
    return structlog.get_logger(name)


@contextmanager
def about_message(message_id: str) -> Iterator[None]:
    """Every log line within carries ``message_id`` (worker threads started within too)."""
    with structlog.contextvars.bound_contextvars(message_id=message_id):
        yield
