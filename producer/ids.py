"""Prefixed, time-sortable identifiers (``ep_01J...``), built on ULIDs.

Identifiers made in one process are strictly increasing, even within one
millisecond, so ordering by id is ordering by creation for FIFO endpoints.
"""

from __future__ import annotations

import secrets
import threading
import time

from ulid import ULID

__all__ = ["new_id"]

_lock = threading.Lock()
_last_ms = 0
_last_random = 0
_RANDOM_BITS = 80


def new_id(prefix: str) -> str:
    """Return a new id such as ``msg_01JD3X...`` (prefix, underscore, 26-char ULID)."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            # Same (or an earlier, after a clock step) millisecond: keep the
            # previous timestamp and bump the random part to stay monotonic.
            now_ms = _last_ms
            _last_random += 1 + secrets.randbits(16)
            if _last_random >= 1 << _RANDOM_BITS:
                now_ms += 1
                _last_random = secrets.randbits(_RANDOM_BITS - 1)
        else:
            _last_random = secrets.randbits(_RANDOM_BITS - 1)
        _last_ms = now_ms
        value = (now_ms << _RANDOM_BITS) | _last_random
    return f"{prefix}_{ULID.from_int(value)}"
