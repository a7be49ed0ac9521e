"""Rewrap an S3 object that is an ESDK message, leaving its body in S3.

Small objects are read, rewrapped and written whole. For a large object of an unsigned suite only the
header and the first few MiB travel through the client: the new object is a multipart upload whose
first part is the new header followed by enough body bytes to make the 5 MiB minimum part size, and
whose other parts are ``UploadPartCopy`` byte ranges of the old object, copied inside S3. Large
objects of signed suites are streamed through (the new signature covers every byte) in parts of
``part_size``, in bounded memory. Metadata, content headers and tags come along; the destination may
be another bucket, region or account (``dest_client``), which must be able to read the source.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError, PolicyError
from ..materials.protocols import Keyring, MaterialsManager
from ..message.codec import TruncatedInputError
from ..message.header import DecryptLimits, MessageHeader, parse_header
from ..rewrapping import check_signing_options, rewrap, rewrap_header, rewrap_stream
from ..suites import CommitmentPolicy

__all__ = ["S3RewrapResult", "rewrap_object"]

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's smallest part, except the last (``UploadPart``)."""
MAX_COPY_PART_SIZE = 5 * 1024**3
"""S3's largest part (``UploadPartCopy`` too)."""
_COPIED_ATTRIBUTES = (
    "ContentType",
    "ContentEncoding",
    "ContentDisposition",
    "ContentLanguage",
    "CacheControl",
    "Metadata",
)


@dataclass(frozen=True)
class S3RewrapResult:
    """Where the rewrapped object went and how many bytes went where."""

    bucket: str
    key: str
    version_id: str | None
    size: int
    """Length of the new object."""
    uploaded_bytes: int
    """Bytes the client sent to S3 (the new header and first part, or the whole object)."""
    copied_in_s3: int
    """Body bytes copied inside S3 with ``UploadPartCopy``."""
    header: MessageHeader = field(repr=False)


def rewrap_object(
    s3_client: Any,
    bucket: str,
    key: str,
    old: Keyring | MaterialsManager,
    new: Keyring,
    *,
    dest_bucket: str | None = None,
    dest_key: str | None = None,
    dest_client: Any = None,
    context: Mapping[str, str] | None = None,
    keep_old: bool = False,
    resign: bool = False,
    commitment_policy: CommitmentPolicy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
    limits: DecryptLimits | None = None,
    multipart_threshold: int = 16 * 1024 * 1024,
    copy_part_size: int = 1024**3,
    part_size: int = 8 * 1024 * 1024,
) -> S3RewrapResult:
    """Rewrap the ESDK message in ``s3://bucket/key`` (see :func:`kmsenvelope.rewrap`) into
    ``s3://dest_bucket/dest_key`` (default: the same object, replaced).

    ``s3_client`` reads the source; ``dest_client`` (default ``s3_client``) writes the destination and
    copies body ranges from the source. Objects up to ``multipart_threshold`` bytes are rewrapped in
    memory. The source is pinned by its ETag (and version, if versioned): if it changes midway, S3
    refuses the copy and the half-written upload is aborted. The body copied inside S3 is not read
    by the client; its frames stay authenticated, so readers reject a tampered one.
    """
    if not multipart_threshold >= 6 * 1024 * 1024:
        raise ConfigurationError("multipart_threshold must be at least 6 MiB")
    if not MIN_PART_SIZE <= copy_part_size <= MAX_COPY_PART_SIZE:
        raise ConfigurationError("copy_part_size must be between 5 MiB and 5 GiB")
    if not MIN_PART_SIZE <= part_size <= MAX_COPY_PART_SIZE:
        raise ConfigurationError("part_size must be between 5 MiB and 5 GiB")
    limits = limits or DecryptLimits()
    options: dict[str, Any] = {
        "context": context,
        "keep_old": keep_old,
        "resign": resign,
        "commitment_policy": commitment_policy,
        "limits": limits,
    }
    dest_client = s3_client if dest_client is None else dest_client
    dest_bucket = bucket if dest_bucket is None else dest_bucket
    dest_key = key if dest_key is None else dest_key
    source = _Source(s3_client, bucket, key)
    attributes = source.attributes()
    target = _Target(dest_client, dest_bucket, dest_key, attributes)

    if source.size <= multipart_threshold:
        message = rewrap(source.read(0, source.size), old, new, **options)
        response = target.put(message)
        header = parse_header(message, limits)
        return S3RewrapResult(
            dest_bucket, dest_key, response.get("VersionId"), len(message), len(message), 0, header
        )

    head = source.read_header(limits)
    check_signing_options(head.suite, keep_old=keep_old, resign=resign)  # before any upload starts
    if head.suite.signing:
        return _stream_through(source, target, old, new, options, part_size)
    plan = rewrap_header(head, old, new, **options)
    new_header = plan.header
    first_end = min(source.size, head.size + max(0, MIN_PART_SIZE - len(new_header)))
    first_part = new_header + source.read(head.size, first_end)
    upload = target.start()
    try:
        upload.part(first_part)
        copied = 0
        start = first_end
        while start < source.size:
            end = min(source.size, start + copy_part_size)
            if 0 < source.size - end < MIN_PART_SIZE:
                end = source.size  # no short part before the last one
            upload.copy(source, start, end)
            copied += end - start
            start = end
        response = upload.complete()
    except BaseException:
        upload.abort()
        raise
    size = len(first_part) + copied
    header = parse_header(new_header, limits)
    return S3RewrapResult(
        dest_bucket, dest_key, response.get("VersionId"), size, len(first_part), copied, header
    )


def _stream_through(
    source: _Source, target: _Target, old: Any, new: Any, options: dict[str, Any], part_size: int
) -> S3RewrapResult:
    body = source.stream()
    upload = target.start()
    writer = _PartWriter(upload, part_size)
    try:
        header = rewrap_stream(body, writer, old, new, **options)  # type: ignore[arg-type]
        writer.flush()
        response = upload.complete()
    except BaseException:
        upload.abort()
        raise
    finally:
        body.close()
    return S3RewrapResult(
        target.bucket, target.key, response.get("VersionId"), writer.total, writer.total, 0, header
    )


class _Source:
    """The source object, pinned by the ETag (and version) seen first."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.head = client.head_object(Bucket=bucket, Key=key)
        self.size = int(self.head["ContentLength"])
        self.etag = str(self.head["ETag"])
        version = self.head.get("VersionId")
        self.version = version if version and version != "null" else None
        pin: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if self.version:
            pin["VersionId"] = self.version
        self._pin = pin

    def attributes(self) -> dict[str, Any]:
        out = {name: self.head[name] for name in _COPIED_ATTRIBUTES if self.head.get(name)}
        storage_class = self.head.get("StorageClass")
        if storage_class:
            out["StorageClass"] = storage_class
        tags = self.client.get_object_tagging(**self._pin).get("TagSet", [])
        if tags:
            out["Tagging"] = urllib.parse.urlencode([(t["Key"], t["Value"]) for t in tags])
        return out

    def read(self, start: int, end: int) -> bytes:
        if start >= end:
            return b""
        response = self.client.get_object(**self._pin, IfMatch=self.etag, Range=f"bytes={start}-{end - 1}")
        data = response["Body"].read()
        if len(data) != end - start:
            raise PolicyError(f"s3://{self.bucket}/{self.key} changed while it was being rewrapped")
        return bytes(data)

    def read_header(self, limits: DecryptLimits) -> MessageHeader:
        want = 64 * 1024
        while True:
            data = self.read(0, min(want, self.size))
            try:
                return parse_header(data, limits)
            except TruncatedInputError:
                if want >= self.size or want > limits.max_header_size:
                    raise
                want *= 4

    def stream(self) -> Any:
        return self.client.get_object(**self._pin, IfMatch=self.etag)["Body"]

    def copy_source(self) -> dict[str, str]:
        return dict(self._pin)


class _Target:
    def __init__(self, client: Any, bucket: str, key: str, attributes: dict[str, Any]) -> None:
        self.client, self.bucket, self.key, self.attributes = client, bucket, key, attributes

    def put(self, body: bytes) -> Any:
        return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, **self.attributes)

    def start(self) -> _Upload:
        response = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self.attributes)
        return _Upload(self, str(response["UploadId"]))


class _Upload:
    def __init__(self, target: _Target, upload_id: str) -> None:
        self._target = target
        self._id = upload_id
        self._parts: list[dict[str, Any]] = []

    def _args(self) -> dict[str, Any]:
        number = len(self._parts) + 1
        return {
            "Bucket": self._target.bucket,
            "Key": self._target.key,
            "UploadId": self._id,
            "PartNumber": number,
        }

    def part(self, body: bytes) -> None:
        args = self._args()
        response = self._target.client.upload_part(Body=body, **args)
        self._parts.append({"PartNumber": args["PartNumber"], "ETag": response["ETag"]})

    def copy(self, source: _Source, start: int, end: int) -> None:
        args = self._args()
        response = self._target.client.upload_part_copy(
            CopySource=source.copy_source(),
            CopySourceRange=f"bytes={start}-{end - 1}",
            CopySourceIfMatch=source.etag,
            **args,
        )
        self._parts.append({"PartNumber": args["PartNumber"], "ETag": response["CopyPartResult"]["ETag"]})

    def complete(self) -> Any:
        return self._target.client.complete_multipart_upload(
            Bucket=self._target.bucket,
            Key=self._target.key,
            UploadId=self._id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        # The original failure is the one to report; a failed abort leaves parts S3 lifecycle rules expire.
        with contextlib.suppress(Exception):
            self._target.client.abort_multipart_upload(
                Bucket=self._target.bucket, Key=self._target.key, UploadId=self._id
            )


class _PartWriter:
    """A write-only file that uploads each ``part_size`` bytes as one part."""

    def __init__(self, upload: _Upload, part_size: int) -> None:
        self._upload = upload
        self._part_size = part_size
        self._buffer = bytearray()
        self.total = 0

    def write(self, data: bytes | memoryview) -> int:
        self._buffer += data
        self.total += len(data)
        while len(self._buffer) >= self._part_size:
            self._upload.part(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]
        return len(data)

    def flush(self) -> None:
        if self._buffer or not self.total:
            self._upload.part(bytes(self._buffer))
            self._buffer.clear()
