"""Endpoint secrets at rest: sealed with the configured keys, rotatable."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from producer import Producer, WebhooksError
from producer.cli import main
from producer.sealing import SecretBox, generate_key


def _stored_secret(producer: Producer, endpoint_id: str) -> str:
    with producer.engine.connect() as conn:
        return conn.execute(
            text("select secret from webhook_endpoints where id = :id"), {"id": endpoint_id}
        ).scalar_one()


def test_secrets_are_stored_encrypted_and_read_back_plain(database_url):
    producer = Producer(database_url, auto_migrate=True, encryption_keys=[generate_key()])
    endpoint = producer.create_endpoint("https://r.example/h")
    stored = _stored_secret(producer, endpoint.id)
    assert stored.startswith("enc:") and endpoint.secret not in stored
    assert producer.get_endpoint_secret(endpoint.id).secret == endpoint.secret


def test_deliveries_are_signed_with_the_plain_secret(database_url, receiver):
    producer = Producer(
        database_url,
        auto_migrate=True,
        encryption_keys=[generate_key()],
        allowed_cidrs=["127.0.0.0/8"],
    )
    endpoint = producer.create_endpoint(receiver.url("/h"))
    old = endpoint.secret
    new = producer.rotate_endpoint_secret(endpoint.id)
    assert producer.test_endpoint(endpoint.id).succeeded
    [request] = receiver.received()
    request.verify(old)
    request.verify(new)


def test_key_rotation_reencrypts_every_secret(database_url):
    old_key, new_key = generate_key(), generate_key()
    first = Producer(database_url, auto_migrate=True, encryption_keys=[old_key])
    endpoint = first.create_endpoint("https://r.example/h")
    first.rotate_endpoint_secret(endpoint.id)
    both = Producer(database_url, encryption_keys=[new_key, old_key])
    assert both.reencrypt_secrets() == 1
    only_new = Producer(database_url, encryption_keys=[new_key])
    assert only_new.get_endpoint_secret(endpoint.id).secret.startswith("whsec_")
    with only_new.store.transaction() as s:  # the previous secret opens too
        live = only_new.live_secrets(only_new.store.get_endpoint(s, endpoint.id))
    assert len(live) == 2 and all(secret.startswith("whsec_") for secret in live)


def test_encrypted_secrets_without_a_key_fail_clearly(database_url):
    producer = Producer(database_url, auto_migrate=True, encryption_keys=[generate_key()])
    endpoint = producer.create_endpoint("https://r.example/h")
    keyless = Producer(database_url)
    with pytest.raises(WebhooksError, match="WEBHOOKS_ENCRYPTION_KEYS is not set"):
        keyless.get_endpoint_secret(endpoint.id)
    wrong = Producer(database_url, encryption_keys=[generate_key()])
    with pytest.raises(WebhooksError, match="cannot be decrypted"):
        wrong.get_endpoint_secret(endpoint.id)


def test_a_malformed_key_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBHOOKS_ENCRYPTION_KEYS", "not-a-key")
    result = CliRunner().invoke(
        main, ["--database-url", f"sqlite:///{tmp_path / 'x.db'}", "endpoints", "list"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid setting WEBHOOKS_ENCRYPTION_KEYS")


def test_cli_generates_keys_and_reencrypts(tmp_path, monkeypatch):
    runner = CliRunner()
    key = runner.invoke(main, ["secrets", "generate-key"]).stdout.strip()
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Producer(url).create_endpoint("https://r.example/h")
    monkeypatch.setenv("WEBHOOKS_ENCRYPTION_KEYS", key)
    result = runner.invoke(main, ["--database-url", url, "secrets", "reencrypt"])
    assert result.exit_code == 0 and "1 endpoints" in result.stdout


def test_a_sealed_value_is_decrypted_once_however_often_it_is_opened():
    box = SecretBox([generate_key()])
    sealed = [box.seal(f"whsec_{n}") for n in range(3)]
    decrypted: list[bytes] = []
    fernet = box._fernet
    assert fernet is not None

    class Counting:
        def decrypt(self, token: bytes) -> bytes:
            decrypted.append(token)
            return fernet.decrypt(token)

    box._fernet = Counting()  # type: ignore[assignment]
    for _ in range(5):
        assert [box.open(s) for s in sealed] == ["whsec_0", "whsec_1", "whsec_2"]
    assert len(decrypted) == 3
    # A value no key opens fails every time it is opened: failures are not kept.
    foreign = SecretBox([generate_key()]).seal("whsec_other")
    for _ in range(2):
        with pytest.raises(WebhooksError, match="cannot be decrypted"):
            box.open(foreign)
    assert len(decrypted) == 5
