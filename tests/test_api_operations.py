"""REST API: health check and Prometheus metrics (no key needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from producer import Producer
from tests.helpers.api import Api, create_endpoint, send
from tests.helpers.waiting import wait_until

UNREACHABLE = "sqlite:////nonexistent-directory/webhooks.db"


@pytest.fixture
def down() -> Iterator[TestClient]:
    """A client of an API whose database cannot be opened."""
    producer = Producer(UNREACHABLE, auto_migrate=False)
    yield TestClient(create_app(producer))
    producer.close()


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The scraped metrics, by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_health_is_ok_without_a_key(api):
    response = api.anonymous.get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_is_503_when_the_database_is_unreachable(down):
    response = down.get("/v1/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}


def test_metrics_report_the_queue_depth_without_a_key(api):
    create_endpoint(api.admin)
    send(api.admin)
    send(api.admin)
    values = samples(api.anonymous)
    assert values[("webhooks_queue_depth", ())] == 2
    assert values[("webhooks_database_up", ())] == 1


def test_metrics_still_answer_when_the_database_is_unreachable(down):
    values = samples(down)
    assert values[("webhooks_database_up", ())] == 0
    assert ("webhooks_queue_depth", ()) not in values


def test_each_app_has_its_own_registry(producer):
    first, second = Api(producer), Api(producer)
    assert first.app.state.metrics.registry is not second.app.state.metrics.registry
    assert samples(first.anonymous) and samples(second.anonymous)


def test_metrics_count_operational_events(api, producer, receiver):
    create_endpoint(api.admin, receiver.script("/down", [500]), retry_schedule=[0])
    send(api.admin)
    key = ("webhooks_operational_events_total", (("event", "delivery.exhausted"),))
    with producer.start_worker_thread():
        wait_until(
            lambda: samples(api.anonymous).get(key) == 1,
            what="a delivery.exhausted event counted",
        )
