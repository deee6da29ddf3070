"""REST API: /v1/event-types — a global catalogue, changed with admin keys only."""

from __future__ import annotations

from tests.helpers.api import TIMESTAMP, Api, assert_error

SCHEMA = {
    "type": "object",
    "properties": {"invoice": {"type": "string"}},
    "required": ["invoice"],
}


def create(api: Api, name: str = "invoice.paid", **fields: object) -> dict:
    response = api.admin.post("/v1/event-types", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_201_with_the_event_type(api):
    body = create(
        api, description="Paid.", schemas={"1": SCHEMA}, examples={"1": {"invoice": "in_1"}}
    )
    assert {k: body[k] for k in ("name", "description", "schemas", "examples", "archived")} == {
        "name": "invoice.paid",
        "description": "Paid.",
        "schemas": {"1": SCHEMA},
        "examples": {"1": {"invoice": "in_1"}},
        "archived": False,
    }
    assert TIMESTAMP.match(body["created_at"]) and TIMESTAMP.match(body["updated_at"])


def test_create_with_a_bad_name_is_422_naming_it(api):
    response = api.admin.post("/v1/event-types", json={"name": "not a name"})
    assert_error(response, 422, "validation_error", field="body.name")


def test_create_with_an_invalid_schema_is_422(api):
    response = api.admin.post(
        "/v1/event-types", json={"name": "a.b", "schemas": {"1": {"type": "nonsense"}}}
    )
    assert_error(response, 422, "validation_error")


def test_create_with_an_example_not_matching_its_schema_is_422(api):
    response = api.admin.post(
        "/v1/event-types",
        json={"name": "a.b", "schemas": {"1": SCHEMA}, "examples": {"1": {"other": 1}}},
    )
    assert_error(response, 422, "schema_validation_error")


def test_create_an_existing_type_is_409(api):
    create(api)
    response = api.admin.post("/v1/event-types", json={"name": "invoice.paid"})
    assert_error(response, 409, "conflict")


def test_create_needs_an_admin_key(api):
    response = api.tenant("acme").post("/v1/event-types", json={"name": "a.b"})
    assert_error(response, 403, "forbidden")


def test_get_returns_the_event_type(api):
    created = create(api)
    response = api.admin.get("/v1/event-types/invoice.paid")
    assert response.status_code == 200 and response.json() == created


def test_tenant_keys_may_read_event_types(api):
    create(api)
    tenant = api.tenant("acme")
    assert tenant.get("/v1/event-types/invoice.paid").status_code == 200
    assert [t["name"] for t in tenant.get("/v1/event-types").json()["data"]] == ["invoice.paid"]


def test_get_unknown_event_type_is_404(api):
    assert_error(api.admin.get("/v1/event-types/nope.nope"), 404, "not_found")


def test_list_is_in_name_order_and_paginates_with_a_cursor(api):
    for name in ("c.c", "a.a", "b.b"):
        create(api, name)
    first = api.admin.get("/v1/event-types", params={"limit": 2}).json()
    assert [t["name"] for t in first["data"]] == ["a.a", "b.b"]
    second = api.admin.get(
        "/v1/event-types", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [t["name"] for t in second["data"]] == ["c.c"] and second["next_cursor"] is None


def test_list_leaves_out_archived_types_unless_asked(api):
    create(api, "a.a")
    create(api, "b.b")
    api.admin.delete("/v1/event-types/a.a")
    live = api.admin.get("/v1/event-types").json()["data"]
    assert [t["name"] for t in live] == ["b.b"]
    every = api.admin.get("/v1/event-types", params={"include_archived": True}).json()["data"]
    assert [(t["name"], t["archived"]) for t in every] == [("a.a", True), ("b.b", False)]


def test_list_rejects_a_bad_limit(api):
    response = api.admin.get("/v1/event-types", params={"limit": 0})
    assert_error(response, 422, "validation_error", field="query.limit")


def test_patch_changes_only_the_fields_sent(api):
    create(api, description="old", schemas={"1": SCHEMA})
    response = api.admin.patch("/v1/event-types/invoice.paid", json={"description": "new"})
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "new" and body["schemas"] == {"1": SCHEMA}


def test_patch_with_an_unknown_field_is_422_naming_it(api):
    create(api)
    response = api.admin.patch("/v1/event-types/invoice.paid", json={"name": "other.name"})
    assert_error(response, 422, "validation_error", field="body.name")


def test_patch_unknown_event_type_is_404(api):
    response = api.admin.patch("/v1/event-types/nope.nope", json={"description": "x"})
    assert_error(response, 404, "not_found")


def test_patch_needs_an_admin_key(api):
    create(api)
    response = api.tenant("acme").patch("/v1/event-types/invoice.paid", json={"description": "x"})
    assert_error(response, 403, "forbidden")


def test_delete_archives_the_event_type(api):
    create(api)
    response = api.admin.delete("/v1/event-types/invoice.paid")
    assert response.status_code == 204 and response.content == b""
    assert api.admin.get("/v1/event-types/invoice.paid").json()["archived"] is True


def test_an_archived_type_can_no_longer_be_sent(api):
    create(api)
    api.admin.delete("/v1/event-types/invoice.paid")
    response = api.admin.post("/v1/messages", json={"event_type": "invoice.paid", "data": {}})
    assert_error(response, 422, "validation_error", field="body.event_type")


def test_delete_unknown_event_type_is_404(api):
    assert_error(api.admin.delete("/v1/event-types/nope.nope"), 404, "not_found")


def test_delete_needs_an_admin_key(api):
    create(api)
    assert_error(api.tenant("acme").delete("/v1/event-types/invoice.paid"), 403, "forbidden")
