"""Group commit: concurrent sends share one transaction, each caller is
answered only after the commit that holds its event, and one bad event fails
only its own caller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import event

from producer import Producer
from producer import sending as sending_module
from producer.errors import IdempotencyConflictError, ValidationError
from producer.group_commit import GroupCommit, LoopGroupCommit

# -- the primitive ---------------------------------------------------------------


def _held_first_batch(
    group: GroupCommit[int, int], run: Callable[[list[int]], list[Any]], callers: int
) -> tuple[list[Any], list[list[int]]]:
    """Submit 0 and hold its batch until ``callers`` more have queued behind
    it; return every caller's outcome (a value or the exception) by item and
    the batches ``run`` saw."""
    seen: list[list[int]] = []
    release = threading.Event()
    started = threading.Event()

    def recording(items: list[int]) -> list[Any]:
        seen.append(list(items))
        if items[0] == 0:
            started.set()
            assert release.wait(10)
        return run(items)

    def call(item: int) -> Any:
        try:
            return group.submit(item, recording)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(callers + 1) as pool:
        first = pool.submit(call, 0)
        assert started.wait(10)
        rest = [pool.submit(call, i) for i in range(1, callers + 1)]
        _wait_until(lambda: len(group._queue) == callers + 1)
        release.set()
        outcomes = [first.result(10)] + [f.result(10) for f in rest]
    return outcomes, seen


def _wait_until(condition: Callable[[], bool]) -> None:
    stop = threading.Event()
    for _ in range(1000):
        if condition():
            return
        stop.wait(0.01)
    raise AssertionError("the condition never held")


def test_callers_that_overlap_a_running_batch_form_the_next_batch():
    group: GroupCommit[int, int] = GroupCommit()

    outcomes, seen = _held_first_batch(group, lambda items: [i * 10 for i in items], callers=12)

    assert outcomes == [i * 10 for i in range(13)]
    assert seen == [[0], list(range(1, 13))]


def test_a_lone_caller_runs_its_own_batch_at_once():
    group: GroupCommit[int, int] = GroupCommit()
    threads: list[threading.Thread] = []

    def run(items: list[int]) -> list[int]:
        threads.append(threading.current_thread())
        return [i + 1 for i in items]

    assert [group.submit(i, run) for i in range(3)] == [1, 2, 3]
    assert threads == [threading.current_thread()] * 3


def test_an_outcome_that_is_an_exception_fails_only_its_caller():
    group: GroupCommit[int, int] = GroupCommit()

    def run(items: list[int]) -> list[Any]:
        return [ValueError(f"bad {i}") if i == 3 else i for i in items]

    outcomes, _ = _held_first_batch(group, run, callers=5)

    assert [type(o).__name__ for o in outcomes] == ["int"] * 3 + ["ValueError"] + ["int"] * 2
    assert str(outcomes[3]) == "bad 3"


def test_a_failed_run_fails_every_caller_of_its_batch_and_the_next_batch_runs():
    group: GroupCommit[int, int] = GroupCommit()

    def run(items: list[int]) -> list[int]:
        if 2 in items:
            raise RuntimeError("the database went away")
        return items

    outcomes, seen = _held_first_batch(group, run, callers=4)

    assert seen == [[0], [1, 2, 3, 4]]
    assert outcomes[0] == 0
    assert all(isinstance(o, RuntimeError) for o in outcomes[1:])
    assert group.submit(7, run) == 7
    assert group._queue == type(group._queue)()


def test_batches_are_capped():
    group: GroupCommit[int, int] = GroupCommit(max_batch=4)

    outcomes, seen = _held_first_batch(group, lambda items: items, callers=10)

    assert outcomes == list(range(11))
    assert [len(batch) for batch in seen] == [1, 4, 4, 2]


# -- the primitive on an event loop ------------------------------------------------------


def test_coroutines_that_submit_in_one_turn_form_one_batch_run_on_the_loop():
    group: LoopGroupCommit[int, int] = LoopGroupCommit()
    seen: list[tuple[list[int], threading.Thread]] = []

    def run(items: list[int]) -> list[Any]:
        seen.append((list(items), threading.current_thread()))
        return [ValueError("bad 2") if i == 2 else i * 10 for i in items]

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(group.submit(i, run) for i in range(5)), return_exceptions=True
        )

    outcomes = asyncio.run(main())

    assert outcomes[:2] == [0, 10] and outcomes[3:] == [30, 40]
    assert isinstance(outcomes[2], ValueError)
    assert seen == [([0, 1, 2, 3, 4], threading.main_thread())]


def test_a_loop_batch_is_capped_and_a_failed_run_fails_its_batch_only():
    group: LoopGroupCommit[int, int] = LoopGroupCommit(max_batch=3)
    seen: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        seen.append(list(items))
        if 4 in items:
            raise RuntimeError("the database went away")
        return items

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(group.submit(i, run) for i in range(7)), return_exceptions=True
        )

    outcomes = asyncio.run(main())

    assert seen == [[0, 1, 2], [3, 4, 5], [6]]
    assert outcomes[:3] == [0, 1, 2] and outcomes[6] == 6
    assert all(isinstance(o, RuntimeError) for o in outcomes[3:6])


# -- sends, on SQLite and PostgreSQL ------------------------------------------------------


def _commits(producer: Producer) -> list[int]:
    """Counts the commits of ``producer``'s engine (one entry per commit)."""
    commits: list[int] = []
    event.listen(producer.engine, "commit", lambda _conn: commits.append(1))
    return commits


def _concurrent_sends(
    producer: Producer, monkeypatch: pytest.MonkeyPatch, calls: list[Callable[[], Any]]
) -> list[Any]:
    """Run ``calls`` (sends) in threads while the first send's transaction is
    held open, so the others queue behind it; their outcomes in order."""
    release = threading.Event()
    held = threading.Event()
    real_send_in = sending_module.send_in

    def send_in(ctx: Any, s: Any, request: Any) -> Any:
        if request.event_type == "hold.first":
            held.set()
            assert release.wait(10)
        return real_send_in(ctx, s, request)

    monkeypatch.setattr(sending_module, "send_in", send_in)

    def call(f: Callable[[], Any]) -> Any:
        try:
            return f()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(calls) + 1) as pool:
        first = pool.submit(producer.send, "hold.first", {})
        assert held.wait(10)
        rest = [pool.submit(call, f) for f in calls]
        _wait_until(lambda: len(producer.context.sends._queue) == len(calls) + 1)
        release.set()
        first.result(10)
        return [f.result(30) for f in rest]


def test_concurrent_sends_share_one_transaction(producer, receiver, monkeypatch):
    endpoint = producer.create_endpoint(receiver.url(), tenant="acme")
    commits = _commits(producer)

    calls = [
        (lambda i=i: producer.send("invoice.paid", {"i": i}, tenant="acme")) for i in range(16)
    ]
    messages = _concurrent_sends(producer, monkeypatch, calls)

    assert len(commits) == 2  # the held send's, then the 16 others' together
    assert sorted(m.envelope["data"]["i"] for m in messages) == list(range(16))
    assert all(m.deliveries == 1 for m in messages)
    stored = producer.list_messages(tenant="acme", limit=100).data
    assert {m.id for m in stored} == {m.id for m in messages}
    deliveries = producer.list_deliveries(endpoint_id=endpoint.id, limit=100).data
    assert {d.message_id for d in deliveries} == {m.id for m in messages}


def test_a_bad_event_in_a_batch_fails_alone(producer, receiver, monkeypatch):
    producer.create_endpoint(receiver.url(), tenant="acme")
    producer.create_event_type("order.created")
    producer.archive_event_type("order.created")
    first = producer.send("invoice.paid", {"n": 0}, tenant="acme", idempotency_key="k")

    calls: list[Callable[[], Any]] = [
        lambda: producer.send("invoice.paid", {"n": 1}, tenant="acme"),
        lambda: producer.send("bad name!", {}, tenant="acme"),
        lambda: producer.send("order.created", {}, tenant="acme"),
        lambda: producer.send("invoice.paid", {"n": 2}, tenant="acme", idempotency_key="k"),
        lambda: producer.send("invoice.paid", {"n": 0}, tenant="acme", idempotency_key="k"),
        lambda: producer.send("invoice.paid", {"n": 3}, tenant="acme"),
    ]
    ok1, bad_name, archived, conflict, replay, ok3 = _concurrent_sends(producer, monkeypatch, calls)

    assert isinstance(bad_name, ValidationError)
    assert isinstance(archived, ValidationError) and "archived" in str(archived)
    assert isinstance(conflict, IdempotencyConflictError)
    assert replay.id == first.id
    stored = {
        m.id: m.envelope["data"] for m in producer.list_messages(tenant="acme", limit=100).data
    }
    assert stored == {first.id: {"n": 0}, ok1.id: {"n": 1}, ok3.id: {"n": 3}}


def test_each_caller_is_answered_after_its_commit(producer, receiver, monkeypatch):
    """Every caller finds its event committed (visible to another
    connection) the moment ``send`` returns."""
    producer.create_endpoint(receiver.url())
    found: list[bool] = []

    def send_and_look(i: int) -> None:
        message = producer.send("invoice.paid", {"i": i})
        with producer.context.store.reading() as s:
            found.append(producer.context.store.get_message(s, message.id, tenant=None) is not None)

    _concurrent_sends(producer, monkeypatch, [lambda i=i: send_and_look(i) for i in range(8)])

    assert found == [True] * 8


def test_a_statement_that_fails_in_a_batch_fails_its_event_alone(producer, monkeypatch):
    real = producer.context.store.insert_message
    inserted: list[str] = []

    def insert_message(s: Any, message: Any, deliveries: Any) -> None:
        inserted.append(message["id"])
        real(s, message, deliveries)
        if len(inserted) == 3:  # the second event of the batch
            s.connection().exec_driver_sql("SELECT * FROM no_such_table")

    monkeypatch.setattr(producer.context.store, "insert_message", insert_message)
    outcomes = _concurrent_sends(
        producer,
        monkeypatch,
        [(lambda i=i: producer.send("invoice.paid", {"i": i})) for i in range(4)],
    )

    assert [isinstance(o, Exception) for o in outcomes] == [False, True, False, False]
    kept = {m.id for m in producer.list_messages(limit=100).data}
    assert kept == set(inserted) - {inserted[2]}


def test_a_failed_commit_fails_the_whole_batch_and_keeps_nothing(producer, monkeypatch):
    commits: list[int] = []

    def commit(_conn: Any) -> None:
        commits.append(1)
        if len(commits) > 1:  # the held send's commit passes, the batch's fails
            raise RuntimeError("the commit failed")

    event.listen(producer.engine, "commit", commit)
    outcomes = _concurrent_sends(
        producer,
        monkeypatch,
        [(lambda i=i: producer.send("invoice.paid", {"i": i})) for i in range(4)],
    )
    event.remove(producer.engine, "commit", commit)

    assert [str(o) for o in outcomes] == ["the commit failed"] * 4
    assert [m.event_type for m in producer.list_messages(limit=100).data] == ["hold.first"]


def test_an_outbox_send_is_not_grouped(producer, monkeypatch):
    """In the caller's own session the event belongs to the caller's
    transaction, never to a batch."""

    def submit(*_args: Any) -> Any:
        raise AssertionError("an outbox send was grouped")

    monkeypatch.setattr(producer.context.sends, "submit", submit)
    with producer.context.store.transaction() as s:
        message = producer.send("invoice.paid", {}, session=s)
    assert producer.get_message(message.id).id == message.id


def test_concurrent_asends_share_one_transaction(producer, receiver):
    producer.create_endpoint(receiver.url(), tenant="acme")
    commits = _commits(producer)

    async def main() -> list[Any]:
        sends = [producer.asend("invoice.paid", {"i": i}, tenant="acme") for i in range(12)]
        sends.append(producer.asend("bad name!", {}, tenant="acme"))
        return await asyncio.gather(*sends, return_exceptions=True)

    *messages, bad = asyncio.run(main())

    assert isinstance(bad, ValidationError)
    if producer.local_database:  # one batch, on the loop
        assert len(commits) == 1
    else:  # in threads: whoever comes first leads, the rest queue behind
        assert len(commits) < 13
    stored = producer.list_messages(tenant="acme", limit=100).data
    assert {m.id for m in stored} == {m.id for m in messages}
