"""The doorbell: a send on SQLite wakes the workers of other processes at
once, instead of at their next poll (what NOTIFY does on PostgreSQL)."""

from __future__ import annotations

import signal
import socket
import tempfile
import time
from pathlib import Path

import pytest

from producer import Producer
from producer.doorbell import Doorbell, doorbell_for
from tests.helpers.processes import start_worker
from tests.helpers.producers import LOOPBACK
from tests.helpers.receiver import Receiver
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")


def _sockets(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.sock")) if directory.exists() else []


def test_a_ring_from_another_process_wakes_a_listener(tmp_path: Path) -> None:
    worker_side, sender_side = Doorbell(tmp_path / "bell"), Doorbell(tmp_path / "bell")
    listener = worker_side.listen()
    try:
        assert sender_side.ring() == 1
        assert sender_side.ring() == 1
        assert Doorbell.drain(listener) == 2
        assert Doorbell.drain(listener) == 0
    finally:
        worker_side.close_listener(listener)
        sender_side.close()
    assert _sockets(tmp_path / "bell") == []


def test_a_process_does_not_ring_its_own_workers(tmp_path: Path) -> None:
    """They were woken in-process already."""
    bell = Doorbell(tmp_path / "bell")
    listener = bell.listen()
    try:
        assert bell.ring() == 0
        assert Doorbell.drain(listener) == 0
    finally:
        bell.close_listener(listener)


def test_ringing_with_no_worker_listening_does_nothing(tmp_path: Path) -> None:
    assert Doorbell(tmp_path / "never-made").ring() == 0
    (tmp_path / "empty").mkdir()
    assert Doorbell(tmp_path / "empty").ring() == 0


def test_the_socket_of_a_dead_worker_is_removed_by_the_next_ring(tmp_path: Path) -> None:
    directory = tmp_path / "bell"
    directory.mkdir()
    stale = directory / "4242-deadbeef.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()  # the file stays, as after a kill -9
    assert stale.exists()
    assert Doorbell(directory).ring() == 0
    assert not stale.exists()


def test_a_full_buffer_counts_as_rung(tmp_path: Path) -> None:
    worker_side, sender_side = Doorbell(tmp_path / "bell"), Doorbell(tmp_path / "bell")
    listener = worker_side.listen()
    try:
        # Far more rings than a socket buffer holds: none raises.
        assert all(sender_side.ring() == 1 for _ in range(5000))
        assert Doorbell.drain(listener) > 0
    finally:
        worker_side.close_listener(listener)
        sender_side.close()


def test_each_database_file_has_its_own_doorbell_under_the_temp_dir(tmp_path: Path) -> None:
    bell, again = doorbell_for(str(tmp_path / "webhooks.db")), doorbell_for("webhooks.db")
    other = doorbell_for(str(tmp_path / "other.db"))
    assert bell is not None and again is not None and other is not None
    assert bell.directory.parent == Path(tempfile.gettempdir())
    assert bell.directory.name.startswith("webhooks-wake-")
    # The same file always gets the same doorbell, another file another one.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert doorbell_for("webhooks.db").directory == bell.directory  # type: ignore[union-attr]
    assert bell.directory != other.directory
    assert again.directory != bell.directory  # webhooks.db in another folder


def test_the_last_worker_to_stop_removes_the_directory(tmp_path: Path) -> None:
    bell = doorbell_for(str(tmp_path / "webhooks.db"))
    assert bell is not None
    first, second = bell.listen(), bell.listen()
    bell.close_listener(first)
    assert len(_sockets(bell.directory)) == 1
    bell.close_listener(second)
    assert not bell.directory.exists()
    # And a worker starting afterwards makes it again.
    third = bell.listen()
    assert len(_sockets(bell.directory)) == 1
    bell.close_listener(third)


def test_a_temp_dir_too_deep_for_a_socket_path_means_no_doorbell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    assert doorbell_for(str(tmp_path / "webhooks.db")) is None


@pytest.mark.parametrize("database", [None, "", ":memory:"])
def test_no_doorbell_without_a_database_file(database: str | None) -> None:
    assert doorbell_for(database) is None


def test_postgresql_has_none_it_has_notify(postgres_url: str) -> None:
    producer = Producer(postgres_url)
    try:
        assert producer.context.doorbell is None
    finally:
        producer.close()


@pytest.mark.slow
def test_a_send_wakes_an_idle_worker_of_another_process(tmp_path: Path, receiver: Receiver) -> None:
    database = f"sqlite:///{tmp_path / 'webhooks.db'}"
    producer = Producer(database, **LOOPBACK)
    producer.create_endpoint(receiver.url("/hooks"))
    bell = doorbell_for(str(tmp_path / "webhooks.db"))
    assert bell is not None
    directory = bell.directory
    # Polls once a minute: only the doorbell can make it deliver sooner.
    worker = start_worker(database, worker_poll_interval="60")
    try:
        wait_until(lambda: len(_sockets(directory)) == 1, timeout=30, what="worker listening")
        time.sleep(0.5)  # past its first claim, idle until a ring or the next poll
        started = time.monotonic()
        for i in range(3):
            producer.send("invoice.paid", {"i": i})
            receiver.wait_for(i + 1, timeout=30)
        assert time.monotonic() - started < 20, "delivered at a poll, not at the ring"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        producer.close()
        # The worker's stop removed its socket, and with it the directory.
        assert not directory.exists()
