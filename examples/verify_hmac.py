"""Verify a Standard Webhooks ``v1`` signature with nothing but the standard library.

Every webhook carries three headers:

- ``webhook-id``: the message id, the same on every retry;
- ``webhook-timestamp``: when this attempt was signed, in Unix seconds;
- ``webhook-signature``: space-separated ``v1,<base64>`` entries, one per live
  secret (two or more while a secret is being rotated).

A ``v1`` signature is the HMAC-SHA256 of ``"{webhook-id}.{webhook-timestamp}.{body}"``,
keyed with the base64-decoded part of the secret after ``whsec_``, where body is
the raw request body, byte for byte::

    verify("whsec_...", request.headers, raw_body)  # raises InvalidSignature
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping


class InvalidSignature(ValueError):
    """The request was not signed with this secret, or not recently; the message says why."""


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> None:
    """Check that ``secret`` signed ``headers`` and ``body``; raise InvalidSignature if not.

    The timestamp must lie within ``tolerance`` seconds of ``now`` (default: the
    current time). A secret that is not base64 raises binascii.Error: that is a
    mistake in the receiver's configuration, not in the request.
    """
    # Header names are case-insensitive in HTTP, and frameworks hand them over
    # in different cases.
    headers = {name.lower(): value for name, value in headers.items()}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not headers.get(name):
            raise InvalidSignature(f"missing {name} header")
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]

    # The timestamp is signed, so an attacker cannot freshen it: checking its age
    # stops a captured request from being replayed later.
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise InvalidSignature("webhook-timestamp is not a whole number of seconds")
    age = (time.time() if now is None else now) - int(timestamp)
    if age > tolerance:
        raise InvalidSignature(f"timestamp too old: {age:.0f} s ago")
    if age < -tolerance:
        raise InvalidSignature(f"timestamp too new: {-age:.0f} s in the future")

    # Some tools print secrets without the trailing "=" padding; put it back.
    encoded = secret.removeprefix("whsec_")
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    # Sign the body as bytes: decoding and re-encoding it could change what was signed.
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())

    for entry in headers["webhook-signature"].split():
        version, _, signature = entry.partition(",")
        # Entries of other versions (v1a is ed25519) are for other verifiers.
        # compare_digest takes as long wherever the first difference is, so the
        # response time reveals nothing about the expected signature.
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return
    raise InvalidSignature("no matching signature")
