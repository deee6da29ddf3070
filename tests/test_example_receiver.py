"""The receiving examples.

``examples/verify_hmac.py`` against the Standard Webhooks conformance vectors,
the ``standardwebhooks`` package and real deliveries; ``examples/receiver.py``
as a real process the library delivers to, which processes each message once.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from examples.verify_hmac import InvalidSignature, verify
from tests.helpers.processes import free_port, running
from tests.helpers.waiting import wait_for_value

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VECTORS = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "conformance"
    / "standard-webhooks-vectors.json"
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(32, 64))).decode()
SIGNED_AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
NOW = SIGNED_AT.timestamp()
BODY = b'{"type":"order.created","data":{"order":42}}'


def _headers(msg_id: str, timestamp: int | float, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": signature,
    }


def _signed(secret: str, body: bytes = BODY, msg_id: str = "msg_1") -> dict[str, str]:
    """Headers as the standardwebhooks package signs them, at SIGNED_AT."""
    signature = Webhook(secret).sign(msg_id, SIGNED_AT, body.decode())
    return _headers(msg_id, NOW, signature)


# --- conformance vectors -------------------------------------------------------


def _vector_cases() -> tuple[list[Any], list[Any]]:
    """``(accepted, rejected)`` cases of ``(secret, headers, body, now)``."""
    if not VECTORS.exists():
        skipped = pytest.param(
            None, None, None, None, marks=pytest.mark.skip(reason=f"no vectors at {VECTORS}")
        )
        return [skipped], [skipped]
    vectors = json.loads(VECTORS.read_text())

    def case(v: dict[str, Any], case_id: str, signature: str, now: int) -> Any:
        headers = _headers(v["msg_id"], v["timestamp"], signature)
        return pytest.param(v["secret"], headers, v["payload"].encode(), now, id=case_id)

    accepted = [
        case(v, f"hmac_v1[{i}]", v["signature"], v["timestamp"])
        for i, v in enumerate(vectors["hmac_v1"])
    ]
    # The must_fail entries are changes to the first hmac_v1 vector.
    base = vectors["hmac_v1"][0]
    rejected = []
    for entry in vectors["must_fail"]:
        why = entry["why"].replace(" ", "-")
        signature = entry.get("signature", base["signature"])
        offset = entry.get("offset_seconds")
        if offset is None:
            rejected.append(case(base, why, signature, base["timestamp"]))
        else:
            # "From now" holds on either side of the receiver's clock.
            rejected.append(case(base, f"{why}-past", signature, base["timestamp"] + offset))
            rejected.append(case(base, f"{why}-future", signature, base["timestamp"] - offset))
    for i, v in enumerate(vectors["ed25519_v1a"]):
        # An ed25519 signature over the same message is no HMAC signature.
        hmac_vector = {**base, **{k: v[k] for k in ("msg_id", "timestamp", "payload")}}
        case_id = f"ed25519_v1a[{i}]-signature-alone"
        rejected.append(case(hmac_vector, case_id, v["signature"], v["timestamp"]))
    return accepted, rejected


ACCEPTED_VECTORS, REJECTED_VECTORS = _vector_cases()


@pytest.mark.parametrize(("secret", "headers", "body", "now"), ACCEPTED_VECTORS)
def test_verify_hmac_accepts_the_hmac_vectors(secret, headers, body, now):
    verify(secret, headers, body, now=now)


@pytest.mark.parametrize(("secret", "headers", "body", "now"), REJECTED_VECTORS)
def test_verify_hmac_rejects_the_must_fail_vectors(secret, headers, body, now):
    with pytest.raises(InvalidSignature):
        verify(secret, headers, body, now=now)


# --- verify_hmac against the standardwebhooks package -----------------------------


@pytest.mark.parametrize(
    "body",
    [BODY, '{"name":"Zoë ☃"}'.encode(), b""],
    ids=["ascii-json", "utf8-json", "empty"],
)
def test_verify_hmac_accepts_what_standardwebhooks_signs(body):
    verify(SECRET, _signed(SECRET, body), body, now=NOW)


def test_verify_hmac_accepts_a_rotation_header_where_the_second_signature_matches():
    headers = _signed(SECRET)
    old = _signed(OTHER_SECRET)["webhook-signature"]
    headers["webhook-signature"] = f"{old} {headers['webhook-signature']}"
    verify(SECRET, headers, BODY, now=NOW)


def test_verify_hmac_rejects_a_tampered_body():
    with pytest.raises(InvalidSignature, match="no matching signature"):
        verify(SECRET, _signed(SECRET), BODY.replace(b"42", b"43"), now=NOW)


def test_verify_hmac_rejects_a_stale_timestamp():
    with pytest.raises(InvalidSignature, match="too old"):
        verify(SECRET, _signed(SECRET), BODY, now=NOW + 301)


def test_verify_hmac_rejects_a_timestamp_from_the_future():
    with pytest.raises(InvalidSignature, match="too new"):
        verify(SECRET, _signed(SECRET), BODY, now=NOW - 301)


def test_verify_hmac_rejects_a_header_with_only_a_v1a_entry():
    headers = _signed(SECRET)
    # The right HMAC, labelled as another scheme: the label decides, not the value.
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v1a,")
    with pytest.raises(InvalidSignature, match="no matching signature"):
        verify(SECRET, headers, BODY, now=NOW)


def test_verify_hmac_matches_header_names_in_any_case():
    headers = {name.title(): value for name, value in _signed(SECRET).items()}
    verify(SECRET, headers, BODY, now=NOW)


def test_verify_hmac_names_a_missing_header():
    headers = _signed(SECRET)
    del headers["webhook-timestamp"]
    with pytest.raises(InvalidSignature, match="missing webhook-timestamp header"):
        verify(SECRET, headers, BODY, now=NOW)


def test_verify_hmac_accepts_a_secret_without_base64_padding():
    padded = "whsec_" + base64.b64encode(bytes(range(31))).decode()
    assert padded.endswith("=")
    verify(padded.rstrip("="), _signed(padded), BODY, now=NOW)


# --- verify_hmac against real deliveries --------------------------------------------


def test_verify_hmac_accepts_a_delivery_from_the_library(producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/hooks"))
    producer.send("order.created", {"order": 42})
    with producer.start_worker_thread():
        [request] = receiver.wait_for(1)
    assert endpoint.secret is not None
    verify(endpoint.secret, request.headers, request.body)


def test_verify_hmac_accepts_a_delivery_during_a_rotation_with_either_secret(producer, receiver):
    endpoint = producer.create_endpoint(receiver.url("/hooks"))
    new_secret = producer.rotate_endpoint_secret(endpoint.id)
    producer.send("order.created", {"order": 42})
    with producer.start_worker_thread():
        [request] = receiver.wait_for(1)
    assert endpoint.secret is not None
    assert len(request.headers["webhook-signature"].split()) == 2
    verify(endpoint.secret, request.headers, request.body)
    verify(new_secret, request.headers, request.body)


# --- examples/receiver.py as a real process ----------------------------------------


@contextmanager
def _example_receiver(
    tmp_path: Path, args: list[str], env: dict[str, str] | None = None
) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(EXAMPLES / "receiver.py"), "--port", str(port)]
    command += ["--db", str(tmp_path / "received.db"), *args]
    with running(command, ready_url=base + "/events", env=env):
        yield base


@pytest.fixture
def example_receiver(tmp_path: Path) -> Iterator[str]:
    """examples/receiver.py running on SECRET; yields its base URL."""
    with _example_receiver(tmp_path, ["--secret", SECRET]) as base:
        yield base


def _events(base: str) -> list[dict[str, Any]]:
    return httpx.get(base + "/events").json()


@pytest.mark.slow
def test_receiver_processes_a_delivered_message(producer, example_receiver):
    producer.create_endpoint(example_receiver + "/webhooks", secret=SECRET)
    message = producer.send("order.created", {"order": 42})
    with producer.start_worker_thread():
        events = wait_for_value(lambda: _events(example_receiver), bool)
    assert events == [{"webhook_id": message.id, "type": "order.created", "data": {"order": 42}}]


@pytest.mark.slow
def test_receiver_answers_200_to_a_redelivery_but_processes_it_once(producer, example_receiver):
    producer.create_endpoint(example_receiver + "/webhooks", secret=SECRET)
    message = producer.send("order.created", {"order": 42})
    [delivery] = producer.list_deliveries(message_id=message.id).data
    with producer.start_worker_thread():
        wait_for_value(
            lambda: producer.get_delivery(delivery.id).status, lambda s: s == "succeeded"
        )
        producer.retry_delivery(delivery.id, force=True)
        wait_for_value(
            lambda: producer.get_delivery(delivery.id),
            lambda d: d.status == "succeeded" and d.attempt_count == 2,
        )
    attempts = producer.list_attempts(delivery.id)
    assert [a.response_status for a in attempts] == [200, 200]
    assert [json.loads(a.response_body or "")["status"] for a in attempts] == [
        "processed",
        "duplicate",
    ]
    assert [e["webhook_id"] for e in _events(example_receiver)] == [message.id]


@pytest.mark.slow
def test_receiver_rejects_a_bad_signature_and_processes_nothing(example_receiver):
    now = datetime.now(UTC)
    headers = _headers("msg_1", now.timestamp(), Webhook(OTHER_SECRET).sign("msg_1", now, "{}"))
    response = httpx.post(example_receiver + "/webhooks", content=b"{}", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert _events(example_receiver) == []


@pytest.mark.slow
def test_receiver_takes_the_secret_from_the_environment(tmp_path):
    now = datetime.now(UTC)
    headers = _headers("msg_1", now.timestamp(), Webhook(SECRET).sign("msg_1", now, "{}"))
    with _example_receiver(tmp_path, [], env={"WEBHOOK_SECRET": SECRET}) as base:
        response = httpx.post(base + "/webhooks", content=b"{}", headers=headers)
        assert response.json() == {"status": "processed"}
        assert [e["webhook_id"] for e in _events(base)] == ["msg_1"]
