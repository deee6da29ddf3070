"""Logging of the service processes (``webhooks serve`` and ``worker``).

Quiet by default: the libraries underneath log every request (httpx and
uvicorn's access log), their start-up steps (uvicorn, which the banner
replaces), every scheduled run (APScheduler) and every migration step
(Alembic) at INFO, which buries what an operator needs to see. They are held
at WARNING unless ``--log-level DEBUG`` asks for everything.
``--log-format json`` writes one JSON object per line with stable keys, for
log collectors; a delivery problem's line (:mod:`producer.problem_log`) adds
its fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from producer.problem_log import FIELDS

__all__ = ["LEVELS", "NOISY_LOGGERS", "JsonFormatter", "configure_logging"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
NOISY_LOGGERS = ("httpx", "httpcore", "apscheduler", "alembic", "uvicorn.access", "uvicorn.error")
"""Loggers held at WARNING unless the level is DEBUG."""
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``,
    ``exception`` when there is one, and the :data:`~producer.problem_log.FIELDS`
    a delivery problem's record carries (``problem``, ``endpoint_id``, …)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # Only the known fields: other libraries' extra attributes are neither
        # stable nor always serialisable.
        entry.update({key: vars(record)[key] for key in FIELDS if key in vars(record)})
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send this process's logs to stderr at ``level``, as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
