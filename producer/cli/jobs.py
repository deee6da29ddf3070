"""``webhooks jobs``: replays and bulk retries running in the background."""

from __future__ import annotations

from typing import Any

import click

from producer.cli.common import (
    emit_json,
    fields,
    json_option,
    one_line_errors,
    open_producer,
    page_options,
    print_list,
    table,
    when,
)
from producer.types import JOB_KINDS, JOB_STATUSES, Job

__all__ = ["emit_queued", "jobs"]


@click.group()
def jobs() -> None:
    """Background jobs (replays, bulk retries) and how far they got."""


@jobs.command("list")
@click.option("--tenant", default=None)
@click.option("--kind", type=click.Choice(JOB_KINDS), default=None)
@click.option("--status", type=click.Choice(JOB_STATUSES), default=None)
@click.option("--endpoint-id", default=None)
@page_options(default=50)
@json_option
@click.pass_context
@one_line_errors
def jobs_list(
    ctx: click.Context, limit: int | None, cursor: str | None, as_json: bool, **filters: Any
) -> None:
    """List jobs, newest first; filters combine (as GET /v1/jobs)."""
    producer = open_producer(ctx)
    print_list(
        lambda size, after: producer.list_jobs(limit=size, cursor=after, **filters),
        limit,
        cursor,
        as_json,
        view=lambda job: job,
        show=_job_table,
    )


def _job_table(rows: list[Job]) -> None:
    table(
        ["id", "kind", "status", "endpoint", "scanned", "created", "requeued", "created at"],
        (
            [
                j.id,
                j.kind,
                j.status,
                j.endpoint_id or "",
                j.scanned,
                j.created,
                j.requeued,
                when(j.created_at),
            ]
            for j in rows
        ),
        empty="no jobs",
    )


@jobs.command("show")
@click.argument("job_id")
@json_option
@click.pass_context
@one_line_errors
def jobs_show(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show a job: what it does, where it stands and its counts so far."""
    job = open_producer(ctx).get_job(job_id)
    if as_json:
        emit_json(job)
        return
    fields(
        [
            ("id", job.id),
            ("kind", job.kind + (" (dry run)" if job.dry_run else "")),
            ("status", job.status),
            ("tenant", job.tenant or "(every tenant)"),
            ("endpoint", job.endpoint_id),
            ("since", when(job.since)),
            ("until", when(job.until)),
            ("options", ", ".join(f"{k}={v}" for k, v in job.options.items() if v is not None)),
            ("phase", job.phase),
            ("scanned", job.scanned),
            ("created", job.created),
            ("requeued", job.requeued),
            ("error", job.error),
            ("created at", when(job.created_at)),
            ("started at", when(job.started_at)),
            ("finished at", when(job.finished_at)),
        ]
    )


def emit_queued(job: Job, *, as_json: bool) -> None:
    """What a command that queued a job prints: the job (``--json``), else
    its id alone on stdout, for scripts, and how to follow it on stderr."""
    if as_json:
        emit_json(job)
        return
    click.echo(job.id)
    click.echo(f"{job.kind} queued; follow it with: webhooks jobs show {job.id}", err=True)
