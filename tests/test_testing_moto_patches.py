"""Each moto patch in kmsenvelope.testing, shown with raw boto3: AWS behaviour with it, moto's without it."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from kmsenvelope.testing import LocalAws, moto_patches


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_patches_are_named_and_installed(local_aws: LocalAws) -> None:
    assert [p.name for p in moto_patches.PATCHES] == [
        "MRK_CIPHERTEXT",
        "RSA_DECRYPT",
        "KEY_STATE",
        "S3_COPY_SOURCE_IF_MATCH",
    ]
    assert all(p.aws_behaviour for p in moto_patches.PATCHES)
    assert moto_patches.active()


# -- 1. MRK_CIPHERTEXT ----------------------------------------------------------------------------


def test_mrk_ciphertext_decrypts_in_every_region_holding_the_key(local_aws: LocalAws) -> None:
    mrk = local_aws.create_mrk("us-east-1", ["ap-southeast-2", "eu-west-1"])
    blob = local_aws.client("kms", "us-east-1").encrypt(
        KeyId=mrk.primary, Plaintext=b"k" * 32, EncryptionContext={"a": "b"}
    )["CiphertextBlob"]
    for region in ("us-east-1", "ap-southeast-2", "eu-west-1"):
        out = local_aws.client("kms", region).decrypt(
            KeyId=mrk.arn(region), CiphertextBlob=blob, EncryptionContext={"a": "b"}
        )
        assert (out["Plaintext"], out["KeyId"]) == (b"k" * 32, mrk.arn(region))
    # A region without a copy of the key cannot decrypt.
    with pytest.raises(ClientError):
        local_aws.client("kms", "sa-east-1").decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})


def test_without_patch_moto_cannot_decrypt_mrk_ciphertexts(local_aws: LocalAws) -> None:
    mrk = local_aws.create_mrk("us-east-1")
    kms = local_aws.client("kms", "us-east-1")
    with moto_patches.suspended():
        blob = kms.encrypt(KeyId=mrk.primary, Plaintext=b"k" * 32)["CiphertextBlob"]
        with pytest.raises(ClientError):
            kms.decrypt(KeyId=mrk.primary, CiphertextBlob=blob)
    assert moto_patches.active()


# -- 2. RSA_DECRYPT -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "digest"), [("RSAES_OAEP_SHA_256", hashes.SHA256), ("RSAES_OAEP_SHA_1", hashes.SHA1)]
)
def test_rsa_decrypt_of_public_key_ciphertext(local_aws: LocalAws, algorithm: str, digest: type) -> None:
    key = local_aws.create_rsa_key("us-west-2")
    public = serialization.load_pem_public_key(key.public_key_pem)
    secret = os.urandom(80)
    ciphertext = public.encrypt(
        secret, padding.OAEP(mgf=padding.MGF1(digest()), algorithm=digest(), label=None)
    )  # type: ignore[union-attr]
    kms = local_aws.client("kms", "us-west-2")
    out = kms.decrypt(KeyId=key.arn, CiphertextBlob=ciphertext, EncryptionAlgorithm=algorithm)
    assert (out["Plaintext"], out["KeyId"], out["EncryptionAlgorithm"]) == (secret, key.arn, algorithm)

    with pytest.raises(ClientError) as info:
        kms.decrypt(KeyId=key.arn, CiphertextBlob=ciphertext)  # SYMMETRIC_DEFAULT on an RSA key
    assert error_code(info) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as info:
        kms.decrypt(KeyId=key.arn, CiphertextBlob=bytes(256), EncryptionAlgorithm=algorithm)
    assert error_code(info) == "InvalidCiphertextException"


def test_without_patch_moto_cannot_rsa_decrypt(local_aws: LocalAws) -> None:
    key = local_aws.create_rsa_key("us-west-2")
    public = serialization.load_pem_public_key(key.public_key_pem)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    ciphertext = public.encrypt(b"secret", oaep)  # type: ignore[union-attr]
    with moto_patches.suspended(), pytest.raises(ClientError):
        local_aws.client("kms", "us-west-2").decrypt(
            KeyId=key.arn, CiphertextBlob=ciphertext, EncryptionAlgorithm="RSAES_OAEP_SHA_256"
        )


# -- 3. KEY_STATE ---------------------------------------------------------------------------------


def test_disabled_key_is_refused_until_enabled(local_aws: LocalAws) -> None:
    arn = local_aws.create_key("us-east-1")
    kms = local_aws.client("kms", "us-east-1")
    blob = kms.encrypt(KeyId=arn, Plaintext=b"x")["CiphertextBlob"]
    local_aws.disable_key(arn)
    for call in (
        lambda: kms.encrypt(KeyId=arn, Plaintext=b"x"),
        lambda: kms.generate_data_key(KeyId=arn, NumberOfBytes=32),
        lambda: kms.decrypt(CiphertextBlob=blob),
        lambda: kms.decrypt(KeyId=arn, CiphertextBlob=blob),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_code(info) == "DisabledException"
        assert info.value.response["Error"]["Message"] == f"{arn} is disabled."
    local_aws.enable_key(arn)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_key_pending_deletion_is_refused(local_aws: LocalAws) -> None:
    arn = local_aws.create_key("us-east-1")
    kms = local_aws.client("kms", "us-east-1")
    blob = kms.encrypt(KeyId=arn, Plaintext=b"x")["CiphertextBlob"]
    local_aws.schedule_key_deletion(arn)
    for call in (lambda: kms.decrypt(CiphertextBlob=blob), lambda: kms.encrypt(KeyId=arn, Plaintext=b"x")):
        with pytest.raises(ClientError) as info:
            call()
        assert error_code(info) == "KMSInvalidStateException"
        assert "pending deletion" in info.value.response["Error"]["Message"]


def test_without_patch_moto_uses_disabled_keys(local_aws: LocalAws) -> None:
    arn = local_aws.create_key("us-east-1")
    local_aws.disable_key(arn)
    with moto_patches.suspended():
        assert local_aws.client("kms", "us-east-1").encrypt(KeyId=arn, Plaintext=b"x")["CiphertextBlob"]


def test_suspended_is_reverted_even_on_error(local_aws: LocalAws) -> None:
    with pytest.raises(RuntimeError), moto_patches.suspended():
        assert not moto_patches.active()
        raise RuntimeError("boom")
    assert moto_patches.active()


# -- 4. S3_COPY_SOURCE_IF_MATCH -------------------------------------------------------------------


def test_upload_part_copy_checks_the_source_etag(local_aws: LocalAws) -> None:
    s3 = local_aws.client("s3", "us-east-1")
    bucket = f"patch-{os.urandom(6).hex()}"
    s3.create_bucket(Bucket=bucket)
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789" * 100)["ETag"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]

    def copy(if_match: str) -> dict[str, object]:
        return s3.upload_part_copy(  # type: ignore[no-any-return]
            Bucket=bucket,
            Key="dst",
            UploadId=upload,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange="bytes=10-19",
            CopySourceIfMatch=if_match,
        )

    assert copy(etag)["CopyPartResult"]
    with pytest.raises(ClientError) as refused:
        copy('"0123456789abcdef0123456789abcdef"')
    assert error_code(refused) == "PreconditionFailed"
    with moto_patches.suspended():
        assert copy('"0123456789abcdef0123456789abcdef"')["CopyPartResult"]  # moto alone ignores it
    s3.abort_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload)


def test_recorder_counts_body_bytes_both_ways(local_aws: LocalAws) -> None:
    s3 = local_aws.client("s3", "us-east-1")
    bucket = f"bytes-{os.urandom(6).hex()}"
    s3.create_bucket(Bucket=bucket)
    local_aws.reset()
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 1000)
    s3.get_object(Bucket=bucket, Key="k", Range="bytes=0-99")["Body"].read()
    put, get = local_aws.requests(service="s3")
    assert (put.request_bytes, get.request_bytes, get.response_bytes) == (1000, 0, 100)
