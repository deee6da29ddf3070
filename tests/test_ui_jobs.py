"""Bulk retries and background jobs in the web UI, through FastAPI's test
client on SQLite and PostgreSQL: the counted confirmation, the job it
starts (run here by a :class:`~producer.jobs.JobRunner` driven directly),
the jobs' pages, replays run as jobs, tenant scope, capabilities and CSRF.

The last test walks the same pages in headless Chromium (slow, SQLite
only; see tests/test_portal_browser.py for how the browser is found).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from producer import Endpoint, Producer
from producer.jobs import JobRunner
from producer.models import DeliveryRow
from tests.helpers.browser import needs_chromium, screenshot
from tests.helpers.producers import FAST
from tests.helpers.receiver import LocalServer
from tests.helpers.ui import build_app, open_portal, sign_in

URL = "http://127.0.0.1:9/hooks"
"""Nothing listens there: no worker runs, deliveries only change by hand."""

COUNT = re.compile(r'class="count">(\d+)</span>')
REFRESH = '<meta http-equiv="refresh" content="2">'


# -- fixtures and helpers --------------------------------------------------------------


@pytest.fixture
def operator(client: TestClient, admin_key: str) -> tuple[TestClient, str]:
    """The client in a portal session of acme that may operate, and its CSRF token."""
    return client, open_portal(client, admin_key, "acme", capabilities=["operate"])


def set_status(producer: Producer, endpoint: Endpoint, status: str, **where: Any) -> list[str]:
    """Mark the endpoint's deliveries (those of ``where``: event type) ``status``
    as a finished worker would; returns their ids."""
    ids = [d.id for d in producer.list_deliveries(endpoint_id=endpoint.id, limit=250, **where).data]
    with producer.context.store.transaction() as s:
        s.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_(ids))
            .values(status=status, next_attempt_at=None)
        )
    return ids


def log_of(producer: Producer) -> dict[str, Endpoint]:
    """Two endpoints of acme and one of globex, each with failed deliveries of
    ``invoice.paid`` and ``user.created`` and one succeeded ``invoice.voided``."""
    endpoints = {
        "acme": producer.create_endpoint(URL, tenant="acme"),
        "acme2": producer.create_endpoint(URL, tenant="acme"),
        "globex": producer.create_endpoint(URL, tenant="globex"),
    }
    for tenant in ("acme", "globex"):
        for n in range(3):
            producer.send("invoice.paid", {"n": n}, tenant=tenant)
        producer.send("user.created", {"n": 0}, tenant=tenant)
    for endpoint in endpoints.values():
        set_status(producer, endpoint, "failed")
    for tenant in ("acme", "globex"):
        producer.send("invoice.voided", {"n": 0}, tenant=tenant)
    for endpoint in endpoints.values():
        set_status(producer, endpoint, "succeeded", event_type="invoice.voided")
    return endpoints


def count_on(page: str) -> int:
    match = COUNT.search(page)
    assert match, "the page states no count"
    return int(match.group(1))


def job_id_of(response: Any) -> str:
    """The id of the job a confirmed action redirected to."""
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/ui/jobs/(job_\w+)", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


def run_jobs(producer: Producer) -> int:
    """What a worker's maintenance does: run every unfinished job to its end."""
    return JobRunner(producer.context, batch=2).run_due()


# -- the confirmation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"status": "failed", "event_type": "invoice.paid"},
        {"status": "succeeded"},
        {"tenant": "globex"},
        {"endpoint": "acme2", "event_type": "user.created"},
    ],
)
def test_the_confirmation_counts_what_the_library_dry_run_counts(
    producer: Producer, admin: tuple[TestClient, str], query: dict[str, str]
) -> None:
    client, _ = admin
    endpoints = log_of(producer)
    params = dict(query)
    if "endpoint" in params:
        params["endpoint_id"] = endpoints[params.pop("endpoint")].id
    page = client.get("/ui/deliveries/retry", params=params)
    assert page.status_code == 200
    expected = producer.retry_deliveries(**params, force=True, dry_run=True)
    assert expected > 0
    assert count_on(page.text) == expected
    assert producer.list_jobs().data == []  # counting starts nothing


def test_the_window_is_part_of_the_count(producer: Producer, admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    log_of(producer)
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert count_on(client.get(f"/ui/deliveries/retry?since={later}").text) == 0
    assert count_on(client.get(f"/ui/deliveries/retry?until={later}").text) == 12


def test_a_status_that_cannot_be_retried_is_refused(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    page = client.get("/ui/deliveries/retry?status=pending")
    assert page.status_code == 422 and "status must be failed or succeeded" in page.text


def test_the_endpoint_page_links_to_a_retry_of_its_filtered_deliveries(
    producer: Producer, operator: tuple[TestClient, str]
) -> None:
    client, _ = operator
    endpoint = log_of(producer)["acme"]
    page = client.get(f"/ui/endpoints/{endpoint.id}?status=succeeded&event_type=invoice.voided")
    link = re.search(r'href="([^"]+)" id="retry-matching"', page.text)
    assert link, "no retry link"
    confirmation = client.get(link.group(1).replace("&amp;", "&")).text
    assert 'option value="succeeded" selected' in confirmation
    assert f'value="{endpoint.id}"' in confirmation and 'value="invoice.voided"' in confirmation
    assert count_on(confirmation) == 1


# -- confirming, the job and its page -------------------------------------------------------


def test_confirming_starts_a_job_the_runner_completes(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    endpoint = log_of(producer)["acme"]
    form = {"csrf": csrf, "status": "failed", "endpoint_id": endpoint.id, "event_type": ""}
    job_id = job_id_of(client.post("/ui/deliveries/retry", data=form, follow_redirects=False))

    queued = client.get(f"/ui/jobs/{job_id}").text
    assert REFRESH in queued and "badge-queued" in queued
    assert run_jobs(producer) == 1

    done = client.get(f"/ui/jobs/{job_id}").text
    assert REFRESH not in done and "badge-succeeded" in done
    assert re.search(r'id="job-requeued">4<', done)
    statuses = {d.status for d in producer.list_deliveries(endpoint_id=endpoint.id).data}
    assert statuses == {"pending", "succeeded"}  # the failed four requeued, the succeeded kept
    assert job_id in client.get("/ui/jobs").text


def test_succeeded_deliveries_are_sent_again_only_with_the_box_ticked(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, csrf = admin
    log_of(producer)
    form = {"csrf": csrf, "status": "succeeded"}
    refused = client.post("/ui/deliveries/retry", data=form)
    assert refused.status_code == 409 and "tick the box" in refused.text
    assert 'name="force"' in refused.text
    assert producer.list_jobs().data == []

    job_id = job_id_of(
        client.post("/ui/deliveries/retry", data={**form, "force": "on"}, follow_redirects=False)
    )
    run_jobs(producer)
    job = producer.get_job(job_id)
    assert (job.status, job.requeued, job.options["force"]) == ("succeeded", 3, True)


def test_a_job_that_fails_shows_its_error(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = log_of(producer)["acme"]
    job = producer.start_replay(endpoint.id, since=datetime.now(UTC) - timedelta(hours=1))
    producer.delete_endpoint(endpoint.id)
    run_jobs(producer)
    page = client.get(f"/ui/jobs/{job.id}").text
    assert producer.get_job(job.id).status == "failed"
    assert "badge-failed" in page and 'id="job-error"' in page and REFRESH not in page


def test_the_jobs_list_filters_by_kind_and_refuses_an_unknown_one(
    producer: Producer, admin: tuple[TestClient, str]
) -> None:
    client, _ = admin
    endpoint = log_of(producer)["acme"]
    replay = producer.start_replay(endpoint.id, since=datetime.now(UTC) - timedelta(hours=1))
    retry = producer.start_retry()
    page = client.get("/ui/jobs?kind=replay").text
    assert replay.id in page and retry.id not in page
    assert client.get("/ui/jobs?kind=purge").status_code == 422


# -- replays as jobs ---------------------------------------------------------------------------


def test_a_replay_run_in_the_background_shows_its_job(
    producer: Producer, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    since_at = datetime.now(UTC) - timedelta(hours=1)
    for n in range(3):
        producer.send("invoice.paid", {"n": n}, tenant="acme")
    endpoint = producer.create_endpoint(URL, tenant="acme")
    since = since_at.strftime("%Y-%m-%dT%H:%M")
    expected = producer.replay_endpoint(
        endpoint.id, since=since_at, include_failed=True, dry_run=True
    )
    confirmation = client.get(f"/ui/endpoints/{endpoint.id}/replay?since={since}").text
    assert 'id="background" checked' not in confirmation  # three is not a large window

    form = {"csrf": csrf, "since": since, "until": "", "background": "on"}
    job_id = job_id_of(
        client.post(f"/ui/endpoints/{endpoint.id}/replay", data=form, follow_redirects=False)
    )
    assert producer.list_deliveries(endpoint_id=endpoint.id).data == []  # not yet: the job does
    run_jobs(producer)
    page = client.get(f"/ui/jobs/{job_id}").text
    assert re.search(rf'id="job-created">{expected.created}<', page)
    assert re.search(r'id="job-scanned">3<', page) and "badge-succeeded" in page
    assert len(producer.list_deliveries(endpoint_id=endpoint.id).data) == expected.created == 3


def test_a_large_replay_is_offered_in_the_background(
    producer: Producer, operator: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = operator
    monkeypatch.setattr("api.ui.sends.BACKGROUND_FROM", 2)
    for n in range(2):
        producer.send("invoice.paid", {"n": n}, tenant="acme")
    endpoint = producer.create_endpoint(URL, tenant="acme")
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    confirmation = client.get(f"/ui/endpoints/{endpoint.id}/replay?since={since}").text
    assert 'id="background" checked' in confirmation


# -- tenant scope, capabilities, CSRF ---------------------------------------------------------


def test_a_tenant_counts_and_retries_only_its_own_deliveries_whatever_the_url_says(
    producer: Producer, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    log_of(producer)
    own = producer.retry_deliveries(tenant="acme", dry_run=True)
    assert count_on(client.get("/ui/deliveries/retry?tenant=globex").text) == own
    response = client.post(
        "/ui/deliveries/retry", data={"csrf": csrf, "tenant": "globex"}, follow_redirects=False
    )
    job = producer.get_job(job_id_of(response))
    assert job.tenant == "acme"
    run_jobs(producer)
    globex = producer.list_deliveries(tenant="globex", status="failed").data
    assert len(globex) == 4  # untouched


def test_another_tenants_endpoint_and_job_are_not_found(
    producer: Producer, operator: tuple[TestClient, str]
) -> None:
    client, csrf = operator
    globex = log_of(producer)["globex"]
    theirs = producer.start_retry(tenant="globex")
    mine = producer.start_retry(tenant="acme")
    assert client.get(f"/ui/deliveries/retry?endpoint_id={globex.id}").status_code == 404
    response = client.post("/ui/deliveries/retry", data={"csrf": csrf, "endpoint_id": globex.id})
    assert response.status_code == 404
    assert client.get(f"/ui/jobs/{theirs.id}").status_code == 404
    listing = client.get("/ui/jobs?tenant=globex").text
    assert mine.id in listing and theirs.id not in listing
    assert len(producer.list_jobs().data) == 2  # nothing started by the refused post


def test_a_read_only_link_sees_jobs_but_cannot_retry(
    producer: Producer, client: TestClient, admin_key: str
) -> None:
    endpoint = log_of(producer)["acme"]
    job = producer.start_retry(tenant="acme")
    csrf = open_portal(client, admin_key, "acme", capabilities=["read"])
    assert job.id in client.get("/ui/jobs").text
    assert client.get(f"/ui/jobs/{job.id}").status_code == 200
    assert 'id="retry-matching"' not in client.get(f"/ui/endpoints/{endpoint.id}").text
    assert client.get("/ui/deliveries/retry").status_code == 403
    refused = client.post("/ui/deliveries/retry", data={"csrf": csrf})
    assert refused.status_code == 403 and "operate" in refused.text
    assert len(producer.list_jobs().data) == 1


@pytest.mark.parametrize("csrf", [None, "forged", "other-session"])
def test_a_retry_without_the_sessions_csrf_token_starts_nothing(
    producer: Producer, client: TestClient, admin_key: str, csrf: str | None
) -> None:
    log_of(producer)
    if csrf == "other-session":
        with TestClient(client.app) as other:
            csrf = sign_in(other, admin_key)
    sign_in(client, admin_key)
    data = {"status": "failed"} if csrf is None else {"status": "failed", "csrf": csrf}
    response = client.post("/ui/deliveries/retry", data=data)
    assert response.status_code == 403 and "Form expired" in response.text
    assert producer.list_jobs().data == []


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/ui/jobs", follow_redirects=False)
    assert response.status_code == 303 and "/ui/login" in response.headers["location"]


# -- in a browser ------------------------------------------------------------------------------


@pytest.fixture
def sqlite_producer(tmp_path: Path) -> Iterator[Producer]:
    """The usual ``FAST`` producer on SQLite only (the pages are the same on both)."""
    p = Producer(f"sqlite:///{tmp_path / 'webhooks.db'}", **FAST)
    yield p
    p.close()


@needs_chromium
@pytest.mark.slow
def test_a_person_filters_confirms_and_watches_the_job_finish(
    browser: Any, sqlite_producer: Producer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    producer = sqlite_producer
    endpoint = log_of(producer)["acme"]
    _, admin_key = producer.create_api_key(name="admin")
    with LocalServer(build_app(producer)) as base_url:
        page = browser.new_context().new_page()
        page.goto(f"{base_url}/ui/login")
        page.fill("input[name=api_key]", admin_key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/ui/endpoints$"))
        page.goto(f"{base_url}/ui/endpoints/{endpoint.id}")

        page.select_option("select[name=status]", "failed")
        page.fill("input[name=event_type]", "invoice.paid")
        page.get_by_role("button", name="Filter").click()
        page.click("#retry-matching")
        expect(page.locator("#retry-count")).to_contain_text("3 deliveries will be queued again")
        screenshot(page, tmp_path, "retry-confirm")

        page.click("#confirm-retry")
        expect(page.locator("#job-status")).to_contain_text("queued")
        screenshot(page, tmp_path, "job-queued")
        # A worker's maintenance picks the job up; the page reloads itself.
        runner = threading.Thread(target=run_jobs, args=(producer,))
        runner.start()
        runner.join(10)
        expect(page.locator("#job-status")).to_contain_text("succeeded", timeout=10_000)
        expect(page.locator("#job-requeued")).to_have_text("3")
        screenshot(page, tmp_path, "job-finished")
        page.get_by_role("link", name="Jobs", exact=True).click()
        expect(page.locator("#jobs")).to_contain_text("succeeded")
