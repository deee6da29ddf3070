"""Running the service: the API and/or the worker, with signal handling, on
the producer of the configuration or of the host application (``--app``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import importlib
import inspect
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from producer.errors import WebhooksError

if TYPE_CHECKING:
    from producer.producer import Producer

__all__ = [
    "LOOPBACK_CIDRS",
    "load_producer",
    "open_loopback",
    "run_worker_process",
    "serve_forever",
    "serve_metrics",
    "settle_heap",
]

log = logging.getLogger("producer.service")

LOOPBACK_CIDRS = ("127.0.0.0/8", "::1/128")
"""This machine's addresses, which ``webhooks serve --dev`` lets deliveries reach."""


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def load_producer(path: str) -> Producer:
    """The host application's producer, named by ``path`` as ``module:attribute``
    (as uvicorn and Celery name an app): a configured ``Producer``, or a
    function taking no arguments that returns one, called once.

    The module is imported with its converters, hooks and callbacks; the
    current directory is searched after the installed packages. A path that
    does not name a producer raises ``WebhooksError``.
    """
    from producer.producer import Producer

    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise WebhooksError(f"--app {path!r}: expected module:attribute, e.g. myapp.hooks:producer")
    if os.getcwd() not in sys.path:
        # After the installed packages, so that a local directory cannot
        # shadow a package this one imports (its API is the package ``api``).
        sys.path.append(os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise WebhooksError(f"--app {path}: cannot import {module_name}: {exc}") from None
    for name in attribute.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise WebhooksError(f"--app {path}: {module_name} has no attribute {name!r}") from None
    if isinstance(found, Producer):
        return found
    if callable(found) and not isinstance(found, type):
        if not _takes_no_arguments(found):
            raise WebhooksError(f"--app {path}: a factory must take no arguments")
        made = found()
        if isinstance(made, Producer):
            return made
        raise WebhooksError(
            f"--app {path}: the factory returned {_kind(made)}, not a producer.Producer"
        )
    raise WebhooksError(
        f"--app {path} is {_kind(found)}, not a producer.Producer or a function returning one"
    )


def _takes_no_arguments(func: Callable[..., Any]) -> bool:
    try:
        inspect.signature(func).bind()
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): calling it will tell
        pass
    return True


def _kind(value: object) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    return f"a {type(value).__name__}"


def open_loopback(producer: Producer) -> None:
    """Let ``producer`` deliver to this machine (:data:`LOOPBACK_CIDRS`), on top
    of the ranges it already allows: the development switch of ``serve``.

    Only this process's producer changes; its settings and the database do not.
    """
    policy = producer.destinations
    extra = tuple(
        network
        for network in (ipaddress.ip_network(cidr) for cidr in LOOPBACK_CIDRS)
        if network not in policy.allowed
    )
    producer.destinations = dataclasses.replace(policy, allowed=policy.allowed + extra)


def serve_metrics(producer: Producer, host: str, port: int) -> None:
    """Serve the process's Prometheus metrics at ``http://host:port/metrics``
    from a daemon thread, for processes that serve no API."""
    from prometheus_client import start_http_server

    from producer.metrics import Metrics

    metrics = Metrics(producer)
    metrics.start()
    start_http_server(port, addr=host, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", host, port)


def settle_heap() -> None:
    """Take what start-up made out of the garbage collector's sight, once the
    process is ready to work: its modules, classes, app and pools (some
    140,000 objects) live as long as the process, yet a full collection
    walks them all every time: 120-150 ms on a slow 2-core machine, and
    sending and delivering bring one every few thousand events.
    Frozen, a full collection walks only what was made since (about 6 ms).

    Garbage is collected first, so nothing frozen is already dead; what
    start-up made and later drops in a reference cycle is never freed, a
    bounded cost paid once. The service's processes call it; a host that
    embeds the library decides for its own process (``gc.freeze``).
    """
    gc.collect()
    gc.freeze()


async def run_worker_process(producer: Producer) -> None:
    """Deliver until SIGTERM/SIGINT, then stop claiming and finish or release
    in-flight work within the grace period."""
    stop = asyncio.Event()
    _stop_on_signals(stop)
    log.info("worker started on %s", producer.engine.url.render_as_string(hide_password=True))
    settle_heap()
    await producer.run_worker(stop=stop)
    log.info("worker stopped")


async def serve_forever(
    producer: Producer,
    sock: socket.socket,
    *,
    worker: bool = True,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve the API with uvicorn on ``sock`` (bound and listening: a port in
    use is then known before anything starts) and, unless ``worker`` is
    False, run a delivery worker in the same event loop. ``on_started`` is
    called once the API answers. SIGTERM/SIGINT stop both gracefully, and the
    process then exits normally."""
    stop = asyncio.Event()

    def shut_down() -> None:
        server.should_exit = True
        stop.set()

    # Handled from the start, so that Ctrl-C while the app is imported and
    # built (which takes a moment) also stops gracefully; the handler runs at
    # the loop's next turn, once ``server`` exists.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shut_down)

    import uvicorn

    from api import create_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # The signals are handled above, for the API and the worker
            # together; uvicorn's own handling would re-raise the signal after
            # its shutdown and kill the process before the worker finished.
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            # Not when asked to stop meanwhile: it would announce a service
            # that is already going away.
            if self.started and not self.should_exit:
                settle_heap()
                if on_started is not None:
                    on_started()

    # log_config=None: uvicorn's loggers go through the process's own
    # handlers (text or JSON lines, see producer.logs) instead of its own.
    config = uvicorn.Config(app=create_app(producer), log_config=None)
    server = Server(config)
    worker_task = asyncio.create_task(producer.run_worker(stop=stop)) if worker else None
    try:
        await server.serve(sockets=[sock])
    finally:
        stop.set()
        if worker_task is not None:
            await worker_task
