"""Real processes for tests that run a program as a user would.

- :func:`free_port`: a port on 127.0.0.1 that nothing listens on right now.
- :func:`webhooks_service`: ``webhooks serve`` on a database, yielding its base
  URL and the admin key it printed.
- :func:`serving`: ``webhooks serve`` with any options and environment,
  yielding a :class:`Serving` (base URL, banner, admin key, its stderr).
- :func:`read_banner`: the start-up banner ``webhooks serve`` prints.
- :func:`start_worker`: a ``webhooks worker`` process on a database.
- :func:`running`: any command (an example program) until the block ends,
  once an HTTP URL it serves answers; :func:`running_on_a_free_port` picks
  the port and picks again when another process took it first.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO

import httpx

from tests.helpers.waiting import wait_for_value


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_http(
    url: str, proc: subprocess.Popen[str], timeout: float, ready_text: str | None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise ProcessExited(f"{proc.args} exited with {proc.returncode}:\n{output}")
        try:
            answer = httpx.get(url, timeout=2)
            if ready_text is None or ready_text in answer.text:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{proc.args} did not answer on {url}")
        time.sleep(0.1)


class ProcessExited(AssertionError):
    """The program ended before it answered; its output is in the message."""


@contextmanager
def running(
    args: list[str],
    *,
    ready_url: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    ready_text: str | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """Run ``args`` until the block ends, once ``ready_url`` answers any HTTP
    status (with ``ready_text`` in its body, if given: the answer is then
    known to come from this program, not from another test's server that took
    the port meanwhile).

    The process gets SIGINT at the end (as Ctrl-C would), then SIGKILL if it
    has not stopped within 15 s. Its stdout and stderr go to one pipe, read
    only when it fails to start, so keep what it prints short.
    """
    proc = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_http(ready_url, proc, timeout, ready_text)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


BANNER_END = ("Admin key", "API keys")
"""The labels of the last line of ``webhooks serve``'s banner."""


def read_banner(stdout: IO[str]) -> list[str]:
    """The lines of the banner ``webhooks serve`` prints once it answers, read
    from its stdout up to the line with the admin key (or the one saying that
    keys exist)."""
    lines: list[str] = []
    while not lines or not lines[-1].strip().startswith(BANNER_END):
        line = stdout.readline()
        if not line:
            raise AssertionError("webhooks serve ended before its banner:\n" + "".join(lines))
        lines.append(line.rstrip("\n"))
    return lines


@dataclass
class Serving:
    """A running ``webhooks serve``."""

    base: str
    """``http://127.0.0.1:<port>``, from the banner's API line."""
    banner: list[str]
    key: str | None
    """The admin key the banner showed; None when keys existed."""
    process: subprocess.Popen[str]
    _stderr: IO[bytes]

    def stderr(self) -> str:
        """What the process has logged so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode()


@contextmanager
def serving(
    database_url: str, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[Serving]:
    """``webhooks serve --port 0 *args`` on ``database_url``, from its banner
    on until the block ends; then SIGTERM, and it must exit with status 0.

    ``env`` is added to this process's environment, without its
    ``WEBHOOKS_ALLOWED_CIDRS``: destinations are as the options make them.
    """
    environ = {k: v for k, v in os.environ.items() if k != "WEBHOOKS_ALLOWED_CIDRS"}
    environ.update({"WEBHOOKS_DATABASE_URL": database_url, **(env or {})})
    command = [sys.executable, "-m", "producer.cli", "serve", "--port", "0", *args]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            command, env=environ, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            assert proc.stdout is not None
            banner = read_banner(proc.stdout)
            api = next(line for line in banner if line.strip().startswith("API "))
            base = re.search(r"(http://\S+)/v1", api).group(1)  # type: ignore[union-attr]
            key = re.search(r"whk_\S+", "\n".join(banner))
            yield Serving(base, banner, key.group(0) if key else None, proc, stderr)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@contextmanager
def webhooks_service(
    database_url: str, *, extra_env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """``webhooks serve`` on ``database_url``, allowed to deliver to 127.0.0.1.

    Yields ``(base_url, admin_key)``; stops the service with SIGTERM and checks
    that it exits cleanly.
    """
    env = {
        "WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8",  # receivers run on this machine
        "WEBHOOKS_WORKER_POLL_INTERVAL": "0.1",
        **(extra_env or {}),
    }
    with serving(database_url, env=env) as service:
        assert service.key is not None, service.banner
        wait_for_value(_health(service.base), lambda status: status == 200)
        yield service.base, service.key


def start_worker(database_url: str, **settings: str) -> subprocess.Popen[bytes]:
    """A ``webhooks worker`` process, allowed to deliver to 127.0.0.1.

    Leases last 2 s without a heartbeat, so that a killed worker's deliveries
    come back soon. Requests time out after 5 s: a test receiver sharing its
    process with the test answers late under load, and an early timeout would
    only add retries. ``settings`` become ``WEBHOOKS_*`` variables and
    override these. Its output is discarded.
    """
    env = {
        **os.environ,
        "WEBHOOKS_DATABASE_URL": database_url,
        "WEBHOOKS_LEASE_SECONDS": "2",
        "WEBHOOKS_REQUEST_TIMEOUT": "5",
        "WEBHOOKS_WORKER_POLL_INTERVAL": "0.1",
        "WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8",
        **{f"WEBHOOKS_{k.upper()}": v for k, v in settings.items()},
    }
    return subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _health(base: str) -> Callable[[], int | None]:
    def fetch() -> int | None:
        try:
            return httpx.get(base + "/v1/health").status_code
        except httpx.TransportError:
            return None

    return fetch


@contextmanager
def running_on_a_free_port(
    args_for: Callable[[int], list[str]], *, ready_path: str, ready_text: str, tries: int = 3
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """:func:`running` for a program told its port by ``args_for(port)``; yields
    the process and its base URL. A port taken between :func:`free_port` and
    the program's bind (by another test process) means another port."""
    for attempt in range(tries):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        with ExitStack() as stack:
            try:
                process = stack.enter_context(
                    running(args_for(port), ready_url=base_url + ready_path, ready_text=ready_text)
                )
            except ProcessExited as exited:
                if "address already in use" not in str(exited).lower() or attempt == tries - 1:
                    raise
                continue
            yield process, base_url
            return
