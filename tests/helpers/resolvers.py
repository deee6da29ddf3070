"""Resolvers for tests: no test resolves an outside host name.

- :func:`offline_resolver`: what every producer made in a test resolves with
  (``tests/conftest.py`` installs it in place of the system resolver):
  ``localhost`` through the system resolver (this machine's hosts file), an
  IP literal as itself, and any other name does not resolve, as on a machine
  without DNS.
- :class:`FakeResolver`: chosen answers for chosen names, changeable during a
  test (a name that moves), recording what it was asked.
"""

from __future__ import annotations

import asyncio
import socket
import time

from producer.destinations import ip_literal, system_resolver

_SYSTEM = system_resolver
"""The real resolver, kept before conftest replaces the module's name."""


def _unknown(host: str) -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, f"{host} is not known to the test resolver")


async def offline_resolver(host: str, port: int) -> list[str]:
    """``localhost`` as the system resolves it, IP literals as themselves;
    any other name raises ``socket.gaierror``."""
    if host.lower().rstrip(".") == "localhost":
        return await _SYSTEM(host, port)
    literal = ip_literal(host)
    if literal is not None:
        return [str(literal)]
    raise _unknown(host)


class FakeResolver:
    """Answers ``answers[name]``; a name it does not know does not resolve.

    ``asked`` lists the names looked up, in order. ``hang`` names hosts whose
    lookup waits until :meth:`release` is called (then does not resolve), or
    answers after ``HANG_SECONDS``: a caller that does not give up in time
    gets the answer, and its test fails rather than hangs.
    """

    HANG_SECONDS = 10.0

    def __init__(self, answers: dict[str, list[str]], *, hang: tuple[str, ...] = ()) -> None:
        self.answers = dict(answers)
        self.hang = hang
        self.asked: list[str] = []
        self._released = False

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host in self.hang:
            deadline = time.monotonic() + self.HANG_SECONDS
            while not self._released and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if self._released:
                raise _unknown(host)
        if host not in self.answers:
            raise _unknown(host)
        return list(self.answers[host])

    def release(self) -> None:
        """Let every hanging lookup end (as not resolving)."""
        self._released = True
