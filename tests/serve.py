"""``python -m tests.serve …``: the ``sandcat`` command with the test suite's cheap
password hasher (tests/passwords.py). Tests that start ``sandcat serve`` as a
child process use it; everything else about the command is unchanged."""

from __future__ import annotations

import sys

from sandcat.cli import main
from tests.passwords import FAST_PASSWORDS

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], passwords=FAST_PASSWORDS))
