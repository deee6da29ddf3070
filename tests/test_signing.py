"""Signing and verification: the Standard Webhooks vectors, interoperability
with the standardwebhooks package, and round-trip properties."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from producer.errors import SignatureVerificationError
from producer.signing import (
    build_headers,
    generate_secret,
    public_key,
    sign,
    validate_secret,
    verify,
)

VECTORS = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "conformance"
    / "standard-webhooks-vectors.json"
)


@pytest.fixture(scope="module")
def vectors() -> dict:
    if not VECTORS.exists():
        pytest.skip(f"conformance vectors not found at {VECTORS}")
    return json.loads(VECTORS.read_text())


def _headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_hmac_vectors_are_reproduced_and_verify(vectors):
    for v in vectors["hmac_v1"]:
        body = v["payload"].encode()
        assert sign(v["secret"], v["msg_id"], v["timestamp"], body) == v["signature"]
        verify(
            v["secret"],
            _headers(v["msg_id"], v["timestamp"], v["signature"]),
            body,
            now=v["timestamp"],
        )


def test_ed25519_vectors_are_reproduced_and_verify(vectors):
    for v in vectors["ed25519_v1a"]:
        body = v["payload"].encode()
        assert sign(v["secret_key"], v["msg_id"], v["timestamp"], body) == v["signature"]
        assert public_key(v["secret_key"]) == v["public_key"]
        headers = _headers(v["msg_id"], v["timestamp"], v["signature"])
        verify(v["public_key"], headers, body, now=v["timestamp"])


def test_must_fail_vectors_are_rejected(vectors):
    base = vectors["hmac_v1"][0]
    body = base["payload"].encode()
    for case in vectors["must_fail"]:
        signature = case.get("signature", base["signature"])
        now = base["timestamp"] + case.get("offset_seconds", 0)
        with pytest.raises(SignatureVerificationError):
            verify(
                base["secret"],
                _headers(base["msg_id"], base["timestamp"], signature),
                body,
                now=now,
            )


def test_unpadded_secret_is_accepted_and_decodes():
    # 24 key bytes encode to 32 base64 characters; dropping the last one leaves
    # an unpadded form whose decoded key is the first 23 bytes.
    padded = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    unpadded = padded[:-1]
    key = base64.b64decode(unpadded[len("whsec_") :] + "=")
    body = b"{}"
    expected = base64.b64encode(hmac.new(key, b"msg_1.1000." + body, hashlib.sha256).digest())
    assert sign(unpadded, "msg_1", 1000, body) == "v1," + expected.decode()
    validate_secret(unpadded, "v1")


def test_our_signatures_verify_with_the_standardwebhooks_package():
    secret = generate_secret()
    body = b'{"id":"msg_1","type":"a.b","data":{"x":1}}'
    headers = build_headers([secret], "msg_1", int(time.time()), body)
    Webhook(secret).verify(body, headers)


def test_several_secrets_give_several_signatures_each_verifying():
    old, new = generate_secret(), generate_secret()
    body = b"{}"
    headers = build_headers([new, old], "msg_1", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
        verify(secret, headers, body)


def test_t_v1_hex_matches_a_plain_hmac_over_timestamp_and_body():
    secret = generate_secret("t-v1-hex")
    body = b'{"a":1}'
    header = sign(secret, "msg_1", 1700000000, body, scheme="t-v1-hex")
    key = base64.b64decode(secret[len("whsec_") :])
    expected = hmac.new(key, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    verify(secret, {"webhook-signature": header}, body, now=1700000000)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h, b: (h, b + b" "), "no matching signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "missing webhook-id"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "not an integer"),
        (lambda h, b: ({**h, "webhook-timestamp": str(int(time.time()) - 600)}, b), "too old"),
        (lambda h, b: ({**h, "webhook-timestamp": str(int(time.time()) + 600)}, b), "too new"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
    ],
)
def test_tampered_requests_are_rejected_with_the_reason(mutate, message):
    secret = generate_secret()
    body = b'{"a":1}'
    headers, body = mutate(build_headers([secret], "msg_1", int(time.time()), body), body)
    with pytest.raises(SignatureVerificationError, match=message):
        verify(secret, headers, body)


def test_wrong_key_is_rejected():
    body = b"{}"
    headers = build_headers([generate_secret()], "msg_1", int(time.time()), body)
    with pytest.raises(SignatureVerificationError):
        verify(generate_secret(), headers, body)


def test_unknown_signature_versions_are_skipped():
    secret = generate_secret()
    body = b"{}"
    headers = build_headers([secret], "msg_1", int(time.time()), body)
    headers["webhook-signature"] = "v9,whatever " + headers["webhook-signature"]
    verify(secret, headers, body)


@pytest.mark.parametrize(
    ("secret", "scheme"),
    [
        ("whsec_", "v1"),
        ("whsec_!!!", "v1"),
        ("nope", "v1"),
        ("whsec_" + "A" * 8, "v1"),
        ("whsec_abc", "v1a"),
    ],
)
def test_bad_secrets_are_refused(secret, scheme):
    with pytest.raises(ValueError):
        validate_secret(secret, scheme)


def test_generated_secrets_are_valid_for_their_scheme():
    for scheme in ("v1", "v1a", "t-v1-hex"):
        validate_secret(generate_secret(scheme), scheme)


_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=40)


@given(body=st.binary(max_size=2048), msg_id=_ids, timestamp=st.integers(0, 2**33))
def test_v1_round_trip(body, msg_id, timestamp):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = build_headers([secret], msg_id, timestamp, body)
    verify(secret, headers, body, now=timestamp)


@given(body=st.binary(max_size=512), msg_id=_ids, timestamp=st.integers(0, 2**33))
def test_v1a_round_trip(body, msg_id, timestamp):
    secret = generate_secret("v1a")
    headers = build_headers([secret], msg_id, timestamp, body, scheme="v1a")
    verify(public_key(secret) or "", headers, body, now=timestamp)


@given(body=st.binary(min_size=1, max_size=512), index=st.integers(0, 10_000))
def test_a_flipped_byte_never_verifies(body, index):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = build_headers([secret], "msg_1", 1000, body)
    i = index % len(body)
    tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
    with pytest.raises(SignatureVerificationError):
        verify(secret, headers, tampered, now=1000)
