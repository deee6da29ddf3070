"""Wake-ups across processes on one SQLite file.

PostgreSQL tells workers of new work with NOTIFY. SQLite has nothing alike,
so a worker in another process (``webhooks worker`` beside a web app that
sends) would find an event only at its next poll. The doorbell closes that
gap: each worker binds a Unix datagram socket in a directory that belongs to
the database file, and a sender, once its transaction has committed, sends
one byte to each socket there. Best effort, by design: a lost or refused
ring costs only the poll interval, which still runs.

The sockets live in ``<temp dir>/webhooks-wake-<uid>-<hash of the database
file's path>/``, made private to the user, and the directory goes when its
last worker stops, so nothing is left beside the database. Windows,
in-memory databases and temporary directories too deep for a socket path
(107 bytes on Linux) have no doorbell.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

__all__ = ["Doorbell", "doorbell_for"]

_MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107
"""The longest Unix socket path: 104 bytes on macOS, 108 on Linux, with the final NUL."""
_LISTING_TTL = 1.0
"""Seconds a sender trusts its list of listening workers before looking again."""
_SUFFIX = ".sock"


class Doorbell:
    """The wake-up sockets of the workers of one database file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._listing: list[str] = []
        self._listed_at = float("-inf")
        self._own: set[str] = set()
        self._sender: socket.socket | None = None

    # -- workers -------------------------------------------------------------------

    def listen(self) -> socket.socket:
        """A non-blocking socket that becomes readable when a sender rings;
        :meth:`close_listener` removes it."""
        path = str(self.directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{_SUFFIX}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            # Twice: the last worker of another process may remove the
            # directory between our making it and binding in it.
            for attempt in (1, 2):
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                try:
                    listener.bind(path)
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)
        with self._lock:
            self._own.add(path)
            self._listed_at = float("-inf")
        return listener

    def close_listener(self, listener: socket.socket) -> None:
        """Close a socket of :meth:`listen`, remove its file, and the
        directory when no other worker listens there."""
        path = listener.getsockname()
        listener.close()
        with self._lock:
            self._own.discard(path)
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # refused while another socket is there

    @staticmethod
    def drain(listener: socket.socket) -> int:
        """Read every ring waiting on ``listener``; how many there were."""
        count = 0
        while True:
            try:
                listener.recv(16)
            except (BlockingIOError, InterruptedError):
                return count
            count += 1

    # -- senders ---------------------------------------------------------------------

    def ring(self) -> int:
        """Wake the workers of other processes; how many sockets were rung.
        Never raises: a worker that is not there is one fewer to wake."""
        try:
            targets = self._targets()
        except OSError:
            return 0
        rung = 0
        for path in targets:
            try:
                self._socket().sendto(b"!", path)
                rung += 1
            except BlockingIOError:
                rung += 1  # its buffer is full of rings: it is awake already
            except ConnectionRefusedError:
                self._forget(path)
            except FileNotFoundError:
                self._listed_at = float("-inf")  # removed meanwhile: look again next time
            except OSError:
                continue
        return rung

    def _targets(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            if now - self._listed_at < _LISTING_TTL:
                return self._listing
        try:
            names = [
                str(self.directory / name)
                for name in os.listdir(self.directory)
                if name.endswith(_SUFFIX)
            ]
        except FileNotFoundError:
            names = []
        with self._lock:
            # This process's own workers were woken in-process already.
            self._listing = [p for p in names if p not in self._own]
            self._listed_at = now
            return self._listing

    def _forget(self, path: str) -> None:
        """Drop the socket of a worker that is gone: its process died without
        removing it, and nothing listens there any more (names are never reused)."""
        with contextlib.suppress(OSError):
            os.unlink(path)
        with self._lock:
            self._listing = [p for p in self._listing if p != path]

    def _socket(self) -> socket.socket:
        if self._sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
            self._sender = sender
        return self._sender

    def close(self) -> None:
        """Close the sending socket."""
        if self._sender is not None:
            self._sender.close()
            self._sender = None


def doorbell_for(database: str | None) -> Doorbell | None:
    """The doorbell of the SQLite file ``database``; None where there can be none."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    if not hasattr(socket, "AF_UNIX") or os.name == "nt":
        return None
    file = Path(database).expanduser().resolve()
    digest = hashlib.sha256(str(file).encode()).hexdigest()[:16]
    directory = Path(tempfile.gettempdir()) / f"webhooks-wake-{os.getuid()}-{digest}"
    # The longest name listen() makes: "<pid>-<8 hex>.sock" with a 7-digit pid.
    if len(str(directory)) + 1 + 7 + 1 + 8 + len(_SUFFIX) > _MAX_SOCKET_PATH:
        return None
    return Doorbell(directory)
