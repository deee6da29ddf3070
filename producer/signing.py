"""Standard Webhooks signatures (pure functions, no I/O).

Schemes:

- ``v1``: HMAC-SHA256 over ``"{msg_id}.{timestamp}.{body}"`` keyed with the
  base64 bytes after ``whsec_``; header entries ``v1,<base64 digest>``.
- ``v1a``: ed25519 over the same content; the secret key is ``whsk_`` + base64
  of the 32-byte seed followed by the 32-byte public key, the public key is
  ``whpk_`` + base64 of those 32 bytes; header entries ``v1a,<base64 sig>``.
- ``t-v1-hex``: ``t=<ts>,v1=<hex>``, HMAC-SHA256 over ``"{ts}.{body}"`` with a
  ``whsec_`` secret, the layout several providers document.

While a secret is being rotated several secrets are live at once; they give
several signatures, and a verifier accepts the request if any one matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _secrets
import time
from collections.abc import Callable, Mapping, Sequence

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
"""The signature schemes an endpoint can use."""

HMAC_PREFIX = "whsec_"
SECRET_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"

# Bounds on the decoded length of a whsec_ secret; 24 bytes is what the Standard
# Webhooks ecosystem generates at the least, and more than 64 buys nothing
# since HMAC-SHA256 hashes longer keys down anyway.
MIN_HMAC_KEY_BYTES = 24
MAX_HMAC_KEY_BYTES = 64

_HMAC_SCHEMES = ("v1", "t-v1-hex")
_TIMESTAMP = re.compile(r"[0-9]+")


def _b64decode(value: str) -> bytes:
    """Decode standard base64, tolerating missing ``=`` padding.

    Raises binascii.Error (a ValueError) on anything that is not base64.
    """
    value = value.strip()
    if not value.isascii():
        # b64decode raises a bare ValueError for these; keep one error type.
        raise binascii.Error("non-ASCII character in base64")
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _decode_prefixed(value: str, prefix: str, kind: str) -> bytes:
    """The bytes after ``prefix``, which must be there and be base64."""
    if not value.startswith(prefix):
        raise ValueError(f"{kind} must start with {prefix}")
    try:
        return _b64decode(value[len(prefix) :])
    except binascii.Error as exc:
        raise ValueError(f"the part after {prefix} is not valid base64") from exc


def _check_length(raw: bytes, prefix: str, size: int, layout: str = "") -> None:
    if len(raw) != size:
        raise ValueError(
            f"a {prefix} key must decode to {size} bytes{layout}; this one decodes to {len(raw)}"
        )


def _hmac_key(secret: str) -> bytes:
    """The HMAC key bytes of a ``whsec_`` secret (any non-empty length)."""
    key = _decode_prefixed(secret, HMAC_PREFIX, "an HMAC secret")
    if not key:
        raise ValueError(f"the part after {HMAC_PREFIX} is empty")
    return key


def _ed25519_private(secret: str) -> Ed25519PrivateKey:
    """The private key of a ``whsk_`` secret, checking its embedded public half."""
    raw = _decode_prefixed(secret, SECRET_KEY_PREFIX, "an ed25519 secret key")
    _check_length(raw, SECRET_KEY_PREFIX, 64, " (32-byte seed, then the 32-byte public key)")
    key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    # A mismatched second half means the key was corrupted or pasted together
    # from two keys; receivers holding that public half could never verify.
    if _raw_public(key.public_key()) != raw[32:]:
        raise ValueError(
            f"the last 32 bytes of the {SECRET_KEY_PREFIX} key are not the public key "
            "of its first 32"
        )
    return key


def _ed25519_public(key: str) -> Ed25519PublicKey:
    """The public key of a ``whpk_`` key, or of a ``whsk_`` secret key."""
    if key.startswith(SECRET_KEY_PREFIX):
        return _ed25519_private(key).public_key()
    raw = _decode_prefixed(key, PUBLIC_KEY_PREFIX, "an ed25519 public key")
    _check_length(raw, PUBLIC_KEY_PREFIX, 32)
    return Ed25519PublicKey.from_public_bytes(raw)


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(
            f"unknown signature scheme {scheme!r}; expected one of {', '.join(SCHEMES)}"
        )


def _infer_scheme(secret: str) -> str:
    if secret.startswith(SECRET_KEY_PREFIX):
        return "v1a"
    if secret.startswith(HMAC_PREFIX):
        return "v1"
    raise ValueError(
        f"cannot tell the signature scheme of a secret that starts with neither "
        f"{HMAC_PREFIX} nor {SECRET_KEY_PREFIX}"
    )


def _content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    # Built as bytes so a body that is not UTF-8 is signed exactly as sent.
    return f"{msg_id}.{timestamp}.".encode() + body


def _hex_content(timestamp: int, body: bytes) -> bytes:
    return f"{timestamp}.".encode() + body


def generate_secret(scheme: str = "v1") -> str:
    """A new random secret for ``scheme``.

    ``v1`` and ``t-v1-hex`` get ``whsec_`` + base64 of 32 random bytes; ``v1a``
    gets ``whsk_`` + base64 of a fresh ed25519 seed followed by its public key.
    Raises ValueError for an unknown scheme.
    """
    _check_scheme(scheme)
    if scheme == "v1a":
        key = Ed25519PrivateKey.generate()
        return SECRET_KEY_PREFIX + _b64encode(
            key.private_bytes_raw() + _raw_public(key.public_key())
        )
    return HMAC_PREFIX + _b64encode(_secrets.token_bytes(32))


def public_key(secret: str) -> str | None:
    """The ``whpk_`` public key of a ``whsk_`` secret; None for any other secret.

    Raises ValueError if ``secret`` starts with ``whsk_`` but is malformed.
    """
    if not secret.startswith(SECRET_KEY_PREFIX):
        return None
    return PUBLIC_KEY_PREFIX + _b64encode(_raw_public(_ed25519_private(secret).public_key()))


def validate_secret(secret: str, scheme: str) -> None:
    """Raise ValueError with a readable reason if ``secret`` does not fit ``scheme``.

    ``v1`` and ``t-v1-hex`` need ``whsec_`` followed by base64 (padding optional)
    of 24 to 64 bytes. ``v1a`` needs ``whsk_`` followed by base64 of 64 bytes
    whose last 32 are the ed25519 public key of the first 32.
    """
    if not isinstance(secret, str):
        raise ValueError("a secret must be a string")
    _check_scheme(scheme)
    if scheme == "v1a":
        _ed25519_private(secret)
        return
    if not secret.startswith(HMAC_PREFIX):
        raise ValueError(f"a {scheme} secret must start with {HMAC_PREFIX}")
    try:
        length = len(_b64decode(secret[len(HMAC_PREFIX) :]))
    except binascii.Error as exc:
        raise ValueError(f"the part after {HMAC_PREFIX} is not valid base64") from exc
    if not MIN_HMAC_KEY_BYTES <= length <= MAX_HMAC_KEY_BYTES:
        raise ValueError(
            f"a {HMAC_PREFIX} secret must decode to {MIN_HMAC_KEY_BYTES}-{MAX_HMAC_KEY_BYTES} "
            f"bytes; this one decodes to {length}"
        )


def sign(
    secret: str | Sequence[str],
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    scheme: str | None = None,
) -> str:
    """The ``webhook-signature`` header value for one secret or several.

    Without ``scheme`` each secret's scheme follows from its prefix (``whsec_``
    → ``v1``, ``whsk_`` → ``v1a``). Several secrets give space-separated entries
    (``v1,<a> v1,<b>``); for ``t-v1-hex`` they give one ``t=`` followed by one
    ``v1=`` entry per secret. Raises ValueError for an unusable secret or scheme.
    """
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("at least one secret is needed to sign")
    if scheme is not None:
        _check_scheme(scheme)
    body = bytes(body)
    if scheme == "t-v1-hex":
        signed = _hex_content(timestamp, body)
        digests = [hmac.new(_hmac_key(k), signed, hashlib.sha256).hexdigest() for k in keys]
        return ",".join([f"t={timestamp}", *(f"v1={d}" for d in digests)])
    content = _content(msg_id, timestamp, body)
    entries = []
    for key in keys:
        key_scheme = scheme or _infer_scheme(key)
        if key_scheme == "v1a":
            entries.append("v1a," + _b64encode(_ed25519_private(key).sign(content)))
        else:
            digest = hmac.new(_hmac_key(key), content, hashlib.sha256).digest()
            entries.append("v1," + _b64encode(digest))
    return " ".join(entries)


def build_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes, *, scheme: str = "v1"
) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, msg_id, timestamp, body, scheme=scheme),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """``webhook-<name>``, else the older ``svix-<name>``; ``headers`` is lower-cased."""
    value = headers.get(f"webhook-{name}")
    return value if value is not None else headers.get(f"svix-{name}")


def _check_timestamp(raw: str, tolerance: int, now: int | None) -> int:
    raw = raw.strip()
    # int() alone would also take "1_700_000_000", "+5" or non-ASCII digits.
    if not _TIMESTAMP.fullmatch(raw):
        raise SignatureVerificationError(
            f"webhook-timestamp is not an integer number of seconds: {raw[:40]!r}"
        )
    timestamp = int(raw)
    current = int(time.time()) if now is None else now
    if timestamp < current - tolerance:
        raise SignatureVerificationError(
            f"timestamp too old: {current - timestamp} s in the past, tolerance {tolerance} s"
        )
    if timestamp > current + tolerance:
        raise SignatureVerificationError(
            f"timestamp too new: {timestamp - current} s in the future, tolerance {tolerance} s"
        )
    return timestamp


def _unusable_key(exc: ValueError) -> SignatureVerificationError:
    return SignatureVerificationError(f"unusable verification key: {exc}")


def _entry_checker(key: str) -> tuple[str, Callable[[bytes, bytes], bool]]:
    """The header entry version ``key`` verifies, and a ``(content, signature)`` check."""
    if key.startswith(HMAC_PREFIX):
        hmac_key = _hmac_key(key)

        def check_hmac(content: bytes, candidate: bytes) -> bool:
            expected = hmac.new(hmac_key, content, hashlib.sha256).digest()
            return hmac.compare_digest(candidate, expected)

        return "v1", check_hmac
    if key.startswith((PUBLIC_KEY_PREFIX, SECRET_KEY_PREFIX)):
        ed_key = _ed25519_public(key)

        def check_ed25519(content: bytes, candidate: bytes) -> bool:
            try:
                ed_key.verify(candidate, content)
            except InvalidSignature:
                return False
            return True

        return "v1a", check_ed25519
    raise ValueError(
        f"it must start with {HMAC_PREFIX}, {PUBLIC_KEY_PREFIX} or {SECRET_KEY_PREFIX}"
    )


def verify(
    key: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = 300,
    now: int | None = None,
) -> None:
    """Check a received webhook; raise SignatureVerificationError if it does not verify.

    ``key`` is the endpoint's ``whsec_`` secret (checks ``v1`` entries, or the
    ``t-v1-hex`` layout when the signature header starts with ``t=``), or for
    ``v1a`` its ``whpk_`` public key (a ``whsk_`` secret key works too).

    Header names are matched case-insensitively; ``svix-id``, ``svix-timestamp``
    and ``svix-signature`` are accepted in place of the ``webhook-`` ones. The
    request passes if any space-separated entry of the signature header matches;
    entries of other versions are skipped. The timestamp must lie within
    ``tolerance`` seconds of ``now`` (default: the current time).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = (_header(lowered, "signature") or "").strip()
    if signature.startswith("t="):
        _verify_t_v1_hex(key, signature, bytes(body), tolerance, now)
        return
    # The key is checked before the request so a misconfigured receiver says so
    # on every request instead of blaming the sender.
    try:
        version, check = _entry_checker(key)
    except ValueError as exc:
        raise _unusable_key(exc) from exc

    msg_id = _header(lowered, "id") or ""
    raw_timestamp = _header(lowered, "timestamp") or ""
    missing = [
        f"webhook-{name}"
        for name, value in (("id", msg_id), ("timestamp", raw_timestamp), ("signature", signature))
        if not value
    ]
    if missing:
        names = " and ".join(
            [", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing
        )
        noun = "headers" if len(missing) > 1 else "header"
        raise SignatureVerificationError(f"missing {names} {noun}")
    timestamp = _check_timestamp(raw_timestamp, tolerance, now)
    content = _content(msg_id, timestamp, bytes(body))
    if not _any_entry_matches(signature, version, lambda sig: check(content, sig)):
        raise SignatureVerificationError("no matching signature")


def _any_entry_matches(signature: str, version: str, matches: Callable[[bytes], bool]) -> bool:
    """Whether any ``<version>,<base64>`` entry of the header passes ``matches``."""
    for entry in signature.split():
        entry_version, comma, value = entry.partition(",")
        if entry_version != version or not comma:
            continue
        try:
            candidate = _b64decode(value)
        except binascii.Error:
            continue  # a garbled entry must not hide a valid one after it
        if matches(candidate):
            return True
    return False


def _verify_t_v1_hex(
    key: str, signature: str, body: bytes, tolerance: int, now: int | None
) -> None:
    """Check a ``t=<ts>,v1=<hex>[,v1=<hex>...]`` header; ``webhook-id`` is not used."""
    try:
        hmac_key = _hmac_key(key)
    except ValueError as exc:
        raise _unusable_key(exc) from exc
    fields = [part.strip().partition("=") for part in signature.split(",")]
    stamps = [value for name, _, value in fields if name == "t"]
    if not stamps:
        raise SignatureVerificationError("missing t= timestamp in the signature header")
    timestamp = _check_timestamp(stamps[0], tolerance, now)
    expected = hmac.new(hmac_key, _hex_content(timestamp, body), hashlib.sha256).digest()
    for name, _, value in fields:
        if name != "v1":
            continue
        try:
            candidate = bytes.fromhex(value)
        except ValueError:
            continue
        if hmac.compare_digest(candidate, expected):
            return
    raise SignatureVerificationError("no matching signature")
