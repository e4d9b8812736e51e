"""The lean install: the embedded default runs without any cluster driver, and a
configured backend whose driver is not installed stops ``sandcat`` at startup with
one line naming the extra to install (sandcat/extras.py, pyproject.toml).

"Not installed" is simulated in a real child process (tests/without.py hides the
modules from the import system); no database is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sandcat.client import HttpApi, open_client
from tests.e2e.process import serve_process
from tests.passwords import serve_environment

ROOT = Path(__file__).resolve().parent.parent
#: Every cluster driver's top-level modules.
DRIVERS = "psycopg,confluent_kafka,coredis,pymongo,boto3,botocore"
PASSWORD = "correct horse 1"


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]  # type: ignore[no-any-return]


def test_the_default_install_has_no_cluster_driver_and_extras_name_them() -> None:
    project = _pyproject()
    dependencies = " ".join(project["dependencies"])  # type: ignore[arg-type]
    for driver in ("psycopg", "confluent-kafka", "coredis", "pymongo", "boto3"):
        assert driver not in dependencies
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    assert extras["postgres"] == ["psycopg[binary]>=3.2"]
    assert extras["kafka"] == ["confluent-kafka>=2.6"]
    assert extras["redis"] == ["coredis>=6.9"]
    assert extras["mongo"] == ["pymongo>=4.17"]
    assert extras["s3"] == ["boto3>=1.35"]
    assert extras["cluster"] == ["sandcat[postgres,kafka,redis,mongo,s3]"]
    # The README's test command (nox -s check installs .[dev]) stays one command.
    assert "sandcat[cluster]" in extras["dev"]
    assert "'.[cluster]'" in (ROOT / "compose" / "Dockerfile").read_text()


@pytest.mark.parametrize(
    ("variable", "value", "hidden", "extra"),
    [
        ("SANDCAT_DATABASE_URL", "postgresql://u:secret@127.0.0.1:1/db", "psycopg", "postgres"),
        ("SANDCAT_REDIS_URL", "redis://:secret@127.0.0.1:1/0", "coredis", "redis"),
        ("SANDCAT_MONGO_URL", "mongodb://u:secret@127.0.0.1:1/db", "pymongo", "mongo"),
        ("SANDCAT_S3_URL", "s3://key:secret@127.0.0.1:1/bucket", "botocore", "s3"),
        ("SANDCAT_KAFKA_BOOTSTRAP", "127.0.0.1:1", "confluent_kafka", "kafka"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_backend_without_its_driver_stops_at_startup_naming_the_extra(
    tmp_path: Path, variable: str, value: str, hidden: str, extra: str, command: str
) -> None:
    env = {variable: value}
    if extra == "kafka":  # Kafka needs PostgreSQL (its outbox); that driver is there.
        env["SANDCAT_DATABASE_URL"] = "postgresql://127.0.0.1:1/db"
    done = subprocess.run(
        [sys.executable, "-m", "tests.without", hidden, command, "--data-dir", str(tmp_path)],
        cwd=tmp_path,
        env=serve_environment(
            {k: v for k, v in os.environ.items() if not k.startswith("SANDCAT_")} | env
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pip install 'sandcat[{extra}]'" in lines[0]
    assert hidden in lines[0]
    assert "secret" not in lines[0]
    assert not list(tmp_path.iterdir())  # nothing was started or created


async def test_the_embedded_default_serves_without_any_cluster_driver(tmp_path: Path) -> None:
    async with serve_process(tmp_path / "data", runner=("-m", "tests.without", DRIVERS)) as server:
        async with HttpApi(server.http_url) as api:
            for name in ("ann", "bob"):
                await api.register(name, PASSWORD)
        async with (
            open_client(server.http_url, login="ann", password=PASSWORD, device="a") as ann,
            open_client(server.http_url, login="bob", password=PASSWORD, device="b") as bob,
        ):
            asked = await ann.api.request_friend(await ann.access_token(), bob.user_id)
            friend = await bob.api.accept_friend(await bob.access_token(), asked.id)
            await ann.session.send(friend.cid, "hello, bob")
            assert (await bob.session.receive_message()).body["text"] == "hello, bob"
            image = b"plain bytes"
            await ann.send_file(
                friend.cid, image, content_type="text/plain", kind="file", name="a.txt"
            )
            got = await bob.session.receive_message()
            assert await bob.api.download(await bob.access_token(), got.body["file"]) == image
        server.terminate()
        assert await server.wait() == 0
    assert b"Traceback" not in server.output
