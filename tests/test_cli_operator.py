"""The command line as an operator's tool: the delivery log and its actions,
matching the REST API (tables for people, ``--json`` in the API's shapes for
scripts, the same filters), and progress on a terminal that stays quiet
when piped."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from producer import Producer, delivery_log
from producer.cli import common, main
from producer.cli import database as database_commands
from producer.cli.database import BACKUP_STEP_PAGES
from producer.models import DeliveryRow
from tests.helpers.clock import START, FakeClock

URL = "https://r.example/h"


@pytest.fixture
def cli(database_url, producer):
    """Runs ``webhooks`` on the test's database (made by ``producer``), allowed
    to deliver to the local receiver."""
    runner = CliRunner()

    def invoke(*args: str, **env: str) -> Result:
        return runner.invoke(
            main,
            ["--database-url", database_url, *args],
            env={"WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8", **env},
            catch_exceptions=False,
        )

    return invoke


def as_json(result: Result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fail_all(producer: Producer) -> None:
    """Mark every delivery failed, as if its retries ran out."""
    with producer.store.transaction() as s:
        s.execute(update(DeliveryRow).values(status="failed", next_attempt_at=None))


def delivered_long_ago(database_url: str, count: int) -> None:
    """Messages of 2020 whose deliveries succeeded: past any retention now."""
    old = Producer(database_url, clock=FakeClock(datetime(2020, 1, 1, tzinfo=UTC)))
    old.create_endpoint(URL)
    old.send_many([("a.b", {})] * count)
    with old.store.transaction() as s:
        s.execute(update(DeliveryRow).values(status="succeeded"))
    old.close()


def big_sqlite(tmp_path) -> tuple[str, Producer]:
    """An SQLite database of 2000 messages, many backup steps long, and its producer."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    producer = Producer(url)
    producer.send_many([("a.b", {"blob": "x" * 2000})] * 2000)
    return url, producer


def backup(url: str, target) -> Result:
    return CliRunner().invoke(main, ["--database-url", url, "db", "backup", str(target)])


def messages_in(path) -> int:
    with closing(sqlite3.connect(path)) as copy:
        return copy.execute("SELECT count(*) FROM webhook_messages").fetchone()[0]


@pytest.fixture
def terminal(monkeypatch):
    """Make the commands believe a person watches stderr."""
    monkeypatch.setattr(common, "on_terminal", lambda: True)


# -- messages -------------------------------------------------------------------------


def test_messages_list_is_a_table_newest_first(cli, producer):
    producer.create_endpoint(URL)
    first = producer.send("invoice.paid", {"n": 1})
    second = producer.send("invoice.sent", {"n": 2})
    lines = cli("messages", "list").stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "EVENT", "TYPE"]
    assert [line.split()[0] for line in lines[1:]] == [second.id, first.id]


def test_messages_list_json_is_what_the_api_returns(cli, api, producer):
    producer.create_endpoint(URL, tenant="acme")
    producer.send("invoice.paid", {"n": 1}, tenant="acme")
    producer.send("invoice.sent", {"n": 2}, tenant="acme")
    assert as_json(cli("messages", "list", "--json")) == api.admin.get("/v1/messages").json()


@pytest.mark.parametrize(
    ("args", "query"),
    [
        (["--tenant", "acme"], {"tenant": "acme"}),
        (["--event-type", "invoice.sent"], {"event_type": "invoice.sent"}),
    ],
)
def test_messages_list_filters_as_the_api(cli, api, producer, args, query):
    for tenant in ("acme", "globex"):
        producer.send("invoice.paid", {}, tenant=tenant)
        producer.send("invoice.sent", {}, tenant=tenant)
    listed = as_json(cli("messages", "list", "--json", *args))
    assert len(listed["data"]) == 2
    assert listed == api.admin.get("/v1/messages", params=query).json()


def test_messages_list_window_takes_iso_8601_times(cli, make_producer, clock):
    producer = make_producer(clock=clock)
    producer.send("a.b", {})
    clock.advance(3600)
    later = producer.send("a.b", {})
    clock.advance(3600)
    producer.send("a.b", {})
    since = (START + timedelta(minutes=30)).isoformat()
    until = (START + timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    listed = as_json(cli("messages", "list", "--json", "--since", since, "--until", until))
    assert [m["id"] for m in listed["data"]] == [later.id]


def test_a_time_without_an_offset_is_utc(cli, make_producer, clock):
    producer = make_producer(clock=clock)
    producer.send("a.b", {})
    clock.advance(3600)
    later = producer.send("a.b", {})
    listed = as_json(cli("messages", "list", "--json", "--since", "2026-11-22T10:30:00"))
    assert [m["id"] for m in listed["data"]] == [later.id]


def test_a_malformed_time_is_refused_naming_the_option(cli):
    result = cli("messages", "list", "--since", "yesterday")
    assert result.exit_code == 2
    assert "'--since'" in result.stderr and "ISO 8601" in result.stderr


def test_messages_list_reads_pages_until_its_limit(cli, producer):
    sent = producer.send_many([("a.b", {"n": n}) for n in range(300)])
    newest_first = [m.id for m in reversed(sent)]

    some = as_json(cli("messages", "list", "--json", "--limit", "260"))
    assert [m["id"] for m in some["data"]] == newest_first[:260]
    rest = as_json(
        cli("messages", "list", "--json", "--limit", "500", "--cursor", some["next_cursor"])
    )
    assert [m["id"] for m in rest["data"]] == newest_first[260:]
    assert rest["next_cursor"] is None


def test_a_cut_off_table_says_how_to_see_more(cli, producer):
    producer.send_many([("a.b", {"n": n}) for n in range(3)])
    result = cli("messages", "list", "--limit", "2")
    assert len(result.stdout.splitlines()) == 3  # the header and two rows
    assert "--cursor msg_" in result.stderr


def test_messages_show_gives_the_payload_and_the_deliveries(cli, api, producer):
    endpoints = [producer.create_endpoint(URL), producer.create_endpoint(URL)]
    message = producer.send("invoice.paid", {"amount": 42})
    shown = as_json(cli("messages", "show", message.id, "--json"))
    assert shown["message"] == api.admin.get(f"/v1/messages/{message.id}").json()
    assert shown["message"]["payload"]["data"] == {"amount": 42}
    assert {d["endpoint_id"] for d in shown["deliveries"]} == {e.id for e in endpoints}

    table = cli("messages", "show", message.id).stdout
    assert '"amount": 42' in table and all(e.id in table for e in endpoints)


def test_messages_resend_queues_the_message_for_each_endpoint(cli, producer):
    first = producer.create_endpoint(URL)
    message = producer.send("invoice.paid", {})
    later = producer.create_endpoint(URL)  # did not get the message
    fail_all(producer)
    result = cli("messages", "resend", message.id, first.id, later.id, "--json")
    resent = as_json(result)
    assert [(d["endpoint_id"], d["status"]) for d in resent] == [
        (first.id, "pending"),
        (later.id, "pending"),
    ]
    assert result.stderr == ""


# -- deliveries -----------------------------------------------------------------------


def test_deliveries_list_json_is_what_the_api_returns(cli, api, producer):
    producer.create_endpoint(URL, tenant="acme")
    producer.send("invoice.paid", {}, tenant="acme")
    assert as_json(cli("deliveries", "list", "--json")) == api.admin.get("/v1/deliveries").json()


@pytest.mark.parametrize("name", ["status", "endpoint_id", "message_id", "event_type", "tenant"])
def test_deliveries_list_filters_as_the_api(cli, api, producer, name):
    endpoints = {t: producer.create_endpoint(URL, tenant=t) for t in ("acme", "globex")}
    messages = [producer.send("invoice.paid", {}, tenant="acme")]
    messages.append(producer.send("invoice.sent", {}, tenant="globex"))
    fail_all(producer)
    producer.send("invoice.paid", {}, tenant="acme")  # a pending one
    value = {
        "status": "failed",
        "endpoint_id": endpoints["globex"].id,
        "message_id": messages[0].id,
        "event_type": "invoice.sent",
        "tenant": "acme",
    }[name]
    option = "--" + name.replace("_", "-")
    listed = as_json(cli("deliveries", "list", "--json", option, value))
    assert listed["data"] and all(d[name] == value for d in listed["data"])
    assert listed == api.admin.get("/v1/deliveries", params={name: value}).json()


def test_deliveries_show_lists_each_attempt(cli, producer, receiver):
    endpoint = producer.create_endpoint(receiver.script("/hooks", [503]))
    failed = producer.test_endpoint(endpoint.id)
    result = cli("deliveries", "show", failed.delivery_id)
    attempts = result.stdout.split("#")[1].splitlines()
    assert attempts[0].split() == ["STARTED", "TRIGGER", "RESULT", "DURATION"]
    assert attempts[1].split()[2:4] == ["test", "503"]
    assert attempts[1].endswith(" ms")


def test_deliveries_show_json_holds_the_api_delivery_and_attempts(cli, api, producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/hooks"))
    test = producer.test_endpoint(endpoint.id)
    shown = as_json(cli("deliveries", "show", test.delivery_id, "--json"))
    path = f"/v1/deliveries/{test.delivery_id}"
    assert shown["delivery"] == api.admin.get(path).json()
    assert shown["attempts"] == api.admin.get(f"{path}/attempts").json()["data"]
    assert shown["attempts"][0]["response"]["status_code"] == 200


def test_deliveries_retry_requeues_a_failed_delivery(cli, producer):
    producer.create_endpoint(URL)
    producer.send("a.b", {})
    fail_all(producer)
    [delivery] = producer.list_deliveries().data
    result = cli("deliveries", "retry", delivery.id)
    assert result.exit_code == 0 and result.stdout.startswith(f"{delivery.id} queued")
    assert producer.get_delivery(delivery.id).status == "pending"


def test_retrying_a_succeeded_delivery_needs_force(cli, producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/hooks"))
    succeeded = producer.test_endpoint(endpoint.id)
    refused = cli("deliveries", "retry", succeeded.delivery_id)
    assert refused.exit_code == 1 and "already succeeded" in refused.stderr
    forced = as_json(cli("deliveries", "retry", succeeded.delivery_id, "--force", "--json"))
    assert forced["status"] == "pending"


# -- endpoints ------------------------------------------------------------------------


def test_endpoints_show_json_is_what_the_api_returns(cli, api, producer):
    endpoint = producer.create_endpoint(URL, headers={"Authorization": "Bearer x", "X-Team": "a"})
    shown = as_json(cli("endpoints", "show", endpoint.id, "--json"))
    assert shown == api.admin.get(f"/v1/endpoints/{endpoint.id}").json()
    assert shown["headers"] == {"Authorization": "[redacted]", "X-Team": "a"}


def test_endpoints_list_json_is_what_the_api_returns(cli, api, producer):
    producer.create_endpoint(URL, tenant="acme")
    producer.create_endpoint(URL, tenant="globex")
    listed = as_json(cli("endpoints", "list", "--json", "--tenant", "acme"))
    assert listed == api.admin.get("/v1/endpoints", params={"tenant": "acme"}).json()


def test_endpoints_update_changes_the_settings_given(cli, producer):
    endpoint = producer.create_endpoint(URL, version="1", rate_limit_per_second=2)
    result = cli(
        "endpoints",
        "update",
        endpoint.id,
        "--event-type",
        "invoice.*",
        "--header",
        "X-Team: billing",
        "--retry-schedule",
        "5,30",
        "--metadata",
        '{"team": "billing"}',
        "--reset",
        "version",
    )
    assert result.exit_code == 0, result.output
    updated = producer.get_endpoint(endpoint.id)
    assert updated.event_types == ["invoice.*"] and updated.headers == {"X-Team": "billing"}
    assert updated.retry_schedule == [5.0, 30.0] and updated.metadata == {"team": "billing"}
    assert updated.version is None and updated.rate_limit_per_second == 2  # left alone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to change"),
        (["--reset", "version", "--version", "2"], "give one of them"),
        (["--rate-limit", "-1"], "rate_limit_per_second"),
    ],
)
def test_endpoints_update_refuses_in_one_line(cli, producer, args, message):
    endpoint = producer.create_endpoint(URL)
    result = cli("endpoints", "update", endpoint.id, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


def test_endpoints_disable_then_enable(cli, producer):
    endpoint = producer.create_endpoint(URL)
    disabled = cli("endpoints", "disable", endpoint.id)
    assert disabled.stdout.strip() == f"{endpoint.id} disabled (manual)"
    assert producer.get_endpoint(endpoint.id).status == "disabled"
    enabled = as_json(cli("endpoints", "enable", endpoint.id, "--json"))
    assert enabled["status"] == "enabled" and enabled["disabled_reason"] is None


def test_endpoints_delete_cancels_its_pending_deliveries(cli, producer):
    endpoint = producer.create_endpoint(URL)
    producer.send("a.b", {})
    result = cli("endpoints", "delete", endpoint.id, "--yes")
    assert result.stdout.strip() == f"deleted {endpoint.id}"
    assert [d.status for d in producer.list_deliveries().data] == ["cancelled"]


def test_endpoints_delete_without_a_terminal_needs_yes(cli, producer):
    endpoint = producer.create_endpoint(URL)
    result = cli("endpoints", "delete", endpoint.id)
    assert result.exit_code == 1 and "--yes" in result.stderr
    assert producer.get_endpoint(endpoint.id).id == endpoint.id


def test_endpoints_test_prints_the_receivers_answer(cli, producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/hooks"))
    result = cli("endpoints", "test", endpoint.id, "--data", '{"hello": "world"}')
    assert result.exit_code == 0, result.output
    assert re.search(r"^result: +succeeded$", result.stdout, re.M)
    assert re.search(r"^status code: +200$", result.stdout, re.M)
    [received] = receiver.received("/hooks")
    received.verify(endpoint.secret)
    assert json.loads(received.body)["data"] == {"hello": "world"}


def test_endpoints_test_json_has_the_api_fields_and_fails_with_the_receiver(
    cli, producer, receiver
):
    endpoint = producer.create_endpoint(receiver.script("/hooks", [500]))
    result = cli("endpoints", "test", endpoint.id, "--json")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert set(answer) == {
        "delivery_id",
        "message_id",
        "succeeded",
        "status_code",
        "duration_ms",
        "response_body",
        "error",
    }
    assert (answer["succeeded"], answer["status_code"]) == (False, 500)


def test_endpoints_recover_requeues_failed_deliveries_in_the_window(cli, make_producer, clock):
    producer = make_producer(clock=clock)
    endpoint = producer.create_endpoint(URL)
    producer.send("a.b", {})
    clock.advance(3600)
    producer.send_many([("a.b", {}), ("a.b", {})])
    fail_all(producer)
    since = (START + timedelta(minutes=30)).isoformat()
    result = cli("endpoints", "recover", endpoint.id, "--since", since)
    assert result.stdout.strip() == f"requeued 2 failed deliveries of {endpoint.id}"
    statuses = sorted(d.status for d in producer.list_deliveries().data)
    assert statuses == ["failed", "pending", "pending"]
    again = as_json(cli("endpoints", "recover", endpoint.id, "--since", since, "--json"))
    assert again == {"requeued": 0}


def test_endpoints_rotate_secret_prints_the_new_one(cli, producer):
    endpoint = producer.create_endpoint(URL)
    result = cli("endpoints", "rotate-secret", endpoint.id, "--grace-period", "60")
    secret = result.stdout.strip()
    assert secret.startswith("whsec_") and secret != endpoint.secret
    current = producer.get_endpoint_secret(endpoint.id)
    assert current.secret == secret
    [previous] = current.previous
    assert timedelta(0) < previous.expires_at - datetime.now(UTC) <= timedelta(seconds=60)


# -- keys -----------------------------------------------------------------------------


def test_keys_list_shows_ids_and_prefixes_never_the_keys(cli, producer):
    admin, admin_plain = producer.create_api_key(name="ops")
    tenant, tenant_plain = producer.create_api_key(tenant="acme")
    result = cli("keys", "list")
    assert admin_plain not in result.stdout and tenant_plain not in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [row[:3] for row in rows] == [
        [tenant.id, tenant.prefix, "acme"],
        [admin.id, admin.prefix, "(admin)"],
    ]
    listed = as_json(cli("keys", "list", "--json"))
    assert [k["id"] for k in listed["data"]] == [tenant.id, admin.id]
    assert "key_hash" not in listed["data"][0] and tenant_plain not in json.dumps(listed)


def test_keys_revoke_stops_the_key_authenticating(cli, producer):
    key, plain = producer.create_api_key(tenant="acme")
    result = cli("keys", "revoke", key.id)
    assert result.exit_code == 0 and key.id in result.stdout
    assert producer.authenticate(plain) is None
    assert as_json(cli("keys", "list", "--json"))["data"] == []
    again = cli("keys", "revoke", key.id)
    assert again.exit_code == 1 and "already revoked" in again.stderr


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["messages", "show", "msg_nope"],
        ["messages", "resend", "msg_nope", "ep_nope"],
        ["deliveries", "show", "dlv_nope"],
        ["deliveries", "retry", "dlv_nope"],
        ["endpoints", "show", "ep_nope"],
        ["endpoints", "update", "ep_nope", "--description", "x"],
        ["endpoints", "disable", "ep_nope"],
        ["endpoints", "enable", "ep_nope"],
        ["endpoints", "delete", "ep_nope", "--yes"],
        ["endpoints", "test", "ep_nope"],
        ["endpoints", "recover", "ep_nope", "--since", "2026-01-01"],
        ["endpoints", "rotate-secret", "ep_nope"],
        ["keys", "revoke", "key_nope"],
    ],
)
def test_an_unknown_id_is_one_line_and_exit_1(cli, args):
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "not found" in result.stderr and result.stdout == ""


# -- progress -------------------------------------------------------------------------


def test_recover_shows_progress_on_a_terminal(cli, producer, terminal):
    endpoint = producer.create_endpoint(URL)
    producer.send_many([("a.b", {})] * 3)
    fail_all(producer)
    result = cli("endpoints", "recover", endpoint.id, "--since", "2020-01-01")
    assert result.stderr.rstrip().endswith("requeued 3")
    assert result.stdout.strip() == f"requeued 3 failed deliveries of {endpoint.id}"


def test_recover_is_quiet_when_piped(cli, producer):
    endpoint = producer.create_endpoint(URL)
    producer.send_many([("a.b", {})] * 3)
    fail_all(producer)
    result = cli("endpoints", "recover", endpoint.id, "--since", "2020-01-01")
    assert result.stderr == ""


def test_recover_requeues_in_batches_and_reports_each(producer):
    endpoint = producer.create_endpoint(URL)
    producer.send_many([("a.b", {})] * 5)
    fail_all(producer)
    batches: list[int] = []
    count = delivery_log.recover_endpoint(
        producer.context,
        endpoint.id,
        since=START - timedelta(days=3650),
        until=None,
        tenant=None,
        progress=batches.append,
        batch=2,
    )
    assert count == 5 and batches == [2, 2, 1]
    assert {d.status for d in producer.list_deliveries().data} == {"pending"}


def test_resend_of_many_shows_progress_on_a_terminal(cli, producer, terminal):
    endpoints = [producer.create_endpoint(URL) for _ in range(3)]
    message = producer.send("a.b", {})
    fail_all(producer)
    result = cli("messages", "resend", message.id, *(e.id for e in endpoints))
    assert result.stderr.rstrip().endswith("resending 3/3 (100%)")


@pytest.mark.parametrize("watched", [True, False])
def test_reencrypt_shows_progress_only_on_a_terminal(cli, producer, monkeypatch, watched):
    from producer.sealing import generate_key

    monkeypatch.setattr(common, "on_terminal", lambda: watched)
    producer.create_endpoint(URL)
    producer.create_endpoint(URL)
    result = cli("secrets", "reencrypt", WEBHOOKS_ENCRYPTION_KEYS=generate_key())
    assert result.stdout.strip() == "re-encrypted the secrets of 2 endpoints"
    if watched:
        assert result.stderr.rstrip().endswith("re-encrypting endpoints 2")
    else:
        assert result.stderr == ""


def test_db_purge_deletes_what_retention_lets_go(cli, database_url):
    delivered_long_ago(database_url, 2)
    result = cli("db", "purge")
    assert result.stdout.strip() == "deleted 0 attempts and 2 messages older than 30 days"
    assert result.stderr == ""


def test_db_purge_shows_progress_on_a_terminal(cli, database_url, terminal):
    delivered_long_ago(database_url, 2)
    assert cli("db", "purge").stderr.rstrip().endswith("deleted rows 2")


def test_db_backup_shows_progress_on_a_terminal_and_copies_everything(tmp_path, terminal):
    url, producer = big_sqlite(tmp_path)
    result = backup(url, tmp_path / "b.db")
    assert result.exit_code == 0, result.output
    pages = re.findall(r"backing up pages (\d+)/(\d+)", result.stderr)
    assert pages[-1][0] == pages[-1][1] and int(pages[-1][1]) > BACKUP_STEP_PAGES
    assert result.stderr.rstrip().endswith("(100%)")
    assert messages_in(tmp_path / "b.db") == 2000
    producer.close()


def test_db_backup_is_quiet_when_piped(tmp_path):
    url, producer = big_sqlite(tmp_path)
    result = backup(url, tmp_path / "b.db")
    assert result.exit_code == 0 and result.stderr == ""
    producer.close()


def test_db_backup_finishes_while_the_database_is_written_between_steps(tmp_path, monkeypatch):
    # A stepwise copy restarts whenever another connection writes between
    # steps, unless it reads one snapshot throughout.
    url, producer = big_sqlite(tmp_path)
    steps = 0

    @contextmanager
    def write_between_steps(label: str, total: int | None = None) -> Iterator[Callable]:
        def advance(n: int) -> None:
            nonlocal steps
            steps += 1
            assert steps < 100, "the backup keeps restarting"
            producer.send("a.b", {})

        yield advance

    monkeypatch.setattr(database_commands, "progress", write_between_steps)
    result = backup(url, tmp_path / "b.db")
    assert result.exit_code == 0, result.output
    assert steps > 1 and messages_in(tmp_path / "b.db") == 2000
    producer.close()


# -- the real program -------------------------------------------------------------------


@pytest.mark.slow
def test_the_installed_program_prints_the_delivery_log_as_json(database_url, producer):
    producer.create_endpoint(URL, tenant="acme")
    message = producer.send("invoice.paid", {"n": 1}, tenant="acme")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "producer.cli",
            "--database-url",
            database_url,
            "deliveries",
            "list",
            "--tenant",
            "acme",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    listed = json.loads(done.stdout)
    assert [d["message_id"] for d in listed["data"]] == [message.id]
    assert listed["next_cursor"] is None
