"""Background jobs: replays and bulk retries run by the workers, resumable, tenant-scoped."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from producer import NotFoundError, ValidationError
from producer.cli import main
from producer.jobs import JobRunner
from producer.models import DeliveryRow
from tests.helpers.api import assert_error, create_endpoint, send
from tests.helpers.store import mark_failed
from tests.helpers.waiting import wait_for_value

URL = "https://receiver.example/hooks"
SINCE = "2000-01-01T00:00:00Z"


@pytest.fixture
def timed(make_producer, clock):
    return make_producer(clock=clock)


def deliveries_per_message(producer, endpoint_id) -> Counter[str]:
    with producer.context.store.transaction() as s:
        rows = s.execute(
            select(DeliveryRow.message_id, func.count())
            .where(DeliveryRow.endpoint_id == endpoint_id)
            .group_by(DeliveryRow.message_id)
        )
        return Counter({message_id: n for message_id, n in rows})


def missed(producer, clock, count: int, tenant: str = "acme"):
    """``count`` messages sent before the endpoint existed, and the endpoint."""
    since = clock()
    messages = [producer.send("order.placed", {"n": n}, tenant=tenant) for n in range(count)]
    clock.advance(1)
    return since, messages, producer.create_endpoint(URL, tenant=tenant)


# -- the library ---------------------------------------------------------------------------


def test_a_replay_job_runs_to_completion_with_its_counts(timed, clock):
    since, messages, endpoint = missed(timed, clock, 5)
    failed = timed.send("order.placed", {"n": 5}, tenant="acme")
    mark_failed(timed, [d.id for d in timed.list_deliveries(message_id=failed.id).data])

    job = timed.start_replay(endpoint.id, since=since, include_failed=True, tenant="acme")
    assert (job.status, job.kind, job.tenant, job.endpoint_id) == (
        "queued",
        "replay",
        "acme",
        endpoint.id,
    )

    assert JobRunner(timed.context, batch=2).run_due() == 1

    done = timed.get_job(job.id)
    assert (done.status, done.scanned, done.created, done.requeued) == ("succeeded", 5, 5, 1)
    assert done.finished_at is not None and done.error is None
    assert set(deliveries_per_message(timed, endpoint.id)) == {m.id for m in messages} | {failed.id}
    assert timed.get_delivery(timed.list_deliveries(message_id=failed.id).data[0].id).status == (
        "pending"
    )


def test_a_running_jobs_progress_is_visible_batch_by_batch(timed, clock):
    since, _, endpoint = missed(timed, clock, 5)
    job = timed.start_replay(endpoint.id, since=since)
    runner = JobRunner(timed.context, batch=2)

    assert runner.claim() == job.id
    assert runner.step(job.id) is True
    first = timed.get_job(job.id)
    assert runner.step(job.id) is True
    second = timed.get_job(job.id)
    assert runner.step(job.id) is False

    assert (first.status, first.phase, first.scanned, first.created) == (
        "running",
        "messages",
        2,
        2,
    )
    assert first.started_at is not None and first.finished_at is None
    assert (second.scanned, second.created) == (4, 4)
    assert timed.get_job(job.id).status == "succeeded"


def test_a_crashed_runners_job_is_resumed_after_its_lease_without_duplicates(timed, clock):
    since, messages, endpoint = missed(timed, clock, 7)
    job = timed.start_replay(endpoint.id, since=since)
    crashed = JobRunner(timed.context, owner="crashed", batch=2)
    other = JobRunner(timed.context, owner="other", batch=2)
    assert crashed.claim() == job.id
    crashed.step(job.id)
    crashed.step(job.id)

    assert other.claim() is None  # its lease still holds
    clock.advance(timed.settings.lease_seconds + 1)
    assert other.claim() == job.id
    assert crashed.step(job.id) is False  # it came back too late: nothing is done twice
    while other.step(job.id):
        pass

    done = timed.get_job(job.id)
    assert (done.status, done.scanned, done.created) == ("succeeded", 7, 7)
    assert deliveries_per_message(timed, endpoint.id) == Counter({m.id: 1 for m in messages})


def test_a_stopped_runner_hands_its_job_back_at_once(timed, clock):
    since, messages, endpoint = missed(timed, clock, 3)
    job = timed.start_replay(endpoint.id, since=since)
    stopping = JobRunner(timed.context, owner="stopping", batch=2)
    stopping.claim()
    stopping.step(job.id)

    stopping.release(job.id)

    other = JobRunner(timed.context, owner="other", batch=2)
    assert other.claim() == job.id and other.step(job.id) is False
    assert timed.get_job(job.id).created == 3
    assert deliveries_per_message(timed, endpoint.id) == Counter({m.id: 1 for m in messages})


def test_two_runners_at_once_never_run_one_job_twice(timed, clock):
    endpoints, jobs = [], []
    since = clock()
    messages = [timed.send("order.placed", {"n": n}, tenant="acme") for n in range(30)]
    clock.advance(1)
    for _ in range(3):
        endpoint = timed.create_endpoint(URL, tenant="acme")
        endpoints.append(endpoint)
        jobs.append(timed.start_replay(endpoint.id, since=since))
    runners = [JobRunner(timed.context, owner=f"r{n}", batch=4) for n in range(2)]
    threads = [threading.Thread(target=r.run_due) for r in runners]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    for job, endpoint in zip(jobs, endpoints, strict=True):
        done = timed.get_job(job.id)
        assert (done.status, done.scanned, done.created) == ("succeeded", 30, 30)
        assert deliveries_per_message(timed, endpoint.id) == Counter({m.id: 1 for m in messages})


def test_a_dry_run_job_counts_and_writes_nothing(timed, clock):
    since, _, endpoint = missed(timed, clock, 3)
    job = timed.start_replay(endpoint.id, since=since, dry_run=True)

    JobRunner(timed.context, batch=2).run_due()

    done = timed.get_job(job.id)
    assert (done.status, done.dry_run, done.created) == ("succeeded", True, 3)
    assert deliveries_per_message(timed, endpoint.id) == Counter()


def test_a_retry_job_requeues_what_the_filters_select(timed):
    endpoint = timed.create_endpoint(URL, tenant="acme")
    for _ in range(3):
        timed.send("order.placed", {}, tenant="acme")
    timed.send("user.created", {}, tenant="acme")
    mark_failed(timed, [d.id for d in timed.list_deliveries(limit=250).data])

    job = timed.start_retry(tenant="acme", event_type="order.placed")
    JobRunner(timed.context, batch=2).run_due()

    done = timed.get_job(job.id)
    assert (done.kind, done.status, done.requeued, done.phase) == (
        "retry",
        "succeeded",
        3,
        "deliveries",
    )
    assert done.options == {"status": "failed", "event_type": "order.placed", "force": False}
    statuses = Counter(d.status for d in timed.list_deliveries(endpoint_id=endpoint.id).data)
    assert statuses == Counter({"pending": 3, "failed": 1})


def test_a_job_whose_endpoint_is_deleted_fails_saying_why(timed, clock):
    since, _, endpoint = missed(timed, clock, 2)
    job = timed.start_replay(endpoint.id, since=since)
    timed.delete_endpoint(endpoint.id)

    JobRunner(timed.context).run_due()

    done = timed.get_job(job.id)
    assert done.status == "failed" and endpoint.id in (done.error or "")
    assert done.finished_at is not None


def test_jobs_are_tenant_scoped(timed, clock):
    since, _, endpoint = missed(timed, clock, 1)
    job = timed.start_replay(endpoint.id, since=since, tenant="acme")

    assert timed.get_job(job.id, tenant="acme").id == job.id
    with pytest.raises(NotFoundError):
        timed.get_job(job.id, tenant="other")
    with pytest.raises(NotFoundError):
        timed.start_replay(endpoint.id, since=since, tenant="other")
    assert [j.id for j in timed.list_jobs(tenant="acme").data] == [job.id]
    assert timed.list_jobs(tenant="other").data == []


def test_starting_a_job_checks_its_input_first(timed, clock):
    endpoint = timed.create_endpoint(URL, tenant="acme")
    with pytest.raises(ValidationError, match="later than since"):
        timed.start_replay(endpoint.id, since=clock(), until=clock())
    with pytest.raises(ValidationError):
        timed.start_replay(endpoint.id, since=clock(), event_types=["no spaces"])
    with pytest.raises(ValidationError) as caught:
        timed.start_retry(status="succeeded")
    assert caught.value.details[0]["field"] == "force"
    with pytest.raises(ValidationError):
        timed.list_jobs(kind="nope")
    assert timed.list_jobs().data == []


def test_list_jobs_pages_newest_first_and_filters(timed, clock):
    since, _, endpoint = missed(timed, clock, 1)
    made = [timed.start_replay(endpoint.id, since=since) for _ in range(3)]
    retry = timed.start_retry(tenant="acme")

    first = timed.list_jobs(kind="replay", limit=2)
    second = timed.list_jobs(kind="replay", limit=2, cursor=first.next_cursor)

    assert [j.id for j in first.data + second.data] == [j.id for j in reversed(made)]
    assert second.next_cursor is None
    assert [j.id for j in timed.list_jobs(kind="retry").data] == [retry.id]
    assert [j.id for j in timed.list_jobs(status="queued", endpoint_id=endpoint.id).data] == [
        j.id for j in reversed(made)
    ]


def test_the_worker_runs_queued_jobs(make_producer):
    producer = make_producer()
    since = producer.context.clock()
    for n in range(3):
        producer.send("order.placed", {"n": n}, tenant="acme")
    endpoint = producer.create_endpoint("http://127.0.0.1:9/hooks", tenant="acme")
    job = producer.start_replay(endpoint.id, since=since, dry_run=True)

    with producer.start_worker_thread():
        done = wait_for_value(
            lambda: producer.get_job(job.id),
            lambda j: j.status != "queued" and j.status != "running",
        )

    assert (done.status, done.created) == ("succeeded", 3)


# -- the API -------------------------------------------------------------------------------


def test_a_background_replay_answers_a_job_to_follow(api):
    acme = api.tenant("acme")
    send(acme)
    send(acme)
    endpoint = create_endpoint(acme)

    response = acme.post(
        f"/v1/endpoints/{endpoint['id']}/replay", json={"since": SINCE, "background": True}
    )

    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["status"], job["endpoint_id"], job["tenant"]) == (
        "replay",
        "queued",
        endpoint["id"],
        "acme",
    )
    assert job["id"].startswith("job_") and job["since"] == "2000-01-01T00:00:00.000Z"
    JobRunner(api.producer.context).run_due()
    done = acme.get(f"/v1/jobs/{job['id']}").json()
    assert (done["status"], done["scanned"], done["created"], done["requeued"]) == (
        "succeeded",
        2,
        2,
        0,
    )
    assert done["finished_at"] is not None


def test_a_background_bulk_retry_answers_a_job(api):
    acme = api.tenant("acme")
    create_endpoint(acme)
    send(acme)
    mark_failed(api.producer, [d.id for d in api.producer.list_deliveries().data])

    response = acme.post("/v1/deliveries/retry", json={"background": True})

    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["tenant"], job["options"]["status"]) == ("retry", "acme", "failed")
    JobRunner(api.producer.context).run_due()
    assert acme.get(f"/v1/jobs/{job['id']}").json()["requeued"] == 1


def test_every_job_route_is_tenant_scoped(api):
    acme, other = api.tenant("acme"), api.tenant("other")
    endpoint = create_endpoint(acme)
    path = f"/v1/endpoints/{endpoint['id']}/replay"
    job = acme.post(path, json={"since": SINCE, "background": True}).json()
    everyone = api.admin.post("/v1/deliveries/retry", json={"background": True}).json()

    assert_error(other.get(f"/v1/jobs/{job['id']}"), 404, "not_found")
    assert_error(acme.get(f"/v1/jobs/{everyone['id']}"), 404, "not_found")
    assert_error(other.post(path, json={"since": SINCE, "background": True}), 404, "not_found")
    assert other.get("/v1/jobs").json() == {"data": [], "next_cursor": None}
    assert [j["id"] for j in acme.get("/v1/jobs").json()["data"]] == [job["id"]]
    assert acme.get("/v1/jobs", params={"tenant": "other"}).json()["data"] == []
    assert [j["id"] for j in api.admin.get("/v1/jobs").json()["data"]] == [
        everyone["id"],
        job["id"],
    ]
    assert api.anonymous.get("/v1/jobs").status_code == 401


def test_job_routes_answer_bad_input_with_json_errors(api):
    endpoint = create_endpoint(api.admin)
    path = f"/v1/endpoints/{endpoint['id']}/replay"

    assert_error(
        api.admin.post(path, json={"since": SINCE, "background": "yes"}),
        422,
        "validation_error",
        field="body.background",
    )
    assert_error(
        api.admin.post(path, json={"since": SINCE, "until": SINCE, "background": True}),
        422,
        "validation_error",
        field="body.until",
    )
    assert_error(api.admin.get("/v1/jobs", params={"kind": "nope"}), 422, "validation_error")
    assert_error(api.admin.get("/v1/jobs", params={"limit": 0}), 422, "validation_error")
    assert_error(api.admin.get("/v1/jobs", params={"cursor": "ep_x"}), 422, "validation_error")
    assert_error(api.admin.get("/v1/jobs/job_unknown"), 404, "not_found")


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def cli(database_url, producer):
    """Runs ``webhooks`` on the test's database (made by ``producer``)."""
    runner = CliRunner()
    return lambda *args: runner.invoke(
        main, ["--database-url", database_url, *args], catch_exceptions=False
    )


def test_cli_replay_in_the_background_prints_the_job_id_to_follow(cli, producer):
    producer.send("order.placed", {}, tenant="acme")
    endpoint = producer.create_endpoint(URL, tenant="acme")

    queued = cli("endpoints", "replay", endpoint.id, "--since", SINCE, "--background")

    assert queued.exit_code == 0, queued.output
    job_id = queued.stdout.strip()
    assert job_id.startswith("job_") and "webhooks jobs show" in queued.stderr
    JobRunner(producer.context).run_due()
    shown = cli("jobs", "show", job_id)
    assert "succeeded" in shown.stdout and "created:" in shown.stdout
    listed = json.loads(cli("jobs", "list", "--json").stdout)
    assert [(j["id"], j["created"]) for j in listed["data"]] == [(job_id, 1)]
    assert json.loads(cli("jobs", "show", job_id, "--json").stdout)["status"] == "succeeded"


def test_cli_jobs_show_of_an_unknown_job_is_one_error_line(cli):
    result = cli("jobs", "show", "job_unknown")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
