"""The self-service portal in a real browser: headless Chromium driven by
Playwright, through portal links as a host product hands them out.

Uses Debian's ``chromium`` package, never a browser downloaded by Playwright.
Runs on SQLite only: tests/test_portal.py covers both databases. Screenshots
go to pytest's temporary directory (and to ``$WEBHOOKS_TEST_SCREENSHOTS``
when set, to look at them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from producer import Producer
from tests.helpers.browser import needs_chromium, screenshot
from tests.helpers.producers import FAST
from tests.helpers.receiver import LocalServer, Receiver
from tests.helpers.ui import add_catalog, build_app

pytestmark = [needs_chromium, pytest.mark.slow]


@pytest.fixture
def producer(tmp_path: Path) -> Iterator[Producer]:
    """The usual ``FAST`` producer with the test catalog, on SQLite only."""
    p = Producer(f"sqlite:///{tmp_path / 'webhooks.db'}", **FAST)
    add_catalog(p)
    yield p
    p.close()


def _link(base_url: str, admin_key: str, tenant: str, capabilities: list[str]) -> str:
    response = httpx.post(
        f"{base_url}/v1/portal-links",
        json={"tenant": tenant, "ttl_seconds": 600, "capabilities": capabilities},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["url"])


def _open(browser: Any, url: str, **context: Any) -> Any:
    """A new browser context opening the portal link ``url`` from another site."""
    page = browser.new_context(**context).new_page()
    page.set_content(f'<a id="open" href="{url}">webhooks</a>')
    page.click("#open")
    page.wait_for_url(re.compile(r"/ui/endpoints$"))
    return page


def _post(page: Any, path: str, form: dict[str, str]) -> Any:
    """POST ``form`` with the page's cookies and CSRF token, as a forged form would."""
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    origin = re.match(r"https?://[^/]+", page.url)
    assert origin is not None
    return page.context.request.post(origin.group(0) + path, form={"csrf": csrf, **form})


def test_a_portal_user_manages_their_endpoints(
    browser: Any, producer: Producer, receiver: Receiver, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _, admin_key = producer.create_api_key(name="admin")
    # Sent before the endpoint exists: the replay below offers it.
    producer.send("user.created", {"user": "u_0"}, tenant="acme")
    other = producer.create_endpoint(receiver.url("/globex"), tenant="globex")
    with LocalServer(build_app(producer)) as base_url:
        page = _open(browser, _link(base_url, admin_key, "acme", ["manage", "operate"]))
        expect(page.locator("#endpoints")).not_to_contain_text(other.url)

        # The form: a payload filter the library refuses comes back beside
        # its field, naming the failing path, the rest as typed.
        page.click("#new-endpoint")
        page.fill("#f-url", receiver.url("/acme/hooks"))
        page.fill("#f-description", "Billing")
        page.uncheck("input[name=event_types][value='*']")
        page.check("input[name=event_types][value='invoice.*']")
        page.fill("#f-headers", "X-Team: billing")
        page.fill("#f-filter", '{"amount": {"$gt": []}}')
        screenshot(page, tmp_path, "endpoint-form")
        page.click("#save")
        error = page.locator("#error-filter")
        expect(error).to_have_text("filter.amount.$gt: must be a number or a string")
        expect(page.locator("#f-filter")).to_have_attribute(
            "aria-describedby", "hint-filter error-filter"
        )
        expect(page.locator("#f-url")).to_have_value(receiver.url("/acme/hooks"))
        expect(page.locator("input[value='invoice.*']")).to_be_checked()
        screenshot(page, tmp_path, "endpoint-form-errors")
        page.fill("#f-filter", '{"amount": {"$gte": 100}}')
        page.click("#save")

        # The secret, shown once, with a copy button.
        expect(page.locator("h1")).to_have_text("Endpoint created")
        expect(page.get_by_role("button", name="Copy")).to_be_visible()
        secret = page.locator("#new-secret").inner_text().strip()
        assert secret.startswith("whsec_")
        screenshot(page, tmp_path, "secret-once")
        [endpoint] = producer.list_endpoints(tenant="acme").data
        assert endpoint.event_types == ["invoice.*"]
        assert endpoint.headers == {"X-Team": "billing"}
        assert endpoint.filter == {"amount": {"$gte": 100}}

        # A test send of a catalog event, its example edited, arrives signed
        # with that secret.
        page.click("#to-endpoint")
        page.click("#test-form-link")
        page.select_option("#example-type", "invoice.paid")
        page.click("#load-example")
        example = json.loads(page.locator("#f-data").input_value())
        assert example == {"invoice": "in_42", "amount": 1999, "currency": "EUR"}
        page.fill("#f-data", json.dumps({**example, "amount": 2500}))
        page.click("#send")
        expect(page.locator("#test-outcome")).to_contain_text("HTTP 200")
        [received] = receiver.wait_for(1, path="/acme/hooks")
        received.verify(secret)
        assert json.loads(received.body)["data"]["amount"] == 2500
        assert json.loads(received.body)["type"] == "invoice.paid"
        screenshot(page, tmp_path, "test-result")

        # Edit its event types (and drop the filter).
        page.get_by_role("link", name=endpoint.url).first.click()
        page.click("#edit")
        expect(page.locator("#f-headers")).to_have_value("X-Team: billing")
        page.uncheck("input[value='invoice.*']")
        page.check("input[value='user.created']")
        page.fill("#f-filter", "")
        page.click("#save")
        expect(page.locator(".notice")).to_contain_text("settings are saved")
        expect(page.locator("#event-types")).to_have_text("user.created")
        edited = producer.get_endpoint(endpoint.id)
        assert (edited.event_types, edited.filter) == (["user.created"], None)
        assert edited.headers == {"X-Team": "billing"}

        # Replay: the confirmation counts what it will queue.
        page.click("#replay")
        expect(page.locator("#replay-count")).to_contain_text("1 delivery will be queued")
        screenshot(page, tmp_path, "replay-confirm")
        page.click("#confirm-replay")
        expect(page.locator(".notice")).to_contain_text("1 delivery is queued")

        # The catalog, linked from the navigation.
        page.get_by_role("link", name="Event catalog").click()
        entry = page.locator("#type-invoice\\.paid")
        expect(entry).to_contain_text("An invoice was paid in full.")
        expect(entry.locator(".schema-fields").first).to_contain_text("customer.email")
        expect(entry.locator("pre.example").last).to_contain_text('"in_42"')
        screenshot(page, tmp_path, "catalog")

        # Another tenant's endpoint cannot be seen or changed, by URL either.
        for path in (f"/ui/endpoints/{other.id}", f"/ui/endpoints/{other.id}/edit"):
            answer = page.goto(base_url + path)
            assert answer is not None and answer.status == 404, path
        page.goto(f"{base_url}/ui/endpoints")
        changed = _post(page, f"/ui/endpoints/{other.id}/edit", {"url": receiver.url("/stolen")})
        deleted = _post(page, f"/ui/endpoints/{other.id}/delete", {})
        assert (changed.status, deleted.status) == (404, 404)
        assert producer.get_endpoint(other.id).url == other.url

        # Delete, after a confirmation.
        page.goto(f"{base_url}/ui/endpoints/{endpoint.id}")
        screenshot(page, tmp_path, "endpoint")
        page.click("#delete")
        screenshot(page, tmp_path, "delete-confirm")
        page.click("#confirm")
        expect(page.locator(".notice")).to_contain_text("endpoint is deleted")
        expect(page.locator("#endpoints")).to_contain_text("No endpoints.")
        assert producer.list_endpoints(tenant="acme").data == []


def test_a_read_only_link_shows_no_management_and_its_posts_are_refused(
    browser: Any, producer: Producer, receiver: Receiver, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _, admin_key = producer.create_api_key(name="admin")
    endpoint = producer.create_endpoint(receiver.url("/acme"), tenant="acme")
    with LocalServer(build_app(producer)) as base_url:
        page = _open(browser, _link(base_url, admin_key, "acme", ["read"]))
        expect(page.locator(".who")).to_contain_text("read only")
        expect(page.locator("#new-endpoint")).to_have_count(0)
        page.get_by_role("link", name=endpoint.url).click()
        # The only form that posts is signing out.
        expect(page.locator("form[method=post]")).to_have_count(1)
        expect(page.locator("#edit, #delete, #send-test, #disable")).to_have_count(0)
        for path, form in (
            (f"/ui/endpoints/{endpoint.id}/disable", {}),
            (f"/ui/endpoints/{endpoint.id}/delete", {}),
            (f"/ui/endpoints/{endpoint.id}/edit", {"url": receiver.url("/x")}),
            ("/ui/endpoints/new", {"url": receiver.url("/x")}),
        ):
            assert _post(page, path, form).status == 403, path
        assert page.goto(f"{base_url}/ui/endpoints/new").status == 403  # type: ignore[union-attr]
        expect(page.locator("h1")).to_have_text("Not allowed")
        stored = producer.get_endpoint(endpoint.id)
        assert (stored.status, stored.url) == ("enabled", endpoint.url)
        assert len(producer.list_endpoints(tenant="acme").data) == 1


def test_the_portal_follows_a_dark_browser_theme_and_the_hosts_colour(
    browser: Any, tmp_path: Path, receiver: Receiver
) -> None:
    from playwright.sync_api import expect

    producer = Producer(
        f"sqlite:///{tmp_path / 'themed.db'}",
        **FAST,
        ui_brand_name="Acme Cloud",
        ui_accent_color="#e4572e",
    )
    try:
        add_catalog(producer)
        _, admin_key = producer.create_api_key(name="admin")
        producer.create_endpoint(receiver.url("/acme"), tenant="acme")
        with LocalServer(build_app(producer)) as base_url:
            link = _link(base_url, admin_key, "acme", ["manage"])
            page = _open(browser, link, color_scheme="dark")
            expect(page.locator(".brand")).to_have_text("Acme Cloud")
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(18, 21, 28)"
            button = page.locator("#new-endpoint")
            color = button.evaluate("e => getComputedStyle(e).backgroundColor")
            assert color == "rgb(228, 87, 46)"
            # Keyboard users see where they are.
            page.keyboard.press("Tab")
            skip = page.get_by_role("link", name="Skip to content")
            expect(skip).to_be_focused()
            assert skip.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
            screenshot(page, tmp_path, "dark-endpoints")
            button.click()
            screenshot(page, tmp_path, "dark-endpoint-form")
            page.goto(f"{base_url}/ui/event-types")
            screenshot(page, tmp_path, "dark-catalog")
    finally:
        producer.close()


def test_the_forms_work_without_javascript(
    browser: Any, producer: Producer, receiver: Receiver, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _, admin_key = producer.create_api_key(name="admin")
    with LocalServer(build_app(producer)) as base_url:
        link = _link(base_url, admin_key, "acme", ["manage", "operate"])
        page = _open(browser, link, java_script_enabled=False)
        page.click("#new-endpoint")
        page.fill("#f-url", receiver.url("/acme/plain"))
        page.click("#save")
        expect(page.locator("h1")).to_have_text("Endpoint created")
        # The copy button needs the script: without it, it is not offered.
        expect(page.get_by_role("button", name="Copy")).to_be_hidden()
        page.click("#to-endpoint")
        page.click("#send-test")
        expect(page.locator("#test-outcome")).to_contain_text("HTTP 200")
        page.click("#delete")
        page.click("#confirm")
        expect(page.locator(".notice")).to_contain_text("endpoint is deleted")
    assert producer.list_endpoints(tenant="acme").data == []
