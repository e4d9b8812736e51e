"""``python -m tests.without MOD[,MOD...] ARGS...``: the ``sandcat`` command (as
tests/serve.py runs it) in an interpreter where the named top-level modules cannot
be imported, as if their packages were not installed (tests/test_extras.py).

A finder first on ``sys.meta_path`` refuses them, so both ``import`` and
``importlib.util.find_spec`` see them missing; the rest of the environment is the
real one.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType


class Uninstalled(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def main(argv: list[str]) -> int:
    names = {name for name in argv[0].split(",") if name}
    already = sorted(name for name in names if name in sys.modules)
    if already:
        raise RuntimeError(f"imported before they could be hidden: {already}")
    sys.meta_path.insert(0, Uninstalled(names))
    from sandcat.cli import main as sandcat
    from tests.passwords import FAST_PASSWORDS

    return sandcat(argv[1:], passwords=FAST_PASSWORDS)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
