"""A cheap password hasher for the test suite's servers.

Every server a test starts registers and logs users in; at the production cost
(argon2id, m = 19 MiB, t = 2) each hash or verify takes ~0.1 s of CPU here. The
tests of the production parameters themselves (tests/domain/test_passwords.py,
tests/domain/test_accounts_use_cases.py) keep the configured hasher.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandcat.domain.passwords import PasswordHasher

#: argon2id at a tiny cost: the same code path and encoding, ~1000x cheaper.
FAST_PASSWORDS = PasswordHasher(time_cost=1, memory_kib=64)


def serve_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the repository root on PYTHONPATH, so ``python -m tests.serve``
    imports from any working directory."""
    root = str(Path(__file__).resolve().parent.parent)
    path = [part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part]
    return {**env, "PYTHONPATH": os.pathsep.join([*path, root])}
