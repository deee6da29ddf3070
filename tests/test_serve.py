"""``webhooks serve`` as a user runs it: a real process, driven over HTTP.

Register an endpoint, send, watch the log, see a failure, retry it, rotate
the secret, press test — the tour the quick start gives with curl.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers.processes import webhooks_service
from tests.helpers.waiting import wait_for_value

pytestmark = pytest.mark.slow


@pytest.fixture
def service(database_url: str) -> Iterator[tuple[str, str]]:
    with webhooks_service(database_url) as (base, key):
        yield base, key


def test_the_quick_start_tour_over_http(service, receiver):
    base, key = service
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"})
    assert re.fullmatch(r"whk_\S+", key)
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

    log = wait_for_value(
        lambda: api.get("/v1/deliveries", params={"message_id": message_id}).json()["data"],
        lambda rows: rows and rows[0]["status"] == "failed",
    )
    delivery_id = log[0]["id"]
    [attempt] = api.get(f"/v1/deliveries/{delivery_id}/attempts").json()["data"]
    assert attempt["response"]["status_code"] == 500

    assert api.post(f"/v1/deliveries/{delivery_id}/retry").status_code == 202
    wait_for_value(
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
