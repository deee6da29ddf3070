"""Running the service: the API and/or the worker, with signal handling."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from producer.producer import Producer

__all__ = ["run_worker_process", "serve_forever"]

log = logging.getLogger("producer.service")


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


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
    delivery worker in the same event loop."""
    import uvicorn

    from api import create_app

    app = create_app(producer)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
    stop = asyncio.Event()
    # uvicorn installs its own SIGTERM/SIGINT handlers while it serves; when it
    # returns, the worker is told to stop.
    worker_task = asyncio.create_task(producer.run_worker(stop=stop)) if worker else None
    try:
        await server.serve()
    finally:
        stop.set()
        if worker_task is not None:
            await worker_task
