"""Ids are values: a cid is parsed by ``sandcat.protocol.parse_cid`` (the ``Cid``
value: kind, group, the two users, ``peer_of``), never sliced by hand.

The protocol's own parser (``protocol/_ids.py``) is the one place that may read
a cid's characters; this test reads every other module's source and fails on
the hand-made forms that were replaced: ``cid[2:]``, ``cid.split(":")``,
``cid.startswith("g:")`` and the like.
"""

from __future__ import annotations

import re
from pathlib import Path

import sandcat

ROOT = Path(sandcat.__file__).parent
PARSER = ROOT / "protocol" / "_ids.py"

BY_HAND = re.compile(
    r"""startswith\(\s*["'][dg]:["']"""  # a kind read from the prefix
    r"""|\b\w*cid\w*\s*\[\s*-?\d*\s*:"""  # a slice of a cid
    r"""|\b\w*cid\w*\s*\.\s*(?:split|rsplit|partition|rpartition|removeprefix|index|find)\("""
)


def by_hand(source: str) -> list[str]:
    """The lines of ``source`` that take a cid apart by hand."""
    return [line.strip() for line in source.splitlines() if BY_HAND.search(line)]


def test_the_pattern_catches_what_it_names() -> None:
    caught = [
        'if cid.startswith("g:"):',
        "group = cid[2:]",
        "_, low, high = m.cid.split(':')",
        "kind, _, rest = conversation_cid.partition(':')",
        "group = msg.cid.removeprefix('g:')",
    ]
    passed = [
        "parsed = parse_cid(cid)",
        "if parsed.kind == 'group':",
        "reason = payload[2:].decode()",
        'text = text.partition(":")[0]',
        "cids[0]",
    ]
    assert by_hand("\n".join(caught)) == caught
    assert by_hand("\n".join(passed)) == []


def test_no_module_takes_a_cid_apart_by_hand() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {line}"
        for path in sorted(ROOT.rglob("*.py"))
        if path != PARSER
        for line in by_hand(path.read_text())
    ]
    assert found == []
