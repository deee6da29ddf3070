"""The Grafana dashboard and the alert rules in the docs query only metrics
the service exports, under the names it exports them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from producer import Producer
from producer.metrics import Metrics

DOCS = Path(__file__).resolve().parent.parent / "docs"
METRIC = re.compile(r"\bwebhooks_[a-z_]+\b")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> set[str]:
    """Every sample name the service's registry can expose."""
    producer = Producer(f"sqlite:///{tmp_path_factory.mktemp('db') / 'w.db'}")
    try:
        names = set()
        for family in Metrics(producer).registry.collect():
            names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
        return names
    finally:
        producer.close()


def dashboard() -> dict:
    return json.loads((DOCS / "grafana-dashboard.json").read_text())


def alert_rules() -> list[dict]:
    """The rules of the YAML block in the Alerts section of operations.md."""
    text = (DOCS / "operations.md").read_text()
    section = text.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return [rule for group in yaml.safe_load(block)["groups"] for rule in group["rules"]]


def test_the_exported_names_include_the_lag_and_liveness(exported):
    # Guards the fixture: a registry that lost its collectors would let
    # every check below pass on an empty dashboard.
    assert {
        "webhooks_queue_lag_seconds",
        "webhooks_deliveries_due",
        "webhooks_attempts_total",
        "webhooks_endpoint_attempts_total",
        "webhooks_worker_last_claim_timestamp_seconds",
    } <= exported


def test_every_dashboard_query_names_exported_metrics(exported):
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            names = set(METRIC.findall(target["expr"]))
            assert names, (panel["title"], target["expr"])
            assert names <= exported, (panel["title"], names - exported)


def test_the_dashboard_shows_lag_throughput_failing_endpoints_and_liveness():
    queried = " ".join(t["expr"] for p in dashboard()["panels"] for t in p["targets"])
    for name in (
        "webhooks_queue_lag_seconds",
        "webhooks_attempts_total",
        "webhooks_endpoint_attempts_total",
        "webhooks_worker_last_claim_timestamp_seconds",
    ):
        assert name in queried, name


def test_the_dashboard_is_importable():
    board = dashboard()
    assert board["title"] and board["uid"]
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_every_alert_rule_names_exported_metrics(exported):
    for rule in alert_rules():
        names = set(METRIC.findall(rule["expr"]))
        assert names and names <= exported, (rule["alert"], names - exported)


def test_the_alert_rules_cover_lag_disabled_endpoints_and_stuck_workers():
    by_metric = {name for rule in alert_rules() for name in METRIC.findall(rule["expr"])}
    assert {
        "webhooks_queue_lag_seconds",
        "webhooks_endpoints_disabled",
        "webhooks_worker_last_claim_timestamp_seconds",
    } <= by_metric
