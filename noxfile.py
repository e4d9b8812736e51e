"""Sandcat's development tasks. ``nox -s check`` is what CI runs."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["check"]
nox.options.reuse_existing_virtualenvs = True

PYTEST = ["pytest", "-p", "no:cacheprovider"]
COVERAGE = ["--cov=sandcat", "--cov-branch", "--cov-report=term-missing:skip-covered"]


def _lint(session: nox.Session) -> None:
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


def _typecheck(session: nox.Session) -> None:
    session.run("mypy")


#: Bytecode is written even where the environment says not to: every server a test
#: starts as a child process (and every pytest-xdist worker) then loads sandcat's
#: compiled modules instead of compiling them again (~0.2 s of CPU each).
TEST_ENV = {"PYTHONDONTWRITEBYTECODE": ""}


def _tests(session: nox.Session) -> None:
    session.run(*PYTEST, *COVERAGE, "--cov-fail-under=90", *session.posargs, env=TEST_ENV)
    # The sans-IO protocol core is held to full branch coverage by its own tests.
    session.run("coverage", "report", "--include=*/sandcat/protocol/*", "--fail-under=100")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite with branch coverage (>= 90% overall, 100% for protocol/)."""
    session.install("-e", ".[dev]")
    _tests(session)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    _lint(session)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[dev]")
    _typecheck(session)


@nox.session
def check(session: nox.Session) -> None:
    """Everything CI gates on, in one environment: lint, typecheck, tests."""
    session.install("-e", ".[dev]")
    _lint(session)
    _typecheck(session)
    _tests(session)


@nox.session
def bench(session: nox.Session) -> None:
    """The bench's standard set in embedded mode (minutes); results in bench-results/."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "bench", "standard", "--out", "bench-results", *session.posargs)


@nox.session(name="bench-cluster")
def bench_cluster(session: nox.Session) -> None:
    """Every scenario against 1-4 instances on PostgreSQL, Kafka and Redis (started locally)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "bench", "cluster", *session.posargs)


@nox.session
def peers(session: nox.Session) -> None:
    """The 1:1 direct runs against ejabberd (Debian's package, installed if missing;
    needs root) and Sandcat in one run, with the ratios (minutes; never in CI)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "bench", "peers", *session.posargs)


@nox.session(name="fuzz-api")
def fuzz_api(session: nox.Session) -> None:
    """schemathesis against the OpenAPI document of a live server: fails on any
    5xx or any response its schema does not describe. Arguments go to
    schemathesis, e.g. ``nox -s fuzz-api -- --max-examples 200``."""
    session.install("-e", ".", "schemathesis>=4.0")
    session.run("python", "tools/fuzz_api.py", *session.posargs)


#: What the browser tests need from Debian: the browser, and a font for the emoji.
BROWSER_PACKAGES = {
    "chromium": Path("/usr/bin/chromium"),
    "fonts-noto-color-emoji": Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"),
}


@nox.session
def browser(session: nox.Session) -> None:
    """The web client in Debian's headless Chromium (tests/web): installs chromium with
    apt (as root) and web/'s Node packages with npm, checks that the shipped assets match
    a fresh build, installs Sandcat from a wheel (``pip install .``: no Node) and runs
    the browser tests in a network namespace of their own (loopback only, which WebRTC
    then uses)."""
    missing = [name for name, path in BROWSER_PACKAGES.items() if not path.exists()]
    if missing:
        session.run("apt-get", "update", "-q", external=True)
        session.run(
            "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing, external=True
        )
    session.run("npm", "ci", "--prefix", "web", "--no-audit", "--no-fund", external=True)
    session.run("npm", "run", "--prefix", "web", "typecheck", external=True)
    session.install(".", "pytest", "pytest-trio", "playwright>=1.49")
    command = ["python", "-m", *PYTEST, "--confcutdir=tests/web", "tests/web", *session.posargs]
    session.run(
        "unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command,
        external=True,
        env={"SANDCAT_BROWSER": "1"},
    )  # fmt: skip


@nox.session
def fuzz(session: nox.Session) -> None:
    """Coverage-guided fuzzing (atheris) of the frame decoder, the WebSocket frame
    parser and the HTTP API's JSON body parsing, for a bounded time:
    ``nox -s fuzz -- SECONDS`` (default 60, split between the three targets). A finding
    fails the session; its input is kept in fuzz-crashes/ (reproduce:
    ``python tools/fuzz.py TARGET FILE``)."""
    session.install("-e", ".", "atheris>=2.3")
    seconds = int(session.posargs[0]) if session.posargs else 60
    crashes = "fuzz-crashes"
    session.run("mkdir", "-p", crashes, external=True)
    for target in ("frames", "websocket", "json"):
        session.run(
            "python",
            "tools/fuzz.py",
            target,
            f"-max_total_time={max(1, seconds // 3)}",
            # One input may take at most this long (a decoder stall is a finding).
            "-timeout=10",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={crashes}/",
            "-print_final_stats=1",
        )


@nox.session
def faults(session: nox.Session) -> None:
    """The fault suite (tests/chaos/test_faults.py) at the reliability plan's full
    sizes: F4 30 s, F5 60 s, ..., F14 1,000 clients, F15 10 minutes, and the send
    path's model test at 200 examples per engine (CI runs both at smaller sizes).
    Replay an F15 failure with its seed: ``SANDCAT_FAULT_SEED=N nox -s faults -- -k f15``."""
    session.install("-e", ".[dev]")
    session.run(
        *PYTEST,
        "-s",
        "tests/chaos/test_faults.py",
        "tests/gateway/test_send_model.py",
        *session.posargs,
        env={"SANDCAT_FAULT_SIZE": "full"},
    )


@nox.session
def soak(session: nox.Session) -> None:
    """One hour: 2,000 idle connections over three instances, the cast at 200 msgs/s,
    5% of the idle connections churned a minute, F15 throughout. Numbers a minute in
    bench/results/soak/minutes.jsonl; summary.json and rss.png at the end. Arguments
    go to ``python -m tests.chaos.soak`` (e.g. ``-- --minutes 10``)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "tests.chaos.soak", *session.posargs)
