"""What a receiver may demand besides a signature: a proxy, a client certificate, a login.

Three endpoint fields, each optional:

- ``proxy_url``: the egress proxy (``http://`` or ``https://``) the endpoint's
  requests go through, overriding ``WEBHOOKS_EGRESS_PROXY``;
- ``tls``: ``{"client_cert_pem", "client_key_pem", "ca_pem"}``, a client
  certificate (and its key) to present, and an optional CA bundle that alone
  is trusted for the receiver;
- ``auth``: ``{"type": "basic", "username", "password"}``,
  ``{"type": "bearer", "token"}`` or ``{"type": "oauth2_client_credentials",
  "token_url", "client_id", "client_secret", "scope", "client_auth"}``.

They are checked when an endpoint is created or updated, so a bad PEM or a
missing field is a field error then rather than a failure of every attempt.
Their secret parts (passwords, tokens, client secrets, private keys, a
proxy's password) are stored sealed by :class:`~producer.sealing.SecretBox`
and never read back: the public view of an endpoint shows the kind and the
non-secret fields, and for a certificate its subject, fingerprint and expiry.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from producer.errors import ValidationError
from producer.sealing import PREFIX as SEALED_PREFIX
from producer.validation import validate_url

__all__ = [
    "AUTH_TYPES",
    "CLIENT_AUTH_METHODS",
    "ClientTLS",
    "check_auth",
    "check_proxy_url",
    "check_tls",
    "open_auth",
    "open_credentials",
    "open_tls",
    "public_auth",
    "public_proxy_url",
    "public_tls",
    "seal_auth",
    "seal_tls",
]

AUTH_TYPES = ("basic", "bearer", "oauth2_client_credentials")
CLIENT_AUTH_METHODS = ("basic", "body")
"""How an OAuth2 client authenticates to the token server: HTTP Basic
(``client_secret_basic``, the default) or in the form body (``client_secret_post``)."""

# Per type: its fields and whether each is required; the secret ones are sealed.
_AUTH_FIELDS: dict[str, dict[str, bool]] = {
    "basic": {"username": True, "password": True},
    "bearer": {"token": True},
    "oauth2_client_credentials": {
        "token_url": True,
        "client_id": True,
        "client_secret": True,
        "scope": False,
        "client_auth": False,
    },
}
_AUTH_SECRETS = ("password", "token", "client_secret")
_TLS_FIELDS = ("client_cert_pem", "client_key_pem", "ca_pem")
_TLS_SECRET = "client_key_pem"
MAX_VALUE = 4096
"""The longest single credential value (a username, a token, a scope)."""
MAX_PEM = 64 * 1024

Seal = Callable[[str], str]
UrlCheck = Callable[[str, str], None]
"""``(url, field)``: the destination guard's registration check of a URL."""


# -- proxy ---------------------------------------------------------------------


def check_proxy_url(value: Any, check: UrlCheck) -> str | None:
    """A proxy URL: ``http://`` or ``https://``, a host, optionally a user
    and password for the proxy, no path; ``check`` passes it by the
    destination guard (a tenant's proxy is a destination of ours too)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError.for_field("proxy_url", "must be a non-empty string or null")
    parts = _split(value, "proxy_url")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValidationError.for_field("proxy_url", "must not have a path, query or fragment")
    bare = urlunsplit((parts.scheme, _host_port(parts), "", "", ""))
    _checked_url(bare, "proxy_url")
    check(bare, "proxy_url")
    return value


def public_proxy_url(value: str | None) -> str | None:
    """A proxy URL as shown: its password replaced by ``***``."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.password is None:
        return value
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{_host_port(parts)}"))


def _split(value: str, field: str) -> Any:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises for a bad port
    except ValueError as exc:
        raise ValidationError.for_field(field, f"is not a valid URL: {exc}") from exc
    return parts


def _host_port(parts: Any) -> str:
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host


def _checked_url(url: str, field: str) -> str:
    """:func:`validate_url` under another field's name."""
    try:
        return validate_url(url)
    except ValidationError as exc:
        raise ValidationError.for_field(field, exc.details[0]["message"]) from None


def open_credentials(fields: dict[str, Any], open_: Seal) -> None:
    """Open the stored ``proxy_url``, ``auth`` and ``tls`` of an endpoint's
    fields in place (for the next attempt); nothing to do when unset."""
    if fields.get("proxy_url") is not None:
        fields["proxy_url"] = open_(fields["proxy_url"])
    if fields.get("auth") is not None:
        fields["auth"] = open_auth(fields["auth"], open_)
    if fields.get("tls") is not None:
        fields["tls"] = open_tls(fields["tls"], open_)


# -- auth ----------------------------------------------------------------------


def check_auth(value: Any, check: UrlCheck) -> dict[str, str] | None:
    """An ``auth`` object with the fields its type needs (plain, not sealed);
    a token URL must be a URL the destination guard accepts."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError.for_field("auth", "must be an object or null")
    kind = value.get("type")
    if kind not in AUTH_TYPES:
        raise ValidationError.for_field("auth.type", f"must be one of {', '.join(AUTH_TYPES)}")
    fields = _AUTH_FIELDS[kind]
    out = {"type": kind}
    for name in value:
        if name != "type" and name not in fields:
            raise ValidationError.for_field(f"auth.{name}", f"is not a field of {kind} auth")
    for name, required in fields.items():
        item = value.get(name)
        if item is None and not required:
            continue
        if not isinstance(item, str) or not item or len(item) > MAX_VALUE:
            raise ValidationError.for_field(
                f"auth.{name}", f"must be a non-empty string of at most {MAX_VALUE} characters"
            )
        if not item.isprintable() or not item.isascii():
            raise ValidationError.for_field(
                f"auth.{name}", "must be printable ASCII (it is sent in a header or form)"
            )
        if name in _AUTH_SECRETS and item.startswith(SEALED_PREFIX):
            # Could not be told apart from a sealed value when read back.
            raise ValidationError.for_field(
                f"auth.{name}", f"must not start with {SEALED_PREFIX!r}"
            )
        out[name] = item
    if kind == "basic" and ":" in out["username"]:
        raise ValidationError.for_field("auth.username", "must not contain ':'")
    if kind == "oauth2_client_credentials":
        out["client_auth"] = out.get("client_auth", "basic")
        if out["client_auth"] not in CLIENT_AUTH_METHODS:
            raise ValidationError.for_field("auth.client_auth", "must be 'basic' or 'body'")
        out["token_url"] = _checked_url(out["token_url"], "auth.token_url")
        check(out["token_url"], "auth.token_url")
    return out


def seal_auth(auth: Mapping[str, str] | None, seal: Seal) -> dict[str, str] | None:
    """``auth`` as stored: its secret fields sealed."""
    return _map_secrets(auth, _AUTH_SECRETS, seal)


def open_auth(stored: Mapping[str, str] | None, open_: Seal) -> dict[str, str] | None:
    """The plain ``auth`` of a stored one."""
    return _map_secrets(stored, _AUTH_SECRETS, open_)


def public_auth(stored: Mapping[str, str] | None) -> dict[str, str] | None:
    """``auth`` as shown: the type and the fields that are not secret."""
    if stored is None:
        return None
    return {k: v for k, v in stored.items() if k not in _AUTH_SECRETS}


def _map_secrets(
    value: Mapping[str, str] | None, secrets: tuple[str, ...], apply: Seal
) -> dict[str, str] | None:
    if value is None:
        return None
    return {k: (apply(v) if k in secrets and v is not None else v) for k, v in value.items()}


# -- tls -----------------------------------------------------------------------


def check_tls(value: Any) -> dict[str, str] | None:
    """A ``tls`` object: a certificate and its private key (both PEM, the key
    unencrypted and matching the certificate), an optional CA bundle; or
    only a CA bundle, for a receiver whose certificate a private CA signed."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError.for_field("tls", "must be an object or null")
    for name in value:
        if name not in _TLS_FIELDS:
            raise ValidationError.for_field(f"tls.{name}", "is not a tls field")
    out: dict[str, str] = {}
    for name in _TLS_FIELDS:
        item = value.get(name)
        if item is None and (name == "ca_pem" or set(value) == {"ca_pem"}):
            continue
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_PEM:
            raise ValidationError.for_field(
                f"tls.{name}", f"must be a PEM string of at most {MAX_PEM} characters"
            )
        out[name] = item
    if "client_cert_pem" in out:
        certificate = _certificate(out["client_cert_pem"], "tls.client_cert_pem")
        key = _private_key(out["client_key_pem"])
        if _public_der(key.public_key()) != _public_der(certificate.public_key()):
            raise ValidationError.for_field("tls.client_key_pem", "does not match the certificate")
    if "ca_pem" in out:
        _certificates(out["ca_pem"], "tls.ca_pem")
    return out


def seal_tls(tls: Mapping[str, str] | None, seal: Seal) -> dict[str, str] | None:
    """``tls`` as stored: the private key sealed."""
    return _map_secrets(tls, (_TLS_SECRET,), seal)


def open_tls(stored: Mapping[str, str] | None, open_: Seal) -> dict[str, str] | None:
    """The plain ``tls`` of a stored one."""
    return _map_secrets(stored, (_TLS_SECRET,), open_)


def public_tls(stored: Mapping[str, str] | None) -> dict[str, Any] | None:
    """``tls`` as shown: what identifies the client certificate (subject,
    SHA-256 fingerprint, expiry), never the key; whether a CA is set."""
    if stored is None:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(stored["client_cert_pem"].encode())
    except (KeyError, ValueError):  # only a CA (or a value written around the checks)
        return {"client_certificate": None, "ca": "ca_pem" in stored}
    return {
        "client_certificate": {
            "subject": certificate.subject.rfc4514_string(),
            "fingerprint_sha256": certificate.fingerprint(hashes.SHA256()).hex(),
            "not_after": certificate.not_valid_after_utc.isoformat(),
        },
        "ca": "ca_pem" in stored,
    }


def _certificate(pem: str, field: str) -> x509.Certificate:
    certificates = _certificates(pem, field)
    if datetime.now(UTC) > certificates[0].not_valid_after_utc:
        raise ValidationError.for_field(field, "the certificate has expired")
    return certificates[0]


def _certificates(pem: str, field: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise ValidationError.for_field(field, f"is not a PEM certificate: {exc}") from None
    if not certificates:
        raise ValidationError.for_field(field, "holds no certificate")
    return certificates


def _private_key(pem: str) -> Any:
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValidationError.for_field(
            "tls.client_key_pem", f"is not an unencrypted PEM private key: {exc}"
        ) from None


def _public_der(key: Any) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class ClientTLS:
    """The TLS settings of one endpoint's connections, from its opened ``tls``.

    ``digest`` names this exact configuration: the transport keeps a client
    per digest, so a replaced certificate takes effect on the next attempt
    while attempts already under way finish with the old one.
    """

    cert_pem: str | None
    key_pem: str | None
    ca_pem: str | None = None

    @classmethod
    def of(cls, tls: Mapping[str, str] | None) -> ClientTLS | None:
        """From an opened ``tls`` object; None for none."""
        if not tls:
            return None
        return cls(tls.get("client_cert_pem"), tls.get("client_key_pem"), tls.get("ca_pem"))

    @property
    def digest(self) -> str:
        """A short hash of the whole configuration."""
        raw = json.dumps([self.cert_pem, self.key_pem, self.ca_pem]).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def ssl_context(self) -> ssl.SSLContext:
        """A client context presenting the certificate (if any), trusting
        ``ca_pem`` alone when given, else the default trust store.

        Python's ``ssl`` loads a certificate chain only from files: the key
        is written to a private temporary directory (mode 0700) and removed
        as soon as it is loaded.
        """
        if self.ca_pem is not None:
            context = ssl.create_default_context(cadata=self.ca_pem)
        else:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())
        if self.cert_pem is None or self.key_pem is None:
            return context
        with tempfile.TemporaryDirectory(prefix="webhooks-tls-") as folder:
            os.chmod(folder, 0o700)
            cert_path = os.path.join(folder, "cert.pem")
            key_path = os.path.join(folder, "key.pem")
            _write_private(cert_path, self.cert_pem)
            _write_private(key_path, self.key_pem)
            context.load_cert_chain(cert_path, key_path)
        return context


def _write_private(path: str, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
