"""Many worker processes on one PostgreSQL database.

These run only on PostgreSQL: SKIP LOCKED claims, LISTEN/NOTIFY wake-ups,
endpoint caps and rate limits that hold across workers, and a database
restart in the middle of a run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter

import pytest

from producer import Producer
from tests.helpers.postgres import PrivateCluster
from tests.helpers.processes import start_worker
from tests.helpers.producers import LOOPBACK
from tests.helpers.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def pg(postgres_url: str):
    """A producer on the PostgreSQL database the workers share."""
    producer = Producer(postgres_url, **LOOPBACK)
    yield producer
    producer.close()


class Workers:
    """Worker processes, stopped (SIGTERM) when the test ends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int, **settings: str) -> None:
        self.procs += [start_worker(self.url, **settings) for _ in range(count)]

    def stop(self) -> list[int | None]:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        return [proc.wait(30) for proc in self.procs]


@pytest.fixture
def workers(postgres_url: str):
    w = Workers(postgres_url)
    yield w
    w.stop()


def _all_succeeded(producer: Producer) -> bool:
    return not any(
        producer.list_deliveries(status=status, limit=1).data
        for status in ("pending", "sending", "failed")
    )


def test_four_workers_deliver_every_delivery_exactly_once(pg, workers, receiver):
    for path in ("/a", "/b"):
        pg.create_endpoint(receiver.url(path))
    sent = []
    for start in range(0, 5000, 1000):
        sent += pg.send_many([("a.b", {"i": i}) for i in range(start, start + 1000)])
    workers.start(4, lease_seconds="60", request_timeout="15")
    receiver.wait_for(10_000, timeout=240)
    wait_until(lambda: _all_succeeded(pg), timeout=60, what="all succeeded")
    assert workers.stop() == [0, 0, 0, 0]
    received = receiver.received()
    counts = Counter((r.path, r.webhook_id) for r in received)
    assert len(received) == 10_000
    assert set(counts.values()) == {1}
    assert {m for _, m in counts} == {m.id for m in sent}


def test_fifo_endpoint_keeps_creation_order_with_four_workers(pg, workers, receiver):
    pg.create_endpoint(receiver.slow("/fifo", 0.005), ordering="fifo")
    sent = [m.id for m in pg.send_many([("a.b", {"i": i}) for i in range(150)])]
    workers.start(4)
    got = receiver.wait_for(150, timeout=120)
    assert [r.webhook_id for r in got] == sent


def test_in_flight_cap_holds_across_workers(pg, workers, receiver):
    pg.create_endpoint(receiver.slow("/capped", 0.1), max_in_flight=3)
    pg.send_many([("a.b", {"i": i}) for i in range(90)])
    workers.start(4)
    receiver.wait_for(90, timeout=120)
    assert receiver.max_concurrent["/capped"] <= 3


def test_rate_limit_holds_across_workers(pg, workers, receiver):
    rate = 20
    pg.create_endpoint(receiver.url("/limited"), rate_limit_per_second=rate)
    pg.send_many([("a.b", {"i": i}) for i in range(100)])
    workers.start(4)
    got = receiver.wait_for(100, timeout=120)
    times = [r.at for r in got]
    elapsed = times[-1] - times[0]
    assert 99 / elapsed <= rate * 1.2
    # No three-second window above the limit + 20 % either (a window, since
    # the receiver's own clock readings clump when the machine is busy).
    for i, start in enumerate(times):
        in_window = sum(1 for t in times[i:] if t - start < 3.0)
        assert in_window <= rate * 3 * 1.2 + 1


def test_notify_wakes_an_idle_worker_of_another_process(pg, workers, receiver):
    pg.create_endpoint(receiver.url("/hooks"))
    workers.start(1, worker_poll_interval="60")
    time.sleep(2)  # let it start, reclaim, find nothing and go idle
    started = time.monotonic()
    pg.send("a.b", {})
    receiver.wait_for(1, timeout=10)
    assert time.monotonic() - started < 5


@pytest.fixture
def own_server():
    """A PostgreSQL server only this test uses, migrated, so restarting it
    disturbs no other test (they may run in parallel)."""
    if not PrivateCluster.available():
        if os.environ.get("CI"):
            pytest.fail("CI must run the restart test: Debian's pg_createcluster is missing")
        pytest.skip("no Debian PostgreSQL tools (pg_createcluster) to make a server of its own")
    cluster = PrivateCluster()
    try:
        yield cluster
    finally:
        cluster.close()


def test_workers_survive_a_database_restart_mid_run(own_server, receiver):
    pg = Producer(own_server.url, **LOOPBACK)
    workers = Workers(own_server.url)
    try:
        pg.create_endpoint(receiver.slow("/hooks", 0.002))
        sent = pg.send_many([("a.b", {"i": i}) for i in range(3000)])
        workers.start(2, lease_seconds="30", request_timeout="5")
        receiver.wait_for(300, timeout=60)
        own_server.restart()
        assert len(receiver.received()) < 3000, "the run ended before the restart"
        receiver.wait_for(3000, timeout=240)
        wait_until(lambda: _all_succeeded(pg), timeout=120, what="all succeeded")
        codes = workers.stop()
        received = Counter(r.webhook_id for r in receiver.received())
        assert set(received) == {m.id for m in sent}
        assert codes == [0, 0]
    finally:
        workers.stop()
        pg.close()
