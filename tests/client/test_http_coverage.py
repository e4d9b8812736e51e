"""The SDK's HTTP client covers every route of the OpenAPI document.

`sandcat.api.openapi.operation_ids` lists the document's operations; each
SDK keeps a table from operationId to the method that calls it (Python:
`sandcat.client.OPERATIONS`). A route added without SDK support, or an SDK
entry for a route that is gone, fails here.
"""

from __future__ import annotations

import inspect

from sandcat.api.openapi import openapi_document, operation_ids
from sandcat.client import ALSO_CALLS, OPERATIONS, HttpApi


def test_every_operation_has_an_sdk_method() -> None:
    documented = operation_ids(openapi_document())
    missing = sorted(
        f"{op} ({method} {path})"
        for op, (method, path) in documented.items()
        if op not in OPERATIONS
    )
    assert not missing, f"routes without an HttpApi method in OPERATIONS: {missing}"
    stale = sorted(set(OPERATIONS) - set(documented))
    assert not stale, f"OPERATIONS names operations the document does not have: {stale}"


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
