"""What the fuzz targets share: keys and keyrings, the message seeds, and hand-built message shapes.

Everything here is deterministic (fixed keys, sorted vector lists) so that a corpus saved by one run
still means the same thing to the next. Seeds are built at run time from our own encryptions and from
the conformance vectors shipped in ``tests/vectors``.

The contract every target checks: only :class:`~kmsenvelope.errors.KmsEnvelopeError` subclasses may
escape from the library; any other exception, or a broken invariant (``AssertionError``), is a crash.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kmsenvelope import CommitmentPolicy, Envelope, MultiKeyring, RawAesKeyring, Suite
from kmsenvelope.aws.arn import DiscoveryFilter
from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.keyrings.kms_discovery import KmsDiscoveryKeyring
from kmsenvelope.materials.caching import CachingMaterials
from kmsenvelope.materials.cmm import DefaultMaterials, RequiredContextMaterials
from kmsenvelope.materials.materials import EncryptedDataKey, EncryptionRequest
from kmsenvelope.materials.protocols import Keyring
from kmsenvelope.message import body as body_mod
from kmsenvelope.message.crypto import split_context
from kmsenvelope.message.header import DecryptLimits
from kmsenvelope.message.keys import derive_message_keys
from kmsenvelope.primitives.aead import AesGcm
from kmsenvelope.primitives.ecdsa import Signer
from kmsenvelope.values import serialize_context

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS = REPO_ROOT / "tests" / "vectors"

ALLOW_LEGACY = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT

# Our own wrapping key: fixed, so saved corpora stay decryptable. It protects nothing.
OUR_NAMESPACE = "kmsenvelope-fuzz"
OUR_KEY = bytes(range(100, 132))
VECTOR_CONTEXT = {"key1": "val1", "key2": "val2"}
# Decrypt-time contexts a target can choose from (the low two bits of its mode byte).
CONTEXTS: tuple[Mapping[str, str] | None, ...] = (None, VECTOR_CONTEXT, {"tenant": "acme"}, {"key1": "val1"})


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def require_vectors(name: str) -> Path:
    path = VECTORS / name
    if not path.is_dir():
        # The seeds would silently shrink to our own messages: refuse instead.
        raise FileNotFoundError(f"conformance vectors not found at {path} (they ship in tests/vectors)")
    return path


# -- keys and keyrings ---------------------------------------------------------------------------


@functools.cache
def esdk_manifest() -> tuple[dict[str, Any], dict[str, Any]]:
    """(tests, keys) of the ESDK decrypt manifest."""
    root = require_vectors("esdk")
    manifest = read_json(root / "manifest.json")
    keys = read_json(root / manifest["keys"].removeprefix("file://"))["keys"]
    return manifest["tests"], keys


@functools.cache
def branch_key_store() -> StaticBranchKeyStore:
    """The DB-ESDK vectors' static branch key (so vector items decrypt) used for our items as well."""
    key = read_json(require_vectors("dbesdk") / "keys.json")["keys"]["static-branch-key-1"]
    return StaticBranchKeyStore(
        key["key-id"],
        key["branchKeyVersion"],
        base64.b64decode(key["branchKey"]),
        base64.b64decode(key["beaconKey"]),
    )


@functools.cache
def hierarchical_keyring() -> HierarchicalKeyring:
    store = branch_key_store()
    return HierarchicalKeyring(store, branch_key_id=store.branch_key_id)


@functools.cache
def our_aes_keyring() -> RawAesKeyring:
    return RawAesKeyring(OUR_NAMESPACE, "aes-256", OUR_KEY)


@functools.cache
def vector_aes_keyring() -> RawAesKeyring:
    _, keys = esdk_manifest()
    key = keys["aes-256"]
    return RawAesKeyring("aws-raw-vectors-persistant", key["key-id"], base64.b64decode(key["material"]))


DEAD_ACCOUNT = "111122223333"


class DeadEndpointSupplier:
    """KMS clients for an endpoint where nothing listens: every call fails at once, never leaves the host.

    It makes KMS EDKs reachable by the fuzzer (ARN parsing, discovery filtering, failure reporting)
    without any network traffic; botocore is told not to retry.
    """

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}

    def __call__(self, region: str) -> Any:
        client = self._clients.get(region)
        if client is None:
            import boto3.session
            from botocore.config import Config

            session = boto3.session.Session(
                aws_access_key_id="fuzz", aws_secret_access_key="fuzz", region_name=region
            )
            client = session.client(
                "kms",
                endpoint_url="http://127.0.0.1:9",
                config=Config(retries={"total_max_attempts": 1}, connect_timeout=0.5, read_timeout=0.5),
            )
            self._clients[region] = client
        return client


@functools.cache
def decrypt_keyring() -> MultiKeyring:
    """Every keyring a fuzzed message may be for. Decrypt-only (the discovery keyring cannot encrypt)."""
    discovery = KmsDiscoveryKeyring(
        "us-east-1",
        discovery_filter=DiscoveryFilter("aws", [DEAD_ACCOUNT]),
        client_supplier=DeadEndpointSupplier(),
    )
    return MultiKeyring(children=[our_aes_keyring(), vector_aes_keyring(), hierarchical_keyring(), discovery])


@functools.cache
def decrypt_envelopes() -> tuple[Envelope, ...]:
    """The decrypt configurations a target chooses from (bits 2-3 of its mode byte)."""
    keyring = decrypt_keyring()
    return (
        Envelope(keyring, commitment_policy=ALLOW_LEGACY),
        Envelope(CachingMaterials(keyring, max_age=3600, capacity=64), commitment_policy=ALLOW_LEGACY),
        Envelope(RequiredContextMaterials(keyring, ["tenant"]), commitment_policy=ALLOW_LEGACY),
        Envelope(
            keyring,
            max_encrypted_data_keys=2,
            limits=DecryptLimits(max_header_size=2048, max_frame_length=1024, max_message_size=1 << 16),
        ),
    )


def mode_byte(context_index: int, envelope_index: int, extra: int = 0) -> int:
    return (context_index & 3) | ((envelope_index & 3) << 2) | (extra & 0xF0)


# -- message seeds -------------------------------------------------------------------------------


def _policy_for(suite: Suite) -> CommitmentPolicy:
    return ALLOW_LEGACY if suite.committing else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT


def non_framed_message(
    suite: Suite,
    keyring: Keyring,
    plaintext: bytes,
    context: Mapping[str, str],
    required: tuple[str, ...] = (),
) -> bytes:
    """A non-framed message (content type 1). kmsenvelope only writes framed messages, other ESDKs
    still write and read these, so the fuzzer needs them. Built from the header's published layout."""
    source: Any = DefaultMaterials(keyring)
    if required:
        source = RequiredContextMaterials(keyring, required)
    materials = source.get_encryption_materials(
        EncryptionRequest(encryption_context=context, commitment_policy=_policy_for(suite), suite=suite)
    )
    assert materials.plaintext_data_key is not None
    message_id = os.urandom(32 if suite.message_version == 2 else 16)
    key, commitment = derive_message_keys(suite.info, materials.plaintext_data_key, message_id)
    stored, authenticated_only = split_context(materials.encryption_context, materials.required_context_keys)
    aad = serialize_context(stored)
    edks = [len(materials.encrypted_data_keys).to_bytes(2, "big")]
    for edk in materials.encrypted_data_keys:
        for field in (edk.provider_id.encode(), edk.provider_info, edk.ciphertext):
            edks += (len(field).to_bytes(2, "big"), field)
    if suite.message_version == 2:
        body = b"\x02" + suite.id_bytes + message_id + len(aad).to_bytes(2, "big") + aad
        body += b"".join(edks) + b"\x01" + bytes(4) + commitment
    else:
        body = b"\x01\x80" + suite.id_bytes + message_id + len(aad).to_bytes(2, "big") + aad
        body += b"".join(edks) + b"\x01" + bytes(4) + b"\x0c" + bytes(4)
    aead = AesGcm(key)
    zero_iv = bytes(12)
    tag = aead.encrypt(zero_iv, b"", body + serialize_context(authenticated_only))
    header = body + (tag if suite.message_version == 2 else zero_iv + tag)
    iv = os.urandom(12)
    sealed = aead.encrypt(
        iv, plaintext, body_mod.frame_aad(message_id, body_mod.SINGLE_BLOCK_STRING, 1, len(plaintext))
    )
    message = header + iv + len(plaintext).to_bytes(8, "big") + sealed
    if materials.signing_key is not None:
        hash_name = suite.info.signature_hash
        assert hash_name is not None
        signer = Signer(materials.signing_key, hash_name)
        signer.update(message)
        signature = signer.finalize()
        message += len(signature).to_bytes(2, "big") + signature
    return message


def kms_edk_message() -> bytes:
    """A message whose first EDK names a KMS key in the dead endpoint's account (it cannot decrypt;
    the header tag is random). It leads the fuzzer into the KMS keyrings' ARN and failure handling."""
    arn = f"arn:aws:kms:us-east-1:{DEAD_ACCOUNT}:key/mrk-0123456789abcdef0123456789abcdef"
    aes = our_aes_keyring()
    envelope = Envelope(aes, frame_length=16)
    message = envelope.encrypt(b"kms edk seed", {"tenant": "acme"})
    header = envelope.parse_header(message)
    edk = EncryptedDataKey("aws-kms", arn.encode(), os.urandom(184))
    extra = (
        len(edk.provider_id).to_bytes(2, "big")
        + edk.provider_id.encode()
        + len(edk.provider_info).to_bytes(2, "big")
        + edk.provider_info
        + len(edk.ciphertext).to_bytes(2, "big")
        + edk.ciphertext
    )
    # Splice the KMS EDK in front of the real one: count + 1, header tag no longer matches.
    aad_end = 1 + 2 + 32 + 2 + len(serialize_context(header.encryption_context))
    count = int.from_bytes(message[aad_end : aad_end + 2], "big")
    return message[:aad_end] + (count + 1).to_bytes(2, "big") + extra + message[aad_end + 2 :]


def our_messages() -> Iterator[tuple[int, bytes]]:
    """(mode byte, message) for messages we encrypt now: every suite, framings, EDK sets, contexts."""
    aes = our_aes_keyring()
    multi = MultiKeyring(generator=aes, children=[vector_aes_keyring(), hierarchical_keyring()])
    plaintexts = (b"", b"x", b"fifteen bytes!!", os.urandom(100))
    for suite in Suite:
        policy = _policy_for(suite)
        for frame_length, plaintext in ((1, plaintexts[1]), (7, plaintexts[3]), (64, plaintexts[0])):
            envelope = Envelope(aes, suite=suite, frame_length=frame_length, commitment_policy=policy)
            yield mode_byte(2, 0), envelope.encrypt(plaintext, {"tenant": "acme"})
        yield mode_byte(0, 0), Envelope(multi, suite=suite, commitment_policy=policy).encrypt(plaintexts[2])
        yield (
            mode_byte(2, 2),
            Envelope(
                RequiredContextMaterials(aes, ["tenant"]),
                suite=suite,
                frame_length=16,
                commitment_policy=policy,
            ).encrypt(plaintexts[3], {"tenant": "acme", "kind": "required"}),
        )
        yield mode_byte(1, 0), non_framed_message(suite, aes, plaintexts[2], VECTOR_CONTEXT)
        yield mode_byte(2, 0), non_framed_message(suite, aes, b"", {"tenant": "acme"}, required=("tenant",))
    hierarchical = Envelope(hierarchical_keyring(), frame_length=32)
    yield mode_byte(0, 0), hierarchical.encrypt(plaintexts[3])
    cached = Envelope(CachingMaterials(aes, max_age=60), frame_length=8)
    for _ in range(2):  # the second message reuses the cached data key
        yield mode_byte(0, 1), cached.encrypt(plaintexts[3])
    limited = Envelope(aes, frame_length=64, max_encrypted_data_keys=2)
    yield mode_byte(0, 3), limited.encrypt(plaintexts[3], {"key1": "val1"})
    yield mode_byte(0, 0), kms_edk_message()


def vector_messages() -> Iterator[tuple[int, bytes]]:
    """(mode byte, ciphertext) for every ESDK conformance vector, with the context it needs."""
    tests, _ = esdk_manifest()
    root = require_vectors("esdk")
    for name in sorted(tests):
        test = tests[name]
        data = (root / test["ciphertext"].removeprefix("file://")).read_bytes()
        context = 1 if test["cmm"] == "RequiredEncryptionContext" else 0
        yield mode_byte(context, 0), data


def message_seeds() -> list[bytes]:
    return [bytes([mode]) + message for mode, message in [*our_messages(), *vector_messages()]]
