"""Blobs in S3-compatible storage (MinIO, rclone, AWS), through boto3 in worker threads.

boto3 is blocking, so every call runs in ``trio.to_thread``; its deadlines
are botocore's connect and read timeouts with a bounded number of retries
(a thread cannot be cancelled mid-call, and abandoning one could let a PUT
land after we reported failure). Every botocore error becomes
``StoreUnavailable`` here, at the adapter boundary; a missing object is
``BlobNotFound``.

``put`` is a single PUT (or, for large files, a multipart upload that boto3
aborts on failure); S3 makes an object visible only once it is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import trio

from sandcat.blobs.reader import ThreadedReader
from sandcat.blobs.store import BlobNotFound, check_key
from sandcat.errors import BackendFailure, ConfigError, StoreUnavailable, ignore_failure

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

_CONNECT_TIMEOUT_S = 5
_READ_TIMEOUT_S = 30
_ATTEMPTS = 2
#: Files above this go up in parts (boto3's managed transfer).
_MULTIPART_BYTES = 16 * 1024 * 1024
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where the bucket is: parsed from ``s3://KEY:SECRET@host:port/bucket[?tls=1]``."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"

    def __repr__(self) -> str:  # never print the secret
        return f"S3Location({self.endpoint!r}, bucket={self.bucket!r})"


def parse_s3_url(url: str, *, key: str = "backends.s3_url") -> S3Location:
    """Parse the ``SANDCAT_S3_URL`` form; ``ConfigError`` (without the secret) if it is bad."""
    shown = "s3://***"
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ConfigError(key, shown, "must start with s3://")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(key, shown, "bad port") from exc
    bucket = parts.path.strip("/")
    if not (parts.username and parts.password and parts.hostname and bucket):
        raise ConfigError(key, shown, "expected s3://KEY:SECRET@host:port/bucket")
    if "/" in bucket:
        raise ConfigError(key, shown, "the path must be just the bucket name")
    query = parse_qs(parts.query)
    tls = query.get("tls", ["0"])[-1] in {"1", "true", "yes"}
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    endpoint = f"{'https' if tls else 'http'}://{host}{'' if port is None else f':{port}'}"
    return S3Location(
        endpoint=endpoint,
        access_key=unquote(parts.username),
        secret_key=unquote(parts.password),
        bucket=bucket,
        region=query.get("region", ["us-east-1"])[-1],
    )


class S3BlobStore:
    def __init__(
        self, location: S3Location, *, on_failure: BackendFailure = ignore_failure
    ) -> None:
        import boto3
        from botocore.config import Config as BotoConfig
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            ReadTimeoutError,
        )

        self.location = location
        self._on_failure = on_failure
        self._timeouts = (ConnectTimeoutError, ReadTimeoutError)
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=location.endpoint,
            aws_access_key_id=location.access_key,
            aws_secret_access_key=location.secret_key,
            region_name=location.region,
            config=BotoConfig(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=_CONNECT_TIMEOUT_S,
                read_timeout=_READ_TIMEOUT_S,
                retries={"max_attempts": _ATTEMPTS, "mode": "standard"},
            ),
        )
        self._client_error = ClientError
        self._errors: tuple[type[BaseException], ...] = (BotoCoreError, ClientError, OSError)

    async def _call(self, fn: Callable[[], T], what: str) -> T:
        try:
            return await trio.to_thread.run_sync(fn)
        except self._errors as exc:
            if isinstance(exc, self._client_error) and self._missing(exc):
                raise BlobNotFound(f"no blob for {what}") from exc
            self._on_failure("s3", "timeout" if isinstance(exc, self._timeouts) else "error")
            raise StoreUnavailable(f"s3 {what} failed: {type(exc).__name__}") from exc

    def _missing(self, exc: Any) -> bool:
        return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING

    async def open_store(self) -> None:
        """Check the bucket is reachable, creating it if it does not exist."""
        bucket = self.location.bucket

        def ensure() -> None:
            try:
                self._client.head_bucket(Bucket=bucket)
            except self._client_error as exc:
                if not self._missing(exc):
                    raise
                self._client.create_bucket(Bucket=bucket)

        await self._call(ensure, f"bucket {bucket}")

    async def put(self, key: str, source: Path | bytes, *, content_type: str) -> None:
        check_key(key)
        bucket = self.location.bucket

        def upload() -> None:
            if isinstance(source, bytes):
                self._client.put_object(
                    Bucket=bucket, Key=key, Body=source, ContentType=content_type
                )
                return
            from boto3.s3.transfer import TransferConfig

            self._client.upload_file(
                str(source),
                bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=TransferConfig(
                    multipart_threshold=_MULTIPART_BYTES,
                    multipart_chunksize=_MULTIPART_BYTES,
                    use_threads=False,
                ),
            )

        await self._call(upload, "put")

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> ThreadedReader:
        check_key(key)
        bucket = self.location.bucket
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start > 0 or end is not None:
            if end is not None and end <= start:
                # An empty range: S3 cannot express it, but the object must exist.
                if await self.size(key) is None:
                    raise BlobNotFound(f"no blob {key}")
                return ThreadedReader(_Empty(), 0, errors=self._errors)
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"

        def get() -> Any:
            try:
                return self._client.get_object(**args)
            except self._client_error as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                    return None  # start is at or past the end: nothing to read
                raise

        reply = await self._call(get, "get")
        if reply is None:
            return ThreadedReader(_Empty(), 0, errors=self._errors)
        return ThreadedReader(reply["Body"], int(reply["ContentLength"]), errors=self._errors)

    async def size(self, key: str) -> int | None:
        check_key(key)
        bucket = self.location.bucket
        try:
            head = await self._call(
                lambda: self._client.head_object(Bucket=bucket, Key=key), "head"
            )
        except BlobNotFound:
            return None
        return int(head["ContentLength"])

    async def delete(self, key: str) -> None:
        check_key(key)
        bucket = self.location.bucket
        await self._call(lambda: self._client.delete_object(Bucket=bucket, Key=key), "delete")

    def presign_get(self, key: str, *, expires_s: int, content_type: str, disposition: str) -> str:
        return self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.location.bucket,
                "Key": check_key(key),
                "ResponseContentType": content_type,
                "ResponseContentDisposition": disposition,
            },
            ExpiresIn=expires_s,
        )

    def presign_put(self, key: str, *, expires_s: int, content_type: str, size: int) -> str:
        return self._client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.location.bucket,
                "Key": check_key(key),
                "ContentType": content_type,
                "ContentLength": size,
            },
            ExpiresIn=expires_s,
        )


class _Empty:
    def read(self, size: int, /) -> bytes:
        return b""

    def close(self) -> None:
        return None
