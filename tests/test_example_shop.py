"""examples/shop.py run as a process: an order and its webhook share one transaction."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from producer import Delivery, Producer
from tests.helpers import processes
from tests.helpers.processes import running_on_a_free_port
from tests.helpers.receiver import Receiver
from tests.helpers.waiting import wait_for_value

pytestmark = pytest.mark.slow

SHOP = Path(__file__).resolve().parents[1] / "examples" / "shop.py"


@dataclass
class Shop:
    """The running shop, a receiver for its webhooks, and a producer on its database."""

    base_url: str
    process: subprocess.Popen[str]
    receiver: Receiver
    hooks: Producer

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.base_url + path, json=body)

    def register(self, customer: str) -> dict[str, Any]:
        """Register the receiver as ``customer``'s endpoint; returns its id and secret."""
        response = self.post(
            "/webhooks/endpoints", {"customer": customer, "url": self.receiver.url("/hooks")}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def orders(self) -> list[tuple[Any, ...]]:
        """The shop's order rows, read straight from its database."""
        with self.hooks.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, customer, sku, quantity, total FROM orders"))
            return [tuple(row) for row in rows]

    def all_delivered(self) -> list[Delivery]:
        """Wait until every delivery succeeded; returns them."""
        return wait_for_value(
            lambda: self.hooks.list_deliveries().data,
            lambda deliveries: (
                bool(deliveries) and all(d.status == "succeeded" for d in deliveries)
            ),
        )


@contextmanager
def running_shop(database_url: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """examples/shop.py on ``database_url``: its process and base URL, once
    its interactive docs answer (not just any answer: another test's server
    could have taken the port first, which means another port)."""

    def args_for(port: int) -> list[str]:
        options = ["--port", str(port), "--allow-local", "--database-url", database_url]
        return [sys.executable, str(SHOP), *options]

    with running_on_a_free_port(args_for, ready_path="/docs", ready_text="swagger") as started:
        yield started


@pytest.fixture
def shop(database_url: str, receiver: Receiver) -> Iterator[Shop]:
    """examples/shop.py running on the test's database, and a receiver for its webhooks."""
    with running_shop(database_url) as (process, base_url):
        hooks = Producer(database_url)
        try:
            yield Shop(base_url, process, receiver, hooks)
        finally:
            hooks.close()


def test_a_placed_order_is_stored_and_announced_by_one_signed_webhook(shop: Shop) -> None:
    endpoint = shop.register("acme")

    response = shop.post("/orders", {"customer": "acme", "sku": "book", "quantity": 2})

    assert response.status_code == 201, response.text
    order = response.json()
    shop.all_delivered()
    [request] = shop.receiver.received()
    request.verify(endpoint["secret"])
    event = json.loads(request.body)
    assert (event["id"], event["type"]) == (order["message_id"], "order.created")
    assert event["data"] == {
        "order_id": order["order_id"],
        "customer": "acme",
        "sku": "book",
        "quantity": 2,
        "total": 2400,
    }
    assert shop.orders() == [(order["order_id"], "acme", "book", 2, 2400)]


def test_an_order_the_stock_cannot_cover_leaves_no_order_and_no_webhook(shop: Shop) -> None:
    shop.register("acme")

    refused = shop.post("/orders", {"customer": "acme", "sku": "lamp", "quantity": 3})

    assert refused.status_code == 409
    assert refused.json()["detail"]["code"] == "out_of_stock"
    assert shop.orders() == []
    assert shop.hooks.list_messages().data == []
    # The order behind it is delivered; had the refused one left an event, it
    # would have been delivered too, and first.
    placed = shop.post("/orders", {"customer": "acme", "sku": "lamp", "quantity": 2})
    assert placed.status_code == 201, placed.text
    shop.all_delivered()
    [request] = shop.receiver.received()
    assert json.loads(request.body)["id"] == placed.json()["message_id"]
    assert [m.id for m in shop.hooks.list_messages().data] == [placed.json()["message_id"]]


def test_the_shop_stops_cleanly_on_ctrl_c(shop: Shop) -> None:
    shop.process.send_signal(signal.SIGINT)

    assert shop.process.wait(15) == 0


def test_a_port_taken_before_the_shop_binds_it_means_another_port(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeps the fixture above from failing when another test process
    takes the port it picked: the shop cannot bind, and starts on another."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        picks = iter([taken_port])
        real = processes.free_port
        monkeypatch.setattr(processes, "free_port", lambda: next(picks, None) or real())

        with running_shop(database_url) as (_process, base_url):
            assert base_url != f"http://127.0.0.1:{taken_port}"
            assert httpx.get(base_url + "/docs").status_code == 200
