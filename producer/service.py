"""Running the service: the API and/or the worker, with signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from producer.producer import Producer

__all__ = ["run_worker_process", "serve_forever", "serve_metrics"]

log = logging.getLogger("producer.service")


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def serve_metrics(producer: Producer, host: str, port: int) -> None:
    """Serve the process's Prometheus metrics at ``http://host:port/metrics``
    from a daemon thread, for processes that serve no API."""
    from prometheus_client import start_http_server

    from producer.metrics import Metrics

    metrics = Metrics(producer)
    metrics.start()
    start_http_server(port, addr=host, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", host, port)


async def run_worker_process(producer: Producer) -> None:
    """Deliver until SIGTERM/SIGINT, then stop claiming and finish or release
    in-flight work within the grace period."""
    stop = asyncio.Event()
    _stop_on_signals(stop)
    log.info("worker started on %s", producer.engine.url.render_as_string(hide_password=True))
    await producer.run_worker(stop=stop)
    log.info("worker stopped")


async def serve_forever(producer: Producer, *, host: str, port: int, worker: bool = True) -> None:
    """Serve the API with uvicorn and, unless ``worker`` is False, run a
    delivery worker in the same event loop. SIGTERM/SIGINT stop both
    gracefully, and the process then exits normally."""
    import uvicorn

    from api import create_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # The signals are handled below, for the API and the worker
            # together; uvicorn's own handling would re-raise the signal after
            # its shutdown and kill the process before the worker finished.
            yield

    # log_config=None: uvicorn's loggers go through the process's own
    # handlers (text or JSON lines, see producer.logs) instead of its own.
    config = uvicorn.Config(app=create_app(producer), host=host, port=port, log_config=None)
    server = Server(config)
    stop = asyncio.Event()

    def shut_down() -> None:
        server.should_exit = True
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shut_down)
    worker_task = asyncio.create_task(producer.run_worker(stop=stop)) if worker else None
    try:
        await server.serve()
    finally:
        stop.set()
        if worker_task is not None:
            await worker_task
