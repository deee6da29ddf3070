"""The service's logging: quiet libraries by default, JSON lines on request."""

from __future__ import annotations

import json
import logging

import pytest

from producer.logs import NOISY_LOGGERS, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_the_libraries_underneath_are_quiet_at_info(capfd):
    configure_logging("INFO")
    logging.getLogger("httpx").info('HTTP Request: POST http://r.example "HTTP/1.1 200 OK"')
    logging.getLogger("apscheduler.executors.default").info("Running job reclaim-leases")
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    logging.getLogger("producer.worker").warning("a delivery problem")
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "a delivery problem" in err


def test_debug_shows_everything(capfd):
    configure_logging("DEBUG")
    logging.getLogger("httpx").info("HTTP Request: POST")
    assert "HTTP Request" in capfd.readouterr().err


def test_json_format_writes_one_object_per_line_with_stable_keys(capfd):
    configure_logging("INFO", "json")
    logging.getLogger("producer.worker").warning("endpoint %s failing", "ep_1")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("producer.worker").exception("with a traceback")
    lines = capfd.readouterr().err.strip().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message"}
    assert (first["level"], first["logger"]) == ("WARNING", "producer.worker")
    assert first["message"] == "endpoint ep_1 failing" and first["time"].endswith("+00:00")
    assert "RuntimeError: boom" in second["exception"]
