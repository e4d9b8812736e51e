"""A data export streams: exporting ~50 MiB of files costs the server process a small,
bounded amount of memory (docs/export.md states the bound), not the size of the zip."""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path

import pytest
import trio

from sandcat.client import HttpApi, HttpError
from tests.e2e.process import serve_process

PASSWORD = "correct horse 1"
MIB = 1024 * 1024
#: Files exported: 5 x 10 MiB.
FILES, FILE_BYTES = 5, 10 * MIB
#: The bound docs/export.md states for the growth of the server's peak RSS during an export.
BOUND_BYTES = 16 * MIB


def _status(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
    assert found is not None, field
    return int(found.group(1)) * 1024


def _reset_peak(pid: int) -> None:
    """Start VmHWM over from the current RSS (Linux: ``5`` to ``clear_refs``)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
async def test_exporting_50_mib_of_files_keeps_the_server_peak_rss_bounded(
    tmp_path: Path,
) -> None:
    config = tmp_path / "sandcat.toml"
    config.write_text("[http]\nexport_interval_s = 2.0\n")
    async with serve_process(tmp_path / "data", "--config", str(config)) as server:
        pid = server.process.pid
        async with HttpApi(server.http_url, timeout_s=60) as api:
            await api.register("ann", PASSWORD)
            token = (await api.login("ann", PASSWORD)).tokens.access_token
            digests = {}
            for n in range(FILES):
                data = os.urandom(FILE_BYTES)
                info = await api.upload_file(
                    token, data, content_type="application/octet-stream", name=f"{n}.bin"
                )
                digests[info.id] = hashlib.sha256(data).hexdigest()
                del data
            # Start the peak over from here (the uploads had their own).
            _reset_peak(pid)
            before = _status(pid, "VmHWM")
            written = await api.export(token, tmp_path / "ann.zip")
            grown = _status(pid, "VmHWM") - before
            assert written > FILES * FILE_BYTES
            assert grown < BOUND_BYTES, f"peak RSS grew {grown / MIB:.1f} MiB while exporting"
            print(f"export of {written / MIB:.1f} MiB: server peak RSS grew {grown / MIB:.2f} MiB")

            # The limit: refused within the interval, served again once it has passed.
            with pytest.raises(HttpError) as refused:
                await api.export(token, tmp_path / "again.zip")
            assert refused.value.status == 429
            assert refused.value.retry_after_ms is not None
            assert 0 < refused.value.retry_after_ms <= 2000
            await trio.sleep(refused.value.retry_after_ms / 1000 + 0.05)
            assert await api.export(token, tmp_path / "again.zip") > FILES * FILE_BYTES

    with zipfile.ZipFile(tmp_path / "ann.zip") as archive:
        for file_id, digest in digests.items():
            (name,) = [n for n in archive.namelist() if n.startswith(f"files/{file_id}/")]
            sha = hashlib.sha256()
            with archive.open(name) as member:
                while chunk := member.read(MIB):
                    sha.update(chunk)
            assert sha.hexdigest() == digest
