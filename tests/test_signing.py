"""Signing and verification: the Standard Webhooks conformance vectors,
interoperability with the ``standardwebhooks`` package, the failure reasons,
and round-trip properties."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from producer.errors import SignatureVerificationError
from producer.signing import (
    SCHEMES,
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

# The HMAC secret of the public Standard Webhooks vector, reused where any
# fixed valid secret will do.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Generated once: ed25519 key generation inside property tests only adds time.
V1A_SECRET = generate_secret("v1a")
V1A_PUBLIC = public_key(V1A_SECRET) or ""
BODY = b'{"type":"invoice.paid","data":{"id":1}}'


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    if not VECTORS.exists():
        pytest.skip(f"Standard Webhooks conformance vectors not found at {VECTORS}")
    return json.loads(VECTORS.read_text())


def _now() -> int:
    return int(time.time())


def _headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def _hmac_key(secret: str) -> bytes:
    encoded = secret.removeprefix("whsec_")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


# --- conformance vectors -----------------------------------------------------


def test_hmac_vectors_are_reproduced_exactly(vectors):
    for v in vectors["hmac_v1"]:
        assert (
            sign(v["secret"], v["msg_id"], v["timestamp"], v["payload"].encode())
            == (v["signature"])
        )


def test_hmac_vectors_verify(vectors):
    for v in vectors["hmac_v1"]:
        headers = _headers(v["msg_id"], v["timestamp"], v["signature"])
        verify(v["secret"], headers, v["payload"].encode(), now=v["timestamp"])


def test_ed25519_vectors_are_reproduced_exactly(vectors):
    for v in vectors["ed25519_v1a"]:
        signature = sign(v["secret_key"], v["msg_id"], v["timestamp"], v["payload"].encode())
        assert signature == v["signature"]


def test_ed25519_vector_public_keys_are_derived_from_the_secret_keys(vectors):
    for v in vectors["ed25519_v1a"]:
        assert public_key(v["secret_key"]) == v["public_key"]


def test_ed25519_vectors_verify_with_the_public_key(vectors):
    for v in vectors["ed25519_v1a"]:
        headers = _headers(v["msg_id"], v["timestamp"], v["signature"])
        verify(v["public_key"], headers, v["payload"].encode(), now=v["timestamp"])


def test_ed25519_vectors_verify_with_the_secret_key(vectors):
    for v in vectors["ed25519_v1a"]:
        headers = _headers(v["msg_id"], v["timestamp"], v["signature"])
        verify(v["secret_key"], headers, v["payload"].encode(), now=v["timestamp"])


def test_vector_secrets_are_valid_for_their_scheme(vectors):
    for v in vectors["hmac_v1"]:
        validate_secret(v["secret"], "v1")
    for v in vectors["ed25519_v1a"]:
        validate_secret(v["secret_key"], "v1a")


def test_must_fail_vectors_are_rejected(vectors):
    base = vectors["hmac_v1"][0]
    body = base["payload"].encode()
    for case in vectors["must_fail"]:
        headers = _headers(
            base["msg_id"], base["timestamp"], case.get("signature", base["signature"])
        )
        offset = case.get("offset_seconds", 0)
        # An offset must fail whichever side of the receiver's clock it lies on.
        for now in {base["timestamp"] + offset, base["timestamp"] - offset}:
            with pytest.raises(SignatureVerificationError):
                verify(base["secret"], headers, body, now=now)


# --- secrets -----------------------------------------------------------------


def test_unpadded_secret_decodes_for_signing():
    unpadded = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS=")
    expected = base64.b64encode(hmac.new(key, b"msg_1.1000." + BODY, hashlib.sha256).digest())
    assert sign(unpadded, "msg_1", 1000, BODY) == "v1," + expected.decode()


def test_unpadded_secret_verifies_its_own_signature():
    unpadded = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"
    verify(unpadded, build_headers([unpadded], "msg_1", 1000, BODY), BODY, now=1000)


def test_generated_secret_without_padding_is_valid():
    secret = generate_secret()
    assert secret.endswith("=")
    validate_secret(secret.rstrip("="), "v1")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_generated_secrets_are_valid_for_their_scheme(scheme):
    validate_secret(generate_secret(scheme), scheme)


@pytest.mark.parametrize(("scheme", "prefix"), [("v1", "whsec_"), ("t-v1-hex", "whsec_")])
def test_generated_hmac_secrets_hold_32_random_bytes(scheme, prefix):
    secret = generate_secret(scheme)
    assert secret.startswith(prefix)
    assert len(base64.b64decode(secret.removeprefix(prefix))) == 32
    assert generate_secret(scheme) != secret


def test_generated_v1a_secret_is_seed_then_public_key():
    secret = generate_secret("v1a")
    raw = base64.b64decode(secret.removeprefix("whsk_"))
    assert len(raw) == 64
    assert public_key(secret) == "whpk_" + base64.b64encode(raw[32:]).decode()


def test_public_key_of_an_hmac_secret_is_none():
    assert public_key(generate_secret()) is None


def test_unknown_scheme_is_refused_when_generating():
    with pytest.raises(ValueError, match="unknown signature scheme"):
        generate_secret("v2")


@pytest.mark.parametrize(
    ("secret", "scheme", "reason"),
    [
        ("whsec_", "v1", "decodes to 0"),
        ("whsec_!!!", "v1", "not valid base64"),
        ("whsec_é", "v1", "not valid base64"),
        ("nope", "v1", "must start with whsec_"),
        ("whsec_" + "A" * 8, "t-v1-hex", "decodes to 6"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "v1", "decodes to 23"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "v1", "decodes to 65"),
        ("whsec_" + base64.b64encode(bytes(32)).decode(), "v1a", "must start with whsk_"),
        ("whsk_" + base64.b64encode(bytes(32)).decode(), "v1a", "64 bytes"),
        ("whsk_" + base64.b64encode(bytes(64)).decode(), "v1a", "not the public key"),
        ("whsec_" + base64.b64encode(bytes(range(32))).decode(), "v9", "unknown signature scheme"),
    ],
)
def test_secrets_that_do_not_fit_the_scheme_are_refused_with_a_reason(secret, scheme, reason):
    with pytest.raises(ValueError, match=reason):
        validate_secret(secret, scheme)


# --- signing -----------------------------------------------------------------


def test_signature_header_has_the_v1_layout():
    signature = sign(VECTOR_SECRET, "msg_1", 1000, BODY)
    version, value = signature.split(",")
    assert version == "v1"
    assert len(base64.b64decode(value)) == 32


def test_whsk_secret_signs_with_v1a_by_default():
    version, value = sign(V1A_SECRET, "msg_1", 1000, BODY).split(",")
    assert version == "v1a"
    assert len(base64.b64decode(value)) == 64


def test_build_headers_returns_the_three_standard_headers():
    headers = build_headers([VECTOR_SECRET], "msg_1", 1000, BODY)
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1000",
        "webhook-signature": sign(VECTOR_SECRET, "msg_1", 1000, BODY),
    }


def test_several_secrets_give_one_signature_each():
    old, new = generate_secret(), generate_secret()
    signature = sign([new, old], "msg_1", 1000, BODY)
    assert signature.split(" ") == [sign(new, "msg_1", 1000, BODY), sign(old, "msg_1", 1000, BODY)]


def test_each_of_several_secrets_verifies_on_its_own():
    old, new = generate_secret(), generate_secret()
    headers = build_headers([new, old], "msg_1", 1000, BODY)
    for secret in (old, new):
        verify(secret, headers, BODY, now=1000)


def test_signing_without_a_secret_is_refused():
    with pytest.raises(ValueError, match="at least one secret"):
        sign([], "msg_1", 1000, BODY)


def test_signing_with_a_secret_of_another_scheme_is_refused():
    with pytest.raises(ValueError, match="must start with whsec_"):
        sign(V1A_SECRET, "msg_1", 1000, BODY, scheme="v1")


def test_t_v1_hex_is_a_plain_hex_hmac_over_timestamp_and_body():
    secret = generate_secret("t-v1-hex")
    header = sign(secret, "msg_1", 1700000000, BODY, scheme="t-v1-hex")
    expected = hmac.new(_hmac_key(secret), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_t_v1_hex_with_several_secrets_has_one_t_and_several_v1():
    first, second = generate_secret("t-v1-hex"), generate_secret("t-v1-hex")
    header = sign([first, second], "msg_1", 1700000000, BODY, scheme="t-v1-hex")
    expected = [
        hmac.new(_hmac_key(s), b"1700000000." + BODY, hashlib.sha256).hexdigest()
        for s in (first, second)
    ]
    assert header == f"t=1700000000,v1={expected[0]},v1={expected[1]}"


def test_t_v1_hex_verifies_without_a_webhook_id():
    secret = generate_secret("t-v1-hex")
    header = sign(secret, "msg_1", 1700000000, BODY, scheme="t-v1-hex")
    verify(secret, {"Webhook-Signature": header}, BODY, now=1700000000)


def test_t_v1_hex_timestamp_comes_from_the_t_field():
    secret = generate_secret("t-v1-hex")
    header = sign(secret, "msg_1", 1700000000, BODY, scheme="t-v1-hex")
    with pytest.raises(SignatureVerificationError, match="too old"):
        verify(secret, {"webhook-signature": header}, BODY, now=1700000000 + 301)


# --- interoperability --------------------------------------------------------


def test_our_signatures_verify_with_the_standardwebhooks_package():
    secret = generate_secret()
    headers = build_headers([secret], "msg_1", _now(), BODY)
    assert Webhook(secret).verify(BODY.decode(), headers) == json.loads(BODY)


def test_each_rotated_secret_verifies_with_the_standardwebhooks_package():
    old, new = generate_secret(), generate_secret()
    headers = build_headers([new, old], "msg_1", _now(), BODY)
    for secret in (old, new):
        Webhook(secret).verify(BODY.decode(), headers)


def test_signatures_of_the_standardwebhooks_package_verify_with_ours():
    secret = generate_secret()
    timestamp = _now()
    signature = Webhook(secret).sign("msg_1", datetime.fromtimestamp(timestamp, UTC), BODY.decode())
    verify(secret, _headers("msg_1", timestamp, signature), BODY)


# --- verification failures ---------------------------------------------------


def _signed(secret: str = VECTOR_SECRET, timestamp: int = 1000) -> dict[str, str]:
    return build_headers([secret], "msg_1", timestamp, BODY)


def test_tampered_body_is_rejected():
    with pytest.raises(SignatureVerificationError, match="no matching signature"):
        verify(VECTOR_SECRET, _signed(), BODY + b" ", now=1000)


def test_wrong_key_is_rejected():
    with pytest.raises(SignatureVerificationError, match="no matching signature"):
        verify(generate_secret(), _signed(), BODY, now=1000)


def test_another_v1a_public_key_is_rejected():
    headers = build_headers([V1A_SECRET], "msg_1", 1000, BODY, scheme="v1a")
    other = public_key(generate_secret("v1a")) or ""
    with pytest.raises(SignatureVerificationError, match="no matching signature"):
        verify(other, headers, BODY, now=1000)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_rejected_by_name(name):
    headers = {k: v for k, v in _signed().items() if k != name}
    with pytest.raises(SignatureVerificationError, match=f"missing {name} header"):
        verify(VECTOR_SECRET, headers, BODY, now=1000)


def test_several_missing_headers_are_all_named():
    with pytest.raises(
        SignatureVerificationError,
        match="missing webhook-id, webhook-timestamp and webhook-signature headers",
    ):
        verify(VECTOR_SECRET, {}, BODY, now=1000)


@pytest.mark.parametrize(
    "raw", ["soon", "1000.5", "1_000", "", " ", "-1000", "\u0661\u0660\u0660\u0660"]
)
def test_non_integer_timestamp_is_rejected(raw):
    headers = {**_signed(), "webhook-timestamp": raw}
    with pytest.raises(SignatureVerificationError, match="timestamp"):
        verify(VECTOR_SECRET, headers, BODY, now=1000)


def test_stale_timestamp_is_rejected_as_too_old():
    with pytest.raises(SignatureVerificationError, match="timestamp too old"):
        verify(VECTOR_SECRET, _signed(timestamp=1000), BODY, now=1000 + 301)


def test_future_timestamp_is_rejected_as_too_new():
    with pytest.raises(SignatureVerificationError, match="timestamp too new"):
        verify(VECTOR_SECRET, _signed(timestamp=1000), BODY, now=1000 - 301)


def test_timestamp_at_the_edge_of_the_tolerance_is_accepted():
    verify(VECTOR_SECRET, _signed(timestamp=1000), BODY, now=1000 + 300)


def test_tolerance_is_configurable():
    with pytest.raises(SignatureVerificationError, match="too old"):
        verify(VECTOR_SECRET, _signed(timestamp=1000), BODY, now=1011, tolerance=10)


def test_timestamp_defaults_to_the_current_time():
    verify(VECTOR_SECRET, _signed(timestamp=_now()), BODY)


def test_key_of_unknown_kind_is_reported_as_unusable():
    with pytest.raises(SignatureVerificationError, match="unusable verification key"):
        verify("secret", _signed(), BODY, now=1000)


def test_non_ascii_signature_entry_is_rejected_not_crashing():
    headers = {**_signed(), "webhook-signature": "v1,é"}
    with pytest.raises(SignatureVerificationError, match="no matching signature"):
        verify(VECTOR_SECRET, headers, BODY, now=1000)


def test_non_hex_t_v1_entry_is_rejected_not_crashing():
    headers = {"webhook-signature": "t=1000,v1=é,v1=zz"}
    with pytest.raises(SignatureVerificationError, match="no matching signature"):
        verify(VECTOR_SECRET, headers, BODY, now=1000)


# --- verification leniency ---------------------------------------------------


def test_header_names_are_case_insensitive():
    headers = {k.upper(): v for k, v in _signed().items()}
    verify(VECTOR_SECRET, headers, BODY, now=1000)


def test_svix_prefixed_headers_are_accepted():
    headers = {k.replace("webhook-", "svix-"): v for k, v in _signed().items()}
    verify(VECTOR_SECRET, headers, BODY, now=1000)


def test_unknown_signature_versions_are_skipped():
    headers = _signed()
    headers["webhook-signature"] = "v9,whatever v1a,AAAA " + headers["webhook-signature"]
    verify(VECTOR_SECRET, headers, BODY, now=1000)


def test_garbled_entry_does_not_hide_a_valid_one():
    headers = _signed()
    headers["webhook-signature"] = "v1,!!! v1 " + headers["webhook-signature"]
    verify(VECTOR_SECRET, headers, BODY, now=1000)


def test_hmac_key_ignores_v1a_entries():
    v1a = build_headers([V1A_SECRET], "msg_1", 1000, BODY, scheme="v1a")
    with pytest.raises(SignatureVerificationError, match="no matching signature"):
        verify(VECTOR_SECRET, v1a, BODY, now=1000)


# --- properties --------------------------------------------------------------

_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=40)
_timestamps = st.integers(0, 2**33)


@given(body=st.binary(max_size=2048), msg_id=_ids, timestamp=_timestamps)
def test_v1_round_trip(body, msg_id, timestamp):
    headers = build_headers([VECTOR_SECRET], msg_id, timestamp, body)
    verify(VECTOR_SECRET, headers, body, now=timestamp)


@settings(max_examples=50)
@given(body=st.binary(max_size=2048), msg_id=_ids, timestamp=_timestamps)
def test_v1a_round_trip(body, msg_id, timestamp):
    headers = build_headers([V1A_SECRET], msg_id, timestamp, body, scheme="v1a")
    verify(V1A_PUBLIC, headers, body, now=timestamp)


@given(body=st.binary(max_size=2048), timestamp=_timestamps)
def test_t_v1_hex_round_trip(body, timestamp):
    header = sign(VECTOR_SECRET, "", timestamp, body, scheme="t-v1-hex")
    verify(VECTOR_SECRET, {"webhook-signature": header}, body, now=timestamp)


@settings(max_examples=50)
@given(
    scheme=st.sampled_from(SCHEMES),
    body=st.binary(min_size=1, max_size=512),
    index=st.integers(0, 10_000),
    bit=st.integers(0, 7),
)
def test_a_flipped_body_bit_never_verifies(scheme, body, index, bit):
    secret = V1A_SECRET if scheme == "v1a" else VECTOR_SECRET
    key = V1A_PUBLIC if scheme == "v1a" else VECTOR_SECRET
    headers = build_headers([secret], "msg_1", 1000, body, scheme=scheme)
    i = index % len(body)
    tampered = body[:i] + bytes([body[i] ^ (1 << bit)]) + body[i + 1 :]
    with pytest.raises(SignatureVerificationError):
        verify(key, headers, tampered, now=1000)


@given(index=st.integers(0, 31), bit=st.integers(0, 7))
def test_a_flipped_signature_bit_never_verifies(index, bit):
    headers = _signed()
    raw = bytearray(base64.b64decode(headers["webhook-signature"].removeprefix("v1,")))
    raw[index] ^= 1 << bit
    headers["webhook-signature"] = "v1," + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SignatureVerificationError):
        verify(VECTOR_SECRET, headers, BODY, now=1000)
