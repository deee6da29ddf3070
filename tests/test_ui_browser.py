"""The UI in a real browser: headless Chromium driven by Playwright.

Uses Debian's ``chromium`` package, never a browser downloaded by Playwright.
Runs on SQLite only: the database layer is covered by tests/test_ui.py.
Screenshots go to pytest's temporary directory, never into the repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from producer import Producer
from tests.helpers.browser import needs_chromium
from tests.helpers.producers import FAST
from tests.helpers.receiver import LocalServer, Receiver
from tests.helpers.ui import build_app, failed_by_worker

pytestmark = [needs_chromium, pytest.mark.slow]


@pytest.fixture
def producer(tmp_path: Path) -> Iterator[Producer]:
    """The usual ``FAST`` producer, on SQLite only: tests/test_ui.py covers both
    databases."""
    p = Producer(f"sqlite:///{tmp_path / 'webhooks.db'}", **FAST)
    yield p
    p.close()


def test_an_admin_and_a_portal_user_find_their_way(
    browser: Any, producer: Producer, receiver: Receiver, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _, admin_key = producer.create_api_key(name="admin")
    with LocalServer(build_app(producer)) as base_url:
        failing, delivery_id = failed_by_worker(producer, receiver, "acme")
        other = producer.create_endpoint(receiver.url("/globex"), tenant="globex")

        # An admin signs in and sees the failing endpoint.
        admin = browser.new_context()
        page = admin.new_page()
        page.goto(f"{base_url}/ui/endpoints")
        expect(page).to_have_url(re.compile(r"/ui/login\?next="))
        page.fill("input[name=api_key]", admin_key)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{base_url}/ui/endpoints")
        row = page.locator("#endpoints tr", has_text=failing.url)
        expect(row).to_contain_text("1 failure in a row")
        expect(row).to_contain_text("0.0%")

        # ... opens it, then its failed delivery, and retries it.
        row.get_by_role("link", name=failing.url).click()
        expect(page.locator("#hourly-chart rect.failed")).to_have_count(1)
        page.get_by_role("link", name=delivery_id).click()
        expect(page.locator("#delivery-status")).to_have_text("failed")
        expect(page.locator(".attempt")).to_contain_text("HTTP 500")
        page.click("#retry")
        expect(page.locator(".notice")).to_contain_text("queued to be sent again")
        expect(page.locator("#delivery-status")).to_have_text("pending")
        assert producer.get_delivery(delivery_id).status == "pending"

        # ... and presses "Send test event": the answer shows on the endpoint
        # page, whose deliveries and figures count the new delivery.
        page.get_by_role("link", name=failing.url).click()
        endpoint_path = urlsplit(page.url).path
        receiver.script("/acme/fail", [503])
        page.click("#send-test")
        expect(page.locator("#test-outcome")).to_contain_text("HTTP 503")
        expect(page.locator("#test-outcome pre")).to_have_text("status 503")
        assert urlsplit(page.url).path == endpoint_path
        [tested, _] = producer.list_deliveries(endpoint_id=failing.id).data
        expect(page.get_by_role("link", name=tested.id)).to_be_visible()
        expect(page.locator("#latency")).to_have_text(
            "latency: no successful delivery in these 24 hours"
        )
        expect(page.locator("#hourly-chart rect.failed")).to_have_count(1)
        expect(page.locator("#hourly-chart")).to_have_attribute(
            "aria-label", re.compile("0 succeeded, 1 failed, 1 retrying")
        )
        page.screenshot(path=str(tmp_path / "endpoint.png"), full_page=True)

        # A second test send succeeds; retrying it asks for "force", on the page.
        page.click("#send-test")
        expect(page.locator("#test-outcome")).to_contain_text("Test event accepted")
        page.locator("#test-outcome").get_by_role("link", name="see the delivery").click()
        expect(page.locator("#delivery-status")).to_have_text("succeeded")
        box, label = (
            page.locator("#force").bounding_box(),
            page.locator("label.check").bounding_box(),
        )
        assert box is not None and label is not None
        assert label["height"] < 2 * box["height"], "the checkbox sits beside its label, not above"
        page.click("#retry")
        expect(page.locator("#retry-refused")).to_have_text(
            "This delivery succeeded; tick “force” to send it again."
        )
        page.screenshot(path=str(tmp_path / "retry-refused.png"), full_page=True)
        page.check("#force")
        page.click("#retry")
        expect(page.locator(".notice")).to_contain_text("queued to be sent again")

        # A wrong address still shows the way back.
        page.goto(f"{base_url}/ui/no-such-page")
        expect(page.locator("h1")).to_have_text("Not found")
        expect(page.locator("header nav")).to_contain_text("Endpoints")
        admin.close()

        # A host app makes a portal link; its user, arriving from another
        # site, sees their endpoint and cannot reach another tenant's.
        response = httpx.post(
            f"{base_url}/v1/portal-links",
            json={"tenant": "acme", "ttl_seconds": 600},
            headers={"Authorization": f"Bearer {admin_key}"},
        )
        assert response.status_code == 201
        portal = browser.new_context().new_page()
        portal.set_content(f'<a id="open" href="{response.json()["url"]}">webhooks</a>')
        portal.click("#open")
        expect(portal).to_have_url(f"{base_url}/ui/endpoints")
        expect(portal.locator("#endpoints")).to_contain_text(failing.url)
        expect(portal.locator("#endpoints")).not_to_contain_text(other.url)
        expect(portal.locator(".who")).to_contain_text("acme")
        answer = portal.goto(f"{base_url}/ui/endpoints/{other.id}")
        assert answer is not None and answer.status == 404
        expect(portal.locator("h1")).to_have_text("Not found")
        expect(portal.locator(".who")).to_have_text(re.compile(r"Tenant\s+acme"))
        portal.get_by_role("link", name="Endpoints", exact=True).click()
        expect(portal.locator("#endpoints")).to_contain_text(failing.url)
        portal.screenshot(path=str(tmp_path / "portal.png"), full_page=True)
