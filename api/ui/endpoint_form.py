"""The endpoint form: what its fields hold as typed, turned into the
settings of ``Producer.create_endpoint`` / ``update_endpoint``, and the
errors of either, each placed beside the field it is about.

Text is read here only as far as the library cannot take it as typed
(numbers, lines of headers, lists, JSON); every rule of what is valid is the
library's, so the form accepts exactly what the REST API accepts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from api.ui.credentials_form import (
    CREDENTIAL_FIELDS,
    credential_field,
    credential_settings,
    credential_values,
)
from api.ui.forms import FormData, parse_json
from producer.errors import ValidationError
from producer.types import Endpoint
from producer.validation import is_sensitive_header, redact_headers

__all__ = ["ALL_EVENTS", "FIELDS", "EndpointForm", "error_field"]

FIELDS = (
    "tenant",
    "url",
    "description",
    "event_types",
    "more_event_types",
    "version",
    "headers",
    "rate_limit_per_second",
    "ordering",
    "timeout_seconds",
    "channels",
    "filter",
    *CREDENTIAL_FIELDS,
)
"""The fields of the form, in page order; an error about anything else shows above them."""
ALL_EVENTS = "*"
REDACTED = "[redacted]"
_SEPARATORS = re.compile(r"[\s,]+")


def error_field(path: str) -> str:
    """The form field a library error path is about: ``filter`` for
    ``filter.$or[1].amount``, ``event_types`` for ``event_types[2]``,
    ``auth_password`` for ``auth.password``."""
    if credential_field(path):
        return credential_field(path)
    name = re.split(r"[.\[]", path, maxsplit=1)[0]
    return name if name in FIELDS else ""


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def _words(text: str) -> list[str]:
    return [word for word in _SEPARATORS.split(text) if word]


@dataclass
class EndpointForm:
    """The form's fields as typed (to show again), the event types ticked,
    and an error message per field ("" for the form as a whole)."""

    values: dict[str, str] = field(default_factory=dict)
    selected: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls) -> EndpointForm:
        """The form of a new endpoint: every event, deliveries in any order."""
        return cls(values={"ordering": "unordered"}, selected=[ALL_EVENTS])

    @classmethod
    def of(cls, endpoint: Endpoint, catalog: set[str]) -> EndpointForm:
        """The form showing an endpoint's settings; its patterns that are not
        among the checkboxes (``catalog``) go to the free-text field."""
        patterns = endpoint.event_types or [ALL_EVENTS]
        values = {
            "url": endpoint.url,
            "description": endpoint.description,
            "more_event_types": ", ".join(
                p for p in patterns if p not in catalog and p != ALL_EVENTS
            ),
            "version": endpoint.version or "",
            "headers": "\n".join(f"{k}: {v}" for k, v in redact_headers(endpoint.headers).items()),
            "rate_limit_per_second": _shown(endpoint.rate_limit_per_second),
            "ordering": endpoint.ordering,
            "timeout_seconds": _shown(endpoint.timeout_seconds),
            "channels": ", ".join(endpoint.channels),
            "filter": json.dumps(endpoint.filter, indent=2) if endpoint.filter else "",
            **credential_values(endpoint),
        }
        return cls(values=values, selected=[p for p in patterns if p in catalog or p == "*"])

    @classmethod
    def posted(cls, form: FormData) -> EndpointForm:
        """The form as the browser sent it."""
        values = {name: form.get(name, "") for name in FIELDS if name != "event_types"}
        return cls(values=values, selected=form.getlist("event_types"))

    @property
    def credential_errors(self) -> bool:
        """Whether a field of the collapsible credentials section is in error
        (it opens, so the error is seen)."""
        return any(name in CREDENTIAL_FIELDS for name in self.errors)

    @property
    def event_types(self) -> list[str]:
        """The patterns chosen; none (every event type) when "All events" is."""
        chosen = [*self.selected, *_words(self.values.get("more_event_types", ""))]
        return [] if ALL_EVENTS in chosen else chosen

    def settings(self, current: Endpoint | None = None) -> dict[str, Any]:
        """The library's keyword arguments for the fields as typed; a field
        that cannot be read gets an error in :attr:`errors` and is left out.

        A sensitive header shown as ``[redacted]`` keeps ``current``'s value,
        as do credentials left blank (see :mod:`api.ui.credentials_form`)."""
        v = self.values
        settings: dict[str, Any] = {
            "url": v.get("url", "").strip(),
            "description": v.get("description", "").strip(),
            "event_types": self.event_types,
            "version": v.get("version", "").strip() or None,
            "ordering": v.get("ordering", "").strip() or "unordered",
            "channels": _words(v.get("channels", "")),
        }
        readers = {
            "headers": lambda text: self._headers(text, current),
            "rate_limit_per_second": _number,
            "timeout_seconds": _number,
            "filter": lambda text: parse_json(text) if text.strip() else None,
        }
        for name, read in readers.items():
            try:
                settings[name] = read(v.get(name, ""))
            except ValueError as exc:
                # float() says too little to show: "could not convert ...".
                self.errors[name] = "must be a number" if read is _number else str(exc)
        settings.update(credential_settings(v, current, self.errors))
        return settings

    @staticmethod
    def _headers(text: str, current: Endpoint | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise ValueError(f"line {number} is not “Name: value”")
            name, value = name.strip(), value.strip()
            if value == REDACTED and current is not None and is_sensitive_header(name):
                value = current.headers.get(name, value)
            headers[name] = value
        return headers

    def refused(self, exc: ValidationError) -> None:
        """Place the library's errors beside the fields they are about."""
        for detail in exc.details or [{"field": "", "message": exc.message}]:
            path, message = str(detail.get("field", "")), str(detail.get("message", ""))
            name = error_field(path)
            typed = re.match(r"event_types\[(\d+)\]", path)
            if typed and int(typed.group(1)) >= len(self.selected):
                name = "more_event_types"  # past the ticked boxes: one typed by hand
            plain = path == name or credential_field(path)
            text = message if plain else f"{path}: {message}"
            self.errors.setdefault(name, text)


def _shown(number: float | None) -> str:
    return "" if number is None else f"{number:g}"
