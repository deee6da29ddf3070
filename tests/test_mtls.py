"""Mutual TLS: an endpoint's client certificate, against a real HTTPS receiver
on 127.0.0.1 that requires one; certificates made by ``trustme``.

The receiver is reached by a name (``receiver.example``, answered by a fake
resolver): the connection goes to the checked address while the TLS server
name and the certificate check keep the name.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import replace

import pytest
import trustme
from click.testing import CliRunner
from sqlalchemy import text

from producer import Producer, ValidationError
from producer.cli import main
from producer.sealing import generate_key
from tests.helpers.api import Api, assert_error, create_endpoint
from tests.helpers.proxy import TlsReceiver, server_context
from tests.helpers.resolvers import FakeResolver

NAME = "receiver.example"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(ca: trustme.CA) -> Iterator[TlsReceiver]:
    """An HTTPS receiver for ``receiver.example`` that requires a client
    certificate issued by ``ca``."""
    with TlsReceiver(server_context(ca, NAME, ssl.CERT_REQUIRED)) as receiver:
        yield receiver


@pytest.fixture
def sealed(make_producer) -> Producer:
    """A producer sealing secrets, resolving ``receiver.example`` to 127.0.0.1."""
    producer = make_producer(encryption_keys=[generate_key()])
    producer.destinations = replace(
        producer.destinations, resolver=FakeResolver({NAME: ["127.0.0.1"]})
    )
    return producer


def client_tls(ca: trustme.CA, name: str = "client.example") -> dict[str, str]:
    """A ``tls`` object with a fresh client certificate of ``ca``."""
    cert = ca.issue_cert(name)
    return {
        "client_cert_pem": cert.cert_chain_pems[0].bytes().decode(),
        "client_key_pem": cert.private_key_pem.bytes().decode(),
        "ca_pem": ca.cert_pem.bytes().decode(),
    }


def test_the_client_certificate_is_presented(sealed, tls_receiver, ca):
    endpoint = sealed.create_endpoint(tls_receiver.url(NAME, "/hook"), tls=client_tls(ca))

    result = sealed.test_endpoint(endpoint.id)

    assert result.succeeded, result.error
    [seen] = tls_receiver.seen
    assert seen.path == "/hook"
    assert seen.server_name == NAME
    assert seen.client_subject is not None


def test_a_certificate_of_another_ca_is_refused_by_the_receiver(sealed, tls_receiver, ca):
    tls = client_tls(ca)
    # The receiver is trusted (its CA), the certificate is not (another CA).
    foreign = {**client_tls(trustme.CA()), "ca_pem": tls["ca_pem"]}
    endpoint = sealed.create_endpoint(tls_receiver.url(NAME), tls=foreign)
    result = sealed.test_endpoint(endpoint.id)
    assert not result.succeeded
    assert result.error is not None and result.error.startswith("connection_error"), result.error
    assert tls_receiver.seen == []
    # The same endpoint with a certificate of the receiver's CA goes through.
    sealed.update_endpoint(endpoint.id, tls=tls)
    assert sealed.test_endpoint(endpoint.id).succeeded


def test_an_unknown_receiver_certificate_is_refused(sealed, tls_receiver, ca):
    other = client_tls(trustme.CA())
    tls = {**client_tls(ca), "ca_pem": other["ca_pem"]}
    endpoint = sealed.create_endpoint(tls_receiver.url(NAME), tls=tls)
    result = sealed.test_endpoint(endpoint.id)
    assert not result.succeeded
    assert "CERTIFICATE_VERIFY_FAILED" in (result.error or ""), result.error


def test_rotation_takes_effect_on_the_next_attempt(sealed, tls_receiver, ca):
    first, second = client_tls(ca, "first.example"), client_tls(ca, "second.example")
    endpoint = sealed.create_endpoint(tls_receiver.url(NAME), tls=first)
    assert sealed.test_endpoint(endpoint.id).succeeded
    before = sealed.get_endpoint(endpoint.id).tls

    updated = sealed.update_endpoint(endpoint.id, tls=second)

    assert sealed.test_endpoint(endpoint.id).succeeded
    fingerprints = {
        before["client_certificate"]["fingerprint_sha256"],
        updated.tls["client_certificate"]["fingerprint_sha256"],
    }
    assert len(fingerprints) == 2
    assert len(tls_receiver.seen) == 2


def test_the_key_is_sealed_at_rest_and_never_read_back(sealed, ca):
    tls = client_tls(ca)
    endpoint = sealed.create_endpoint("https://receiver.example/hook", tls=tls)

    with sealed.context.engine.connect() as connection:
        raw = connection.execute(
            text("SELECT tls FROM webhook_endpoints WHERE id = :id"), {"id": endpoint.id}
        ).scalar_one()
    raw = str(raw)
    assert "PRIVATE KEY" not in raw and "enc:" in raw
    shown = sealed.get_endpoint(endpoint.id).tls
    assert set(shown) == {"client_certificate", "ca"} and shown["ca"] is True
    assert shown["client_certificate"]["not_after"]
    assert "PRIVATE KEY" not in repr(endpoint) + repr(sealed.list_endpoints().data)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"client_cert_pem": "not a certificate"}, "tls.client_cert_pem"),
        (
            {"client_key_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
            "tls.client_key_pem",
        ),
        ({"ca_pem": "nope"}, "tls.ca_pem"),
        ({"extra": "x"}, "tls.extra"),
    ],
)
def test_bad_pem_is_a_field_error(sealed, ca, change, field):
    tls = {**client_tls(ca), **change}
    with pytest.raises(ValidationError) as caught:
        sealed.create_endpoint("https://receiver.example/", tls=tls)
    assert caught.value.details[0]["field"] == field


def test_a_key_of_another_certificate_is_refused(sealed, ca):
    tls = {**client_tls(ca), "client_key_pem": client_tls(ca)["client_key_pem"]}
    with pytest.raises(ValidationError, match="does not match"):
        sealed.create_endpoint("https://receiver.example/", tls=tls)


def test_the_api_takes_tls_and_never_echoes_the_key(sealed, ca):
    api = Api(sealed)
    tls = client_tls(ca)
    created = create_endpoint(api.admin, "https://receiver.example/", tls=tls)
    assert "PRIVATE KEY" not in str(created) and "BEGIN CERTIFICATE" not in str(created)
    assert created["tls"]["client_certificate"]["fingerprint_sha256"]
    got = api.admin.get(f"/v1/endpoints/{created['id']}").json()
    assert got["tls"] == created["tls"]
    bad = api.admin.patch(
        f"/v1/endpoints/{created['id']}", json={"tls": {**tls, "client_key_pem": "x"}}
    )
    assert_error(bad, 422, "validation_error", field="body.tls.client_key_pem")
    # Nothing stored is lost by a refused update.
    assert api.admin.get(f"/v1/endpoints/{created['id']}").json()["tls"] == created["tls"]
    cleared = api.admin.patch(f"/v1/endpoints/{created['id']}", json={"tls": None}).json()
    assert cleared["tls"] is None


def test_the_cli_reads_pem_files(database_url, tmp_path, ca):
    runner = CliRunner()
    tls = client_tls(ca)
    files = {}
    for name, pem in tls.items():
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_text(pem)
    args = ["--database-url", database_url]
    runner.invoke(main, [*args, "db", "upgrade"], catch_exceptions=False)
    added = runner.invoke(
        main,
        [
            *args,
            "endpoints",
            "add",
            "https://r.example/h",
            "--tls-cert",
            str(files["client_cert_pem"]),
            "--tls-key",
            str(files["client_key_pem"]),
            "--tls-ca",
            str(files["ca_pem"]),
            "--json",
        ],
        catch_exceptions=False,
    )
    assert added.exit_code == 0, added.output
    assert "PRIVATE KEY" not in added.output
    assert json.loads(added.output)["tls"]["client_certificate"]["fingerprint_sha256"]
    lone_key = runner.invoke(
        main,
        [*args, "endpoints", "add", "https://r.example/h", "--tls-key", str(files["ca_pem"])],
    )
    assert lone_key.exit_code != 0 and "tls.client_cert_pem" in lone_key.output
