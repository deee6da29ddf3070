"""Settings of the producers under test, passed as ``Producer(url, **SETTINGS)``."""

from __future__ import annotations

from typing import Any

LOOPBACK: dict[str, Any] = {"allowed_cidrs": ["127.0.0.0/8"], "auto_migrate": True}
"""A producer that may deliver to the local test receiver."""

FAST: dict[str, Any] = {
    **LOOPBACK,
    "worker_poll_interval": 0.05,
    "lease_seconds": 30,
    "shutdown_grace_seconds": 1,
}
"""As :data:`LOOPBACK`, with a worker that wakes often and stops quickly."""
