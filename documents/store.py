"""A content-addressed store of evidence files: each file is written once, under its SHA-256.

    put(data, *, filename, declared_type) -> StoredDocument(sha256, size, media_type, ...)
    get(sha256) -> bytes            the bytes, their SHA-256 checked against their name
    exists(sha256) -> bool

`data` is bytes, a binary file (anything with .read) or an iterable of byte chunks. It is read in
bounded chunks, hashed and counted as it streams in, and refused as soon as it passes the size
limit: an unbounded upload never sits in memory. What the file is comes from its bytes
(documents/types.py), never from `filename` or `declared_type`. A second put of the same bytes
stores nothing new.

Settings (read at each call):
    DISBURSE_DOCUMENTS_DIR          local directory (default var/documents/ in the project)
    DISBURSE_DOCUMENTS_S3_BUCKET    if set, an S3-compatible store instead (the `s3` extra: boto3)
    DISBURSE_DOCUMENTS_S3_ENDPOINT  its endpoint URL (MinIO, Ceph, OSS...); unset means AWS S3
    DISBURSE_DOCUMENTS_MAX_BYTES    size limit per file (default 20 MiB)
Credentials and region of the S3 store come the usual AWS way (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, a profile, an instance role...).

Layout, both backends: `ab/cd/<sha256>` (the first two bytes of the hash as two levels). Local
files are written to a temporary file in `.tmp/` beside them, fsync'd, made read-only and renamed
into place atomically (and the directory fsync'd): a reader never sees half a file.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Optional, Union

from documents.errors import DocumentCorrupt, DocumentError, DocumentNotFound, SettingsError
from documents.names import sanitize_filename
from documents.types import HEAD_BYTES, TAIL_BYTES, Kind, detect

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_MAX_BYTES = 1024 * 1024 * 1024       # a setting above 1 GiB is a typo
CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")

Data = Union[bytes, bytearray, memoryview, BinaryIO, Iterable[bytes]]


@dataclass(frozen=True)
class StoredDocument:
    sha256: str
    size: int
    media_type: str          # from the bytes
    kind: str                # pdf | jpeg | png | ofd | xlsx | docx
    created: bool            # False when these bytes were already stored
    filename: str = ""       # sanitised (documents.names.sanitize_filename)
    declared_type: str = ""  # what the uploader said it was (informative only)


# ---------------------------------------------------------------------------------------- settings

def max_bytes(environ=None) -> int:
    env = os.environ if environ is None else environ
    raw = (env.get("DISBURSE_DOCUMENTS_MAX_BYTES") or "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or not 1 <= int(raw) <= MAX_MAX_BYTES:
        raise SettingsError(f"DISBURSE_DOCUMENTS_MAX_BYTES={raw[:40]!r}: expected a whole number of bytes "
                            f"from 1 to {MAX_MAX_BYTES}")
    return int(raw)


def documents_dir(environ=None) -> Path:
    env = os.environ if environ is None else environ
    raw = (env.get("DISBURSE_DOCUMENTS_DIR") or "").strip()
    return Path(raw) if raw else PROJECT / "var" / "documents"


def check_sha256(sha256: object) -> str:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise DocumentError("sha256", "not a SHA-256 (64 lowercase hexadecimal digits)")
    return sha256


def _relative(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


# ------------------------------------------------------------------------------------ streaming in

@dataclass
class _Ingested:
    sha256: str
    size: int
    head: bytes
    tail: bytes


def _chunks(data: Data, limit: int):
    """Chunks of `data`, never reading more than limit + 1 bytes of a file."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
        return
    if isinstance(data, str):
        raise DocumentError("content", "expected bytes or a binary file, not text")
    read = getattr(data, "read", None)
    if read is not None:
        taken = 0
        while True:
            chunk = read(min(CHUNK, limit + 1 - taken))
            if not chunk:
                return
            taken += len(chunk)
            yield chunk
            if taken > limit:
                return
    try:
        it = iter(data)
    except TypeError:
        raise DocumentError("content", "expected bytes, a binary file or an iterable of byte chunks") from None
    yield from it


def _ingest(data: Data, limit: int, sink: BinaryIO) -> _Ingested:
    h = hashlib.sha256()
    size = 0
    head = b""
    tail = b""
    for chunk in _chunks(data, limit):
        if isinstance(chunk, (bytearray, memoryview)):
            chunk = bytes(chunk)
        if not isinstance(chunk, bytes):
            raise DocumentError("content", "expected bytes, a binary file or an iterable of byte chunks")
        size += len(chunk)
        if size > limit:
            raise DocumentError("size", f"larger than the limit of {limit} bytes (DISBURSE_DOCUMENTS_MAX_BYTES)")
        h.update(chunk)
        sink.write(chunk)
        if len(head) < HEAD_BYTES:
            head += chunk[:HEAD_BYTES - len(head)]
        tail = (tail + chunk[-TAIL_BYTES:])[-TAIL_BYTES:]
    return _Ingested(h.hexdigest(), size, head, tail)


def _clean_declared(declared_type: object) -> str:
    if not isinstance(declared_type, str):
        return ""
    text = "".join(c for c in declared_type[:200] if unicodedata.category(c)[0] != "C")
    return text.strip()[:100]


def _stored(ing: _Ingested, kind: Kind, created: bool, filename: str, declared_type: object) -> StoredDocument:
    return StoredDocument(ing.sha256, ing.size, kind.media_type, kind.name, created,
                          sanitize_filename(filename), _clean_declared(declared_type))


# --------------------------------------------------------------------------------- local directory

class LocalStore:
    """Files under a directory, `ab/cd/<sha256>`, read-only once written."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        return self.root / _relative(check_sha256(sha256))

    def put(self, data: Data, *, filename: str = "", declared_type: str = "") -> StoredDocument:
        limit = max_bytes()
        tmp_dir = self.root / ".tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w+b") as f:
                ing = _ingest(data, limit, f)
                kind = detect(ing.head, ing.tail, ing.size, f)
                f.flush()
                os.fsync(f.fileno())
            final = self.root / _relative(ing.sha256)
            if final.exists() and _file_sha256(final) == ing.sha256:
                return _stored(ing, kind, False, filename, declared_type)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)                    # atomic; a damaged copy is replaced whole
            _fsync_dir(final.parent)
            return _stored(ing, kind, True, filename, declared_type)
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, sha256: str) -> bytes:
        path = self.path(sha256)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise DocumentNotFound("sha256", f"no document stored under {sha256}") from None
        return _verified(sha256, data)

    def exists(self, sha256: str) -> bool:
        try:
            return self.path(sha256).is_file()
        except DocumentError:
            return False


def _file_sha256(path: Path) -> Optional[str]:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _verified(sha256: str, data: bytes) -> bytes:
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DocumentCorrupt("sha256", f"the stored bytes do not match their name {sha256}: altered or damaged "
                                        "in storage; refused")
    return data


# ------------------------------------------------------------------------------ S3-compatible store

class S3Store:
    """Objects `ab/cd/<sha256>` in a bucket of an S3-compatible store (boto3, the `s3` extra)."""

    def __init__(self, bucket: str, endpoint_url: Optional[str] = None, client=None) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise SettingsError("DISBURSE_DOCUMENTS_S3_BUCKET is set but boto3 is not installed "
                                    "(pip install 'disburse[s3]')") from None
            config = Config(s3={"addressing_style": "path"} if endpoint_url else {},
                            retries={"max_attempts": 5, "mode": "standard"})
            client = boto3.client("s3", endpoint_url=endpoint_url or None, config=config)
        self.client = client

    def __repr__(self) -> str:
        return f"S3Store({self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    def key(self, sha256: str) -> str:
        return _relative(check_sha256(sha256))

    def _head(self, key: str) -> Optional[dict]:
        from botocore.exceptions import ClientError
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if _missing(e):
                return None
            raise

    def put(self, data: Data, *, filename: str = "", declared_type: str = "") -> StoredDocument:
        import base64
        limit = max_bytes()
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as f:
            ing = _ingest(data, limit, f)
            kind = detect(ing.head, ing.tail, ing.size, f)
            key = _relative(ing.sha256)
            head = self._head(key)
            if head is not None and head.get("ContentLength") == ing.size \
                    and (head.get("Metadata") or {}).get("sha256") == ing.sha256:
                return _stored(ing, kind, False, filename, declared_type)
            f.seek(0)
            # S3 checks the body against ChecksumSHA256, so nothing damaged in transit is kept (moto does
            # not check it; get() verifies the hash whatever the server did)
            self.client.put_object(Bucket=self.bucket, Key=key, Body=f, ContentLength=ing.size,
                                   ContentType=kind.media_type, Metadata={"sha256": ing.sha256},
                                   ChecksumSHA256=base64.b64encode(bytes.fromhex(ing.sha256)).decode())
        return _stored(ing, kind, True, filename, declared_type)

    def get(self, sha256: str) -> bytes:
        from botocore.exceptions import ClientError
        key = self.key(sha256)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if _missing(e):
                raise DocumentNotFound("sha256", f"no document stored under {sha256}") from None
            raise
        with obj["Body"] as body:
            data = body.read()
        return _verified(sha256, data)

    def exists(self, sha256: str) -> bool:
        try:
            key = self.key(sha256)
        except DocumentError:
            return False
        return self._head(key) is not None


def _missing(e) -> bool:
    err = getattr(e, "response", {}).get("Error", {})
    return str(err.get("Code")) in ("404", "NoSuchKey", "NotFound")


# ------------------------------------------------------------------------------------ the default

_stores: dict[tuple, object] = {}
_lock = threading.Lock()


def store(environ=None):
    """The store the settings name: S3 when DISBURSE_DOCUMENTS_S3_BUCKET is set, else the local
    directory. One instance per setting, shared by threads (boto3 clients are thread-safe)."""
    env = os.environ if environ is None else environ
    bucket = (env.get("DISBURSE_DOCUMENTS_S3_BUCKET") or "").strip()
    if bucket:
        endpoint = (env.get("DISBURSE_DOCUMENTS_S3_ENDPOINT") or "").strip() or None
        key: tuple = ("s3", bucket, endpoint)
    else:
        key = ("local", str(documents_dir(env)))
    with _lock:
        s = _stores.get(key)
        if s is None:
            s = S3Store(bucket, endpoint) if key[0] == "s3" else LocalStore(key[1])
            _stores[key] = s
    return s


def put(data: Data, *, filename: str = "", declared_type: str = "") -> StoredDocument:
    return store().put(data, filename=filename, declared_type=declared_type)


def get(sha256: str) -> bytes:
    return store().get(sha256)


def exists(sha256: str) -> bool:
    return store().exists(sha256)
