"""GET /api/v1/openapi.json is valid OpenAPI 3.1 and describes every route."""

from __future__ import annotations

import re

from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from tests.api.api_harness import Api


async def test_openapi_document_is_valid_openapi_3_1(api: Api) -> None:
    reply = await api.client.get("/api/v1/openapi.json")
    assert reply.status_code == 200
    document = reply.json()
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)


async def test_openapi_document_lists_every_route_and_method(api: Api) -> None:
    document = (await api.client.get("/api/v1/openapi.json")).json()
    described = {
        (method.upper(), re.sub(r"\{\w+\}", "{id}", path))
        for path, item in document["paths"].items()
        for method in item
    }
    served = set()
    for rule in api_rules(api):
        path = re.sub(r"<(?:\w+:)?(\w+)>", "{id}", rule[1])
        for method in rule[0]:
            served.add((method, path))
    assert served == described


def api_rules(api: Api) -> list[tuple[set[str], str]]:
    return [
        (set(rule.methods or ()) - {"HEAD", "OPTIONS"}, rule.rule)
        for rule in api.app.url_map.iter_rules()
        # Quart's own static route, and the web client's page and files (not the API).
        if rule.endpoint != "static" and not rule.endpoint.startswith("webclient.")
    ]


async def test_every_operation_documents_its_errors(api: Api) -> None:
    document = (await api.client.get("/api/v1/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "500" in responses, (method, path)
            if operation["security"]:
                assert "401" in responses, (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= responses.keys(), (method, path)
