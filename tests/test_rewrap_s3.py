"""kmsenvelope.aws.rewrap_object on the local S3 and KMS: a large object's body stays in S3 (ranged
UploadPartCopy), metadata and tags come along, and the result decrypts with the new key only.
"""

from __future__ import annotations

import os
import uuid

import pytest
from botocore.exceptions import ClientError

from kmsenvelope import Envelope, KmsKeyring, RawAesKeyring, Suite
from kmsenvelope.aws import rewrap_object
from kmsenvelope.errors import NoUsableKeyError, PolicyError
from kmsenvelope.testing import LocalAws

MIB = 1024 * 1024
CONTEXT = {"bucket": "data", "purpose": "rewrap-s3"}


def _bucket(local_aws: LocalAws, region: str) -> str:
    name = f"rewrap-{uuid.uuid4().hex[:12]}"
    client = local_aws.client("s3", region)
    if region == "us-east-1":
        client.create_bucket(Bucket=name)
    else:
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return name


def _s3_bytes(local_aws: LocalAws) -> int:
    """Bytes that went through the client to or from S3 since the last reset (bodies both ways)."""
    return sum(r.request_bytes + r.response_bytes for r in local_aws.requests(service="s3"))


def test_64_mib_object_moves_to_another_region_without_its_body(local_aws: LocalAws) -> None:
    supplier = local_aws.client_supplier()
    old_key, new_key = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    old = KmsKeyring(old_key, client_supplier=supplier)
    new = KmsKeyring(new_key, client_supplier=supplier)
    plaintext = os.urandom(64 * MIB)
    message = Envelope(old).encrypt(plaintext, CONTEXT)
    source, dest = local_aws.client("s3", "us-east-1"), local_aws.client("s3", "eu-west-1")
    src_bucket, dst_bucket = _bucket(local_aws, "us-east-1"), _bucket(local_aws, "eu-west-1")
    source.put_object(
        Bucket=src_bucket,
        Key="big.enc",
        Body=message,
        Metadata={"owner": "team-a"},
        ContentType="application/octet-stream",
        Tagging="class=secret&team=a",
    )
    local_aws.reset()

    result = rewrap_object(
        source,
        src_bucket,
        "big.enc",
        old,
        new,
        dest_bucket=dst_bucket,
        dest_key="moved.enc",
        dest_client=dest,
    )

    moved_through_client = _s3_bytes(local_aws)
    assert moved_through_client < 16 * MIB, moved_through_client
    assert result.copied_in_s3 > 48 * MIB and result.uploaded_bytes < 6 * MIB
    assert sorted(r.operation for r in local_aws.requests()) == ["Decrypt", "Encrypt"]
    copies = [r for r in local_aws.requests(service="s3") if r.region == "eu-west-1" and r.request_bytes == 0]
    assert copies, "the body was copied inside S3"

    head = dest.head_object(Bucket=dst_bucket, Key="moved.enc")
    assert head["Metadata"] == {"owner": "team-a"}
    assert head["ContentType"] == "application/octet-stream"
    assert head["ContentLength"] == result.size == len(message)
    tags = dest.get_object_tagging(Bucket=dst_bucket, Key="moved.enc")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("class", "secret"), ("team", "a")]
    moved = dest.get_object(Bucket=dst_bucket, Key="moved.enc")["Body"].read()
    header = Envelope(new).parse_header(moved)
    assert moved[header.size :] == message[Envelope(old).parse_header(message).size :]
    assert Envelope(new).decrypt(moved, CONTEXT) == plaintext
    with pytest.raises(NoUsableKeyError):
        Envelope(old).decrypt(moved)


def test_small_objects_in_place_and_signed_large_objects_stream(local_aws: LocalAws) -> None:
    s3 = local_aws.client("s3", "us-east-1")
    bucket = _bucket(local_aws, "us-east-1")
    old, new = RawAesKeyring("ns", "old", bytes(32)), RawAesKeyring("ns", "new", bytes(range(32)))
    small = Envelope(old).encrypt(b"small object", CONTEXT)
    s3.put_object(Bucket=bucket, Key="small", Body=small, Metadata={"m": "1"})
    result = rewrap_object(s3, bucket, "small", old, new)
    assert (result.bucket, result.key, result.copied_in_s3) == (bucket, "small", 0)
    replaced = s3.get_object(Bucket=bucket, Key="small")
    assert replaced["Metadata"] == {"m": "1"}
    assert Envelope(new).decrypt(replaced["Body"].read(), CONTEXT) == b"small object"

    signed = Envelope(old, suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384)
    plaintext = os.urandom(7 * MIB)
    s3.put_object(Bucket=bucket, Key="signed", Body=signed.encrypt(plaintext))
    with pytest.raises(PolicyError, match="resign"):
        rewrap_object(s3, bucket, "signed", old, new, multipart_threshold=6 * MIB)
    result = rewrap_object(
        s3, bucket, "signed", old, new, resign=True, multipart_threshold=6 * MIB, part_size=5 * MIB
    )
    assert result.copied_in_s3 == 0 and result.uploaded_bytes == result.size
    assert Envelope(new).decrypt(s3.get_object(Bucket=bucket, Key="signed")["Body"].read()) == plaintext
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_source_changed_midway_aborts_the_upload(local_aws: LocalAws) -> None:
    s3 = local_aws.client("s3", "us-east-1")
    bucket = _bucket(local_aws, "us-east-1")
    old = RawAesKeyring("ns", "old", bytes(32))
    s3.put_object(Bucket=bucket, Key="obj", Body=Envelope(old).encrypt(os.urandom(13 * MIB)))

    class SwappingKeyring(RawAesKeyring):
        """Replaces the source object while the rewrap is between its header read and the copy."""

        def on_encrypt(self, materials):  # type: ignore[no-untyped-def]
            s3.put_object(Bucket=bucket, Key="obj", Body=Envelope(old).encrypt(os.urandom(13 * MIB)))
            return super().on_encrypt(materials)

    swapping = SwappingKeyring("ns", "new", bytes(range(32)))
    with pytest.raises((ClientError, PolicyError)):
        rewrap_object(s3, bucket, "obj", old, swapping, dest_key="copy", multipart_threshold=6 * MIB)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="copy")
