"""Content-addressed file storage for attachments: data_dir/blobs/<sha256[:2]>/<sha256>."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hub.contract.errors import NotFound


class BlobStore:
    def __init__(self, root: Path):
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store bytes once; returns their sha256. Written to a temp file and renamed, so a crash
        never leaves a half-written blob under a valid name. Not fsynced, like the SQLite store
        (synchronous=NORMAL): what a process crash leaves is whole; only a power loss can take the
        last moments' writes, of both."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{digest}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
        return digest

    def get(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is not stored") from None

    def size(self, sha256: str) -> int:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is not stored") from None

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()
