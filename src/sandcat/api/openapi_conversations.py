"""The conversations part of the OpenAPI document (the HTTP twins of SYNC,
CONV_SET and READERS)."""

from __future__ import annotations

from collections.abc import Callable

from sandcat.api.schemas import ID, Schema, obj, ref

_SEQ: Schema = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}
_BOOL: Schema = {"type": "boolean"}

CONVERSATION_SCHEMAS: dict[str, Schema] = {
    "Conversation": obj(
        [
            "cid",
            "kind",
            "max_seq",
            "min_seq",
            "read_seq",
            "muted",
            "pinned",
            "unread",
            "mention",
            "hidden",
            "cleared_seq",
        ],
        cid={"type": "string"},
        kind={"type": "string", "enum": ["direct", "group"]},
        peer={**ID, "description": "direct only: the other user"},
        group={**ID, "description": "group only: the group id"},
        max_seq=_SEQ,
        min_seq={**_SEQ, "description": "the first seq you can pull (retention, your clear)"},
        read_seq=_SEQ,
        muted={**_BOOL, "description": "delivered as usual; clients do not notify"},
        pinned=_BOOL,
        unread={"type": "integer", "description": "seqs after your read and cleared seqs"},
        mention={**_BOOL, "description": "you were @-mentioned after your read seq"},
        hidden={**_BOOL, "description": "hidden by you until a new message arrives"},
        cleared_seq={**_SEQ, "description": "you cleared the history up to this seq"},
        peer_read_seq={
            **_SEQ,
            "description": "direct only, when both have read receipts on: the peer's read seq",
        },
        last={
            "type": "object",
            "description": "the latest message you can see, as a MSG body; "
            'bin values as {"$bin": hex}',
        },
    ),
    "ConversationSettings": obj(
        ["cid", "pinned", "muted", "hidden", "cleared_seq"],
        cid={"type": "string"},
        pinned=_BOOL,
        muted=_BOOL,
        hidden=_BOOL,
        cleared_seq=_SEQ,
    ),
}

_SETTINGS_BODY: Schema = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                **obj(
                    [],
                    pinned=_BOOL,
                    muted=_BOOL,
                    hidden=_BOOL,
                    clear={**_BOOL, "description": "true: clear the history up to max_seq"},
                ),
                "additionalProperties": False,
                "minProperties": 1,
            }
        }
    },
}


def _query(name: str, schema: Schema, text: str, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": text,
    }


def conversation_paths(op: Callable[..., Schema]) -> dict[str, Schema]:
    """Path items for the conversation routes, built with openapi.py's ``_operation``."""
    update = op(
        "updateConversation",
        "change your own settings (pin, mute, hide, clear history); "
        "your other devices get CONV_STATE",
        ok=(200, obj(["conversation"], conversation=ref("ConversationSettings"))),
        errors=(403,),
        path_id="id",
    )
    update["requestBody"] = _SETTINGS_BODY
    for code in ("400", "413", "415", "422"):
        update["responses"][code] = {"$ref": f"#/components/responses/E{code}"}
    update["parameters"][0]["schema"] = {"type": "string", "description": "a cid"}
    readers = op(
        "conversationReaders",
        "a page of group members, by whether they have read up to seq",
        ok=(
            200,
            obj(
                ["read", "unread", "next"],
                read={"type": "array", "items": ID},
                unread={"type": "array", "items": ID},
                next={
                    "type": ["string", "null"],
                    "description": "pass as after for the next page; null on the last",
                },
            ),
        ),
        errors=(403, 422),
        path_id="id",
        query=(
            _query("seq", _SEQ, "the seq read or not", required=True),
            _query("after", ID, "members after this user id"),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "default 500"),
        ),
    )
    readers["parameters"][0]["schema"] = {"type": "string", "description": "a group cid"}
    return {
        "/api/v1/conversations": {
            "get": op(
                "listConversations",
                "your conversations (all, or those changed after since), as SYNC",
                ok=(
                    200,
                    obj(
                        ["conversations", "version"],
                        conversations={"type": "array", "items": ref("Conversation")},
                        version={**_SEQ, "description": "pass as since next time"},
                        more={
                            "type": "boolean",
                            "description": "with limit: a full page; ask again with since",
                        },
                    ),
                ),
                errors=(422,),
                query=(
                    _query("since", _SEQ, "a version from an earlier answer"),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "page: about this many of the oldest changes",
                    ),
                ),
            )
        },
        "/api/v1/conversations/{id}": {"patch": update},
        "/api/v1/conversations/{id}/readers": {"get": readers},
    }
