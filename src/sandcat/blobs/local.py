"""Blobs as files in a directory (the embedded default).

Layout: ``ROOT/objects/<key>`` holds finished objects; ``ROOT/partial/``
holds files being written. ``put`` writes and fsyncs a partial file, then
renames it into place, so a crash or a failure mid-way never leaves a
truncated object under its key (``os.replace`` is atomic on one file system).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import trio

from sandcat.blobs.reader import ThreadedReader
from sandcat.blobs.store import BlobNotFound, check_key
from sandcat.errors import LocalStoreUnavailable, StoreUnavailable
from sandcat.private_files import make_private_dir, private_opener


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._partial = root / "partial"

    async def open_store(self) -> None:
        """Create the directories; ``StoreUnavailable`` if that is impossible."""

        def prepare() -> None:
            make_private_dir(self._objects)
            make_private_dir(self._partial)
            # Partial files of a crashed process are garbage by definition.
            for leftover in self._partial.iterdir():
                leftover.unlink(missing_ok=True)

        try:
            await trio.to_thread.run_sync(prepare)
        except OSError as exc:
            raise LocalStoreUnavailable(
                f"cannot prepare blob directory {self.root}: {exc}"
            ) from exc

    def _path(self, key: str) -> Path:
        return self._objects / check_key(key)

    async def put(self, key: str, source: Path | bytes, *, content_type: str) -> None:
        target = self._path(key)
        partial = self._partial / secrets.token_hex(8)

        def write() -> None:
            try:
                with open(partial, "xb", opener=private_opener) as out:
                    if isinstance(source, bytes):
                        out.write(source)
                    else:
                        with open(source, "rb") as src:
                            shutil.copyfileobj(src, out, 1024 * 1024)
                    out.flush()
                    os.fsync(out.fileno())
                make_private_dir(target.parent)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)

        try:
            await trio.to_thread.run_sync(write)
        except OSError as exc:
            raise StoreUnavailable(f"blob write failed: {exc}") from exc

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> ThreadedReader:
        path = self._path(key)

        def opened() -> tuple[object, int]:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the reader
            try:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(start)
            except BaseException:
                handle.close()
                raise
            return handle, size

        try:
            handle, size = await trio.to_thread.run_sync(opened)
        except FileNotFoundError as exc:
            raise BlobNotFound(f"no blob {key}") from exc
        except OSError as exc:
            raise StoreUnavailable(f"blob open failed: {exc}") from exc
        stop = size if end is None else min(end, size)
        return ThreadedReader(handle, max(0, stop - start), errors=(OSError,))  # type: ignore[arg-type]

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            return (await trio.to_thread.run_sync(path.stat)).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"blob stat failed: {exc}") from exc

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await trio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
        except OSError as exc:
            raise StoreUnavailable(f"blob delete failed: {exc}") from exc
