"""Embeddable webhook sending: signed, retried, logged deliveries.

>>> from producer import Producer
>>> hooks = Producer("sqlite:///./webhooks.db")
>>> endpoint = hooks.create_endpoint("https://example.com/hooks", tenant="acme")
>>> hooks.send("invoice.paid", {"invoice": "in_1"}, tenant="acme")
"""

from producer.errors import (
    ConflictError,
    ConversionError,
    IdempotencyConflictError,
    InvalidStateError,
    NotFoundError,
    PayloadTooLargeError,
    SchemaValidationError,
    SignatureVerificationError,
    ValidationError,
    WebhooksError,
)
from producer.producer import Producer
from producer.settings import Settings
from producer.types import (
    ApiKey,
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointSecret,
    EndpointStats,
    EndpointStatus,
    EventType,
    HourlyCount,
    Message,
    Page,
    PreviousSecret,
    TestResult,
)

__version__ = "0.1.0"

__all__ = [
    "ApiKey",
    "Attempt",
    "ConflictError",
    "ConversionError",
    "Delivery",
    "DeliveryStatus",
    "Endpoint",
    "EndpointSecret",
    "EndpointStats",
    "EndpointStatus",
    "EventType",
    "HourlyCount",
    "IdempotencyConflictError",
    "InvalidStateError",
    "Message",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "PreviousSecret",
    "Producer",
    "SchemaValidationError",
    "Settings",
    "SignatureVerificationError",
    "TestResult",
    "ValidationError",
    "WebhooksError",
    "__version__",
]
