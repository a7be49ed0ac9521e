"""End to end through Envelope: the global multi-Region scenario and what reaches KMS."""

from __future__ import annotations

from typing import Any

import boto3.session
import pytest
from botocore.config import Config

import kmsenvelope
from kmsenvelope import Envelope, KmsDiscoveryKeyring, KmsKeyring, KmsRsaKeyring, Suite
from kmsenvelope.aws import accounting
from kmsenvelope.errors import NoUsableKeyError
from kmsenvelope.testing import LocalAws

CONTEXT = {"tenant": "acme", "record": "42"}
PLAINTEXT = b"global payload " * 100


def dead_client(region: str) -> Any:
    """A KMS client whose endpoint refuses connections: the region is 'down'."""
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
    config = Config(retries={"mode": "standard", "max_attempts": 0}, connect_timeout=1)
    return session.client("kms", region_name=region, endpoint_url="http://127.0.0.1:9", config=config)


def test_global_mrk_scenario_survives_primary_region_outage(local_aws: LocalAws) -> None:
    mrk = local_aws.create_mrk("us-east-1", ["ap-southeast-2"])
    supplier = local_aws.client_supplier()
    ciphertext = Envelope(KmsKeyring(mrk.primary, client_supplier=supplier)).encrypt(PLAINTEXT, CONTEXT)
    assert [r.region for r in local_aws.requests("GenerateDataKey")] == ["us-east-1"]

    dead = dead_client("us-east-1")

    def us_east_1_is_down(region: str) -> Any:
        return dead if region == "us-east-1" else supplier(region)

    local_aws.reset()
    accounting.reset()
    for keyring in (
        KmsKeyring(mrk.arn("ap-southeast-2"), client_supplier=us_east_1_is_down),
        KmsDiscoveryKeyring("ap-southeast-2", client_supplier=us_east_1_is_down),
    ):
        assert Envelope(keyring).decrypt(ciphertext, CONTEXT) == PLAINTEXT

    # No call went to us-east-1: neither the server nor the client-side ledger saw one.
    decrypts = local_aws.requests("Decrypt")
    assert [(r.region, r.key_id) for r in decrypts] == [("ap-southeast-2", mrk.arn("ap-southeast-2"))] * 2
    assert {r.region for r in local_aws.requests(service=None)} == {"ap-southeast-2"}
    stats = kmsenvelope.stats()
    assert stats.count(region="us-east-1") == 0 and stats.count(region="ap-southeast-2", outcome="ok") == 2

    # The outage is real: the primary's own keyring cannot decrypt through the dead endpoint.
    with pytest.raises(NoUsableKeyError, match="could not connect"):
        Envelope(KmsKeyring(mrk.primary, client_supplier=us_east_1_is_down)).decrypt(ciphertext, CONTEXT)
    assert kmsenvelope.stats().count(region="us-east-1", outcome="EndpointConnectionError") == 1


@pytest.mark.parametrize(
    "suite", [Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384]
)
def test_context_sent_to_kms_is_the_message_context(local_aws: LocalAws, suite: Suite) -> None:
    key = local_aws.create_key("eu-west-1")
    envelope = Envelope(
        KmsKeyring(key, grant_tokens=["gt"], client_supplier=local_aws.client_supplier()), suite=suite
    )
    ciphertext = envelope.encrypt(PLAINTEXT, CONTEXT)
    header = envelope.parse_header(ciphertext)
    result = envelope.decrypt_with_header(ciphertext, CONTEXT)
    assert result.plaintext == PLAINTEXT

    (gdk,) = local_aws.requests("GenerateDataKey")
    (dec,) = local_aws.requests("Decrypt")
    # The signing suite adds aws-crypto-public-key to the context; KMS must see exactly the stored context.
    assert gdk.params["EncryptionContext"] == dict(header.encryption_context)
    assert dec.params["EncryptionContext"] == dict(header.encryption_context)
    assert ("aws-crypto-public-key" in header.encryption_context) is suite.signing
    assert dec.params["KeyId"] == key and gdk.params["GrantTokens"] == dec.params["GrantTokens"] == ["gt"]
    assert header.encrypted_data_keys[0].provider_info == key.encode()


def test_wrong_context_on_decrypt_is_rejected(local_aws: LocalAws) -> None:
    envelope = Envelope(KmsKeyring(local_aws.create_key(), client_supplier=local_aws.client_supplier()))
    ciphertext = envelope.encrypt(PLAINTEXT, CONTEXT)
    with pytest.raises(kmsenvelope.errors.KmsEnvelopeError):
        envelope.decrypt(ciphertext, {"tenant": "other", "record": "42"})


def test_kms_rsa_keyring_end_to_end(local_aws: LocalAws) -> None:
    key = local_aws.create_rsa_key("us-west-2")
    local_aws.reset()
    writer = Envelope(KmsRsaKeyring(key.arn, public_key=key.public_key_pem))
    ciphertext = writer.encrypt(PLAINTEXT, CONTEXT)
    assert local_aws.requests() == ()
    reader = Envelope(KmsRsaKeyring(key.arn, client_supplier=local_aws.client_supplier()))
    assert reader.decrypt(ciphertext, CONTEXT) == PLAINTEXT
    assert [(r.operation, r.key_id) for r in local_aws.requests()] == [("Decrypt", key.arn)]


def test_disabled_key_error_names_the_key(local_aws: LocalAws) -> None:
    key = local_aws.create_key("us-east-1")
    envelope = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    ciphertext = envelope.encrypt(PLAINTEXT, CONTEXT)
    local_aws.disable_key(key)
    with pytest.raises(NoUsableKeyError) as info:
        envelope.decrypt(ciphertext, CONTEXT)
    assert key in str(info.value) and "disabled" in str(info.value)
