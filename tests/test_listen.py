"""The local receiver behind ``webhooks listen``, driven in-process over ASGI."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from producer.listen import MAX_PRINTED_BODY, ASGIApp, create_listener_app
from producer.signing import build_headers, generate_secret, public_key

SECRET = generate_secret()
BODY = json.dumps(
    {"type": "invoice.paid", "timestamp": "2024-01-01T00:00:00Z", "data": {}}
).encode()


def _post(
    app: ASGIApp,
    body: bytes,
    headers: dict[str, str],
    *,
    path: str = "/hooks",
    method: str = "POST",
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://listener") as client:
            return await client.request(method, path, content=body, headers=headers)

    return asyncio.run(go())


def _listener(secret: str | None = SECRET) -> tuple[ASGIApp, list[str]]:
    reports: list[str] = []
    return create_listener_app(secret, out=reports.append), reports


def _signed(body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    return build_headers([secret], "msg_1", int(time.time()), body)


def test_correctly_signed_request_is_answered_200():
    app, _ = _listener()
    response = _post(app, BODY, _signed())
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_correctly_signed_request_is_reported_valid():
    app, reports = _listener()
    _post(app, BODY, _signed())
    assert len(reports) == 1
    assert "  signature: valid" in reports[0].splitlines()


def test_report_shows_path_id_timestamp_and_event_type():
    app, reports = _listener()
    headers = _signed()
    _post(app, BODY, headers, path="/any/path")
    report = reports[0]
    assert "POST /any/path" in report
    assert f"webhook-id: {headers['webhook-id']}" in report
    assert f"webhook-timestamp: {headers['webhook-timestamp']}" in report
    assert "type: invoice.paid" in report


def test_report_pretty_prints_a_json_body():
    app, reports = _listener()
    _post(app, BODY, _signed())
    assert '      "type": "invoice.paid",' in reports[0].splitlines()


def test_tampered_request_is_answered_401_with_the_reason():
    app, _ = _listener()
    response = _post(app, BODY + b" ", _signed())
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error": "no matching signature"}


def test_tampered_request_is_reported_invalid_with_the_reason():
    app, reports = _listener()
    _post(app, BODY + b" ", _signed())
    assert "signature: INVALID (no matching signature)" in reports[0]


def test_request_signed_with_another_secret_is_rejected():
    app, _ = _listener()
    response = _post(app, BODY, _signed(secret=generate_secret()))
    assert response.status_code == 401


def test_stale_request_is_rejected_as_too_old():
    app, reports = _listener()
    headers = build_headers([SECRET], "msg_1", int(time.time()) - 600, BODY)
    response = _post(app, BODY, headers)
    assert response.status_code == 401
    assert "timestamp too old" in response.json()["error"]
    assert "signature: INVALID (timestamp too old" in reports[0]


def test_tolerance_is_passed_to_verification():
    reports: list[str] = []
    app = create_listener_app(SECRET, out=reports.append, tolerance=3600)
    headers = build_headers([SECRET], "msg_1", int(time.time()) - 600, BODY)
    assert _post(app, BODY, headers).status_code == 200


def test_v1a_request_is_checked_with_the_public_key():
    secret_key = generate_secret("v1a")
    app, reports = _listener(public_key(secret_key))
    headers = build_headers([secret_key], "msg_1", int(time.time()), BODY, scheme="v1a")
    assert _post(app, BODY, headers).status_code == 200
    assert "signature: valid" in reports[0]


def test_without_secret_signature_is_not_checked():
    app, reports = _listener(None)
    response = _post(app, BODY, {"webhook-signature": "v1,bogus"})
    assert response.status_code == 200
    assert "signature: not checked (no --secret)" in reports[0]


def test_body_that_is_not_json_is_printed_as_text():
    app, reports = _listener(None)
    _post(app, b"plain text body", {})
    assert "    plain text body" in reports[0].splitlines()
    assert "type:" not in reports[0]


def test_long_body_is_cut_after_4_kib():
    app, reports = _listener(None)
    body = json.dumps({"type": "big", "data": "x" * 10_000}).encode()
    _post(app, body, {})
    lines = reports[0].split("  body:\n", 1)[1].splitlines()
    printed = "\n".join(line.removeprefix("    ") for line in lines[:-1])
    assert len(printed.encode()) <= MAX_PRINTED_BODY
    assert f"cut after {MAX_PRINTED_BODY} bytes; {len(body)} bytes received" in reports[0]


def test_other_methods_are_answered_405_and_not_reported():
    app, reports = _listener()
    response = _post(app, b"", {}, method="GET")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert reports == []


def test_lifespan_startup_and_shutdown_are_acknowledged():
    app, _ = _listener()
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


@pytest.mark.slow
def test_port_in_use_is_one_line_and_no_listening_message():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "producer.cli", "listen", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (choose another with --port)"
    ]


@pytest.mark.slow
def test_ctrl_c_ends_the_listener_quietly_with_status_0():
    listener = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "listen", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert listener.stdout is not None
    assert listener.stdout.readline().startswith("Listening on http://127.0.0.1:")
    listener.send_signal(signal.SIGINT)
    out, err = listener.communicate(timeout=30)
    assert (listener.returncode, out, err) == (0, "", "")
