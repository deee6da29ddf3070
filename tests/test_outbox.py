"""The outbox: send() inside the caller's own SQLAlchemy transaction."""

import asyncio

import pytest
from sqlalchemy import Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class HostBase(DeclarativeBase):
    pass


class Order(HostBase):
    __tablename__ = "shop_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(32))


@pytest.fixture
def host_tables(producer):
    HostBase.metadata.create_all(producer.engine)
    return producer


def test_event_exists_when_the_business_change_commits(host_tables):
    producer = host_tables
    producer.create_endpoint("https://r.example/h", tenant="acme")
    with Session(producer.engine) as session, session.begin():
        session.add(Order(id=1, sku="book"))
        message = producer.send("order.created", {"order": 1}, tenant="acme", session=session)
    assert producer.get_message(message.id).event_type == "order.created"
    assert len(producer.list_deliveries(message_id=message.id).data) == 1


def test_no_event_exists_when_the_business_change_rolls_back(host_tables):
    producer = host_tables
    producer.create_endpoint("https://r.example/h", tenant="acme")
    with Session(producer.engine) as session:
        session.begin()
        session.add(Order(id=1, sku="book"))
        producer.send("order.created", {"order": 1}, tenant="acme", session=session)
        session.rollback()
    with Session(producer.engine) as session:
        assert session.scalars(select(Order)).all() == []
    assert producer.list_messages().data == []
    assert producer.list_deliveries().data == []


def test_wake_up_fires_only_after_the_callers_commit(host_tables):
    producer = host_tables
    woken: list[int] = []
    producer.on_send(lambda: woken.append(1))
    with Session(producer.engine) as session, session.begin():
        producer.send("order.created", {}, session=session)
        assert woken == []
    assert woken == [1]


def test_idempotency_race_inside_the_callers_transaction_keeps_it_usable(host_tables):
    producer = host_tables
    first = producer.send("a.b", {"x": 1}, idempotency_key="k")
    with Session(producer.engine) as session, session.begin():
        again = producer.send("a.b", {"x": 1}, idempotency_key="k", session=session)
        session.add(Order(id=2, sku="pen"))
    assert again.id == first.id
    with Session(producer.engine) as session:
        assert session.get(Order, 2) is not None


def test_async_send_inside_an_async_session_is_rolled_back_with_it(host_tables, database_url):
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    producer = host_tables
    if database_url.startswith("sqlite"):
        pytest.importorskip("aiosqlite", reason="aiosqlite is needed for an async SQLite session")
        async_url = database_url.replace("sqlite://", "sqlite+aiosqlite://", 1)
    else:
        async_url = database_url.replace("postgresql+psycopg://", "postgresql+psycopg_async://", 1)

    async def scenario() -> tuple[str, str]:
        engine = create_async_engine(async_url)
        async with AsyncSession(engine) as session:
            await session.begin()
            kept = await producer.asend("order.created", {"n": 1}, session=session)
            await session.commit()
        async with AsyncSession(engine) as session:
            await session.begin()
            dropped = await producer.asend("order.created", {"n": 2}, session=session)
            await session.rollback()
        await engine.dispose()
        return kept.id, dropped.id

    kept_id, dropped_id = asyncio.run(scenario())
    ids = {m.id for m in producer.list_messages().data}
    assert kept_id in ids and dropped_id not in ids


def test_async_send_without_a_session_commits_on_its_own(producer):
    message = asyncio.run(producer.asend("a.b", {"x": 1}))
    assert producer.get_message(message.id).id == message.id


def test_closing_the_producer_leaves_a_shared_engine_to_its_owner(database_url):
    from producer import Producer

    engine = create_engine(database_url)
    pool = engine.pool
    Producer(engine=engine).close()
    # dispose() would have replaced the pool, closing the host's idle connections.
    assert engine.pool is pool
    engine.dispose()
