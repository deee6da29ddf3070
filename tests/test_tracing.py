"""OpenTelemetry traces: the send, each attempt in the send's trace (also
when another process makes it), the worker's batches, API requests,
``traceparent`` forwarding, and nothing imported while tracing is off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.orm import Session

from producer import Producer
from producer.tracing import Tracing
from tests.helpers.api import Api
from tests.helpers.waiting import wait_for_status, wait_for_value


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(make_producer, exporter) -> Callable[..., Producer]:
    """Makes producers with tracing on, their spans kept in ``exporter``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def make(**settings) -> Producer:
        producer = make_producer(otel=True, **settings)
        producer.context.tracing = Tracing(provider)
        return producer

    return make


def spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def wait_for_spans(exporter: InMemorySpanExporter, name: str, count: int) -> list[ReadableSpan]:
    return wait_for_value(lambda: spans(exporter, name), lambda found: len(found) >= count)


def test_a_send_is_a_span_with_its_event_type_tenant_and_deliveries(traced, exporter, receiver):
    producer = traced()
    producer.create_endpoint(receiver.url("/a"), tenant="acme")
    producer.create_endpoint(receiver.url("/b"), tenant="acme")
    message = producer.send("invoice.paid", {"n": 1}, tenant="acme")
    [span] = spans(exporter, "webhooks.send")
    assert dict(span.attributes) == {
        "webhooks.event_type": "invoice.paid",
        "webhooks.tenant": "acme",
        "webhooks.message_id": message.id,
        "webhooks.deliveries": 2,
    }


def test_a_refused_send_is_a_span_with_its_error(traced, exporter):
    producer = traced()
    with pytest.raises(Exception, match="event_type"):
        producer.send("not a name", {})
    [span] = spans(exporter, "webhooks.send")
    assert span.status.status_code is StatusCode.ERROR


def test_a_failing_then_succeeding_delivery_gives_attempt_spans_with_their_outcomes(
    traced, exporter, receiver
):
    producer = traced()
    endpoint = producer.create_endpoint(receiver.script("/flaky", [503]), retry_schedule=[0, 0])
    producer.send("invoice.paid", {"n": 1})
    with producer.start_worker_thread():
        first, second = wait_for_spans(exporter, "webhooks.attempt", 2)
    [send] = spans(exporter, "webhooks.send")
    for attempt in (first, second):
        assert attempt.context.trace_id == send.context.trace_id
        assert attempt.parent is not None and attempt.parent.span_id == send.context.span_id
        assert attempt.kind is SpanKind.CLIENT
        assert attempt.attributes["webhooks.endpoint_id"] == endpoint.id
        assert attempt.attributes["server.address"] == "127.0.0.1"
    assert (first.attributes["webhooks.attempt"], second.attributes["webhooks.attempt"]) == (1, 2)
    assert first.attributes["webhooks.outcome"] == "retry"
    assert first.attributes["http.response.status_code"] == 503
    assert first.status.status_code is StatusCode.ERROR
    assert second.attributes["webhooks.outcome"] == "succeeded"
    assert second.attributes["http.response.status_code"] == 200
    assert second.status.status_code is StatusCode.UNSET
    # Made after the answer, each span still covers its own attempt.
    assert send.end_time <= first.start_time < first.end_time <= second.start_time


def test_an_attempt_without_an_answer_names_its_error(traced, exporter):
    producer = traced()
    producer.create_endpoint("http://127.0.0.1:1/closed", retry_schedule=[0, 3600])
    producer.send("invoice.paid", {"n": 1})
    with producer.start_worker_thread():
        [attempt] = wait_for_spans(exporter, "webhooks.attempt", 1)
    assert "http.response.status_code" not in attempt.attributes
    assert attempt.attributes["error.type"]
    assert attempt.attributes["webhooks.error"].startswith(attempt.attributes["error.type"])


TRACE_ID, SPAN_ID = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"


@pytest.mark.parametrize(
    ("stored", "parent"),
    [
        ({"traceparent": TRACEPARENT}, (TRACE_ID, SPAN_ID)),
        ({"traceparent": TRACEPARENT, "tracestate": "vendor=1"}, (TRACE_ID, SPAN_ID)),
        ({"traceparent": TRACEPARENT.upper()}, None),  # W3C: lowercase hex only
        ({"traceparent": f"00-{0:032x}-{SPAN_ID:016x}-01"}, None),  # an invalid trace id
        ({"traceparent": "garbage"}, None),
        ({"traceparent": 7}, None),
        ({"traceparent": TRACEPARENT, "tracestate": 7}, (TRACE_ID, SPAN_ID)),
        (["not", "a", "mapping"], None),
        (None, None),
    ],
)
@pytest.mark.parametrize("forwarded", [False, True], ids=["made-after", "started-before"])
def test_an_attempt_joins_the_stored_trace_context_or_starts_its_own(
    exporter, stored, parent, forwarded
):
    """Whatever a message's stored context holds, the attempt gets a span:
    a child of a valid ``traceparent`` (keeping its ``tracestate``), else the
    root of a trace of its own."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    attributes = {"webhooks.endpoint_id": "ep_1", "webhooks.attempt": 1}
    outcome = {"outcome": "retry", "status_code": 503, "error": None}
    url = "https://hooks.example/in"
    if forwarded:
        span = tracing.start_attempt(parent=stored, url=url, attributes=attributes)
        carrier = tracing.carrier(span)
        tracing.end_attempt(span, **outcome)
    else:
        tracing.record_attempt(
            parent=stored, url=url, attributes=attributes, start_time=1_000, **outcome
        )
    [attempt] = spans(exporter, "webhooks.attempt")
    if parent is None:
        assert attempt.parent is None
    else:
        assert (attempt.parent.trace_id, attempt.parent.span_id) == parent
        assert attempt.context.trace_id == TRACE_ID
    if isinstance(stored, dict) and isinstance(stored.get("tracestate"), str):
        assert attempt.context.trace_state.to_header() == stored["tracestate"]
    assert attempt.attributes["server.address"] == "hooks.example"
    assert attempt.attributes["webhooks.outcome"] == "retry"
    assert attempt.attributes["http.response.status_code"] == 503
    assert attempt.status.status_code is StatusCode.ERROR
    if forwarded:
        assert carrier["traceparent"] == (
            f"00-{attempt.context.trace_id:032x}-{attempt.context.span_id:016x}"
            f"-{attempt.context.trace_flags:02x}"
        )
    else:
        assert attempt.start_time == 1_000


def test_the_worker_traces_its_claims_and_records(traced, exporter, receiver):
    producer = traced()
    producer.create_endpoint(receiver.url("/ok"))
    producer.send("invoice.paid", {"n": 1})
    with producer.start_worker_thread():
        [record] = wait_for_spans(exporter, "webhooks.record", 1)
    assert record.attributes["webhooks.results"] == 1
    claims = spans(exporter, "webhooks.claim")
    assert any(c.attributes["webhooks.claimed"] == 1 for c in claims)


def test_the_traceparent_is_forwarded_to_endpoints_that_ask_for_it(traced, exporter, receiver):
    producer = traced()
    producer.create_endpoint(receiver.url("/traced"), forward_traceparent=True)
    producer.send("invoice.paid", {"n": 1})
    with producer.start_worker_thread():
        [request] = receiver.wait_for(1)
        [attempt] = wait_for_spans(exporter, "webhooks.attempt", 1)
    context = attempt.context
    version, trace_id, span_id, _flags = request.headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    )


def test_the_traceparent_is_not_forwarded_by_default(traced, receiver):
    producer = traced()
    endpoint = producer.create_endpoint(receiver.url("/plain"))
    producer.send("invoice.paid", {"n": 1})
    with producer.start_worker_thread():
        [request] = receiver.wait_for(1)
    assert "traceparent" not in request.headers
    assert endpoint.forward_traceparent is False


def test_api_requests_are_traced(traced, exporter):
    api = Api(traced())
    assert api.anonymous.get("/v1/health").status_code == 200
    server = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.attributes.get("http.route") for s in server] == ["/v1/health"]


def test_without_tracing_a_message_keeps_no_trace_context(producer, receiver):
    producer.create_endpoint(receiver.url("/a"))
    message = producer.send("invoice.paid", {"n": 1})
    assert producer.context.tracing is None
    with producer.store.transaction() as s:
        assert producer.store.get_message(s, message.id, tenant=None).trace_context is None


# -- across processes ----------------------------------------------------------------


def _console_spans(path: Path) -> list[dict]:
    """The spans the console exporter wrote: JSON objects one after another."""
    text, found, decoder, at = path.read_text(), [], json.JSONDecoder(), 0
    while (at := text.find("{", at)) != -1:
        try:
            span, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            break  # a span still being written
        found.append(span)
    return found


@pytest.mark.slow
def test_a_message_sent_in_an_outbox_transaction_is_delivered_in_its_trace_by_another_process(
    traced, exporter, receiver, database_url, tmp_path
):
    producer = traced()
    producer.create_endpoint(receiver.url("/outbox"))
    with Session(producer.engine) as session, session.begin():
        message = producer.send("order.placed", {"id": 7}, session=session)
    [send] = spans(exporter, "webhooks.send")
    output = tmp_path / "worker-spans.json"
    env = {
        **os.environ,
        "WEBHOOKS_DATABASE_URL": database_url,
        "WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8",
        "WEBHOOKS_WORKER_POLL_INTERVAL": "0.1",
        "WEBHOOKS_OTEL": "1",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "webhooks-worker",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_METRICS_EXPORTER": "none",
    }
    with output.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "producer.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    try:
        [delivery] = producer.list_deliveries(message_id=message.id).data
        wait_for_status(producer, delivery.id, "succeeded")
        attempts = wait_for_value(
            lambda: [s for s in _console_spans(output) if s["name"] == "webhooks.attempt"],
            lambda found: len(found) == 1,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    [attempt] = attempts
    assert attempt["context"]["trace_id"] == f"0x{send.context.trace_id:032x}"
    assert attempt["parent_id"] == f"0x{send.context.span_id:016x}"
    assert attempt["attributes"]["webhooks.message_id"] == message.id
    assert attempt["attributes"]["webhooks.outcome"] == "succeeded"
    assert attempt["resource"]["attributes"]["service.name"] == "webhooks-worker"


# -- without OpenTelemetry ---------------------------------------------------------------

_BLOCKED = textwrap.dedent(
    """
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def _run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKED + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )


@pytest.mark.slow
def test_without_opentelemetry_sending_and_delivering_import_none_of_it(tmp_path):
    result = _run_blocked(
        f"""
        import asyncio
        from producer import Producer
        from producer.metrics import Metrics

        producer = Producer("sqlite:///{tmp_path / "w.db"}", allowed_cidrs=["127.0.0.0/8"])
        Metrics(producer).start()
        endpoint = producer.create_endpoint("http://127.0.0.1:1/closed")
        producer.send("invoice.paid", {{"n": 1}})
        assert producer.test_endpoint(endpoint.id).status_code is None
        assert not [m for m in sys.modules if m.startswith("opentelemetry")]
        print("ok")
        """
    )
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.slow
def test_tracing_on_without_opentelemetry_is_a_clear_error():
    result = _run_blocked(
        """
        from producer import Producer

        Producer("sqlite://", otel=True)
        """
    )
    assert result.returncode != 0
    assert "pip install 'webhook-producer[otel]'" in result.stderr


@pytest.mark.slow
def test_the_service_names_an_exporter_that_is_not_installed_in_one_line(tmp_path):
    env = {
        **os.environ,
        "WEBHOOKS_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "WEBHOOKS_OTEL": "1",
        "OTEL_TRACES_EXPORTER": "carrier-pigeon",
    }
    result = subprocess.run(
        [sys.executable, "-m", "producer.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "error: OTEL_TRACES_EXPORTER names 'carrier-pigeon', which is not installed"
    )
