"""The library's exception hierarchy.

Every error the library raises on purpose derives from ``WebhooksError``
and carries a stable machine-readable ``code``, a human ``message`` and
optional ``details`` (a list of ``{"field": ..., "message": ...}`` dicts).
The REST API maps these to its JSON error shape; the CLI prints the message.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "ConversionError",
    "IdempotencyConflictError",
    "InvalidStateError",
    "NotFoundError",
    "PayloadTooLargeError",
    "SchemaValidationError",
    "SignatureVerificationError",
    "ValidationError",
    "WebhooksError",
    "describe",
    "internal_error",
]


class WebhooksError(Exception):
    """Base class of every error raised by the library on purpose."""

    code = "error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[dict[str, Any]] = details or []


class ValidationError(WebhooksError):
    """Input that is well formed but not acceptable (bad URL, bad name, ...)."""

    code = "validation_error"

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationError:
        """An error about one named input field."""
        return cls(f"{field}: {message}", details=[{"field": field, "message": message}])


class SchemaValidationError(ValidationError):
    """The event data does not match the JSON Schema of its event type version."""

    code = "schema_validation_error"


class ConversionError(ValidationError):
    """No converter path exists from the message version to an endpoint's version,
    or a registered converter failed."""

    code = "conversion_error"


class PayloadTooLargeError(WebhooksError):
    """The serialised envelope exceeds the configured payload size limit."""

    code = "payload_too_large"


class NotFoundError(WebhooksError):
    """The resource does not exist, or is not visible to the caller's tenant."""

    code = "not_found"


class ConflictError(WebhooksError):
    """The request conflicts with the current state of a resource."""

    code = "conflict"


class IdempotencyConflictError(ConflictError):
    """An idempotency key was reused with a different request body."""

    code = "idempotency_conflict"


class InvalidStateError(ConflictError):
    """The operation is not allowed in the resource's current state
    (for example retrying a succeeded delivery without ``force``)."""

    code = "invalid_state"


class SignatureVerificationError(WebhooksError):
    """A webhook signature is missing, malformed, expired or does not match."""

    code = "invalid_signature"


MAX_ERROR_CHARS = 200


def describe(exc: BaseException) -> str:
    """An exception as one short line, ``<ExceptionClass>: <message>``, for an
    attempt's ``error``. Texts can be long or span lines (chained causes), and
    control characters (PostgreSQL cannot store a NUL) are blanked."""
    message = " ".join("".join(c if c.isprintable() else " " for c in str(exc)).split())
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason[:MAX_ERROR_CHARS]


def internal_error(exc: BaseException) -> str:
    """The attempt error of an unexpected exception: ``internal_error: <describe(exc)>``."""
    return f"internal_error: {describe(exc)}"
