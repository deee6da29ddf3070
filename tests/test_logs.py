"""The service's logging: quiet libraries by default, JSON lines on request."""

from __future__ import annotations

import json
import logging

import pytest

from producer import Producer
from producer.logs import NOISY_LOGGERS, configure_logging
from producer.outcomes import Outcomes
from producer.problem_log import FIELDS, Problem
from tests.helpers.clock import START


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


def test_json_lines_of_delivery_problems_carry_their_fields(capfd):
    configure_logging("INFO", "json")
    problem = Problem(
        "attempt_failed",
        "ep_1",
        "acme",
        host="hooks.acme.example",
        delivery_id="dlv_1",
        attempt=1,
        status_code=500,
        next_attempt_at=START,
    )
    producer = Producer("sqlite://")
    try:
        Outcomes(producer.context).log_problems([problem])
    finally:
        producer.close()
    [line] = capfd.readouterr().err.strip().splitlines()
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message", *FIELDS}
    assert (entry["level"], entry["logger"], entry["problem"]) == (
        "WARNING",
        "producer.outcomes",
        "attempt_failed",
    )
    assert (entry["endpoint_id"], entry["tenant"], entry["status_code"], entry["error"]) == (
        "ep_1",
        "acme",
        500,
        None,
    )
    assert entry["next_attempt_at"] == "2026-11-22T10:00:00.000Z"
    assert entry["message"].startswith("endpoint ep_1 (tenant acme, hooks.acme.example)")


def test_json_lines_leave_out_other_libraries_extra_attributes(capfd):
    configure_logging("INFO", "json")
    logging.getLogger("a.library").warning("hello", extra={"color_message": "\x1b[1mhello"})
    entry = json.loads(capfd.readouterr().err)
    assert set(entry) == {"time", "level", "logger", "message"}
