"""Background jobs: replays and bulk retries run by the workers."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import TS_EXAMPLE, LibraryView, example
from producer.types import JobKind, JobStatus

__all__ = ["JobOut"]


class JobOut(LibraryView):
    """A replay or bulk retry run in the background, and how far it got.

    The counts grow batch by batch while ``status`` is ``running``; poll
    ``GET /v1/jobs/{id}`` until it is ``succeeded`` or ``failed``.
    """

    model_config = example(
        {
            "id": "job_01JD0000000000000000000000",
            "kind": "replay",
            "status": "running",
            "tenant": "acme",
            "endpoint_id": "ep_01JD0000000000000000000000",
            "since": TS_EXAMPLE,
            "until": None,
            "options": {"event_types": None, "include_failed": True},
            "dry_run": False,
            "phase": "messages",
            "scanned": 1500,
            "created": 1200,
            "requeued": 0,
            "error": None,
            "created_at": TS_EXAMPLE,
            "updated_at": TS_EXAMPLE,
            "started_at": TS_EXAMPLE,
            "finished_at": None,
        }
    )

    id: str
    kind: JobKind = Field(description="`replay` of an endpoint's window, or bulk `retry`.")
    status: JobStatus
    tenant: str | None = Field(description="Null: an admin's retry over every tenant.")
    endpoint_id: str | None
    since: str | None
    until: str | None
    options: dict[str, Any] = Field(
        description="`event_types` and `include_failed` of a replay; "
        "`status`, `event_type` and `force` of a retry."
    )
    dry_run: bool = Field(description="Only counting: nothing is written.")
    phase: str = Field(
        description="The step under way: `messages` then `failed` (replay), `deliveries` (retry)."
    )
    scanned: int = Field(description="Messages of the window looked at so far.")
    created: int = Field(description="Deliveries created so far.")
    requeued: int = Field(description="Deliveries back in the queue so far.")
    error: str | None = Field(description="Why it failed.")
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
