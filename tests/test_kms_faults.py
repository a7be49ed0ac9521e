"""KMS faults seen end to end through Envelope, on the local KMS (``local_aws`` fault injection).

* timeouts: a stalled Decrypt is retried; stalls on every attempt fail fast, on the client's clock;
* throttling storms: concurrent readers and writers through a burst of ThrottlingExceptions, with the
  client's accounting matching what the server received, and no failure cached;
* AccessDenied on one of several EDKs: decryption falls through to the next EDK's key;
* a regional outage: a reader holding a multi-Region key's replicas in two regions falls back to the
  other region, whether the outage shows as HTTP 500s, stalls or a dead endpoint.

``test_kms_retries.py`` covers the KMS keyring alone; these go through the whole decrypt path.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config

import kmsenvelope
from kmsenvelope import (
    CachingMaterials,
    Envelope,
    KmsDiscoveryKeyring,
    KmsKeyring,
    MultiKeyring,
)
from kmsenvelope.aws import accounting
from kmsenvelope.aws.clients import ClientSupplier
from kmsenvelope.errors import NoUsableKeyError
from kmsenvelope.testing import TIMEOUT, LocalAws

CONTEXT = {"purpose": "kms-faults"}
# Short timeouts and one retry keep the slow paths quick; the defaults are exercised as well.
FAST = Config(connect_timeout=1, read_timeout=0.5, retries={"max_attempts": 1})


def _decrypt_requests(local_aws: LocalAws) -> list[tuple[str, str | None, str | None]]:
    return [(r.region, r.key_id, r.fault) for r in local_aws.requests("Decrypt")]


def _raises_no_usable_key(call: Callable[[], object]) -> NoUsableKeyError:
    with pytest.raises(NoUsableKeyError) as info:
        call()
    assert type(info.value) is NoUsableKeyError
    return info.value


# -- timeouts ----------------------------------------------------------------------------------------


def test_a_stalled_decrypt_is_retried_and_succeeds(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    envelope = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier(FAST)))
    message = envelope.encrypt(b"payload", CONTEXT)
    local_aws.reset()
    local_aws.inject_fault("Decrypt", TIMEOUT, stall_seconds=20)
    started = time.monotonic()
    assert envelope.decrypt(message, CONTEXT) == b"payload"
    assert time.monotonic() - started < 8  # did not wait for the stalled answer
    assert _decrypt_requests(local_aws) == [("eu-west-1", key, TIMEOUT), ("eu-west-1", key, None)]


def test_stalls_on_every_attempt_fail_fast_with_the_reason(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    envelope = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier(FAST)))
    message = envelope.encrypt(b"payload", CONTEXT)
    local_aws.inject_fault("Decrypt", TIMEOUT, count=2, stall_seconds=20)
    started = time.monotonic()
    error = _raises_no_usable_key(lambda: envelope.decrypt(message, CONTEXT))
    assert time.monotonic() - started < 8  # the client gave up; the server would have stalled 40 s
    (failure,) = error.failures
    assert failure.provider_info == key
    assert "did not answer before the read timeout (ReadTimeoutError)" in failure.reason


def test_a_timeout_on_the_first_edk_falls_through_to_the_second(local_aws: LocalAws) -> None:
    key1, key2 = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    keyring = KmsKeyring(key1, additional_key_ids=[key2], client_supplier=local_aws.client_supplier(FAST))
    envelope = Envelope(keyring)
    message = envelope.encrypt(b"payload", CONTEXT)
    local_aws.reset()
    local_aws.inject_fault("Decrypt", TIMEOUT, count=2, region="us-east-1", stall_seconds=10)
    assert envelope.decrypt(message, CONTEXT) == b"payload"
    assert _decrypt_requests(local_aws) == [
        ("us-east-1", key1, TIMEOUT),
        ("us-east-1", key1, TIMEOUT),
        ("eu-west-1", key2, None),
    ]


# -- throttling storms -------------------------------------------------------------------------------


def test_throttling_storm_with_concurrent_readers(local_aws: LocalAws) -> None:
    """4 threads x 5 decrypts (no caching: every decrypt calls KMS) into a storm of 12 throttles.

    With the default client (standard retries: 3 attempts, jittered backoff) every outcome is either the
    right plaintext or NoUsableKeyError naming the throttling, never anything else; every throttle is
    delivered; and the client's accounting (logical calls x attempts) matches the server's requests.
    """
    key = local_aws.create_key("eu-west-1")
    envelope = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    messages = [(os.urandom(50), {"n": str(i)}) for i in range(20)]
    sealed = [(envelope.encrypt(p, c), p, c) for p, c in messages]
    local_aws.reset()
    accounting.reset()
    local_aws.inject_fault("Decrypt", "ThrottlingException", count=12)

    outcomes: list[str] = []
    lock = threading.Lock()
    unexpected: list[BaseException] = []

    def reader(part: list[tuple[bytes, bytes, dict[str, str]]]) -> None:
        for ciphertext, plaintext, context in part:
            try:
                result = envelope.decrypt(ciphertext, context)
            except NoUsableKeyError as exc:
                ok = "throttled by AWS KMS; gave up after 3 attempts (ThrottlingException)" in str(exc)
                outcome = "throttled" if ok else f"wrong reason: {exc}"
            except BaseException as exc:
                unexpected.append(exc)
                continue
            else:
                outcome = "ok" if result == plaintext else "wrong plaintext"
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=reader, args=(sealed[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not unexpected, unexpected
    assert len(outcomes) == 20 and set(outcomes) <= {"ok", "throttled"}, outcomes
    assert outcomes.count("ok") >= 20 - 12 // 3  # at most 4 calls can see 3 throttles in a row
    assert local_aws.pending_faults() == 0
    server = local_aws.requests("Decrypt")
    assert sum(r.fault == "ThrottlingException" for r in server) == 12
    assert len(server) == 20 + 12 - outcomes.count("throttled")  # each throttle costs one retry
    calls = [c for c in kmsenvelope.stats().recent if c.operation == "Decrypt"]
    assert len(calls) == 20
    assert sum(c.attempts for c in calls) == len(server)
    assert {c.outcome for c in calls} <= {"ok", "ThrottlingException"}


def test_throttling_storm_on_generate_data_key_is_not_cached(local_aws: LocalAws) -> None:
    """A write that fails under throttling leaves nothing in the cache; once the storm passes, one
    GenerateDataKey serves the following writes from the cache."""
    key = local_aws.create_key("eu-west-1")
    caching = CachingMaterials(KmsKeyring(key, client_supplier=local_aws.client_supplier()), max_age=300)
    envelope = Envelope(caching)
    local_aws.reset()
    local_aws.inject_fault("GenerateDataKey", "ThrottlingException", count=3)
    error = _raises_no_usable_key(lambda: envelope.encrypt(b"first", CONTEXT))
    assert "GenerateDataKey failed" in str(error) and "ThrottlingException" in str(error)
    assert len(caching.cache) == 0
    messages = [envelope.encrypt(b"write %d" % i, CONTEXT) for i in range(5)]
    assert [r.fault for r in local_aws.requests("GenerateDataKey")] == ["ThrottlingException"] * 3 + [None]
    assert [envelope.decrypt(m, CONTEXT) for m in messages] == [b"write %d" % i for i in range(5)]


# -- AccessDenied on one of several EDKs -------------------------------------------------------------


def test_access_denied_on_the_first_edk_falls_through_to_the_second(local_aws: LocalAws) -> None:
    key1, key2 = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    keyring = KmsKeyring(key1, additional_key_ids=[key2], client_supplier=local_aws.client_supplier())
    envelope = Envelope(keyring)
    message = envelope.encrypt(b"payload", CONTEXT)
    assert [edk.provider_info.decode() for edk in envelope.parse_header(message).encrypted_data_keys] == [
        key1,
        key2,
    ]
    local_aws.reset()
    local_aws.inject_fault("Decrypt", "AccessDeniedException", region="us-east-1")
    assert envelope.decrypt(message, CONTEXT) == b"payload"
    # AccessDenied is not retried: one refused request for key1, then key2's EDK.
    assert _decrypt_requests(local_aws) == [
        ("us-east-1", key1, "AccessDeniedException"),
        ("eu-west-1", key2, None),
    ]


def test_access_denied_on_every_edk_lists_each(local_aws: LocalAws) -> None:
    key1, key2 = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    envelope = Envelope(
        KmsKeyring(key1, additional_key_ids=[key2], client_supplier=local_aws.client_supplier())
    )
    message = envelope.encrypt(b"payload", CONTEXT)
    local_aws.inject_fault("Decrypt", "AccessDeniedException", count=2)
    error = _raises_no_usable_key(lambda: envelope.decrypt(message, CONTEXT))
    assert [(f.provider_info, f.reason) for f in error.failures] == [
        (key1, f"with {key1}: access denied by AWS KMS (AccessDeniedException)"),
        (key2, f"with {key2}: access denied by AWS KMS (AccessDeniedException)"),
    ]


def test_access_denied_on_one_wrapping_key_fails_the_whole_encrypt(local_aws: LocalAws) -> None:
    """Every configured key must wrap the data key; a message readable by only some is never written."""
    key1, key2 = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    envelope = Envelope(
        KmsKeyring(key1, additional_key_ids=[key2], client_supplier=local_aws.client_supplier())
    )
    local_aws.reset()
    local_aws.inject_fault("Encrypt", "AccessDeniedException", region="eu-west-1")
    error = _raises_no_usable_key(lambda: envelope.encrypt(b"payload", CONTEXT))
    assert "AWS KMS Encrypt failed" in str(error) and key2 in str(error)
    assert [r.operation for r in local_aws.requests()] == ["GenerateDataKey", "Encrypt"]


# -- regional outage with multi-Region keys -----------------------------------------------------------


def _outage_readers(mrk: Any, supplier: Any) -> dict[str, Envelope]:
    west, eu = mrk.arn("us-west-2"), mrk.arn("eu-west-1")
    return {
        "multi-keyring": Envelope(
            MultiKeyring(
                children=[
                    KmsKeyring(west, client_supplier=supplier),
                    KmsKeyring(eu, client_supplier=supplier),
                ]
            )
        ),
        "one-keyring": Envelope(KmsKeyring(west, additional_key_ids=[eu], client_supplier=supplier)),
    }


@pytest.mark.parametrize("reader", ["multi-keyring", "one-keyring"])
@pytest.mark.parametrize("outage", ["KMSInternalException", "ServiceUnavailable", TIMEOUT])
def test_regional_outage_falls_back_to_the_replica(local_aws: LocalAws, outage: str, reader: str) -> None:
    mrk = local_aws.create_mrk("us-west-2", ["eu-west-1"])
    supplier = local_aws.client_supplier(FAST)
    message = Envelope(KmsKeyring(mrk.arn("us-west-2"), client_supplier=supplier)).encrypt(b"global", CONTEXT)
    local_aws.reset()
    local_aws.inject_fault("Decrypt", outage, count=50, region="us-west-2", stall_seconds=20)
    started = time.monotonic()
    assert _outage_readers(mrk, supplier)[reader].decrypt(message, CONTEXT) == b"global"
    assert time.monotonic() - started < 8
    requests = _decrypt_requests(local_aws)
    # Both attempts in the failed region, then the replica, addressed by its own ARN, in its region.
    assert requests == [("us-west-2", mrk.arn("us-west-2"), outage)] * 2 + [
        ("eu-west-1", mrk.arn("eu-west-1"), None)
    ]


class _DeadRegion:
    """Clients for every region from ``supplier``, except ``region``, whose endpoint does not answer."""

    def __init__(self, supplier: ClientSupplier, region: str, session: Any) -> None:
        self._supplier = supplier
        self._region = region
        self._dead = ClientSupplier(session=session, config=FAST, endpoint_url="http://127.0.0.1:9")

    def __call__(self, region: str) -> Any:
        return self._dead(region) if region == self._region else self._supplier(region)


def test_regional_outage_with_an_unreachable_endpoint(local_aws: LocalAws) -> None:
    """us-west-2 does not answer at all (connection refused), as in a network partition."""
    mrk = local_aws.create_mrk("us-west-2", ["eu-west-1"])
    healthy = local_aws.client_supplier(FAST)
    message = Envelope(KmsKeyring(mrk.arn("us-west-2"), client_supplier=healthy)).encrypt(b"global", CONTEXT)
    supplier = _DeadRegion(healthy, "us-west-2", local_aws.session)
    for name, envelope in _outage_readers(mrk, supplier).items():
        local_aws.reset()
        accounting.reset()
        assert envelope.decrypt(message, CONTEXT) == b"global", name
        assert _decrypt_requests(local_aws) == [("eu-west-1", mrk.arn("eu-west-1"), None)]
        failed = [c for c in kmsenvelope.stats().recent if c.region == "us-west-2"]
        assert [c.outcome for c in failed] == ["EndpointConnectionError"], name
    # A discovery reader in the surviving region needs no configuration of the primary at all.
    discovery = Envelope(KmsDiscoveryKeyring("eu-west-1", client_supplier=supplier))
    local_aws.reset()
    assert discovery.decrypt(message, CONTEXT) == b"global"
    assert _decrypt_requests(local_aws) == [("eu-west-1", mrk.arn("eu-west-1"), None)]


def test_outage_in_every_region_reports_both(local_aws: LocalAws) -> None:
    mrk = local_aws.create_mrk("us-west-2", ["eu-west-1"])
    supplier = local_aws.client_supplier(FAST)
    message = Envelope(KmsKeyring(mrk.arn("us-west-2"), client_supplier=supplier)).encrypt(b"global", CONTEXT)
    local_aws.inject_fault("Decrypt", "KMSInternalException", count=50)
    error = _raises_no_usable_key(
        lambda: _outage_readers(mrk, supplier)["multi-keyring"].decrypt(message, CONTEXT)
    )
    reasons = [f.reason for f in error.failures]
    assert len(reasons) == 2
    assert all("AWS KMS unavailable after 2 attempts (KMSInternalException)" in r for r in reasons), reasons
