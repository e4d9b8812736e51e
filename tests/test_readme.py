"""The README's SDK example runs as written against a real ``sandcat serve`` and
prints what the README says it prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from tests.e2e.process import serve_process
from tests.files.media import png

README = Path(__file__).parent.parent / "README.md"


def block(marker: str) -> str:
    """The fenced code block right after ``<!-- marker -->`` in the README."""
    found = re.search(rf"<!-- {marker} -->\n```[a-z]*\n(.*?)```", README.read_text(), re.DOTALL)
    assert found is not None, f"README.md has no block marked {marker}"
    return found.group(1)


async def test_the_readme_sdk_example_runs_and_prints_what_it_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(block("sdk-example"), "README.md", "exec"), example)  # noqa: S102
    main = example["main"]
    assert callable(main)
    async with serve_process(tmp_path / "data") as server:
        with trio.fail_after(30):
            await main(server.http_url, png())
    assert capsys.readouterr().out == block("sdk-example-output")
