"""``webhooks serve`` as a user runs it: a real process, driven over HTTP.

Register an endpoint, send, watch the log, see a failure, retry it, rotate
the secret, press test — the tour the quick start gives with curl.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.receiver import Receiver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def service(database_url: str) -> Iterator[tuple[str, str]]:
    port = _free_port()
    env = {
        **os.environ,
        "WEBHOOKS_DATABASE_URL": database_url,
        "WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8",  # the receiver runs on this machine
        "WEBHOOKS_WORKER_POLL_INTERVAL": "0.1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "admin API key" in first, first
    key = proc.stdout.readline().strip()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(base + "/v1/health").status_code == 200:
                break
        except httpx.ConnectError:
            pass
        assert time.monotonic() < deadline, "webhooks serve did not come up"
        time.sleep(0.1)
    yield base, key
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def _wait(fetch, predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting; last value {value!r}"
        time.sleep(0.05)


def test_the_quick_start_tour_over_http(service):
    base, key = service
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"})
    assert re.fullmatch(r"whk_\S+", key)
    with Receiver() as receiver:
        created = api.post(
            "/v1/endpoints",
            json={"url": receiver.script("/hooks", [500]), "tenant": "acme", "retry_schedule": [0]},
        )
        assert created.status_code == 201
        endpoint = created.json()
        secret = endpoint["secret"]

        sent = api.post(
            "/v1/messages",
            json={"event_type": "invoice.paid", "data": {"amount": 5}, "tenant": "acme"},
        )
        assert sent.status_code == 202 and sent.json()["deliveries"] == 1
        message_id = sent.json()["id"]

        log = _wait(
            lambda: api.get("/v1/deliveries", params={"message_id": message_id}).json()["data"],
            lambda rows: rows and rows[0]["status"] == "failed",
        )
        delivery_id = log[0]["id"]
        [attempt] = api.get(f"/v1/deliveries/{delivery_id}/attempts").json()["data"]
        assert attempt["response"]["status_code"] == 500

        assert api.post(f"/v1/deliveries/{delivery_id}/retry").status_code == 202
        _wait(
            lambda: api.get(f"/v1/deliveries/{delivery_id}").json()["status"],
            lambda status: status == "succeeded",
        )
        receiver.received()[-1].verify(secret)

        new_secret = api.post(f"/v1/endpoints/{endpoint['id']}/secret/rotate", json={}).json()
        test = api.post(f"/v1/endpoints/{endpoint['id']}/test", json={}).json()
        assert test["succeeded"] and test["status_code"] == 200
        last = receiver.received()[-1]
        last.verify(secret)
        last.verify(new_secret["secret"])

    assert api.get("/metrics").status_code == 200
    assert httpx.get(base + "/ui/login").status_code == 200
    assert api.get("/v1/endpoints", headers={"Authorization": "Bearer wrong"}).status_code == 401
