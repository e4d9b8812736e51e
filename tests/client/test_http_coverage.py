"""The SDK's HTTP client covers every route of the OpenAPI document.

`sandcat.api.openapi.operation_ids` lists the document's operations; each
SDK keeps a table from operationId to the method that calls it (Python:
`sandcat.client.OPERATIONS`). A route added without SDK support, or an SDK
entry for a route that is gone, fails here. The server admin routes
(``/api/v1/admin/``) are left out on purpose, and only they.
"""

from __future__ import annotations

import inspect

from sandcat.api.openapi import ADMIN_PREFIX, openapi_document, operation_ids, sdk_operation_ids
from sandcat.client import ALSO_CALLS, OPERATIONS, HttpApi


def test_every_operation_has_an_sdk_method() -> None:
    documented = sdk_operation_ids(openapi_document())
    missing = sorted(
        f"{op} ({method} {path})"
        for op, (method, path) in documented.items()
        if op not in OPERATIONS
    )
    assert not missing, f"routes without an HttpApi method in OPERATIONS: {missing}"
    stale = sorted(set(OPERATIONS) - set(documented))
    assert not stale, f"OPERATIONS names operations the document does not have: {stale}"


def test_the_admin_routes_and_only_they_are_left_out_of_the_sdks() -> None:
    everything = operation_ids(openapi_document())
    left_out = {
        op: where
        for op, where in everything.items()
        if op not in sdk_operation_ids(openapi_document())
    }
    assert left_out
    assert all(path.startswith(ADMIN_PREFIX) for _, path in left_out.values())
    assert all(op.startswith("admin") for op in left_out)
    assert not set(left_out) & set(OPERATIONS), "the Python SDK has no admin client"


def test_every_table_entry_is_a_coroutine_method() -> None:
    for op, name in {**OPERATIONS, **{m: m for m in ALSO_CALLS}}.items():
        method = getattr(HttpApi, name, None)
        assert inspect.iscoroutinefunction(method), f"{op}: HttpApi.{name} is not an async method"
    assert set(ALSO_CALLS.values()) <= set(OPERATIONS)


def test_every_public_method_calls_a_documented_route() -> None:
    public = {
        name
        for name, member in inspect.getmembers(HttpApi, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    public -= {"aclose"}
    unlisted = public - set(OPERATIONS.values()) - set(ALSO_CALLS)
    assert not unlisted, f"HttpApi methods in neither OPERATIONS nor ALSO_CALLS: {sorted(unlisted)}"
