"""A small shop that announces each order with an ``order.created`` webhook.

The order and its event are written in one database transaction (the outbox
pattern): a customer hears of an order if and only if it was stored. Start
the shop; ``--allow-local`` lets it deliver to a receiver on this machine:

    python examples/shop.py --port 8001 --allow-local [--database-url URL]

Register a customer's endpoint, then run a receiver with the secret it answers:

    curl -s 127.0.0.1:8001/webhooks/endpoints -H 'content-type: application/json' \\
        -d '{"customer": "acme", "url": "http://127.0.0.1:9000/hooks"}'
    webhooks listen --port 9000 --secret whsec_...

Place an order: its webhook arrives. Then order more lamps than the two in
stock: the shop answers 409, and no order and no webhook exist.

    curl -s 127.0.0.1:8001/orders -H 'content-type: application/json' \\
        -d '{"customer": "acme", "sku": "book", "quantity": 1}'
    curl -s 127.0.0.1:8001/orders -H 'content-type: application/json' \\
        -d '{"customer": "acme", "sku": "lamp", "quantity": 3}'

The database is WEBHOOKS_DATABASE_URL, else sqlite:///./shop.db; a PostgreSQL
URL (postgresql://user@host/db) works too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import CheckConstraint, ForeignKey, String, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from producer import ConflictError, Producer, ValidationError

CATALOGUE = {"book": (1200, 100), "lamp": (4500, 2)}  # sku: (price in cents, stock)

ORDER_CREATED = {
    "type": "object",
    "required": ["order_id", "customer", "sku", "quantity", "total"],
    "properties": {
        "order_id": {"type": "integer"},
        "customer": {"type": "string"},
        "sku": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 1},
        "total": {"type": "integer", "minimum": 0},
    },
}


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"
    # The database refuses to oversell: of two orders racing for the last
    # lamp, only one can pass this check.
    __table_args__ = (CheckConstraint("stock >= 0", name="stock_not_negative"),)
    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    price: Mapped[int]
    stock: Mapped[int]


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    quantity: Mapped[int]
    total: Mapped[int]


class NewEndpoint(BaseModel):
    customer: str  # a real shop takes the customer from its login, not the body
    url: str


class NewOrder(BaseModel):
    customer: str
    sku: str
    quantity: int = Field(gt=0)


def set_up(hooks: Producer) -> None:
    """Create the shop's tables and catalogue and register the event type;
    safe to run at every start."""
    Base.metadata.create_all(hooks.engine)  # a real shop runs its own migrations
    with Session(hooks.engine) as session, session.begin():
        for sku, (price, stock) in CATALOGUE.items():
            if session.get(Product, sku) is None:
                session.add(Product(sku=sku, price=price, stock=stock))
    try:
        hooks.create_event_type("order.created", schemas={"1": ORDER_CREATED})
    except ConflictError:  # registered by an earlier start: keep its schema in step
        hooks.update_event_type("order.created", schemas={"1": ORDER_CREATED})


def create_app(hooks: Producer) -> FastAPI:
    """The shop's API; its tables live in the database of ``hooks``."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Each commit that sent an event wakes this worker. On Ctrl-C uvicorn
        # ends the lifespan, and the worker finishes what is in flight first.
        stop = asyncio.Event()
        worker = asyncio.create_task(hooks.run_worker(stop=stop))
        yield
        stop.set()
        await worker

    app = FastAPI(title="shop", lifespan=lifespan)

    @app.post("/webhooks/endpoints", status_code=201)
    def register_endpoint(body: NewEndpoint) -> dict[str, Any]:
        try:
            endpoint = hooks.create_endpoint(body.url, tenant=body.customer)
        except ValidationError as exc:
            raise HTTPException(422, {"code": exc.code, "message": exc.message}) from exc
        return {"id": endpoint.id, "secret": endpoint.secret}

    @app.post("/orders", status_code=201)
    def place_order(body: NewOrder) -> dict[str, Any]:
        with Session(hooks.engine) as session, session.begin():
            product = session.get(Product, body.sku)
            if product is None:
                raise HTTPException(404, {"code": "unknown_product", "message": body.sku})
            order = Order(**body.model_dump(), total=product.price * body.quantity)
            session.add(order)
            session.flush()  # the event carries the order's id
            data = {"order_id": order.id, **body.model_dump(), "total": order.total}
            message = hooks.send("order.created", data, tenant=order.customer, session=session)
            # A step after send() may still fail, like this one: the rollback
            # then takes the event back with the order, so no customer ever
            # hears of an order that does not exist.
            try:
                session.execute(
                    update(Product)
                    .where(Product.sku == order.sku)
                    .values(stock=Product.stock - order.quantity)
                )
            except IntegrityError as exc:
                error = {"code": "out_of_stock", "message": f"not enough {order.sku} in stock"}
                raise HTTPException(409, error) from exc
        return {**data, "message_id": message.id}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="A shop that sends order.created webhooks.")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("WEBHOOKS_DATABASE_URL", "sqlite:///./shop.db"),
        help="SQLite or PostgreSQL URL (default: WEBHOOKS_DATABASE_URL, else ./shop.db)",
    )
    parser.add_argument(
        "--allow-local", action="store_true", help="deliver to receivers on this machine"
    )
    args = parser.parse_args()
    # The destination guard refuses loopback and private addresses unless told
    # otherwise, so that a customer's URL cannot reach into the shop's network.
    local = {"allowed_cidrs": ["127.0.0.0/8", "::1/128"]} if args.allow_local else {}
    hooks = Producer(args.database_url, **local)
    # SQLite migrates itself; PostgreSQL waits to be told (a deployment would
    # run `webhooks db upgrade` instead).
    hooks.migrate()
    # The shop's tables share the producer's engine: the outbox needs orders
    # and events in one transaction, and on SQLite that engine is set up for
    # the worker and the requests writing at once.
    set_up(hooks)
    try:
        uvicorn.run(create_app(hooks), host="127.0.0.1", port=args.port)
    finally:
        hooks.close()


if __name__ == "__main__":
    main()
