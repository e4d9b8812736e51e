"""``/api/v1/groups``: create groups, read the ones you belong to, and manage them.

Every route reads and checks its body before it looks the group up, so a
malformed request is a 4xx about the request whether or not the group exists.
A change answers with the ``seq`` of the system message it wrote in the
group's timeline.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from sandcat.api.bearer import authenticated
from sandcat.api.payload import json_response, query_int, read_body
from sandcat.domain.accounts import Accounts
from sandcat.domain.groups import MAX_PAGE, GroupDetail, Groups
from sandcat.ids import group_cid
from sandcat.store.groups import Ban, Change, Group, GroupMember, InviteLink, JoinRequest


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
        "join_approval": group.join_approval,
        "invite_policy": group.invite_policy,
        "history_visible": group.history_visible,
        "mute_all": group.mute_all,
        "created_at": group.created_at,
    }


def member_json(member: GroupMember) -> dict[str, object]:
    return {
        "user": member.user,
        "role": member.role,
        "alias": member.alias,
        "joined_at": member.joined_at,
        "joined_seq": member.joined_seq,
        "muted_until": member.muted_until,
    }


def detail_json(detail: GroupDetail) -> dict[str, object]:
    view = group_json(detail.group)
    view["members"] = [member_json(m) for m in detail.members]
    return view


def request_json(request: JoinRequest) -> dict[str, object]:
    return {
        "id": request.id,
        "group": request.group,
        "user": request.user,
        "invited_by": request.invited_by,
        "message": request.message,
        "status": request.status,
        "created_at": request.created_at,
    }


def ban_json(ban: Ban) -> dict[str, object]:
    return {"user": ban.user, "by": ban.by, "created_at": ban.created_at}


def invite_json(link: InviteLink) -> dict[str, object]:
    return {
        "id": link.id,
        "group": link.group,
        "token": link.token,
        "created_by": link.created_by,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "max_uses": link.max_uses,
        "uses": link.uses,
        "revoked_at": link.revoked_at,
    }


def change_json(change: Change) -> Response:
    return json_response({"seq": None if change.entry is None else change.entry.message.seq})


def _page_window() -> tuple[int, int]:
    """The ``offset`` (default 0) and ``limit`` (1-MAX_PAGE, default 50) of a paged list."""
    offset = query_int("offset", default=0, low=0, high=2**31 - 1)
    limit = query_int("limit", default=50, low=1, high=MAX_PAGE)
    assert offset is not None
    assert limit is not None
    return offset, limit


def _page_json(name: str, items: list[dict[str, object]], offset: int, total: int) -> Response:
    return json_response({name: items, "total": total, "more": offset + len(items) < total})


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

    @routes.patch("/<group_id>")
    async def update(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        group = await groups.update(principal.user, group_id, dict(body.fields()))
        return json_response({"group": group_json(group)})

    @routes.delete("/<group_id>")
    async def dismiss(group_id: str) -> Response:
        principal = await authenticated(accounts)
        return change_json(await groups.dismiss(principal.user, group_id))

    @routes.patch("/<group_id>/settings")
    async def configure(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        group = await groups.configure(principal.user, group_id, dict(body.fields()))
        return json_response({"group": group_json(group)})

    @routes.get("/<group_id>/members")
    async def members(group_id: str) -> Response:
        principal = await authenticated(accounts)
        offset, limit = _page_window()
        wanted = request.args.get("users")
        only = [] if wanted is None else wanted.split(",")
        page = await groups.members(principal.user, group_id, offset=offset, limit=limit, only=only)
        return _page_json("members", [member_json(m) for m in page.members], offset, page.total)

    @routes.post("/<group_id>/members")
    async def invite(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        invited = await groups.invite(principal.user, group_id, body.text_list("users"))
        return json_response(
            {
                "seq": None if invited.entry is None else invited.entry.message.seq,
                "added": list(invited.added),
                "requested": list(invited.requested),
            }
        )

    @routes.post("/<group_id>/members/remove")
    async def remove(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        users, ban = body.text_list("users"), body.flag("ban")
        return change_json(await groups.remove(principal.user, group_id, users, ban=ban))

    @routes.post("/<group_id>/bans")
    async def ban(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        return change_json(await groups.ban(principal.user, group_id, body.text_list("users")))

    @routes.post("/<group_id>/bans/remove")
    async def unban(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        return change_json(await groups.unban(principal.user, group_id, body.text_list("users")))

    @routes.get("/<group_id>/bans")
    async def bans(group_id: str) -> Response:
        principal = await authenticated(accounts)
        offset, limit = _page_window()
        page = await groups.bans(principal.user, group_id, offset=offset, limit=limit)
        return _page_json("bans", [ban_json(b) for b in page.bans], offset, page.total)

    @routes.post("/<group_id>/invites")
    async def create_invite(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        expires_at, max_uses = (
            body.optional_integer("expires_at"),
            body.optional_integer("max_uses"),
        )
        link = await groups.create_invite(
            principal.user, group_id, expires_at=expires_at, max_uses=max_uses
        )
        return json_response({"invite": invite_json(link)}, 201)

    @routes.get("/<group_id>/invites")
    async def invites(group_id: str) -> Response:
        principal = await authenticated(accounts)
        links = await groups.invites(principal.user, group_id)
        return json_response({"invites": [invite_json(link) for link in links]})

    @routes.post("/<group_id>/invites/revoke")
    async def revoke_invite(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        link = await groups.revoke_invite(principal.user, group_id, body.text("invite"))
        return json_response({"invite": invite_json(link)})

    @routes.post("/<group_id>/leave")
    async def leave(group_id: str) -> Response:
        principal = await authenticated(accounts)
        return change_json(await groups.leave(principal.user, group_id))

    @routes.post("/<group_id>/transfer")
    async def transfer(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        return change_json(await groups.transfer(principal.user, group_id, body.text("to")))

    @routes.post("/<group_id>/roles")
    async def role(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        user, new_role = body.text("user"), body.text("role")
        return change_json(await groups.set_role(principal.user, group_id, user, new_role))

    @routes.post("/<group_id>/mutes")
    async def mute(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        user, until = body.text("user"), body.integer("until")
        return change_json(await groups.mute(principal.user, group_id, user, until))

    @routes.put("/<group_id>/alias")
    async def alias(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        return change_json(await groups.set_alias(principal.user, group_id, body.text("alias")))

    @routes.post("/<group_id>/requests")
    async def request_join(group_id: str) -> Response:
        principal = await authenticated(accounts)
        body = await read_body(max_bytes=max_body_bytes)
        token, message = body.text("token"), body.optional_text("message")
        asked = await groups.request_join(principal.user, group_id, message, token=token)
        assert asked.request is not None
        return json_response({"request": request_json(asked.request)}, 201)

    @routes.get("/<group_id>/requests")
    async def requests(group_id: str) -> Response:
        principal = await authenticated(accounts)
        pending = await groups.requests(principal.user, group_id)
        return json_response({"requests": [request_json(r) for r in pending]})

    @routes.post("/requests/<request_id>/approve")
    async def approve(request_id: str) -> Response:
        principal = await authenticated(accounts)
        decided = await groups.decide(principal.user, request_id, approve=True)
        assert decided.request is not None
        return json_response({"request": request_json(decided.request)})

    @routes.post("/requests/<request_id>/reject")
    async def reject(request_id: str) -> Response:
        principal = await authenticated(accounts)
        decided = await groups.decide(principal.user, request_id, approve=False)
        assert decided.request is not None
        return json_response({"request": request_json(decided.request)})

    return routes
