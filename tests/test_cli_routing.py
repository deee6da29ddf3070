"""The command line of channels, payload filters, replay and bulk retry."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from producer.cli import main
from producer.models import DeliveryRow

URL = "https://r.example/h"
SINCE = "2000-01-01T00:00:00Z"


@pytest.fixture
def cli(database_url, producer):
    """Runs ``webhooks`` on the test's database (made by ``producer``)."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, ["--database-url", database_url, *args], catch_exceptions=False)

    return invoke


def as_json(result: Result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_endpoints_add_and_update_set_channels_and_a_filter(cli, producer):
    added = as_json(
        cli(
            "endpoints",
            "add",
            URL,
            "--channel",
            "eu",
            "--channel",
            "us",
            "--filter",
            '{"amount": {"$gt": 1}}',
            "--json",
        )
    )
    assert added["channels"] == ["eu", "us"] and added["filter"] == {"amount": {"$gt": 1}}

    cli("endpoints", "update", added["id"], "--channel", "apac", "--reset", "filter")

    endpoint = producer.get_endpoint(added["id"])
    assert endpoint.channels == ["apac"] and endpoint.filter is None


def test_an_invalid_filter_is_one_error_line_naming_its_path(cli):
    result = cli("endpoints", "add", URL, "--filter", '{"a": {"$gt": []}}')
    assert result.exit_code != 0
    assert result.stderr.strip().startswith("error: ") and "filter.a.$gt" in result.stderr


def test_send_on_a_channel_reaches_its_subscribers(cli, producer):
    eu = producer.create_endpoint(URL, channels=["eu"])
    producer.create_endpoint(URL, channels=["us"])
    result = cli("send", "order.placed", "--data", "{}", "--channel", "eu")
    assert result.exit_code == 0 and "(1 delivery)" in result.stdout
    [delivery] = producer.list_deliveries().data
    assert delivery.endpoint_id == eu.id


def test_endpoints_replay_reports_what_it_created_and_creates_nothing_twice(cli, producer):
    producer.send("order.placed", {})
    producer.send("order.placed", {})
    endpoint = producer.create_endpoint(URL)

    result = cli("endpoints", "replay", endpoint.id, "--since", SINCE)

    assert result.stdout.strip() == f"created 2 deliveries for {endpoint.id}"
    again = as_json(cli("endpoints", "replay", endpoint.id, "--since", SINCE, "--json"))
    assert again == {"created": 0, "requeued": 0}


def test_deliveries_retry_all_requeues_the_selected_failed_ones(cli, producer):
    endpoint = producer.create_endpoint(URL)
    producer.create_endpoint(URL)
    producer.send("order.placed", {})
    with producer.context.store.transaction() as s:
        s.execute(update(DeliveryRow).values(status="failed", next_attempt_at=None))

    result = cli("deliveries", "retry-all", "--endpoint-id", endpoint.id)

    assert result.stdout.strip() == "requeued 1 delivery"
    assert as_json(cli("deliveries", "retry-all", "--json")) == {"requeued": 1}
