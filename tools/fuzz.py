"""Coverage-guided fuzzing (atheris) of what a peer's bytes reach first.

Three targets, run one after the other by ``nox -s fuzz`` for a bounded time:

- ``frames``: ``sandcat.protocol.decode_client`` / ``decode_server`` on any
  bytes. The only exception allowed is a ``ProtocolError``; a frame that
  decodes must encode and decode back to the same frame.
- ``websocket``: the gateway's client frame parser
  (``sandcat.gateway.frames.FrameReader``) on any bytes, fed whole and again
  cut in two at a point the input chooses. It may only end reading with a
  ``FrameError``, and both feedings must read the same messages and end the
  same way.
- ``json``: the HTTP API's JSON body parsing (``sandcat.api.payload``) and the
  typed getters and profile / name / avatar checks the routes apply to the
  parsed values. The only exception allowed is a ``ClientError`` (an HTTP 4xx).

Anything else is a finding: atheris stops, prints the traceback and writes the
input to ``crash-*`` in the working directory (run it again with
``python tools/fuzz.py TARGET CRASH_FILE`` to reproduce).

Usage: ``python tools/fuzz.py {frames,websocket,json} [libFuzzer options]``, e.g.
``-max_total_time=30``. Seeds come from protocol/vectors (frames).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["sandcat"]):
    from sandcat.api.payload import JsonBody, parse_json_body
    from sandcat.domain._text import display_text
    from sandcat.domain.avatars import avatar_ref
    from sandcat.domain.profiles import _clean
    from sandcat.errors import ClientError
    from sandcat.gateway.frames import FrameReader
    from sandcat.protocol import ProtocolError, decode_client, decode_server, encode
    from sandcat.store.accounts import PROFILE_FIELDS

ROOT = Path(__file__).resolve().parent.parent
TODAY = datetime.date(2026, 1, 1)


def fuzz_frames(data: bytes) -> None:
    for decode in (decode_client, decode_server):
        try:
            frame = decode(data)
        except ProtocolError:
            continue
        again = decode(encode(frame))  # type: ignore[arg-type]
        if again != frame:
            raise AssertionError(f"round trip changed {frame!r} into {again!r}")


def fuzz_websocket(data: bytes) -> None:
    if not data:
        return
    whole, split = FrameReader(4096), FrameReader(4096)
    read = whole.feed(data[1:])
    cut = 1 + data[0] * len(data) // 256
    read_split = split.feed(data[1:cut]) + split.feed(data[cut:])
    outcome = (read, list(whole.messages), whole.closed, whole.error and whole.error.code)
    outcome_split = (
        read_split,
        list(split.messages),
        split.closed,
        split.error and split.error.code,
    )
    if outcome != outcome_split:
        raise AssertionError(f"cutting the input changed {outcome!r} into {outcome_split!r}")


def fuzz_json(data: bytes) -> None:
    try:
        body = parse_json_body(data)
    except ClientError:
        return
    _getters(body)
    for name, value in body.fields().items():
        if name in PROFILE_FIELDS:
            with contextlib.suppress(ClientError):
                _clean(name, value, TODAY)
        if isinstance(value, str):
            with contextlib.suppress(ClientError):
                display_text(value, field="name", low=0, high=64)
            with contextlib.suppress(ClientError):
                avatar_ref(value)


def _getters(body: JsonBody) -> None:
    for name in [*list(body.fields())[:8], "missing"]:
        for getter in (
            body.text,
            body.optional_text,
            body.integer,
            body.optional_integer,
            body.flag,
            body.text_list,
        ):
            with contextlib.suppress(ClientError):
                getter(name)


def _seeds(target: str) -> Path:
    """A corpus directory with the golden vectors (frames) or a few bodies (json)."""
    corpus = Path(tempfile.mkdtemp(prefix=f"sandcat-fuzz-{target}-"))
    if target == "websocket":
        # A masked binary frame, a ping, a fragmented text and a close.
        (corpus / "frames").write_bytes(
            b"\x00\x82\x83abcd\x01\x02\x03\x89\x80abcd\x01\x81abcd\x00\x80\x80abcd\x88\x82abcdbj"
        )
    elif target == "frames":
        for vectors in sorted((ROOT / "protocol" / "vectors").glob("*.json")):
            for index, case in enumerate(json.loads(vectors.read_text(encoding="utf-8"))):
                if isinstance(case, dict) and isinstance(case.get("hex"), str):
                    (corpus / f"{vectors.stem}-{index}").write_bytes(bytes.fromhex(case["hex"]))
    else:
        bodies = [
            {"login": "ann", "password": "correct horse"},
            {"display_name": "Ann", "avatar": "https://example.org/a.png", "phone": "+15551234567"},
            {"users": ["a", "b"], "upto": 3, "join_approval": True, "birthday": "1990-01-01"},
        ]
        for index, body in enumerate(bodies):
            (corpus / f"body-{index}").write_bytes(json.dumps(body).encode())
    return corpus


def main() -> None:
    targets = {"frames": fuzz_frames, "websocket": fuzz_websocket, "json": fuzz_json}
    if len(sys.argv) < 2 or sys.argv[1] not in targets:
        sys.exit("usage: fuzz.py {frames,websocket,json} [libFuzzer options]")
    target = sys.argv[1]
    args = [sys.argv[0], *sys.argv[2:]]
    if not any(not arg.startswith("-") for arg in args[1:]):
        args.append(str(_seeds(target)))
    atheris.Setup(args, targets[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
