"""The UI's dashboard: the last 24 hours of every tenant, for admins."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.ui.dashboard import wait_chart
from producer import Producer
from producer.types import HourlyActivity
from tests.helpers.ui import build_app, failed_by_worker, sign_in


@pytest.fixture
def client(producer: Producer) -> Iterator[TestClient]:
    with TestClient(build_app(producer)) as c:
        yield c


@pytest.fixture
def admin(client: TestClient, producer: Producer) -> TestClient:
    sign_in(client, producer.create_api_key(name="admin")[1])
    return client


def test_the_dashboard_shows_the_endpoints_failing_most(admin, producer, receiver):
    endpoint, _ = failed_by_worker(producer, receiver, "acme")
    page = admin.get("/ui/dashboard")
    assert page.status_code == 200
    failing = page.text.split('id="failing"', 1)[1]
    assert f"/ui/endpoints/{endpoint.id}" in failing
    assert endpoint.url in failing and "acme" in failing


def test_the_dashboard_draws_the_attempts_and_lag_of_24_hours(admin, producer, receiver):
    failed_by_worker(producer, receiver, "acme")
    page = admin.get("/ui/dashboard").text
    attempts = page.split('id="attempts-chart"', 1)[1].split("</svg>", 1)[0]
    assert attempts.count("<title>") == 24
    assert 'aria-label="Attempts per hour: 0 succeeded, 1 failed"' in page
    lag = page.split('id="lag-chart"', 1)[1].split("</svg>", 1)[0]
    assert lag.count("<title>") == 24
    assert re.search(r"<title>\d\d:00 UTC: longest wait \d+\.\d s</title>", lag)


def test_the_dashboard_shows_the_lag_and_due_deliveries_now(admin, producer, receiver):
    producer.create_endpoint(receiver.url("/held"))
    producer.send("invoice.paid", {"n": 1})
    page = admin.get("/ui/dashboard").text
    assert '<span id="due">1 due</span>' in page
    assert re.search(r'<strong id="lag">\d+\.\d s</strong>', page)


def test_the_dashboard_is_for_admins_only(client, producer):
    sign_in(client, producer.create_api_key(tenant="acme", name="acme")[1])
    page = client.get("/ui/dashboard")
    assert page.status_code == 403
    assert "Admins only" in page.text


def test_only_admins_see_the_dashboard_link(client, producer):
    sign_in(client, producer.create_api_key(tenant="acme", name="acme")[1])
    assert "/ui/dashboard" not in client.get("/ui/endpoints").text


def test_admins_see_the_dashboard_link(admin):
    assert 'href="/ui/dashboard"' in admin.get("/ui/endpoints").text


def test_the_lag_chart_scales_to_the_longest_wait():
    hour = datetime(2026, 11, 22, 10, tzinfo=UTC)
    hours = [
        HourlyActivity(hour, succeeded=1, failed=0, max_wait_seconds=2.0),
        HourlyActivity(hour + timedelta(hours=1), succeeded=1, failed=0, max_wait_seconds=8.0),
        HourlyActivity(hour + timedelta(hours=2), succeeded=0, failed=0, max_wait_seconds=None),
    ]
    chart = wait_chart(hours, width=300, height=120)
    assert chart.maximum == 8.0
    assert [b.height for b in chart.bars] == [25.0, 100.0, 0.0]
    assert chart.bars[2].title == "12:00 UTC: no first attempt"
