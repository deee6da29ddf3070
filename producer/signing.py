"""Standard Webhooks signatures (pure functions).

Schemes:

- ``v1``: HMAC-SHA256 over ``"{msg_id}.{timestamp}.{body}"`` with the
  base64 key after ``whsec_``; header entries ``v1,<base64>``.
- ``v1a``: ed25519 over the same content; secret ``whsk_`` (seed + public
  key), public key ``whpk_``; header entries ``v1a,<base64>``.
- ``t-v1-hex``: ``t=<ts>,v1=<hex>``, HMAC-SHA256 over ``"{ts}.{body}"``, the
  format several providers document.

Several live secrets (during a rotation) give several signatures; a verifier
accepts if any one matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from producer.errors import SignatureVerificationError

__all__ = [
    "SCHEMES",
    "build_headers",
    "generate_secret",
    "public_key",
    "sign",
    "validate_secret",
    "verify",
]

SCHEMES = ("v1", "v1a", "t-v1-hex")


def _b64decode(value: str) -> bytes:
    """Decode base64, tolerating missing padding."""
    value = value.strip()
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def _hmac_key(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        raise ValueError("an HMAC secret starts with whsec_")
    try:
        return _b64decode(secret[len("whsec_") :])
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the part after whsec_ is not base64") from exc


def _ed25519_private(secret: str) -> Ed25519PrivateKey:
    if not secret.startswith("whsk_"):
        raise ValueError("an ed25519 secret key starts with whsk_")
    try:
        raw = _b64decode(secret[len("whsk_") :])
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the part after whsk_ is not base64") from exc
    if len(raw) != 64:
        raise ValueError("a whsk_ key holds 64 bytes: the 32-byte seed and the public key")
    key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    if key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) != raw[32:]:
        raise ValueError("the last 32 bytes of the whsk_ key are not its public key")
    return key


def _ed25519_public(key: str) -> Ed25519PublicKey:
    if key.startswith("whsk_"):
        return _ed25519_private(key).public_key()
    if not key.startswith("whpk_"):
        raise ValueError("an ed25519 public key starts with whpk_")
    raw = _b64decode(key[len("whpk_") :])
    if len(raw) != 32:
        raise ValueError("a whpk_ key holds 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def generate_secret(scheme: str = "v1") -> str:
    """A new random secret for ``scheme`` (``whsec_`` for HMAC, ``whsk_`` for v1a)."""
    if scheme == "v1a":
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes_raw()
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return "whsk_" + base64.b64encode(seed + public).decode()
    if scheme in ("v1", "t-v1-hex"):
        return "whsec_" + base64.b64encode(_secrets.token_bytes(32)).decode()
    raise ValueError(f"unknown signature scheme {scheme!r}")


def public_key(secret: str) -> str | None:
    """The ``whpk_`` public key of a ``whsk_`` secret; None for HMAC secrets."""
    if not secret.startswith("whsk_"):
        return None
    raw = _ed25519_private(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "whpk_" + base64.b64encode(raw).decode()


def validate_secret(secret: str, scheme: str) -> None:
    """Raise ValueError with a clear sentence if ``secret`` does not fit ``scheme``."""
    if not isinstance(secret, str):
        raise ValueError("a secret is a string")
    if scheme == "v1a":
        _ed25519_private(secret)
        return
    if scheme not in ("v1", "t-v1-hex"):
        raise ValueError(f"unknown signature scheme {scheme!r}")
    key = _hmac_key(secret)
    # Generated secrets hold 32 bytes; shorter given ones (down to 16, e.g. an
    # unpadded 24-byte secret) are accepted so existing receivers keep working.
    if not 16 <= len(key) <= 64:
        raise ValueError("a whsec_ secret must decode to 16-64 bytes")


def _content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def _infer(secret: str) -> str:
    if secret.startswith("whsk_"):
        return "v1a"
    if secret.startswith("whsec_"):
        return "v1"
    raise ValueError("cannot tell the scheme of a secret that is neither whsec_ nor whsk_")


def sign(
    secret: str | Sequence[str],
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    scheme: str | None = None,
) -> str:
    """The ``webhook-signature`` header value for one secret or several."""
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("at least one secret is needed")
    scheme = scheme or _infer(keys[0])
    if scheme == "t-v1-hex":
        signed = f"{timestamp}.".encode() + body
        parts = [f"t={timestamp}"] + [
            "v1=" + hmac.new(_hmac_key(k), signed, hashlib.sha256).hexdigest() for k in keys
        ]
        return ",".join(parts)
    content = _content(msg_id, timestamp, body)
    entries = []
    for key in keys:
        if scheme == "v1a":
            signature = _ed25519_private(key).sign(content)
            entries.append("v1a," + base64.b64encode(signature).decode())
        elif scheme == "v1":
            digest = hmac.new(_hmac_key(key), content, hashlib.sha256).digest()
            entries.append("v1," + base64.b64encode(digest).decode())
        else:
            raise ValueError(f"unknown signature scheme {scheme!r}")
    return " ".join(entries)


def build_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes, *, scheme: str = "v1"
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for a request."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, msg_id, timestamp, body, scheme=scheme),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(f"webhook-{name}")
    return value if value is not None else lowered.get(f"svix-{name}")


def _check_timestamp(raw: str | None, tolerance: int, now: int | None) -> int:
    if raw is None:
        raise SignatureVerificationError("missing webhook-timestamp header")
    try:
        timestamp = int(raw)
    except ValueError:
        raise SignatureVerificationError("webhook-timestamp is not an integer") from None
    current = int(time.time()) if now is None else now
    if timestamp < current - tolerance:
        raise SignatureVerificationError("timestamp too old")
    if timestamp > current + tolerance:
        raise SignatureVerificationError("timestamp too new")
    return timestamp


def verify(
    key: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = 300,
    now: int | None = None,
) -> None:
    """Check a received webhook; raise SignatureVerificationError if it fails.

    ``key`` is the endpoint's ``whsec_`` secret, or for ``v1a`` its ``whpk_``
    public key (a ``whsk_`` secret works too).
    """
    signature = _header(headers, "signature")
    if not signature:
        raise SignatureVerificationError("missing webhook-signature header")
    try:
        if signature.startswith("t="):
            _verify_t_v1_hex(key, signature, body, tolerance, now)
            return
        msg_id = _header(headers, "id")
        if not msg_id:
            raise SignatureVerificationError("missing webhook-id header")
        timestamp = _check_timestamp(_header(headers, "timestamp"), tolerance, now)
        content = _content(msg_id, timestamp, body)
        if key.startswith("whsec_"):
            expected = base64.b64encode(
                hmac.new(_hmac_key(key), content, hashlib.sha256).digest()
            ).decode()
            for entry in signature.split(" "):
                version, _, value = entry.partition(",")
                if version == "v1" and hmac.compare_digest(value, expected):
                    return
        else:
            public = _ed25519_public(key)
            for entry in signature.split(" "):
                version, _, value = entry.partition(",")
                if version != "v1a":
                    continue
                try:
                    public.verify(_b64decode(value), content)
                    return
                except (InvalidSignature, binascii.Error, ValueError):
                    continue
    except ValueError as exc:
        raise SignatureVerificationError(f"unusable key: {exc}") from exc
    raise SignatureVerificationError("no matching signature")


def _verify_t_v1_hex(
    key: str, signature: str, body: bytes, tolerance: int, now: int | None
) -> None:
    fields = [part.partition("=") for part in signature.split(",")]
    stamps = [value for name, _, value in fields if name == "t"]
    timestamp = _check_timestamp(stamps[0] if stamps else None, tolerance, now)
    expected = hmac.new(_hmac_key(key), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    for name, _, value in fields:
        if name == "v1" and hmac.compare_digest(value, expected):
            return
    raise SignatureVerificationError("no matching signature")
