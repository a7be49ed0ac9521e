"""The bulk jobs' parts: what keyrings carry when pickled, checkpoint files, reports, rate sharing."""

from __future__ import annotations

import json
import os
import pickle

import boto3
import pytest

from kmsenvelope import Envelope, KmsKeyring, MultiKeyring, RawAesKeyring
from kmsenvelope.aws.clients import ClientSupplier
from kmsenvelope.bulk import FileCheckpoint, JobReport, TaskTally
from kmsenvelope.bulk.checkpoint import decode_key, encode_key
from kmsenvelope.bulk.throttle import RateLimiter, is_throttling, share_rate
from kmsenvelope.errors import EdkFailure, NoUsableKeyError


def test_a_pickled_raw_keyring_carries_its_key() -> None:
    keyring = RawAesKeyring("ns", "name", os.urandom(32))
    message = Envelope(keyring).encrypt(b"secret", {"a": "b"})
    copy = pickle.loads(pickle.dumps(keyring))
    assert Envelope(copy).decrypt(message, {"a": "b"}) == b"secret"


def test_a_pickled_raw_rsa_keyring_carries_its_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from kmsenvelope import RawRsaKeyring

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    keyring = RawRsaKeyring("ns", "rsa", private_key=pem, padding="OAEP-SHA1")
    message = Envelope(keyring).encrypt(b"secret")
    copy = pickle.loads(pickle.dumps(keyring))
    assert Envelope(copy).decrypt(message) == b"secret" and repr(copy) == repr(keyring)


def test_a_pickled_kms_keyring_carries_no_credentials() -> None:
    session = boto3.session.Session(
        aws_access_key_id="AKIAPROBEPROBEPROBE",
        aws_secret_access_key="probe-secret-value",
        region_name="eu-west-1",
    )
    arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    supplier = ClientSupplier(session=session, endpoint_url="http://127.0.0.1:1")
    supplier("eu-west-1")  # a client is cached, with its credentials
    data = pickle.dumps(MultiKeyring(KmsKeyring(arn, client_supplier=supplier)))
    assert b"AKIAPROBE" not in data and b"probe-secret-value" not in data
    copy = pickle.loads(data)
    assert copy.generator.key_ids == (arn,)
    assert copy.generator._supplier.endpoint_url == "http://127.0.0.1:1"
    assert copy.generator._supplier.regions == ()


def test_file_checkpoint_keeps_the_last_state_and_ignores_a_torn_line(tmp_path) -> None:
    path = tmp_path / "c"
    checkpoint = FileCheckpoint(path)
    checkpoint.save("job", 0, {"done": False, "last_key": encode_key({"pk": {"B": b"\x00\xff"}})})
    checkpoint.save("job", 1, {"done": True})
    checkpoint.save("other", 0, {"done": True})
    checkpoint.save("job", 0, {"done": False, "last_key": encode_key({"pk": {"S": "x"}, "n": {"N": "1"}})})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('\n{"job": "job", "task": 0, "sta')  # an entry torn by a crash
    states = checkpoint.load("job")
    assert states[1] == {"done": True}
    assert decode_key(states[0]["last_key"]) == {"pk": {"S": "x"}, "n": {"N": "1"}}
    assert decode_key(encode_key({"pk": {"B": b"\x00\xff"}})) == {"pk": {"B": b"\x00\xff"}}
    checkpoint.reset("job")
    assert checkpoint.load("job") == {} and checkpoint.load("other") == {0: {"done": True}}


def test_report_sums_tasks_and_serializes() -> None:
    a, b = TaskTally(read=10, written=4, skipped=6, kms_calls=3), TaskTally(read=5, written=5, retries=2)
    a.fail('{"pk": {"S": "x"}}', "LegacyItemError: could not verify")
    a.saw("legacy")
    b.saw("legacy")
    report = JobReport.combine("job", [a, b], elapsed=2.0, engine="local", dry_run=False)
    assert (report.items_read, report.items_written, report.items_failed, report.tasks) == (15, 9, 1, 2)
    assert report.items_per_second == 7.5 and not report.ok
    decoded = json.loads(report.to_json())
    assert decoded["formats"] == {"legacy": 2}
    assert decoded["failures"] == [
        {"key": '{"pk": {"S": "x"}}', "reason": "LegacyItemError: could not verify"}
    ]
    with pytest.raises(AttributeError):
        report.items_read = 0  # type: ignore[misc]


def test_rate_is_shared_and_paced() -> None:
    assert share_rate(100, 4) == 25 and share_rate(None, 4) is None
    now = [0.0]
    limiter = RateLimiter(10.0, clock=lambda: now[0])
    limiter.acquire()  # the first item goes at once
    slept = []
    import kmsenvelope.bulk.throttle as throttle

    original = throttle.time.sleep
    throttle.time.sleep = lambda s: (slept.append(s), now.__setitem__(0, now[0] + s))  # type: ignore[assignment]
    try:
        limiter.acquire()
    finally:
        throttle.time.sleep = original  # type: ignore[assignment]
    assert slept and sum(slept) == pytest.approx(0.1)


def test_kms_throttling_is_recognised_through_keyring_errors() -> None:
    failure = EdkFailure(
        "aws-kms", "arn", "throttled by AWS KMS; gave up after 3 attempts (ThrottlingException)"
    )
    assert is_throttling(NoUsableKeyError("no key", [failure]))
    assert not is_throttling(NoUsableKeyError("no key", [EdkFailure("aws-kms", "arn", "access denied")]))


def test_import_kmsenvelope_bulk_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import kmsenvelope, kmsenvelope.bulk, sys; "
        "print(any(m.split('.')[0] in ('dask', 'distributed', 'boto3', 'botocore') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_rewrap_only_when_the_configs_differ_in_their_keyring_alone() -> None:
    from kmsenvelope.bulk.targets import ConfigRecipe
    from kmsenvelope.dynamodb import DEFAULT_SUITE, SIGNING_SUITE

    from ._dynamodb_env import config

    old, new = RawAesKeyring("t", "old", os.urandom(32)), RawAesKeyring("t", "new", os.urandom(32))
    source = ConfigRecipe.of(config("orders", keyring=old))
    assert source.same_except_keyring(ConfigRecipe.of(config("orders", keyring=new, suite=DEFAULT_SUITE)))
    assert not source.same_except_keyring(ConfigRecipe.of(config("orders", keyring=new, suite=SIGNING_SUITE)))
    assert not source.same_except_keyring(
        ConfigRecipe.of(config("orders", keyring=new, allowed_unsigned=["counter", "note", "x"]))
    )
    assert not source.same_except_keyring(ConfigRecipe.of(config("other", keyring=new)))
    rebuilt = pickle.loads(pickle.dumps(source)).build()
    assert dict(rebuilt.actions) == dict(config("orders", keyring=old).actions)
    assert rebuilt.allowed_unsigned == ("counter", "note")
