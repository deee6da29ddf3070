"""Endpoint secrets at rest: sealed with Fernet keys from the settings.

``WEBHOOKS_ENCRYPTION_KEYS`` holds one or more Fernet keys, comma-separated.
The first seals new values; all of them open existing ones, so a key is
rotated by putting a new one first, running ``webhooks secrets reencrypt``,
then dropping the old one. Sealed values are stored as ``enc:<token>``;
without keys, secrets are stored as they are (and the service warns).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from producer.errors import WebhooksError

__all__ = ["SecretBox", "generate_key"]

PREFIX = "enc:"


def generate_key() -> str:
    """A new random key for ``WEBHOOKS_ENCRYPTION_KEYS``."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Seals and opens stored secrets with the configured keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys]) if keys else None
        # Every attempt opens its endpoint's secret (and any sealed header or
        # credential), and a sealed value always opens to the same plain one:
        # the values opened last are kept rather than decrypted again (tens of
        # microseconds each). A worker holds them in its jobs anyway.
        self._opened = lru_cache(maxsize=1024)(self._decrypt)

    @property
    def enabled(self) -> bool:
        """Whether secrets are encrypted at rest."""
        return self._fernet is not None

    def seal(self, plain: str) -> str:
        """The form to store: encrypted with the first key (or as is, without keys)."""
        if self._fernet is None:
            return plain
        return PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def open(self, stored: str) -> str:
        """The plain secret of a stored value."""
        if not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise WebhooksError(
                "endpoint secrets are encrypted but WEBHOOKS_ENCRYPTION_KEYS is not set"
            )
        return self._opened(stored)

    def _decrypt(self, stored: str) -> str:
        assert self._fernet is not None
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise WebhooksError(
                "an endpoint secret cannot be decrypted with any key in WEBHOOKS_ENCRYPTION_KEYS"
            ) from None

    def reseal(self, stored: str) -> str:
        """Re-encrypt a stored value with the first key (for key rotation)."""
        return self.seal(self.open(stored))
