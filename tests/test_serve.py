"""``webhooks serve`` and ``webhooks worker`` as a user runs them: real
processes, driven over HTTP.

The tour the quick start gives with curl; the banner that ends the start-up;
``--dev``, which opens loopback destinations for trying things on one
machine; ports in use; and ``--app``, which runs the host application's own
producer (its converters and callbacks).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from producer import Producer, WebhooksError
from producer.service import load_producer
from tests.helpers.processes import serving, webhooks_service
from tests.helpers.waiting import wait_for_value

CLI = [sys.executable, "-m", "producer.cli"]


def _webhooks(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command line to its end."""
    return subprocess.run(
        [*CLI, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The only line a refused command printed (stderr), its stdout empty."""
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _rows(banner: list[str]) -> dict[str, str]:
    """The banner's ``label  value`` lines as a dict."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in banner[1:])  # type: ignore[misc]


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- the tour ---------------------------------------------------------------------


@pytest.fixture
def service(database_url: str) -> Iterator[tuple[str, str]]:
    with webhooks_service(database_url) as (base, key):
        yield base, key


@pytest.mark.slow
def test_the_quick_start_tour_over_http(service, receiver):
    base, key = service
    api = httpx.Client(base_url=base, headers=_auth(key))
    assert re.fullmatch(r"whk_\S+", key)
    created = api.post(
        "/v1/endpoints",
        json={"url": receiver.script("/hooks", [500]), "tenant": "acme", "retry_schedule": [0]},
    )
    assert created.status_code == 201
    endpoint = created.json()
    secret = endpoint["secret"]

    sent = api.post(
        "/v1/messages",
        json={"event_type": "invoice.paid", "data": {"amount": 5}, "tenant": "acme"},
    )
    assert sent.status_code == 202 and sent.json()["deliveries"] == 1
    message_id = sent.json()["id"]

    log = wait_for_value(
        lambda: api.get("/v1/deliveries", params={"message_id": message_id}).json()["data"],
        lambda rows: rows and rows[0]["status"] == "failed",
    )
    delivery_id = log[0]["id"]
    [attempt] = api.get(f"/v1/deliveries/{delivery_id}/attempts").json()["data"]
    assert attempt["response"]["status_code"] == 500

    assert api.post(f"/v1/deliveries/{delivery_id}/retry").status_code == 202
    wait_for_value(
        lambda: api.get(f"/v1/deliveries/{delivery_id}").json()["status"],
        lambda status: status == "succeeded",
    )
    receiver.received()[-1].verify(secret)

    new_secret = api.post(f"/v1/endpoints/{endpoint['id']}/secret/rotate", json={}).json()
    test = api.post(f"/v1/endpoints/{endpoint['id']}/test", json={}).json()
    assert test["succeeded"] and test["status_code"] == 200
    last = receiver.received()[-1]
    last.verify(secret)
    last.verify(new_secret["secret"])

    assert api.get("/metrics").status_code == 200
    assert httpx.get(base + "/ui/login").status_code == 200
    assert api.get("/v1/endpoints", headers={"Authorization": "Bearer wrong"}).status_code == 401


# -- the banner -------------------------------------------------------------------


@pytest.mark.slow
def test_first_start_ends_with_a_banner_of_where_what_and_the_new_admin_key(database_url):
    # A password in the URL (PostgreSQL here trusts any) must not be shown.
    url = database_url
    if url.startswith("postgresql"):
        url = make_url(url).set(password="s3cret-pw").render_as_string(hide_password=False)
    with serving(url) as service:
        assert service.banner[0] == "webhooks serve: ready (API and worker)"
        rows = _rows(service.banner)
        assert rows["API"] == f"{service.base}/v1"
        assert rows["Docs"] == f"{service.base}/docs"
        assert rows["UI"] == f"{service.base}/ui"
        for link in (rows["API"], rows["Docs"], rows["UI"]):
            assert httpx.get(link, follow_redirects=True).status_code == 200
        if url.startswith("sqlite"):
            assert rows["Database"] == f"{make_url(url).database} (SQLite)"
        else:
            assert rows["Database"] == make_url(url).render_as_string(hide_password=True)
            assert "s3cret-pw" not in "\n".join(service.banner)
        assert rows["Destinations"].startswith("public addresses only")
        assert re.fullmatch(r"whk_\S+  \(shown only this once: keep it\)", rows["Admin key"])
        answer = httpx.get(f"{service.base}/v1/endpoints", headers=_auth(service.key))
        assert answer.status_code == 200


@pytest.mark.slow
def test_restart_says_keys_exist_and_how_to_make_another(tmp_path):
    url = f"sqlite:///{tmp_path / 'webhooks.db'}"
    with serving(url):
        pass
    with serving(url) as again:
        assert again.key is None
        assert _rows(again.banner)["API keys"] == (
            "an admin key exists; make another with `webhooks keys create`"
        )


@pytest.mark.slow
def test_banner_names_the_allowed_ranges_and_whether_loopback_is_open(tmp_path):
    url = f"sqlite:///{tmp_path / 'webhooks.db'}"
    with serving(url, env={"WEBHOOKS_ALLOWED_CIDRS": "10.20.0.0/16"}) as service:
        assert _rows(service.banner)["Destinations"] == (
            "public addresses and 10.20.0.0/16 (loopback refused)"
        )


# -- --dev ------------------------------------------------------------------------


@pytest.mark.slow
def test_dev_says_loudly_that_this_machine_is_open(tmp_path):
    with serving(f"sqlite:///{tmp_path / 'webhooks.db'}", "--dev") as service:
        assert "DEVELOPMENT MODE (--dev), not for production" in service.banner[0]
        assert _rows(service.banner)["Destinations"] == (
            "THIS MACHINE IS OPEN (--dev: 127.0.0.0/8, ::1/128)"
        )
        warning = "WARNING producer.service: --dev: deliveries to this machine"
        assert warning in service.stderr()


@pytest.mark.slow
def test_dev_delivers_to_a_receiver_on_this_machine(tmp_path, receiver):
    with serving(f"sqlite:///{tmp_path / 'webhooks.db'}", "--dev") as service:
        api = httpx.Client(base_url=service.base, headers=_auth(service.key))
        created = api.post("/v1/endpoints", json={"url": receiver.url("/hooks")})
        assert created.status_code == 201
        assert api.post("/v1/messages", json={"event_type": "a.b", "data": {}}).status_code == 202
        receiver.wait_for(1)[0].verify(created.json()["secret"])


@pytest.mark.slow
def test_without_dev_a_receiver_on_this_machine_is_refused_with_the_way_to_open_it(
    tmp_path, receiver
):
    with serving(f"sqlite:///{tmp_path / 'webhooks.db'}") as service:
        answer = httpx.post(
            f"{service.base}/v1/endpoints",
            headers=_auth(service.key),
            json={"url": receiver.url("/hooks")},
        )
    assert answer.status_code == 422
    assert "webhooks serve --dev" in answer.json()["error"]["message"]


@pytest.mark.slow
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_dev_is_refused_on_a_host_other_than_loopback_and_creates_nothing(tmp_path, host):
    database = tmp_path / "webhooks.db"
    result = _webhooks("--database-url", f"sqlite:///{database}", "serve", "--dev", "--host", host)
    assert _one_error_line(result).startswith(f"error: --dev with --host {host}: callers from")
    assert not database.exists()


@pytest.mark.slow
def test_dev_is_refused_with_a_database_other_than_sqlite():
    url = "postgresql://webhooks:s3cret-pw@127.0.0.1:1/webhooks"
    line = _one_error_line(_webhooks("--database-url", url, "serve", "--dev"))
    assert line == (
        "error: --dev is for trying things on an SQLite file, not on "
        "postgresql://webhooks:***@127.0.0.1:1/webhooks: open the ranges you need with "
        "WEBHOOKS_ALLOWED_CIDRS instead"
    )


# -- ports in use -----------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.slow
def test_serve_on_a_port_in_use_is_one_line_and_creates_no_database_or_key(tmp_path, taken_port):
    database = tmp_path / "webhooks.db"
    result = _webhooks(
        "--database-url", f"sqlite:///{database}", "serve", "--port", str(taken_port)
    )
    assert _one_error_line(result) == (
        f"error: port {taken_port} on 127.0.0.1 is in use (choose another with --port)"
    )
    assert not database.exists()


@pytest.mark.slow
def test_worker_metrics_port_in_use_is_the_only_line(tmp_path, taken_port):
    url = f"sqlite:///{tmp_path / 'webhooks.db'}"
    result = _webhooks("--database-url", url, "worker", "--metrics-port", str(taken_port))
    assert _one_error_line(result).startswith(
        f"error: cannot serve metrics on 127.0.0.1:{taken_port}: "
    )


# -- --app ------------------------------------------------------------------------


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Writes a module of the given source into ``tmp_path`` (which is put on
    the import path) under a fresh name, and returns the name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = f"host_app_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(source)
        monkeypatch.delitem(sys.modules, name, raising=False)  # removed at teardown
        return name

    return write


def _app_source(database: Path, body: str = "", *, settings: str = "") -> str:
    """A host application's module: ``producer`` on ``database``, then ``body``."""
    url = f"sqlite:///{database}"
    return f"from producer import Producer\n\nproducer = Producer({url!r}{settings})\n{body}"


def test_app_path_names_a_configured_producer(app_module, tmp_path):
    name = app_module(_app_source(tmp_path / "a.db"))
    producer = load_producer(f"{name}:producer")
    assert producer is sys.modules[name].producer
    producer.close()


def test_app_path_may_name_a_factory_called_once(app_module, tmp_path):
    name = app_module(
        _app_source(
            tmp_path / "a.db",
            "calls = []\n\ndef make():\n    calls.append(1)\n    return producer\n",
        )
    )
    producer = load_producer(f"{name}:make")
    assert producer is sys.modules[name].producer and sys.modules[name].calls == [1]
    producer.close()


def test_app_path_may_name_an_attribute_of_an_attribute(app_module, tmp_path):
    name = app_module(_app_source(tmp_path / "a.db", "class hooks:\n    sender = producer\n"))
    producer = load_producer(f"{name}:hooks.sender")
    assert producer is sys.modules[name].producer
    producer.close()


@pytest.mark.parametrize(
    ("attribute", "body", "error"),
    [
        ("missing", "", "{path}: {name} has no attribute 'missing'"),
        (
            "settings",
            "settings = {}\n",
            "{path} is a dict, not a producer.Producer or a function returning one",
        ),
        (
            "Producer",
            "",
            "{path} is the class Producer, not a producer.Producer or a function returning one",
        ),
        (
            "make",
            "def make(url):\n    return producer\n",
            "{path}: a factory must take no arguments",
        ),
        (
            "make",
            "def make():\n    return None\n",
            "{path}: the factory returned a NoneType, not a producer.Producer",
        ),
    ],
)
def test_app_path_that_names_no_producer_is_refused(app_module, tmp_path, attribute, body, error):
    name = app_module(_app_source(tmp_path / "a.db", body))
    path = f"{name}:{attribute}"
    with pytest.raises(WebhooksError) as info:
        load_producer(path)
    assert info.value.message == "--app " + error.format(path=path, name=name)
    sys.modules[name].producer.close()


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (
            "no_such_module_here:producer",
            "--app no_such_module_here:producer: cannot import no_such_module_here: "
            "No module named 'no_such_module_here'",
        ),
        ("producer", "--app 'producer': expected module:attribute, e.g. myapp.hooks:producer"),
        (":producer", "--app ':producer': expected module:attribute, e.g. myapp.hooks:producer"),
    ],
)
def test_app_path_that_cannot_be_imported_is_refused(path, error):
    with pytest.raises(WebhooksError) as info:
        load_producer(path)
    assert info.value.message == error


CONVERTING_APP = """
@producer.converter("invoice.paid", "2", "1")
def cents_to_units(data):
    return {"amount": data["amount_cents"] / 100}
"""


RECORDING_APP = """
import gc
from pathlib import Path

ATTEMPTS = Path(__file__).with_name("attempts.txt")


def record(outcome, duration_ms):
    # Whether the service froze its start-up heap before it began working.
    with ATTEMPTS.open("a") as attempts:
        attempts.write(f"{outcome} frozen={gc.get_freeze_count() > 0}\\n")


producer.on_attempt(record)
"""


def _recorded_attempts(directory: Path, expected: str) -> None:
    attempts = directory / "attempts.txt"
    wait_for_value(
        lambda: attempts.read_text() if attempts.exists() else "", lambda text: text == expected
    )


@pytest.mark.slow
def test_serve_app_renders_deliveries_with_the_apps_converters(tmp_path, receiver):
    source = _app_source(tmp_path / "shop.db", CONVERTING_APP + RECORDING_APP)
    (tmp_path / "shop_hooks.py").write_text(source)
    pythonpath = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    with serving(
        f"sqlite:///{tmp_path / 'unused.db'}",
        "--app",
        "shop_hooks:producer",
        "--dev",
        env={"PYTHONPATH": pythonpath},
    ) as service:
        assert _rows(service.banner)["App"] == "shop_hooks:producer"
        assert _rows(service.banner)["Database"] == f"{tmp_path / 'shop.db'} (SQLite)"
        api = httpx.Client(base_url=service.base, headers=_auth(service.key))
        schemas = {"1": {"type": "object"}, "2": {"type": "object"}}
        created = api.post("/v1/event-types", json={"name": "invoice.paid", "schemas": schemas})
        assert created.status_code == 201
        endpoint = api.post("/v1/endpoints", json={"url": receiver.url("/hooks"), "version": "1"})
        assert endpoint.status_code == 201, endpoint.text
        sent = api.post(
            "/v1/messages", json={"event_type": "invoice.paid", "data": {"amount_cents": 1250}}
        )
        assert sent.status_code == 202
        [delivered] = receiver.wait_for(1)
        _recorded_attempts(tmp_path, "succeeded frozen=True\n")
    assert json.loads(delivered.body)["data"] == {"amount": 12.5}
    assert not (tmp_path / "unused.db").exists()


@pytest.mark.slow
def test_worker_app_reports_attempts_to_the_apps_callbacks(tmp_path, receiver):
    database = tmp_path / "shop.db"
    source = _app_source(database, RECORDING_APP, settings=", allowed_cidrs=['127.0.0.0/8']")
    (tmp_path / "shop_worker.py").write_text(source)
    sender = Producer(f"sqlite:///{database}", allowed_cidrs=["127.0.0.0/8"])
    sender.create_endpoint(receiver.url("/hooks"))
    sender.send("invoice.paid", {"n": 1})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "WEBHOOKS_WORKER_POLL_INTERVAL": "0.1",
    }
    worker = subprocess.Popen(
        [*CLI, "worker", "--app", "shop_worker:producer"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        receiver.wait_for(1)
        _recorded_attempts(tmp_path, "succeeded frozen=True\n")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        sender.close()


@pytest.mark.slow
@pytest.mark.parametrize("command", ["serve", "worker"])
def test_app_that_cannot_be_loaded_is_one_line(command):
    line = _one_error_line(_webhooks(command, "--app", "no_such_module_here:producer"))
    assert line.startswith("error: --app no_such_module_here:producer: cannot import")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["serve", "worker"])
def test_database_url_with_app_is_refused(tmp_path, command):
    database = tmp_path / "webhooks.db"
    args = ["--database-url", f"sqlite:///{database}", command, "--app", "shop:producer"]
    assert _one_error_line(_webhooks(*args)) == (
        "error: --database-url does not apply with --app: the app's producer has its own database"
    )
    assert not database.exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_served_connections_send_answers_without_waiting_for_acks(host):
    """TCP_NODELAY on every accepted connection. A socket made without the
    TCP protocol number does not get it from asyncio, and then a response
    written in two parts waits 40 ms for the client's delayed ACK at every
    request of a keep-alive connection."""
    from producer.cli.service import _listening_socket

    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        listening = _listening_socket(host, 0)
    except SystemExit:
        pytest.skip(f"cannot listen on {host} here")
    with listening, socket.create_connection(listening.getsockname()[:2]):
        accepted, _ = listening.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
