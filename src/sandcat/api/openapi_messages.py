"""The message history part of the OpenAPI document (SPEC.md "The timeline")."""

from __future__ import annotations

from collections.abc import Callable

from sandcat.api.schemas import ID, MS, Schema, obj, ref

_SEQ: Schema = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}
_CID: Schema = {
    "type": "string",
    "pattern": "^(d:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}|g:[A-Za-z0-9_-]{1,64})$",
    "description": "a conversation id: d:<user>:<user> (ascending) or g:<group>",
}

MESSAGE_SCHEMAS: dict[str, Schema] = {
    "Message": {
        **obj(
            ["cid", "seq", "mid", "from", "kind", "body", "ts"],
            cid=_CID,
            seq=_SEQ,
            mid=ID,
            **{"from": ID},
            kind={"type": "integer", "description": "content kind (SPEC.md §9)"},
            body={
                "description": (
                    'the content; msgpack bin as {"$bin": hex}, NaN and infinities as '
                    '{"$float": "nan"}; null when recalled'
                )
            },
            ts=MS,
            cmid={"type": "string", "description": "only on your own messages"},
            device=ID,
            reply_to=_SEQ,
            mentions={"type": "array", "items": {"type": "string"}},
            forward=obj(["cid", "seq", "from"], cid=_CID, seq=_SEQ, **{"from": ID}),
            edited_at=MS,
            recalled={"type": "boolean", "const": True},
        ),
        "description": "a MSG body (SPEC.md §4.12) as JSON",
    },
    "MessagePage": obj(
        ["messages", "more", "min_seq", "max_seq"],
        messages={"type": "array", "items": ref("Message")},
        more={"type": "boolean", "description": "more exist in the direction of travel"},
        min_seq=_SEQ,
        max_seq=_SEQ,
    ),
}


def _query(name: str, schema: Schema, text: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": text}


def _cid_path(operation: Schema) -> Schema:
    # The path parameter is a cid, not an id.
    operation["parameters"][0]["schema"] = _CID
    return operation


def message_paths(op: Callable[..., Schema]) -> dict[str, Schema]:
    """Path items for the history routes, built with openapi.py's ``_operation``."""
    return {
        "/api/v1/conversations/{id}/messages": {
            "get": _cid_path(
                op(
                    "listMessages",
                    "a page of a conversation's messages, ascending: after a seq, "
                    "before a seq, or the latest",
                    ok=(200, ref("MessagePage")),
                    errors=(403, 422),
                    path_id="id",
                    query=(
                        _query("before", _SEQ, "messages below this seq (older)"),
                        _query("after", _SEQ, "messages above this seq (newer)"),
                        _query(
                            "limit", {"type": "integer", "minimum": 1, "maximum": 200}, "default 50"
                        ),
                    ),
                )
            )
        },
        "/api/v1/conversations/{id}/messages/hide": {
            "post": _cid_path(
                op(
                    "hideMessages",
                    "hide messages from yourself only (delete for me)",
                    ok=(204, None),
                    body="hide_messages",
                    errors=(403,),
                    path_id="id",
                )
            )
        },
        "/api/v1/messages/{id}": {
            "get": op(
                "getMessage",
                "one message by its mid, if you may see it",
                ok=(200, obj(["message"], message=ref("Message"))),
                errors=(404,),
                path_id="id",
            )
        },
    }
