"""``webhooks secrets``: signing secrets, and their encryption at rest."""

from __future__ import annotations

import click

from producer.cli.common import fail, one_line_errors, open_producer, progress


@click.group()
def secrets() -> None:
    """Signing secrets, and their encryption at rest."""


@secrets.command("generate")
@click.option(
    "--scheme", default="v1", show_default=True, type=click.Choice(["v1", "v1a", "t-v1-hex"])
)
def secrets_generate(scheme: str) -> None:
    """Print a new endpoint signing secret (``whsec_``; ``whsk_`` for v1a), e.g.
    for ``endpoints add --secret`` and ``listen --secret``."""
    from producer.signing import generate_secret

    click.echo(generate_secret(scheme))


@secrets.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new key for WEBHOOKS_ENCRYPTION_KEYS."""
    from producer.sealing import generate_key

    click.echo(generate_key())


@secrets.command("reencrypt")
@click.pass_context
@one_line_errors
def secrets_reencrypt(ctx: click.Context) -> None:
    """Re-seal every endpoint secret with the first key of WEBHOOKS_ENCRYPTION_KEYS."""
    producer = open_producer(ctx)
    if not producer.secret_box.enabled:
        fail("WEBHOOKS_ENCRYPTION_KEYS is not set: nothing to encrypt with")
    with progress("re-encrypting endpoints") as advance:
        count = producer.reencrypt_secrets(progress=advance)
    click.echo(f"re-encrypted the secrets of {count} endpoints")
