"""``/api/v1/groups``: create groups and read the ones you belong to."""

from __future__ import annotations

from quart import Blueprint, Response

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response, read_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.groups import GroupDetail, Groups
from sandcat.ids import group_cid
from sandcat.store.groups import Group


def group_json(group: Group) -> dict[str, object]:
    return {
        "id": group.id,
        "cid": group_cid(group.id),
        "name": group.name,
        "owner": group.owner,
        "avatar": group.avatar,
        "description": group.description,
        "announcement": group.announcement,
        "max_members": group.max_members,
        "created_at": group.created_at,
    }


def detail_json(detail: GroupDetail) -> dict[str, object]:
    view = group_json(detail.group)
    view["members"] = [
        {"user": m.user, "role": m.role, "alias": m.alias, "joined_at": m.joined_at}
        for m in detail.members
    ]
    return view


def groups_blueprint(accounts: Accounts, groups: Groups, *, max_body_bytes: int) -> Blueprint:
    routes = Blueprint("groups", __name__, url_prefix="/api/v1/groups")

    @routes.post("")
    async def create() -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        detail = await groups.create(
            principal.user, name=body.text("name"), members=body.text_list("members")
        )
        return json_response({"group": detail_json(detail)}, 201)

    @routes.get("")
    async def mine() -> Response:
        principal = await authenticated(accounts)
        return json_response({"groups": [group_json(g) for g in await groups.mine(principal.user)]})

    @routes.get("/<group_id>")
    async def get(group_id: str) -> Response:
        principal = await authenticated(accounts)
        return json_response({"group": detail_json(await groups.get(principal.user, group_id))})

    return routes
