"""The endpoint form's "Receiver authentication and network" fields: the
egress proxy, how requests log in (basic, bearer, OAuth2 client
credentials) and the client certificate, turned into the library's
``proxy_url``, ``auth`` and ``tls``.

Secrets are write-only: the library never reads them back, so the form
never shows them, and an edit that leaves them blank keeps what is stored
(the field is not sent at all). Changing what goes with a stored secret (a
username, a token URL) needs the secret typed again, since the form has
none to send with it. Removing is a choice of its own: "none" for the
login, an emptied proxy field, a box for the certificate.
"""

from __future__ import annotations

from typing import Any

from producer.credentials import AUTH_TYPES, CLIENT_AUTH_METHODS
from producer.types import Endpoint

__all__ = [
    "AUTH_FIELDS",
    "CREDENTIAL_FIELDS",
    "KEEP_PROXY",
    "KEEP_SECRET",
    "credential_field",
    "credential_settings",
    "credential_values",
]

AUTH_FIELDS: dict[str, tuple[str, ...]] = {
    "basic": ("username", "password"),
    "bearer": ("token",),
    "oauth2_client_credentials": (
        "token_url",
        "client_id",
        "client_secret",
        "scope",
        "client_auth",
    ),
}
"""The fields of each kind of login, as the library names them."""
_SECRETS = ("password", "token", "client_secret")
_OPTIONAL = ("scope", "client_auth")
_TLS = ("client_cert_pem", "client_key_pem", "ca_pem")

CREDENTIAL_FIELDS = (
    "proxy_url",
    "auth_type",
    *dict.fromkeys(f"auth_{name}" for names in AUTH_FIELDS.values() for name in names),
    *(f"tls_{name}" for name in _TLS),
    "tls_remove",
)
"""The form fields of this section, in page order."""
KEEP_PROXY = "type the proxy's password again to change its address (it is never shown)"
KEEP_SECRET = "type it again to change the other login fields (it is stored and never shown)"


def credential_field(path: str) -> str:
    """The form field a library error path is about (``auth.password`` →
    ``auth_password``), or "" when the path is about none of this section."""
    if path == "proxy_url":
        return path
    if path == "auth":
        return "auth_type"
    if path == "tls":
        return "tls_client_cert_pem"
    name = path.replace(".", "_", 1)
    return name if name in CREDENTIAL_FIELDS else ""


def credential_values(endpoint: Endpoint) -> dict[str, str]:
    """What the form shows of an endpoint's stored credentials: the proxy
    (its password as ``***``) and the login's kind and fields that are not
    secret; never a secret, never a PEM."""
    values = {"proxy_url": endpoint.proxy_url or "", "auth_type": ""}
    if endpoint.auth:
        values["auth_type"] = endpoint.auth["type"]
        for name, value in endpoint.auth.items():
            if name != "type":
                values[f"auth_{name}"] = value
    return values


def credential_settings(
    values: dict[str, str], current: Endpoint | None, errors: dict[str, str]
) -> dict[str, Any]:
    """The library's ``proxy_url``, ``auth`` and ``tls`` for the fields as
    typed, each left out when it keeps what ``current`` has; what cannot be
    sent gets an error in ``errors``."""
    settings: dict[str, Any] = {}
    for name, read in (("proxy_url", _proxy), ("auth", _auth), ("tls", _tls)):
        try:
            settings[name] = read(values, current)
        except _Keep:
            pass
        except _Refused as refused:
            errors[refused.field] = refused.message
    return settings


class _Keep(Exception):
    """The stored value stays: the setting is not sent."""


class _Refused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _proxy(values: dict[str, str], current: Endpoint | None) -> str | None:
    typed = values.get("proxy_url", "").strip()
    shown = current.proxy_url if current else None
    if typed == (shown or ""):
        raise _Keep
    if not typed:
        return None
    if ":***@" in typed:
        raise _Refused("proxy_url", KEEP_PROXY)
    return typed


def _auth(values: dict[str, str], current: Endpoint | None) -> dict[str, str] | None:
    kind = values.get("auth_type", "").strip()
    stored = current.auth if current else None
    if not kind:
        if stored is None:
            raise _Keep
        return None
    if kind not in AUTH_TYPES:
        return {"type": kind}  # the library says what is allowed
    typed = {"type": kind}
    for name in AUTH_FIELDS[kind]:
        value = values.get(f"auth_{name}", "")
        value = value if name in _SECRETS else value.strip()
        if value or name not in _OPTIONAL:
            typed[name] = value
    blank = [name for name in AUTH_FIELDS[kind] if name in _SECRETS and not typed[name]]
    if not blank or stored is None or stored["type"] != kind:
        return typed  # complete, or a new login whose blanks the library refuses
    if {k: v for k, v in typed.items() if k not in _SECRETS} == _with_defaults(stored):
        raise _Keep
    raise _Refused(f"auth_{blank[0]}", KEEP_SECRET)


def _with_defaults(stored: dict[str, str]) -> dict[str, str]:
    """The stored login's non-secret fields as the form sends them back."""
    shown = dict(stored)
    if shown["type"] == "oauth2_client_credentials":
        shown.setdefault("client_auth", CLIENT_AUTH_METHODS[0])
    return shown


def _tls(values: dict[str, str], current: Endpoint | None) -> dict[str, str] | None:
    if values.get("tls_remove") == "on":
        if current is None or current.tls is None:
            raise _Keep
        return None
    typed = {name: values.get(f"tls_{name}", "") for name in _TLS}
    typed = {name: pem for name, pem in typed.items() if pem.strip()}
    if not typed:
        raise _Keep
    return typed
