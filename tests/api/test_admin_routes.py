"""The admin routes in process, over a real HTTP socket (tests/e2e/test_admin.py runs
them against a ``sandcat serve`` child process, tests/cluster/test_admin.py on two
instances): every action, its answer, its audit entry and its socket closes."""

from __future__ import annotations

from sandcat.api.openapi import openapi_document
from sandcat.store.sql.admin import SqlAdminStore
from sandcat.store.sqlite.dialect import DIALECT as SQLITE
from tests.api.api_harness import Api


async def test_every_admin_action_in_process(api: Api) -> None:
    root_id, root = await api.user("root")
    await SqlAdminStore(api.db, SQLITE).grant_admin(root_id, by="test", now_ms=1)
    ann_id, ann = await api.user("ann")
    bob_id, bob = await api.user("bob")
    await api.befriend((ann_id, ann), (bob_id, bob))
    http = api.client

    reply = await http.post(
        "/api/v1/admin/users",
        json={"username": "Cleo", "password": "correct horse", "email": "c@x.org",
              "email_verified": True},
        headers=root,
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    cleo = reply.json()["user"]
    assert (cleo["username"], cleo["email"], cleo["admin"]) == ("cleo", "c@x.org", False)
    reply = await http.get("/api/v1/admin/users", params={"q": "c@x.org"}, headers=root)
    assert [user["id"] for user in reply.json()["users"]] == [cleo["id"]]
    reply = await http.get(f"/api/v1/admin/users/{ann_id}/sessions", headers=root)
    (session,) = reply.json()["sessions"]
    reply = await http.delete(
        f"/api/v1/admin/users/{ann_id}/sessions/{session['id']}", headers=root
    )
    assert reply.json() == {"ended_sessions": [session["id"]]}
    assert (ann_id, session["id"], 4007) in [call[:3] for call in api.closer.calls]
    reply = await http.delete(f"/api/v1/admin/users/{bob_id}/sessions", headers=root)
    assert len(reply.json()["ended_sessions"]) == 1
    reply = await http.put(
        f"/api/v1/admin/users/{bob_id}/password", json={"password": "a better one"}, headers=root
    )
    assert reply.json() == {"ended_sessions": []}
    await api.login("bob", "a better one")
    reply = await http.post(f"/api/v1/admin/users/{bob_id}/disable", headers=root)
    assert len(reply.json()["ended_sessions"]) == 1
    assert (bob_id, None, 4007) in [call[:3] for call in api.closer.calls]
    reply = await http.post("/api/v1/auth/login", json={"login": "bob", "password": "a better one"})
    assert reply.status_code == 403
    reply = await http.post(f"/api/v1/admin/users/{bob_id}/enable", headers=root)
    assert reply.json() == {"enabled": True}
    bob = {"Authorization": f"Bearer {(await api.login('bob', 'a better one'))['access_token']}"}
    ann = {"Authorization": f"Bearer {(await api.login('ann'))['access_token']}"}
    reply = await http.post("/api/v1/groups", json={"name": "g", "members": [bob_id]}, headers=ann)
    group = reply.json()["group"]["id"]
    reply = await http.post(f"/api/v1/admin/groups/{group}/dismiss", headers=root)
    assert reply.status_code == 204
    assert (await http.get(f"/api/v1/groups/{group}", headers=bob)).status_code == 404
    reply = await http.post(
        "/api/v1/admin/broadcast", json={"text": "hello all", "level": "warning"}, headers=root
    )
    assert reply.json() == {"users": 4}
    system = [n for n in api.notifier.notices if n.type == "system"]
    assert {n.user for n in system} == {root_id, ann_id, bob_id, cleo["id"]}
    reply = await http.get("/api/v1/admin/stats", params={"days": 2}, headers=root)
    stats = reply.json()
    assert (stats["users"], len(stats["sends_per_day"])) == (4, 2)
    # Ann owns a group with Bob (it passes to him) and one alone (it is dismissed).
    reply = await http.post("/api/v1/groups", json={"name": "g2", "members": [bob_id]}, headers=ann)
    shared = reply.json()["group"]["id"]
    reply = await http.post("/api/v1/groups", json={"name": "g3", "members": []}, headers=ann)
    alone = reply.json()["group"]["id"]
    reply = await http.delete(f"/api/v1/admin/users/{ann_id}", headers=root)
    assert reply.json()["user"]["deleted"] is True
    reply = await http.get(f"/api/v1/groups/{shared}", headers=bob)
    assert reply.json()["group"]["owner"] == bob_id
    assert [m["user"] for m in reply.json()["group"]["members"]] == [bob_id]
    reply = await http.post(f"/api/v1/admin/groups/{alone}/dismiss", headers=root)
    assert reply.status_code == 404
    assert (await http.get("/api/v1/friends", headers=bob)).json()["friends"] == []
    reply = await http.get(f"/api/v1/admin/users/{ann_id}", headers=root)
    assert reply.json()["user"]["display_name"] == "Deleted user"
    reply = await http.post(f"/api/v1/admin/users/{ann_id}/disable", headers=root)
    assert (reply.status_code, reply.json()["error"]["code"]) == (409, "conflict")
    reply = await http.get(
        "/api/v1/admin/audit", params={"actor": root_id, "since": 0, "limit": 3}, headers=root
    )
    assert [e["action"] for e in reply.json()["entries"]] == [
        "delete",
        "broadcast",
        "dismiss-group",
    ]
    reply = await http.get("/api/v1/admin/audit", params={"action": "disable"}, headers=root)
    assert [e["target"] for e in reply.json()["entries"]] == [bob_id]
    reply = await http.delete(f"/api/v1/admin/users/{cleo['id']}/admin", headers=root)
    assert reply.json() == {"revoked": False}
    reply = await http.delete(f"/api/v1/admin/users/{root_id}/admin", headers=root)
    assert reply.json() == {"revoked": True}
    assert (await http.get("/api/v1/admin/stats", headers=root)).status_code == 403


def test_no_route_grants_the_server_admin_role() -> None:
    """Granting is the command line's alone: no operation of the document grants it."""
    document = openapi_document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            words = f"{path} {operation['operationId']} {operation['summary']}".lower()
            assert "grant" not in words or "command-line only" in words, (method, path)
    admin_routes = [path for path in document["paths"] if path.endswith("/admin")]
    assert admin_routes == ["/api/v1/admin/users/{user}/admin"]
    assert list(document["paths"][admin_routes[0]]) == ["delete"]
