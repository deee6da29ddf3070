"""Group commit: concurrent calls share one transaction, each answered after
the commit holding its writes, a failing call rolling back its own only.

``GroupCommit`` is run over the store's transactions on SQLite and
PostgreSQL; producers use it on SQLite, where there is one writer.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from producer import Producer
from producer.group_commit import GroupCommit
from producer.models import ApiKeyRow
from producer.store import Store

WAIT = 30.0
"""How long a test waits for something that must happen; a failure, were it reached."""


def _key(name: str) -> Callable[[Session], str]:
    """Work that inserts one row named ``name`` and returns the name."""

    def work(s: Session) -> str:
        s.add(
            ApiKeyRow(
                id=f"key_{name}",
                name=name,
                key_hash=f"hash-{name}",
                prefix="wh_test_",
                created_at=datetime.now(UTC),
            )
        )
        s.flush()
        return name

    return work


def _stored(store: Store) -> set[str]:
    with store.reading() as s:
        return set(s.scalars(select(ApiKeyRow.name)))


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in a thread of its own: what it returned or raised."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except BaseException as error:  # a KeyboardInterrupt too, in these tests
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    return results


@pytest.fixture
def store(producer: Producer) -> Store:
    return producer.context.store


def _held_leader(group: GroupCommit, followers: int) -> Callable[[Session], str]:
    """Work for the first call: holds its transaction open until ``followers``
    other calls are waiting, so that they form the next group together."""

    def work(s: Session) -> str:
        _wait_until(lambda: group.waiting == followers)
        return _key("leader")(s)

    return work


def test_calls_arriving_together_share_one_transaction(store: Store) -> None:
    group = GroupCommit(store.transaction)
    names = [f"k{i}" for i in range(8)]
    calls = [lambda: group.run(_held_leader(group, len(names)))]
    calls += [lambda n=n: group.run(_key(n)) for n in names]
    results = _in_threads(calls)
    assert results == ["leader", *names]
    assert _stored(store) == {"leader", *names}
    # The leader's group, then one group for all the calls that waited for it.
    assert group.groups == 2


def test_a_failing_call_rolls_back_its_own_writes_only(store: Store) -> None:
    group = GroupCommit(store.transaction)

    def fails(s: Session) -> str:
        _key("doomed")(s)
        raise ValueError("refused")

    calls = [
        lambda: group.run(_held_leader(group, 3)),
        lambda: group.run(_key("before")),
        lambda: group.run(fails),
        lambda: group.run(_key("after")),
    ]
    results = _in_threads(calls)
    assert results[0] == "leader" and results[1] == "before" and results[3] == "after"
    assert isinstance(results[2], ValueError) and str(results[2]) == "refused"
    assert _stored(store) == {"leader", "before", "after"}
    assert group.groups == 2


def test_a_constraint_violation_fails_that_call_and_not_the_group(store: Store) -> None:
    group = GroupCommit(store.transaction)
    results = _in_threads(
        [
            lambda: group.run(_held_leader(group, 3)),
            lambda: group.run(_key("same")),
            lambda: group.run(_key("same")),  # the same primary key
            lambda: group.run(_key("other")),
        ]
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1
    assert _stored(store) == {"leader", "same", "other"}


def test_when_the_commit_fails_every_caller_of_the_group_learns_it(store: Store) -> None:
    @contextmanager
    def failing_commit() -> Iterator[Session]:
        with store.transaction() as s:
            yield s
            raise OSError("disk gone")

    group = GroupCommit(failing_commit)
    results = _in_threads(
        [lambda: group.run(_held_leader(group, 2))]
        + [lambda n=n: group.run(_key(n)) for n in ("a", "b")]
    )
    assert all(isinstance(r, OSError) for r in results)
    assert _stored(store) == set()


def test_an_interrupted_group_fails_its_calls_instead_of_answering_none(store: Store) -> None:
    group = GroupCommit(store.transaction)

    def interrupted(s: Session) -> str:
        raise KeyboardInterrupt

    # Both calls wait behind the leader and make the second group together:
    # whichever thread leads it sees the interruption, the other call fails
    # with InterruptedGroup, and nothing of that group is kept.
    results = _in_threads(
        [
            lambda: group.run(_held_leader(group, 2)),
            lambda: group.run(interrupted),
            lambda: group.run(_key("lost")),
        ]
    )
    assert results[0] == "leader"
    assert sorted(type(r).__name__ for r in results[1:]) == [
        "InterruptedGroup",
        "KeyboardInterrupt",
    ]
    assert _stored(store) == {"leader"}
    # The next call leads a group of its own as usual.
    assert group.run(_key("next")) == "next"
    assert _stored(store) == {"leader", "next"}


def test_each_call_runs_in_its_callers_context(store: Store) -> None:
    caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller")
    group = GroupCommit(store.transaction)

    def seen_by(name: str) -> Callable[[], str]:
        def call() -> str:
            caller.set(name)
            return group.run(lambda s: caller.get())

        return call

    def leader() -> str:
        caller.set("leader")
        return group.run(lambda s: (_wait_until(lambda: group.waiting == 2), caller.get())[1])

    results = _in_threads([leader, seen_by("a"), seen_by("b")])
    assert results == ["leader", "a", "b"]


def test_after_commit_runs_once_per_committed_group(store: Store) -> None:
    commits: list[int] = []
    group = GroupCommit(store.transaction, after_commit=lambda: commits.append(1))
    assert group.run(_key("one")) == "one"
    with pytest.raises(ValueError):
        group.run(lambda s: (_ for _ in ()).throw(ValueError("no")))
    # A group whose only call failed still commits (nothing): the wake-up is harmless.
    assert len(commits) == 2


# -- through the producer (SQLite, where sends are grouped) ---------------------------


def test_concurrent_sends_are_all_stored_with_their_deliveries(tmp_path: Any) -> None:
    producer = Producer(f"sqlite:///{tmp_path / 'w.db'}", auto_migrate=True)
    try:
        group = producer.context.group_commit
        assert group is not None
        producer.create_endpoint("https://example.com/a")
        producer.create_endpoint("https://example.com/b")
        sends = [(lambda i=i: producer.send("invoice.paid", {"i": i}).id) for i in range(40)]
        ids = _in_threads(sends)
        assert all(isinstance(i, str) for i in ids) and len(set(ids)) == 40
        for message_id in ids:
            assert len(producer.list_deliveries(message_id=message_id).data) == 2
        assert group.groups <= 40
    finally:
        producer.close()


def test_concurrent_sends_with_one_idempotency_key_make_one_message(tmp_path: Any) -> None:
    producer = Producer(f"sqlite:///{tmp_path / 'w.db'}", auto_migrate=True)
    try:
        producer.create_endpoint("https://example.com/a")
        sends = [
            (lambda: producer.send("invoice.paid", {"n": 1}, idempotency_key="k-1").id)
            for _ in range(10)
        ]
        ids = _in_threads(sends)
        assert len(set(ids)) == 1
        with producer.context.store.reading() as s:
            from producer.models import DeliveryRow

            assert s.scalar(select(func.count()).select_from(DeliveryRow)) == 1
    finally:
        producer.close()


def test_a_refused_send_does_not_fail_the_sends_grouped_with_it(tmp_path: Any) -> None:
    producer = Producer(f"sqlite:///{tmp_path / 'w.db'}", auto_migrate=True)
    try:
        group = producer.context.group_commit
        assert group is not None
        producer.create_endpoint("https://example.com/a")
        good = [(lambda i=i: producer.send("invoice.paid", {"i": i}).id) for i in range(10)]
        bad = [lambda: producer.send("not a valid type!", {}).id]
        results = _in_threads(good[:5] + bad + good[5:])
        assert sum(isinstance(r, Exception) for r in results) == 1
        assert len(producer.list_messages().data) == 10
    finally:
        producer.close()


def test_postgresql_producers_use_a_transaction_per_send(postgres_url: str) -> None:
    producer = Producer(postgres_url)
    try:
        assert producer.context.group_commit is None
    finally:
        producer.close()
