"""File storage: the blob store interface and its local and S3 implementations."""

from sandcat.blobs.local import LocalBlobStore
from sandcat.blobs.store import BlobNotFound, BlobReader, BlobStore, DirectBlobStore, check_key

__all__ = [
    "BlobNotFound",
    "BlobReader",
    "BlobStore",
    "DirectBlobStore",
    "LocalBlobStore",
    "check_key",
]
