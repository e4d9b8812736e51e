"""JSON request bodies in, JSON responses out.

Every JSON route reads its body through ``read_body``: the size is checked
against ``http.max_body_bytes`` before reading (413), the Content-Type must be
JSON (415), the text must parse (400) into an object (400), and fields are
taken out with typed getters that raise ``BadRequest`` naming the field (422).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from quart import Response, request

from sandcat.errors import BadRequest, ClientError, TooLarge
from sandcat.protocol import is_clean_text


class UnsupportedMediaType(ClientError):
    http_status = 415


class JsonBody:
    """A parsed JSON object with getters that validate field types."""

    def __init__(self, data: Mapping[str, object]) -> None:
        self._data = data

    def text(self, name: str) -> str:
        value = self._data.get(name)
        if value is None:
            raise BadRequest(f"{name}: required", field=name)
        return self._string(name, value)

    def optional_text(self, name: str) -> str | None:
        value = self._data.get(name)
        return None if value is None else self._string(name, value)

    def fields(self) -> Mapping[str, object]:
        """Every field as sent (for bodies whose keys are themselves the request)."""
        return self._data

    def integer(self, name: str) -> int:
        value = self._data.get(name)
        if value is None:
            raise BadRequest(f"{name}: required", field=name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
            raise BadRequest(f"{name}: must be an integer in [0, 2**53)", field=name)
        return value

    def optional_integer(self, name: str) -> int | None:
        return None if self._data.get(name) is None else self.integer(name)

    def flag(self, name: str) -> bool:
        """An optional boolean, false when absent or null."""
        value = self._data.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise BadRequest(f"{name}: must be true or false", field=name)
        return value

    def text_list(self, name: str) -> list[str]:
        value = self._data.get(name)
        if value is None:
            raise BadRequest(f"{name}: required", field=name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise BadRequest(f"{name}: must be a list of strings", field=name)
        return list(value)

    @staticmethod
    def _string(name: str, value: object) -> str:
        if not isinstance(value, str):
            raise BadRequest(f"{name}: must be a string", field=name)
        return value


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


async def read_body(*, max_bytes: int) -> JsonBody:
    """The request's JSON object; an empty body without a Content-Type is ``{}``."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise TooLarge(f"request body is larger than {max_bytes} bytes")
    has_type = "content-type" in request.headers
    if has_type and request.mimetype != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    raw = await request.get_data(as_text=False)
    if not raw and not has_type:
        return JsonBody({})
    if not has_type:
        raise UnsupportedMediaType("Content-Type must be application/json")
    return parse_json_body(raw)


def parse_json_body(raw: str | bytes) -> JsonBody:
    """``raw`` parsed as a JSON object; ``ClientError`` (400) for anything else.

    Sans-IO, so that ``nox -s fuzz`` can feed it arbitrary bytes: whatever they
    are, the only exception is a ``ClientError``."""
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
        # Lone surrogates ("\ud800") parse but are no Unicode text (RFC 8259 §8.2).
        json.dumps(data, ensure_ascii=False).encode("utf-8")
        # "\u0000" is text, but PostgreSQL cannot store it: refused by field (SPEC "Strings").
        unclean = _unclean_field(data, "")
    except (ValueError, RecursionError) as exc:
        raise ClientError("request body is not valid JSON") from exc
    if unclean is not None:
        field = unclean or "body"
        raise BadRequest(f"{field}: must not contain U+0000", field=field)
    if not isinstance(data, dict):
        raise ClientError("request body must be a JSON object")
    return JsonBody(data)


def _unclean_field(value: object, path: str) -> str | None:
    """The path of the first string (value or key) holding U+0000."""
    if isinstance(value, str):
        return None if is_clean_text(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            if not is_clean_text(key):
                return path or "body"
            found = _unclean_field(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unclean_field(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def query_int(name: str, *, default: int | None, low: int, high: int) -> int | None:
    """The integer query parameter ``name`` in ``[low, high]``; 422 naming it otherwise."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 16 or not low <= int(raw) <= high:
        raise BadRequest(f"{name}: must be an integer of {low}-{high}", field=name)
    return int(raw)


def query_text(name: str) -> str:
    """The required text query parameter ``name``; 422 naming it if missing."""
    raw = request.args.get(name)
    if raw is None:
        raise BadRequest(f"{name}: required", field=name)
    if not is_clean_text(raw):
        raise BadRequest(f"{name}: must not contain U+0000 or lone surrogates", field=name)
    return raw


def json_response(payload: object, status: int = 200) -> Response:
    return Response(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
        # A browser must never read an API answer (which can echo user text) as HTML.
        headers={"X-Content-Type-Options": "nosniff"},
    )
