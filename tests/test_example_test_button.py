"""examples/test_button.py run as written: a product's "Send test event" page in
front of the real service (``webhooks serve`` on SQLite and on PostgreSQL) and
a real receiver, each its own process or server on 127.0.0.1.

The browser tests drive the page in headless Chromium (tests/helpers/browser.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from producer import Producer
from tests.helpers.browser import needs_chromium
from tests.helpers.processes import free_port, running, webhooks_service
from tests.helpers.receiver import Receiver

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "test_button.py"
AS_THE_PAGE_SENDS = {"event_type": "webhook.test", "data": None}


@dataclass
class Running:
    """The example serving its page for one endpoint of tenant acme."""

    page_url: str
    api: httpx.Client  # the service, with the admin key
    receiver: Receiver  # the endpoint is its /hooks
    endpoint_id: str
    secret: str


@pytest.fixture
def example(database_url: str, receiver: Receiver) -> Iterator[Running]:
    """The service, a receiver registered for acme, and the example with a key of acme."""
    with (
        webhooks_service(database_url) as (base_url, admin_key),
        httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"}) as api,
    ):
        created = api.post("/v1/endpoints", json={"url": receiver.url("/hooks"), "tenant": "acme"})
        assert created.status_code == 201, created.text
        endpoint = created.json()
        # What `webhooks keys create --tenant acme` does, without starting Python again.
        hooks = Producer(database_url)
        _, tenant_key = hooks.create_api_key(tenant="acme")
        hooks.close()
        port = free_port()
        page_url = f"http://127.0.0.1:{port}/"
        args = ["--api", base_url, "--key", tenant_key, "--endpoint", endpoint["id"]]
        with running(
            [sys.executable, str(EXAMPLE), *args, "--port", str(port)], ready_url=page_url
        ):
            yield Running(page_url, api, receiver, endpoint["id"], endpoint["secret"])


def test_the_button_route_sends_a_signed_test_event_and_reports_success(
    example: Running,
) -> None:
    answer = httpx.post(example.page_url + "test", json=AS_THE_PAGE_SENDS, timeout=30)

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["succeeded"] is True
    assert result["status_code"] == 200
    [request] = example.receiver.received("/hooks")
    request.verify(example.secret)
    assert json.loads(request.body)["type"] == "webhook.test"
    attempts = example.api.get(f"/v1/deliveries/{result['delivery_id']}/attempts").json()
    assert [a["trigger"] for a in attempts["data"]] == ["test"]


def test_a_failing_receiver_is_reported_as_failed_with_its_status(example: Running) -> None:
    example.receiver.script("/hooks", [500])

    result = httpx.post(example.page_url + "test", json=AS_THE_PAGE_SENDS, timeout=30).json()

    assert result["succeeded"] is False
    assert result["status_code"] == 500
    assert result["response_body"] == "status 500"


def test_the_page_shows_the_endpoint_but_never_an_api_key(example: Running) -> None:
    page = httpx.get(example.page_url)

    assert page.status_code == 200
    assert example.endpoint_id in page.text
    assert example.receiver.url("/hooks") in page.text
    assert "whk_" not in page.text


def _press_the_button(browser: Any, example: Running, *, data: str) -> Any:
    """Open the page, type ``data``, press "Send test event"; returns the result region."""
    page = browser.new_page()
    page.goto(example.page_url)
    page.get_by_label("Data (JSON, optional)").fill(data)
    page.get_by_role("button", name="Send test event").click()
    return page.get_by_role("status")


@needs_chromium
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_pressing_the_button_shows_the_receivers_answer(example: Running, browser: Any) -> None:
    """In headless Chromium, on SQLite only: the tests above cover PostgreSQL."""
    from playwright.sync_api import expect

    result = _press_the_button(browser, example, data='{"plan": "pro"}')

    expect(result).to_contain_text("succeeded: HTTP 200")
    expect(result.locator("pre")).to_have_text("status 200")
    [request] = example.receiver.received("/hooks")
    assert json.loads(request.body)["data"] == {"plan": "pro"}


@needs_chromium
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_data_that_is_not_json_is_refused_in_the_page(example: Running, browser: Any) -> None:
    """In headless Chromium, on SQLite only: nothing is sent, the page says why."""
    from playwright.sync_api import expect

    result = _press_the_button(browser, example, data="{plan: pro}")

    expect(result).to_contain_text("not valid JSON")
    assert example.receiver.received() == []
