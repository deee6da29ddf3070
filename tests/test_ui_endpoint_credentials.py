"""The endpoint form's "Receiver authentication and network" section through
FastAPI's test client, on SQLite and PostgreSQL: proxy, login and client
certificate set from the form, secrets never written back into a page, kept
when left blank, removed on request, errors beside their fields, and the
endpoint page's summary of what is stored.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
import trustme
from fastapi.testclient import TestClient

from api.ui.credentials_form import KEEP_PROXY, KEEP_SECRET
from producer import Producer, credentials
from producer.models import EndpointRow
from producer.sealing import generate_key
from tests.helpers.ui import open_portal

URL = "http://127.0.0.1:9/hooks"
PASSWORD = "correct-horse-battery"
PROXY_PASSWORD = "proxy-pass-42"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def producer(make_producer: Any) -> Producer:
    """A producer sealing secrets at rest."""
    return make_producer(encryption_keys=[generate_key()])


@pytest.fixture
def manager(producer: Producer, client: TestClient) -> tuple[TestClient, str]:
    """The client in a portal session of acme that may manage, and its CSRF token."""
    admin_key = producer.create_api_key(name="admin")[1]
    return client, open_portal(client, admin_key, "acme", capabilities=["manage"])


def pems(ca: trustme.CA) -> dict[str, str]:
    """A client certificate of ``ca``, its key and ``ca`` itself, as form fields."""
    cert = ca.issue_cert("client.example")
    return {
        "tls_client_cert_pem": cert.cert_chain_pems[0].bytes().decode(),
        "tls_client_key_pem": cert.private_key_pem.bytes().decode(),
        "tls_ca_pem": ca.cert_pem.bytes().decode(),
    }


def stored(producer: Producer, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's credentials as the worker opens them (secrets included)."""
    with producer.context.store.reading() as s:
        row = s.get(EndpointRow, endpoint_id)
        assert row is not None
        fields = {"proxy_url": row.proxy_url, "auth": row.auth, "tls": row.tls}
    credentials.open_credentials(fields, producer.context.secret_box.open)
    return fields


def errors_of(html: str) -> dict[str, str]:
    found = re.findall(r'class="field-error" id="error-([^"]+)">([^<]*)<', html)
    return {name: unescape(text) for name, text in found}


def create(client: TestClient, csrf: str, **fields: str) -> Any:
    return client.post("/ui/endpoints/new", data={"csrf": csrf, "url": URL, **fields})


def the_endpoint(producer: Producer) -> str:
    [endpoint] = producer.list_endpoints(tenant="acme").data
    return endpoint.id


def edit(client: TestClient, csrf: str, endpoint_id: str, **changes: str) -> Any:
    """Post the edit form as the page fills it, with ``changes``."""
    page = client.get(f"/ui/endpoints/{endpoint_id}/edit").text
    form = {"csrf": csrf, "url": URL, "ordering": "unordered", "event_types": "*"}
    for name in ("proxy_url", "auth_username", "auth_token_url", "auth_client_id", "auth_scope"):
        value = re.search(rf'name="{name}"[^>]* value="([^"]*)"', page)
        form[name] = unescape(value.group(1)) if value else ""
    for name in ("auth_type", "auth_client_auth"):
        selected = re.search(rf'name="{name}"[^>]*>.*?<option value="([^"]*)" selected', page, re.S)
        form[name] = selected.group(1) if selected else ""
    return client.post(f"/ui/endpoints/{endpoint_id}/edit", data={**form, **changes})


# -- the login -------------------------------------------------------------------------------


def test_a_basic_login_is_stored_and_never_written_back(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    created = create(client, csrf, auth_type="basic", auth_username="hooks", auth_password=PASSWORD)
    assert created.status_code == 201 and PASSWORD not in created.text
    endpoint_id = the_endpoint(producer)
    assert stored(producer, endpoint_id)["auth"] == {
        "type": "basic",
        "username": "hooks",
        "password": PASSWORD,
    }
    form = client.get(f"/ui/endpoints/{endpoint_id}/edit").text
    assert PASSWORD not in form and 'value="hooks"' in form
    assert '<option value="basic" selected>' in form
    page = client.get(f"/ui/endpoints/{endpoint_id}").text
    assert PASSWORD not in page
    assert re.search(r'id="auth">basic · username <code>hooks</code>', page)


def test_an_edit_leaving_the_secret_blank_keeps_it(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    create(client, csrf, auth_type="basic", auth_username="hooks", auth_password=PASSWORD)
    endpoint_id = the_endpoint(producer)
    response = edit(client, csrf, endpoint_id, description="renamed")
    assert response.status_code == 200, errors_of(response.text)
    assert producer.get_endpoint(endpoint_id).description == "renamed"
    assert stored(producer, endpoint_id)["auth"]["password"] == PASSWORD


def test_changing_the_username_needs_the_password_again(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    create(client, csrf, auth_type="basic", auth_username="hooks", auth_password=PASSWORD)
    endpoint_id = the_endpoint(producer)
    refused = edit(client, csrf, endpoint_id, auth_username="other")
    assert refused.status_code == 422
    assert errors_of(refused.text) == {"auth_password": KEEP_SECRET}
    assert re.search(r'<details id="receiver-auth" class="credentials"\s+open', refused.text)
    assert stored(producer, endpoint_id)["auth"]["username"] == "hooks"

    edit(client, csrf, endpoint_id, auth_username="other", auth_password="new-password")
    assert stored(producer, endpoint_id)["auth"] == {
        "type": "basic",
        "username": "other",
        "password": "new-password",
    }


def test_choosing_none_removes_the_login(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    create(client, csrf, auth_type="bearer", auth_token="tok-123")
    endpoint_id = the_endpoint(producer)
    assert producer.get_endpoint(endpoint_id).auth == {"type": "bearer"}
    edit(client, csrf, endpoint_id, auth_type="")
    assert producer.get_endpoint(endpoint_id).auth is None


def test_a_refused_form_shows_errors_beside_fields_and_no_secret(
    manager: tuple[TestClient, str],
) -> None:
    client, csrf = manager
    response = create(
        client,
        csrf,
        auth_type="oauth2_client_credentials",
        auth_token_url="http://127.0.0.1:9/token",
        auth_client_id="",
        auth_client_secret="oauth-secret-9",
    )
    assert response.status_code == 422
    errors = errors_of(response.text)
    assert errors["auth_client_id"].startswith("must be a non-empty string")
    assert "oauth-secret-9" not in response.text
    assert 'value="http://127.0.0.1:9/token"' in response.text  # not secret: kept as typed


def test_an_oauth2_login_shows_its_non_secret_fields(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    created = create(
        client,
        csrf,
        auth_type="oauth2_client_credentials",
        auth_token_url="http://127.0.0.1:9/token",
        auth_client_id="shop",
        auth_client_secret="oauth-secret-9",
        auth_scope="hooks:write",
        auth_client_auth="body",
    )
    assert created.status_code == 201, errors_of(created.text)
    endpoint_id = the_endpoint(producer)
    assert edit(client, csrf, endpoint_id).status_code == 200  # unchanged: kept
    assert stored(producer, endpoint_id)["auth"]["client_secret"] == "oauth-secret-9"
    page = client.get(f"/ui/endpoints/{endpoint_id}").text
    assert "client id <code>shop</code>" in page and "oauth-secret-9" not in page


# -- the client certificate ------------------------------------------------------------------


def test_a_client_certificate_shows_its_fingerprint_never_its_key(
    producer: Producer, manager: tuple[TestClient, str], ca: trustme.CA
) -> None:
    client, csrf = manager
    tls = pems(ca)
    assert create(client, csrf, **tls).status_code == 201
    endpoint_id = the_endpoint(producer)
    summary = producer.get_endpoint(endpoint_id).tls
    assert summary is not None
    page = client.get(f"/ui/endpoints/{endpoint_id}").text
    assert summary["client_certificate"]["fingerprint_sha256"] in page
    assert "own CA trusted" in page and "PRIVATE KEY" not in page
    form = client.get(f"/ui/endpoints/{endpoint_id}/edit").text
    assert "PRIVATE KEY" not in form and "BEGIN CERTIFICATE" not in form

    edit(client, csrf, endpoint_id, description="kept")
    assert stored(producer, endpoint_id)["tls"]["client_key_pem"] == tls["tls_client_key_pem"]


def test_a_key_of_another_certificate_is_an_error_beside_the_key(
    producer: Producer, manager: tuple[TestClient, str], ca: trustme.CA
) -> None:
    client, csrf = manager
    other = pems(ca)["tls_client_key_pem"]
    response = create(client, csrf, **{**pems(ca), "tls_client_key_pem": other})
    assert response.status_code == 422
    assert errors_of(response.text) == {"tls_client_key_pem": "does not match the certificate"}
    assert other not in response.text
    assert producer.list_endpoints().data == []


def test_the_certificate_is_removed_when_asked(
    producer: Producer, manager: tuple[TestClient, str], ca: trustme.CA
) -> None:
    client, csrf = manager
    create(client, csrf, **pems(ca))
    endpoint_id = the_endpoint(producer)
    assert 'name="tls_remove"' in client.get(f"/ui/endpoints/{endpoint_id}/edit").text
    edit(client, csrf, endpoint_id, tls_remove="on")
    assert producer.get_endpoint(endpoint_id).tls is None


# -- the proxy --------------------------------------------------------------------------------


def test_the_proxy_password_is_masked_kept_and_needed_to_change_the_address(
    producer: Producer, manager: tuple[TestClient, str]
) -> None:
    client, csrf = manager
    create(client, csrf, proxy_url=f"http://egress:{PROXY_PASSWORD}@127.0.0.1:3128")
    endpoint_id = the_endpoint(producer)
    page = client.get(f"/ui/endpoints/{endpoint_id}").text
    assert "http://egress:***@127.0.0.1:3128" in page and PROXY_PASSWORD not in page
    assert PROXY_PASSWORD not in client.get(f"/ui/endpoints/{endpoint_id}/edit").text

    assert edit(client, csrf, endpoint_id).status_code == 200
    assert PROXY_PASSWORD in stored(producer, endpoint_id)["proxy_url"]
    refused = edit(client, csrf, endpoint_id, proxy_url="http://egress:***@127.0.0.1:3129")
    assert errors_of(refused.text) == {"proxy_url": KEEP_PROXY}
    edit(client, csrf, endpoint_id, proxy_url="")
    assert producer.get_endpoint(endpoint_id).proxy_url is None


def test_a_proxy_with_a_path_is_an_error_beside_it(manager: tuple[TestClient, str]) -> None:
    client, csrf = manager
    response = create(client, csrf, proxy_url="http://127.0.0.1:3128/path")
    assert errors_of(response.text) == {"proxy_url": "must not have a path, query or fragment"}


# -- who may ------------------------------------------------------------------------------------


def test_a_session_without_manage_cannot_set_credentials(
    producer: Producer, client: TestClient
) -> None:
    endpoint = producer.create_endpoint(URL, tenant="acme")
    admin_key = producer.create_api_key(name="admin")[1]
    csrf = open_portal(client, admin_key, "acme", capabilities=["operate"])
    response = client.post(
        f"/ui/endpoints/{endpoint.id}/edit",
        data={"csrf": csrf, "url": URL, "auth_type": "bearer", "auth_token": "t"},
    )
    assert response.status_code == 403 and "manage" in response.text
    assert producer.get_endpoint(endpoint.id).auth is None
