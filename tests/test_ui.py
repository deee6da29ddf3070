"""The web UI and portal links, through FastAPI's test client.

Each test builds a bare FastAPI app holding only the two UI routers, over a
producer on SQLite and on PostgreSQL. Deliveries that must fail or succeed
go to a real local receiver, sent by the test send or a worker thread.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.ui.charts import bar_chart, hour_window, hourly_counts
from api.ui.pages import SESSION_COOKIE
from api.ui.tokens import ExpiredToken, InvalidToken, PortalGrant, Signer, resolve_secret
from producer import HourlyCount, Producer
from producer.settings import Settings
from tests.helpers.receiver import Receiver
from tests.helpers.ui import (
    SECRET,
    build_app,
    csrf_of,
    failed_by_worker,
    retrying_by_worker,
    sign_in,
)
from tests.helpers.waiting import wait_until

# -- signing in -------------------------------------------------------------------


def test_pages_send_visitors_without_a_session_to_sign_in(client: TestClient) -> None:
    response = client.get("/ui/endpoints?status=enabled", follow_redirects=False)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/ui/login"
    assert parse_qs(location.query)["next"] == ["/ui/endpoints?status=enabled"]


def test_signing_in_with_an_admin_key_sets_a_strict_httponly_signed_cookie(
    client: TestClient, admin_key: str
) -> None:
    form = client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={"csrf": csrf_of(form.text), "api_key": admin_key, "next": "/ui/messages"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/messages"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/ui" in cookie
    assert admin_key not in cookie
    page = client.get("/ui/endpoints")
    assert page.status_code == 200
    assert "Admin" in page.text


def test_signing_in_with_a_wrong_key_is_refused(client: TestClient) -> None:
    form = client.get("/ui/login")
    response = client.post("/ui/login", data={"csrf": csrf_of(form.text), "api_key": "whk_nope"})
    assert response.status_code == 401
    assert "That API key is not valid." in response.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/ui/endpoints", follow_redirects=False).status_code == 303


def test_the_sign_in_form_needs_its_own_token(client: TestClient, admin_key: str) -> None:
    client.get("/ui/login")
    response = client.post("/ui/login", data={"csrf": "forged", "api_key": admin_key})
    assert response.status_code == 403
    assert SESSION_COOKIE not in client.cookies


def test_signing_in_never_redirects_off_the_ui(client: TestClient, admin_key: str) -> None:
    form = client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={"csrf": csrf_of(form.text), "api_key": admin_key, "next": "//evil.example/ui"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/ui/endpoints"


def test_a_tampered_session_cookie_counts_as_signed_out(
    admin: tuple[TestClient, str],
) -> None:
    client, _ = admin
    token = client.cookies[SESSION_COOKIE]
    body, signature = token.split(".")
    client.cookies.set(SESSION_COOKIE, body + "." + signature[::-1], path="/ui")
    assert client.get("/ui/endpoints", follow_redirects=False).status_code == 303


def test_a_cookie_signed_with_another_secret_counts_as_signed_out(
    producer: Producer, admin_key: str
) -> None:
    with TestClient(build_app(producer)) as first:
        sign_in(first, admin_key)
        token = first.cookies[SESSION_COOKIE]
    with TestClient(build_app(producer, secret=b"another-secret-of-32-bytes-long!")) as second:
        second.cookies.set(SESSION_COOKIE, token, path="/ui")
        assert second.get("/ui/endpoints", follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session(admin: tuple[TestClient, str]) -> None:
    client, csrf = admin
    response = client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/ui/endpoints", follow_redirects=False).status_code == 303


def test_signing_out_of_a_portal_session_says_how_to_come_back(
    client: TestClient, admin_key: str
) -> None:
    client.get(_link(client, admin_key, {"tenant": "acme"}).json()["url"])
    csrf = csrf_of(client.get("/ui/endpoints").text)
    response = client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 200
    assert "open the portal link again" in response.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/ui/endpoints", follow_redirects=False).status_code == 303


def test_a_tenant_key_sees_only_its_tenant(producer: Producer, client: TestClient) -> None:
    own = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    other = producer.create_endpoint("https://globex.example/hooks", tenant="globex")
    sign_in(client, producer.create_api_key(tenant="acme")[1])
    page = client.get("/ui/endpoints")
    assert own.url in page.text
    assert other.url not in page.text
    assert client.get(f"/ui/endpoints/{other.id}").status_code == 404


# -- CSRF ---------------------------------------------------------------------------


def test_a_form_without_the_csrf_token_changes_nothing(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    response = client.post(f"/ui/endpoints/{endpoint.id}/disable", data={"reason": "x"})
    assert response.status_code == 403
    assert "Form expired" in response.text
    assert producer.get_endpoint(endpoint.id).status == "enabled"


def test_the_csrf_token_of_another_session_is_refused(
    producer: Producer, admin: tuple[TestClient, str], admin_key: str
) -> None:
    client, _ = admin
    with TestClient(build_app(producer)) as other:
        foreign = sign_in(other, admin_key)
    endpoint = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    response = client.post(f"/ui/endpoints/{endpoint.id}/disable", data={"csrf": foreign})
    assert response.status_code == 403
    assert producer.get_endpoint(endpoint.id).status == "enabled"


def test_a_post_without_a_session_gets_a_page_not_a_redirect(client: TestClient) -> None:
    response = client.post("/ui/deliveries/dlv_x/retry", data={"csrf": "x"})
    assert response.status_code == 401
    assert "text/html" in response.headers["content-type"]


# -- pages --------------------------------------------------------------------------


def test_endpoints_page_shows_status_failing_since_and_success_rate(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    failing, _ = failed_by_worker(producer, receiver, "acme")
    paused = producer.create_endpoint("https://globex.example/hooks", tenant="globex")
    producer.disable_endpoint(paused.id, reason="paused by acme")
    page = client.get("/ui/endpoints")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    row = _row_of(page.text, failing.url)
    assert failing.failing_since is not None
    assert failing.failing_since.strftime("%Y-%m-%d %H:%M:%S UTC") in row
    assert "0.0%" in row
    assert "0 ok · 1 failed" in row
    assert "1 failure in a row" in row
    assert "paused by acme" in _row_of(page.text, paused.url)


def _row_of(html: str, text: str) -> str:
    rows = [row for row in html.split("<tr") if text in row]
    assert rows, f"no table row mentions {text}"
    return rows[0]


def test_endpoints_page_filters_by_status_and_tenant(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    on = producer.create_endpoint("https://on.example/hooks", tenant="acme")
    off = producer.create_endpoint("https://off.example/hooks", tenant="globex")
    producer.disable_endpoint(off.id)
    disabled = client.get("/ui/endpoints?status=disabled").text
    assert off.url in disabled and on.url not in disabled
    acme = client.get("/ui/endpoints?tenant=acme&status=").text
    assert on.url in acme and off.url not in acme


def test_endpoints_page_is_paginated_newest_first(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    urls = [
        producer.create_endpoint(f"https://e{i}.example/hooks", tenant="acme").url
        for i in range(30)
    ]
    first = client.get("/ui/endpoints")
    assert urls[29] in first.text and urls[5] in first.text and urls[4] not in first.text
    next_url = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_url
    second = client.get(next_url.group(1).replace("&amp;", "&"))
    assert urls[4] in second.text and urls[0] in second.text and urls[5] not in second.text
    assert 'rel="next"' not in second.text


def test_endpoint_page_shows_settings_chart_and_deliveries(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint, delivery_id = failed_by_worker(producer, receiver, "acme")
    producer.update_endpoint(
        endpoint.id, headers={"Authorization": "Bearer s3cr3t-value", "X-Team": "b"}
    )
    page = client.get(f"/ui/endpoints/{endpoint.id}")
    assert page.status_code == 200
    assert "acme billing" in page.text
    assert "X-Team: b" in page.text
    assert "s3cr3t-value" not in page.text
    assert '<svg class="chart"' in page.text
    assert page.text.count('<rect class="failed"') == 1
    assert "0 succeeded, 1 failed" in page.text
    assert delivery_id in page.text


def test_an_endpoint_that_never_succeeded_shows_no_latency(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint, _ = failed_by_worker(producer, receiver, "acme")
    assert producer.endpoint_stats(endpoint.id).latency_p50_ms is not None  # failed attempts
    page = client.get(f"/ui/endpoints/{endpoint.id}").text
    latency = re.search(r'<span id="latency">(.*?)</span>', page, re.S)
    assert latency and latency.group(1) == "latency: no successful delivery in these 24 hours"
    assert " ms" not in latency.group(1)


def test_an_endpoint_that_succeeded_shows_its_latency(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = producer.create_endpoint(receiver.url("/ok"), tenant="acme")
    producer.test_endpoint(endpoint.id)
    page = client.get(f"/ui/endpoints/{endpoint.id}").text
    assert re.search(r'<span id="latency">latency p50 \d+ ms, p95 \d+ ms</span>', page)


def test_the_chart_shows_the_retrying_deliveries_of_an_endpoint_that_never_succeeded(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint, delivery_id = retrying_by_worker(producer, receiver, "acme")
    assert producer.get_delivery(delivery_id).status == "pending"
    page = client.get(f"/ui/endpoints/{endpoint.id}").text
    assert page.count('<rect class="retrying"') == 1
    assert '<rect class="ok"' not in page
    assert "0 succeeded, 0 failed, 1 retrying" in page
    assert "busiest hour 1" in page


def test_endpoint_deliveries_filter_by_status_event_type_and_time(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = producer.create_endpoint(receiver.script("/mixed", [500]), tenant="acme")
    failed = producer.test_endpoint(endpoint.id)
    succeeded = producer.test_endpoint(endpoint.id)
    pending = producer.send("invoice.paid", {"n": 1}, tenant="acme")
    [queued] = producer.list_deliveries(message_id=pending.id).data
    base = f"/ui/endpoints/{endpoint.id}"

    page = client.get(f"{base}?status=failed").text
    assert failed.delivery_id in page and succeeded.delivery_id not in page
    page = client.get(f"{base}?event_type=invoice.paid").text
    assert queued.id in page and failed.delivery_id not in page
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    page = client.get(f"{base}?since={later}").text
    assert "No deliveries match." in page
    page = client.get(f"{base}?until={later}&status=succeeded").text
    assert succeeded.delivery_id in page and failed.delivery_id not in page


def test_endpoint_deliveries_are_paginated_newest_first(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    messages = [producer.send("invoice.paid", {"n": i}, tenant="acme") for i in range(27)]
    ids = [producer.list_deliveries(message_id=m.id).data[0].id for m in messages]
    first = client.get(f"/ui/endpoints/{endpoint.id}?status=pending").text
    assert first.index(ids[26]) < first.index(ids[2])
    assert ids[1] not in first
    next_url = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_url and "status=pending" in next_url.group(1)
    second = client.get(next_url.group(1).replace("&amp;", "&")).text
    assert ids[1] in second and ids[0] in second and ids[2] not in second


def test_a_bad_time_filter_gets_a_clear_page(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    response = client.get(f"/ui/endpoints/{endpoint.id}?since=yesterday")
    assert response.status_code == 422
    assert "since" in response.text and "Traceback" not in response.text
    response = client.get(f"/ui/endpoints/{endpoint.id}?status=lost")
    assert response.status_code == 422


def test_delivery_page_shows_every_attempt(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = producer.create_endpoint(
        receiver.script("/flaky", [503]), tenant="acme", retry_schedule=[0, 3600]
    )
    message = producer.send("invoice.paid", {"invoice": "in_7"}, tenant="acme")
    [delivery] = producer.list_deliveries(message_id=message.id).data
    with producer.start_worker_thread():
        receiver.wait_for(1, path="/flaky")
        wait_until(lambda: producer.list_attempts(delivery.id), what="the first attempt")
    [attempt] = producer.list_attempts(delivery.id)
    page = client.get(f"/ui/deliveries/{delivery.id}")
    assert page.status_code == 200
    assert "HTTP 503" in page.text
    assert "status 503" in page.text  # the response body
    assert "webhook-signature" in page.text
    assert "content-type" in page.text  # a response header
    assert attempt.next_attempt_at is not None
    assert f"next attempt {attempt.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC" in page.text
    assert "in_7" in page.text  # the payload
    assert endpoint.url in page.text


def test_messages_page_lists_messages_and_shows_the_payload(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    paid = producer.send("invoice.paid", {"invoice": "in_42"}, tenant="acme")
    producer.send("user.created", {"user": "u_1"}, tenant="acme")
    page = client.get("/ui/messages?event_type=invoice.paid")
    assert page.status_code == 200
    assert paid.id in page.text and "user.created" not in page.text
    detail = client.get(f"/ui/messages/{paid.id}")
    assert detail.status_code == 200
    assert "&#34;invoice&#34;: &#34;in_42&#34;" in detail.text
    assert endpoint.id in detail.text


def test_unknown_things_get_a_404_page(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    for path in ("/ui/endpoints/ep_nope", "/ui/deliveries/dlv_nope", "/ui/messages/msg_nope"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Not found" in response.text


def _navigation(html: str) -> str:
    header = re.search(r'<header class="top">(.*?)</header>', html, re.S)
    assert header, "the page has no header"
    return header.group(1)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ui/endpoints/ep_nope", 404),
        ("/ui/no/such/page", 404),
        ("/ui/endpoints?status=lost", 422),
    ],
)
def test_error_pages_keep_the_navigation_of_an_admin(
    admin: tuple[TestClient, str], path: str, status: int
) -> None:
    client, csrf = admin
    response = client.get(path)
    assert response.status_code == status
    assert "text/html" in response.headers["content-type"]
    nav = _navigation(response.text)
    assert 'href="/ui/endpoints">Endpoints</a>' in nav
    assert 'href="/ui/messages">Messages</a>' in nav
    assert "Admin" in nav
    assert csrf_of(nav) == csrf  # signing out works from the error page


def test_error_pages_keep_the_navigation_of_a_portal_session(
    producer: Producer, client: TestClient, admin_key: str
) -> None:
    other = producer.create_endpoint("https://globex.example/hooks", tenant="globex")
    client.get(_link(client, admin_key, {"tenant": "acme"}).json()["url"])
    for path in (f"/ui/endpoints/{other.id}", "/ui/nowhere"):
        response = client.get(path)
        assert response.status_code == 404
        nav = _navigation(response.text)
        assert "Tenant <strong>acme</strong>" in nav
        assert 'href="/ui/endpoints">Endpoints</a>' in nav


def test_an_unknown_address_gets_the_html_404_page_even_signed_out(client: TestClient) -> None:
    response = client.get("/ui/nowhere")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "Not found" in response.text
    assert "Sign out" not in response.text


def test_a_trailing_slash_leads_to_the_page_without_it(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    response = client.get("/ui/endpoints/?status=enabled", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/ui/endpoints?status=enabled"
    assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui"


def test_every_page_says_tenant(
    producer: Producer, receiver: Receiver, client: TestClient, admin_key: str
) -> None:
    endpoint = producer.create_endpoint(receiver.url("/t"), tenant="acme")
    result = producer.test_endpoint(endpoint.id)
    pages = [
        "/ui/login",
        "/ui/endpoints",
        f"/ui/endpoints/{endpoint.id}",
        f"/ui/deliveries/{result.delivery_id}",
        "/ui/messages",
        f"/ui/messages/{result.message_id}",
        "/ui/endpoints/ep_nope",
    ]
    seen = [client.get("/ui/login").text]
    sign_in(client, admin_key)
    seen += [client.get(path).text for path in pages]
    client.cookies.clear()
    link = _link(client, admin_key, {"tenant": "acme"}).json()["url"]
    seen += [client.get(link).text, client.get("/ui/endpoints").text]
    for html in seen:
        text = re.sub(r"<[^>]+>", " ", html)
        assert not re.search(r"\b(account|customer)s?\b", text, re.I), text
    assert all("tenant" in html.lower() for html in seen)


# -- actions ------------------------------------------------------------------------


def test_retry_puts_a_failed_delivery_back_in_the_queue(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint(receiver.script("/r", [500]), tenant="acme")
    result = producer.test_endpoint(endpoint.id)
    assert producer.get_delivery(result.delivery_id).status == "failed"
    response = client.post(f"/ui/deliveries/{result.delivery_id}/retry", data={"csrf": csrf})
    assert response.status_code == 200
    assert "queued to be sent again" in response.text
    assert producer.get_delivery(result.delivery_id).status == "pending"


def test_retrying_a_succeeded_delivery_without_force_explains_it_on_its_page(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint(receiver.url("/ok"), tenant="acme")
    result = producer.test_endpoint(endpoint.id)
    page = client.get(f"/ui/deliveries/{result.delivery_id}")
    force = re.search(r"<input[^>]*name=\"force\"[^>]*>", page.text)
    assert force and "required" not in force.group(0)  # no browser validation bubble
    refused = client.post(f"/ui/deliveries/{result.delivery_id}/retry", data={"csrf": csrf})
    assert refused.status_code == 409
    assert "This delivery succeeded; tick “force” to send it again." in refused.text
    assert 'id="retry"' in refused.text  # the delivery page, with its form
    assert producer.get_delivery(result.delivery_id).status == "succeeded"


def test_retrying_a_succeeded_delivery_with_force_queues_it(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint(receiver.url("/ok"), tenant="acme")
    result = producer.test_endpoint(endpoint.id)
    url = f"/ui/deliveries/{result.delivery_id}/retry"
    page = client.post(url, data={"csrf": csrf, "force": "on"})
    assert page.status_code == 200
    assert "queued to be sent again" in page.text
    assert producer.get_delivery(result.delivery_id).status == "pending"


def test_a_delivery_of_a_deleted_endpoint_offers_no_retry(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = producer.create_endpoint(receiver.script("/gone", [500]), tenant="acme")
    result = producer.test_endpoint(endpoint.id)
    producer.delete_endpoint(endpoint.id)
    page = client.get(f"/ui/deliveries/{result.delivery_id}")
    assert page.status_code == 200
    assert "(deleted)" in page.text
    assert 'id="retry"' not in page.text


def test_disable_and_enable_an_endpoint(producer: Producer, admin: tuple[TestClient, str]) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    base = f"/ui/endpoints/{endpoint.id}"
    page = client.post(f"{base}/disable", data={"csrf": csrf, "reason": "maintenance"})
    assert "The endpoint is disabled" in page.text
    assert producer.get_endpoint(endpoint.id).disabled_reason == "maintenance"
    page = client.post(f"{base}/enable", data={"csrf": csrf})
    assert "The endpoint is enabled" in page.text
    assert producer.get_endpoint(endpoint.id).status == "enabled"


def test_a_reason_too_long_to_keep_gets_a_clear_page(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    page = client.get(f"/ui/endpoints/{endpoint.id}").text
    assert 'name="reason" placeholder="reason (optional)" maxlength="16"' in page
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/disable", data={"csrf": csrf, "reason": "x" * 17}
    )
    assert response.status_code == 422
    assert "reason: at most 16 characters" in response.text
    assert producer.get_endpoint(endpoint.id).status == "enabled"


def test_rotating_the_secret_shows_the_new_one_once(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    response = client.post(f"/ui/endpoints/{endpoint.id}/rotate-secret", data={"csrf": csrf})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    shown = re.search(r'id="new-secret">([^<]+)<', response.text)
    assert shown
    current = producer.get_endpoint_secret(endpoint.id).secret
    assert shown.group(1) == current != endpoint.secret
    assert current not in client.get(f"/ui/endpoints/{endpoint.id}").text


def test_recover_requeues_the_failed_deliveries_of_a_window(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint(receiver.script("/down", [500, 500]), tenant="acme")
    failed = [producer.test_endpoint(endpoint.id).delivery_id for _ in range(2)]
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/recover", data={"csrf": csrf, "since": since, "until": ""}
    )
    assert response.status_code == 200
    assert "2 failed deliveries are queued to be sent again." in response.text
    assert {producer.get_delivery(d).status for d in failed} == {"pending"}


def test_recovering_an_empty_window_says_nothing_was_queued(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint("https://acme.example/hooks", tenant="acme")
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/recover", data={"csrf": csrf, "since": since}
    )
    assert "nothing was queued" in response.text


def test_send_test_event_shows_the_receivers_answer_on_the_endpoint_page(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint(receiver.script("/t", [418]), tenant="acme")
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/test", data={"csrf": csrf}, follow_redirects=False
    )
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == f"/ui/endpoints/{endpoint.id}"
    page = client.get(response.headers["location"])
    outcome = page.text[page.text.index('id="test-outcome"') :].split("</div>")[0]
    assert "Test event failed" in outcome and "HTTP 418" in outcome
    assert "status 418" in outcome
    assert len(receiver.received("/t")) == 1


def test_after_a_test_send_the_endpoint_page_lists_and_counts_the_new_delivery(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint(receiver.url("/t"), tenant="acme")
    page = client.post(f"/ui/endpoints/{endpoint.id}/test", data={"csrf": csrf})
    assert page.status_code == 200
    [delivery] = producer.list_deliveries(endpoint_id=endpoint.id).data
    assert "Test event accepted" in page.text
    assert f"<code>{delivery.id}</code></a></td>" in page.text  # in the deliveries table
    assert "1 succeeded · 0 failed · 0 pending" in page.text
    assert page.text.count('<rect class="ok"') == 1


def test_links_from_the_page_after_a_test_send_leave_its_answer_behind(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = producer.create_endpoint(receiver.url("/t"), tenant="acme")
    for i in range(26):
        producer.send("invoice.paid", {"n": i}, tenant="acme")
    page = client.post(f"/ui/endpoints/{endpoint.id}/test", data={"csrf": csrf})
    next_url = re.search(r'href="([^"]+)" rel="next"', page.text)
    assert next_url and "test=" not in next_url.group(1)
    assert 'id="test-outcome"' not in client.get(next_url.group(1).replace("&amp;", "&")).text


def test_a_test_answer_is_shown_only_for_a_test_send_of_that_endpoint(
    producer: Producer, receiver: Receiver, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = producer.create_endpoint(receiver.url("/a"), tenant="acme")
    other = producer.create_endpoint(receiver.url("/b"), tenant="acme")
    foreign = producer.test_endpoint(other.id).delivery_id
    message = producer.send("invoice.paid", {"n": 1}, tenant="acme")
    [scheduled] = producer.list_deliveries(message_id=message.id, endpoint_id=endpoint.id).data
    for delivery_id in (foreign, scheduled.id, "dlv_nope"):
        page = client.get(f"/ui/endpoints/{endpoint.id}?test={delivery_id}")
        assert page.status_code == 200
        assert 'id="test-outcome"' not in page.text


# -- portal links -------------------------------------------------------------------


def _link(client: TestClient, key: str | None, body: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return client.post("/v1/portal-links", json=body, headers=headers)


def _assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    return error


def test_portal_links_need_an_api_key(client: TestClient) -> None:
    response = _link(client, None, {"tenant": "acme"})
    _assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    _assert_error(_link(client, "whk_wrong", {"tenant": "acme"}), 401, "unauthorized")


def test_portal_links_need_an_admin_key(producer: Producer, client: TestClient) -> None:
    tenant_key = producer.create_api_key(tenant="acme")[1]
    _assert_error(_link(client, tenant_key, {"tenant": "acme"}), 403, "forbidden")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.tenant"),
        ({"tenant": "no spaces"}, "body.tenant"),
        ({"tenant": "acme", "ttl_seconds": 10}, "body.ttl_seconds"),
        ({"tenant": "acme", "ttl_seconds": 8 * 86400}, "body.ttl_seconds"),
        ({"tenant": "acme", "ttl_seconds": "60"}, "body.ttl_seconds"),
        ({"tenant": "acme", "scope": "all"}, "body.scope"),
    ],
)
def test_portal_links_reject_bad_input(
    client: TestClient, admin_key: str, body: dict[str, Any], field: str
) -> None:
    error = _assert_error(_link(client, admin_key, body), 422, "validation_error")
    assert error["details"][0]["field"] == field


def test_a_portal_link_opens_the_ui_for_its_tenant_only(
    producer: Producer, receiver: Receiver, client: TestClient, admin_key: str
) -> None:
    own = producer.create_endpoint(receiver.url("/acme"), tenant="acme")
    other = producer.create_endpoint(receiver.url("/globex"), tenant="globex")
    other_test = producer.test_endpoint(other.id)
    before = datetime.now(UTC)
    response = _link(client, admin_key, {"tenant": "acme", "ttl_seconds": 600})
    after = datetime.now(UTC)
    assert response.status_code == 201
    link = response.json()
    assert set(link) == {"url", "expires_at", "capabilities"}
    assert link["capabilities"] == ["read", "operate"]
    assert link["url"].startswith("http://testserver/ui/portal?token=")
    expires_at = datetime.fromisoformat(link["expires_at"])
    # 600 s from when the link was made (in whole seconds), however long the
    # request took on a loaded machine.
    ttl = timedelta(seconds=600)
    assert before + ttl - timedelta(seconds=1) < expires_at <= after + ttl

    opened = client.get(link["url"])
    assert opened.status_code == 200
    assert 'http-equiv="refresh"' in opened.text
    assert SESSION_COOKIE in client.cookies
    page = client.get("/ui/endpoints")
    assert own.url in page.text and other.url not in page.text
    assert "Tenant <strong>acme</strong>" in page.text
    for path in (
        f"/ui/endpoints/{other.id}",
        f"/ui/deliveries/{other_test.delivery_id}",
        f"/ui/messages/{other_test.message_id}",
    ):
        assert client.get(path).status_code == 404, path
    csrf = csrf_of(page.text)
    refused = client.post(f"/ui/endpoints/{other.id}/disable", data={"csrf": csrf})
    assert refused.status_code == 404
    assert producer.get_endpoint(other.id).status == "enabled"


def test_an_expired_portal_link_gets_a_clear_page(producer: Producer, client: TestClient) -> None:
    token = Signer(SECRET).portal_token("acme", datetime.now(UTC) - timedelta(seconds=1))
    response = client.get(f"/ui/portal?token={token}")
    assert response.status_code == 401
    assert "text/html" in response.headers["content-type"]
    assert "This link has expired" in response.text
    assert SESSION_COOKIE not in client.cookies


@pytest.mark.parametrize("change", ["tenant", "signature", "truncate", "missing"])
def test_a_tampered_portal_link_gets_a_clear_page(
    client: TestClient, admin_key: str, change: str
) -> None:
    url = _link(client, admin_key, {"tenant": "acme"}).json()["url"]
    token = url.split("token=", 1)[1]
    body, signature = token.split(".")
    forged = {
        "tenant": Signer(SECRET)
        .portal_token("globex", datetime.now(UTC) + timedelta(hours=1))
        .split(".")[0]
        + "."
        + signature,
        "signature": body + "." + signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB"),
        "truncate": token[:20],
        "missing": "",
    }[change]
    response = client.get(f"/ui/portal?token={forged}")
    assert response.status_code == 403
    assert "This link is not valid" in response.text
    assert "Traceback" not in response.text
    assert SESSION_COOKIE not in client.cookies


def test_a_portal_token_is_no_session_cookie(client: TestClient, admin_key: str) -> None:
    url = _link(client, admin_key, {"tenant": "acme"}).json()["url"]
    client.cookies.set(SESSION_COOKIE, url.split("token=", 1)[1], path="/ui")
    assert client.get("/ui/endpoints", follow_redirects=False).status_code == 303


# -- pure parts: tokens and charts ------------------------------------------------


def test_tokens_verify_only_for_their_purpose_and_until_expiry() -> None:
    signer = Signer(SECRET)
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    token = signer.portal_token("acme", now + timedelta(minutes=5))
    assert signer.portal(token, now) == PortalGrant(
        "acme", now + timedelta(minutes=5), frozenset({"read", "operate"})
    )
    with pytest.raises(ExpiredToken):
        signer.portal(token, now + timedelta(minutes=5))
    with pytest.raises(InvalidToken):
        signer.session(token, now)
    with pytest.raises(InvalidToken):
        Signer(b"x" * 32).portal(token, now)


def test_csrf_tokens_belong_to_one_session() -> None:
    signer = Signer(SECRET)
    assert signer.check_csrf("s1", signer.csrf_token("s1"))
    assert not signer.check_csrf("s2", signer.csrf_token("s1"))
    assert not signer.check_csrf("s1", None)


class _SettingsHolder:
    """Stands in for a Producer: only ``settings`` is read."""

    def __init__(self, ui_secret: str | None = None) -> None:
        self.settings = Settings(database_url="sqlite://", ui_secret=ui_secret)


def test_routers_of_one_producer_share_a_generated_secret() -> None:
    producer = _SettingsHolder()
    assert resolve_secret(producer, None) == resolve_secret(producer, None)
    assert resolve_secret(_SettingsHolder(), None) != resolve_secret(producer, None)
    assert resolve_secret(_SettingsHolder(ui_secret="s" * 32), None) == b"s" * 32
    with pytest.raises(ValueError, match="at least 16 bytes"):
        resolve_secret(producer, b"short")


def test_hour_window_covers_the_current_hour_and_the_23_before() -> None:
    since, until = hour_window(datetime(2026, 11, 22, 10, 37, tzinfo=UTC))
    assert since == datetime(2026, 11, 21, 11, tzinfo=UTC)
    assert until == datetime(2026, 11, 22, 11, tzinfo=UTC)


def test_bar_chart_scales_the_busiest_hour_to_the_full_height() -> None:
    start = datetime(2026, 11, 22, 0, tzinfo=UTC)
    hours = [HourlyCount(start + timedelta(hours=i), i, 1 if i == 2 else 0) for i in range(3)]
    chart = bar_chart(hours, width=300, height=120)
    assert chart.maximum == 3
    busiest = chart.bars[2]
    assert busiest.succeeded_height + busiest.failed_height == pytest.approx(chart.plot_height)
    assert busiest.failed_y == pytest.approx(0)
    assert chart.bars[0].succeeded_height == 0
    assert (chart.total_succeeded, chart.total_failed) == (3, 1)


def test_bar_chart_stacks_retrying_on_failed_on_succeeded() -> None:
    hour = datetime(2026, 11, 22, 0, tzinfo=UTC)
    chart = bar_chart([HourlyCount(hour, 2, 1, retrying=1)], width=100, height=100)
    [bar] = chart.bars
    assert (bar.succeeded_height, bar.failed_height, bar.retrying_height) == (40, 20, 20)
    assert bar.succeeded_y == bar.failed_y + bar.failed_height
    assert bar.failed_y == bar.retrying_y + bar.retrying_height
    assert bar.retrying_y == 0
    assert bar.title == "00:00 UTC: 2 succeeded, 1 failed, 1 retrying"
    assert chart.total_retrying == 1


def test_bar_chart_draws_failures_when_nothing_succeeded() -> None:
    hour = datetime(2026, 11, 22, 0, tzinfo=UTC)
    chart = bar_chart([HourlyCount(hour, 0, 3)], width=100, height=100)
    [bar] = chart.bars
    assert bar.succeeded_height == 0
    assert bar.failed_height == pytest.approx(chart.plot_height)


def test_hourly_counts_use_the_library_aggregate_when_there_is_one() -> None:
    since, until = hour_window(datetime(2026, 11, 22, 10, 30, tzinfo=UTC))
    asked: dict[str, Any] = {}

    def endpoint_hourly_counts(endpoint_id: str, **kwargs: Any) -> list[SimpleNamespace]:
        asked.update(kwargs, endpoint_id=endpoint_id)
        return [SimpleNamespace(hour=until - timedelta(hours=1), succeeded=7, failed=2, retrying=1)]

    fake = SimpleNamespace(endpoint_hourly_counts=endpoint_hourly_counts)
    counts = hourly_counts(fake, "ep_x", since=since, until=until, tenant="acme")
    assert asked == {"endpoint_id": "ep_x", "since": since, "until": until, "tenant": "acme"}
    assert (counts[-1].succeeded, counts[-1].failed, counts[-1].retrying) == (7, 2, 1)
    assert (counts[0].succeeded, counts[0].failed, counts[0].retrying) == (0, 0, 0)
