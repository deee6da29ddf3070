"""The JSON shapes of the REST API: request bodies and responses, one module
per resource (:mod:`~api.schemas.endpoints`, :mod:`~api.schemas.messages`, …)
and what they share (:mod:`~api.schemas.common`). Each route module imports
the shapes of its resource from that resource's module.

Response models are built from the library's value objects with their
``of(...)`` constructors; every timestamp goes out as RFC 3339 UTC with
milliseconds (``2026-11-22T10:00:00.000Z``).
"""
