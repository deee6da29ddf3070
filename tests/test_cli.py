"""The ``webhooks`` command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook

from producer import Producer
from producer.cli import main
from producer.signing import build_headers, generate_secret, validate_secret
from tests.helpers.processes import free_port, running
from tests.helpers.waiting import wait_for_value


@pytest.fixture
def run(database_url):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, ["--database-url", database_url, *args], catch_exceptions=False)

    invoke("db", "upgrade")
    return invoke


def test_db_upgrade_reports_the_revision(run):
    result = run("db", "upgrade")
    assert result.exit_code == 0 and "revision 0005" in result.output


def test_keys_create_prints_only_the_key(run, database_url):
    result = run("keys", "create", "--tenant", "acme")
    key = result.stdout.strip()
    assert result.exit_code == 0 and key.startswith("whk_") and "\n" not in key
    principal = Producer(database_url).authenticate(key)
    assert principal is not None and principal.tenant == "acme"


def test_endpoints_add_then_list(run):
    added = run(
        "endpoints", "add", "https://r.example/h", "--event-type", "invoice.*", "--tenant", "acme"
    )
    assert added.exit_code == 0
    endpoint_id = added.output.split()[1]
    assert "secret: whsec_" in added.output
    listed = run("endpoints", "list")
    assert endpoint_id in listed.output and "invoice.*" in listed.output and "acme" in listed.output


def test_send_prints_the_message_and_its_fan_out(run):
    run("endpoints", "add", "https://r.example/h")
    result = run("send", "invoice.paid", "--data", '{"amount": 3}')
    assert result.exit_code == 0
    assert result.output.startswith("msg_") and "(1 delivery)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send", "invoice.paid", "--data", "{not json"], "--data is not valid JSON"),
        (["send", "not valid", "--data", "{}"], "event_type"),
        (["endpoints", "add", "ftp://x"], "url: scheme must be"),
    ],
)
def test_errors_are_one_line_and_a_nonzero_exit(run, args, message):
    result = run(*args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_unreachable_database_is_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["--database-url", "postgresql://nobody@127.0.0.1:1/none", "endpoints", "list"],
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: database error:") and result.stderr.count("\n") == 1


@pytest.mark.slow
def test_listen_prints_each_webhook_and_whether_it_verifies():
    secret = generate_secret()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "listen", "--port", str(port), "--secret", secret],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "Listening on" in proc.stdout.readline()
        body = json.dumps({"id": "msg_1", "type": "invoice.paid", "data": {}}).encode()
        good = build_headers([secret], "msg_1", int(time.time()), body)
        url = f"http://127.0.0.1:{port}/hooks"
        for _ in range(50):
            try:
                ok = httpx.post(url, content=body, headers=good)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        bad = httpx.post(url, content=body + b" ", headers=good)
        assert (ok.status_code, bad.status_code) == (200, 401)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert "type: invoice.paid" in output
    assert "signature: valid" in output
    assert "signature: INVALID (no matching signature)" in output


def test_openapi_prints_the_rest_api_document(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["openapi"], catch_exceptions=False)
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["info"]["title"] == "webhook-producer"
    assert "/v1/endpoints/{endpoint_id}/test" in document["paths"]
    assert list(tmp_path.iterdir()) == []  # no database was created


def test_db_backup_copies_a_live_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    producer = Producer(url)
    endpoint = producer.create_endpoint("https://r.example/h", tenant="acme")
    sent = producer.send("invoice.paid", {"n": 1}, tenant="acme")

    # The producer's connections stay open, as a running service's would.
    result = CliRunner().invoke(
        main, ["--database-url", url, "db", "backup", str(tmp_path / "copy.db")]
    )

    assert result.exit_code == 0, result.output
    copy = Producer(f"sqlite:///{tmp_path / 'copy.db'}")
    assert copy.get_endpoint(endpoint.id).url == "https://r.example/h"
    assert [d.message_id for d in copy.list_deliveries().data] == [sent.id]
    producer.close()
    copy.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://nobody@127.0.0.1:1/none", "back up PostgreSQL with pg_dump"),
        ("sqlite://", "db backup copies SQLite files"),
    ],
)
def test_db_backup_refuses_what_it_cannot_copy(tmp_path, url, message):
    result = CliRunner().invoke(
        main, ["--database-url", url, "db", "backup", str(tmp_path / "copy.db")]
    )
    assert result.exit_code == 1 and message in result.stderr


def test_db_backup_of_a_missing_file_creates_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    result = CliRunner().invoke(
        main, ["--database-url", url, "db", "backup", str(tmp_path / "copy.db")]
    )
    assert result.exit_code == 1 and "no SQLite database at" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_db_backup_never_overwrites(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    Producer(url).close()
    (tmp_path / "copy.db").write_text("keep me")
    result = CliRunner().invoke(
        main, ["--database-url", url, "db", "backup", str(tmp_path / "copy.db")]
    )
    assert result.exit_code == 1 and "exists" in result.stderr
    assert (tmp_path / "copy.db").read_text() == "keep me"


@pytest.mark.slow
def test_worker_serves_its_own_metrics(database_url, receiver):
    producer = Producer(database_url, allowed_cidrs=["127.0.0.0/8"])
    port = free_port()
    producer.create_endpoint(receiver.url("/hooks"))
    producer.send("invoice.paid", {"n": 1})
    args = [sys.executable, "-m", "producer.cli", "--database-url", database_url, "worker"]
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    with running(
        [*args, "--metrics-port", str(port)],
        ready_url=metrics_url,
        env={"WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8"},
    ):
        # The attempt is counted when it ends, the delivery's status once the
        # worker has recorded it (a moment later): wait for both.
        text = wait_for_value(
            lambda: httpx.get(metrics_url).text,
            lambda text: (
                'webhooks_attempt_duration_seconds_count{outcome="succeeded"} 1.0' in text
                and 'webhooks_deliveries{status="succeeded"} 1.0' in text
            ),
        )
    assert "webhooks_database_up 1.0" in text
    producer.close()


@pytest.mark.slow
def test_worker_metrics_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "producer.cli",
                "--database-url",
                f"sqlite:///{tmp_path / 'w.db'}",
                "worker",
                "--metrics-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: cannot serve metrics on 127.0.0.1:{port}")
    )


@pytest.mark.parametrize(
    "args",
    [
        ["endpoints", "list"],
        ["endpoints", "add", "https://r.example/h"],
        ["keys", "create"],
        ["send", "a.b", "--data", "{}"],
        ["secrets", "reencrypt"],
    ],
)
def test_commands_refuse_a_missing_database_and_create_nothing(tmp_path, args):
    missing = tmp_path / "mistyped" / "webhooks.db"
    result = CliRunner().invoke(main, ["--database-url", f"sqlite:///{missing}", *args])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: no database at {missing}")
    assert "webhooks db upgrade" in lines[0]
    assert not missing.parent.exists()


def test_db_upgrade_creates_the_database_the_others_then_use(tmp_path):
    path = tmp_path / "new" / "webhooks.db"
    url = ["--database-url", f"sqlite:///{path}"]
    assert CliRunner().invoke(main, [*url, "db", "upgrade"]).exit_code == 0
    assert path.is_file()
    listed = CliRunner().invoke(main, [*url, "endpoints", "list"])
    assert listed.exit_code == 0 and listed.output.strip() == "no endpoints"


@pytest.mark.parametrize(("scheme", "prefix"), [("v1", "whsec_"), ("v1a", "whsk_")])
def test_secrets_generate_prints_a_valid_signing_secret(scheme, prefix):
    result = CliRunner().invoke(main, ["secrets", "generate", "--scheme", scheme])
    secret = result.stdout.strip()
    assert result.exit_code == 0 and secret.startswith(prefix) and "\n" not in secret
    validate_secret(secret, scheme)
    if scheme == "v1":
        # A receiver's own library accepts it and verifies what we sign with it.
        body, headers = b"{}", build_headers([secret], "msg_1", int(time.time()), b"{}")
        Webhook(secret).verify(body, headers)
