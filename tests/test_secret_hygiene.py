"""No key or plaintext ever shows in text: repr/str of public objects, exceptions, DEBUG logs, CLI output.

The library's key paths run with every ``kmsenvelope*`` logger at DEBUG into a capturing handler: raw
AES and raw RSA, signed suites, streaming, the caching CMM, the hierarchical keyring, DynamoDB items,
AWS KMS (local KMS, with an injected AccessDenied) and the CLI. Keyrings and materials managers are
wrapped by recorders, so every data key, symmetric signing key and signing key that passed through is
known; derived keys are recomputed from them (message content keys, hierarchical wrapping keys,
DB-ESDK intermediate keys, key-encryption keys, record commit and field root keys, per-field keys).

Every public object and exception produced is rendered (``repr``, ``str``, the full traceback with its
chained exceptions, EDK failure lists) together with the log records and CLI output. The checker
decodes every hexadecimal, base64 (standard and URL-safe, at every alignment) and ``bytes`` literal
run in that text and looks for any 16-byte window of any secret, and for the plaintexts as text.
``test_the_checker_finds_each_form`` shows it catches each form.
"""

from __future__ import annotations

import ast
import base64
import binascii
import contextlib
import io
import json
import logging
import os
import re
import traceback
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import kmsenvelope
from kmsenvelope import (
    CachingMaterials,
    Envelope,
    KmsKeyring,
    MultiKeyring,
    RawAesKeyring,
    RawRsaKeyring,
    Suite,
)
from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.cli import cli
from kmsenvelope.dynamodb import SIGNING_SUITE, Action, ItemEncryptor, TableConfig
from kmsenvelope.errors import KmsEnvelopeError
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.keyrings.wrapping import encryption_context_aad
from kmsenvelope.materials.cmm import as_materials_manager
from kmsenvelope.materials.materials import (
    DecryptionMaterials,
    DecryptionRequest,
    EncryptedDataKey,
    EncryptionMaterials,
    EncryptionRequest,
)
from kmsenvelope.message.keys import derive_message_keys
from kmsenvelope.primitives.aead import AesGcm
from kmsenvelope.primitives.kdf import hkdf_many, kdf_counter_hmac
from kmsenvelope.structured import parse_header as parse_item_header
from kmsenvelope.structured.header import RecordKeys
from kmsenvelope.testing import LocalAws

WINDOW = 16
Materials = EncryptionMaterials | DecryptionMaterials


# -- recorders ---------------------------------------------------------------------------------------


class RecordingKeyring:
    """A keyring that passes everything to ``inner`` and keeps every materials object it returns."""

    def __init__(self, inner: Any, seen: list[Materials]) -> None:
        self._inner = inner
        self._seen = seen

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        result: EncryptionMaterials = self._inner.on_encrypt(materials)
        self._seen.append(result)
        return result

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        result: DecryptionMaterials = self._inner.on_decrypt(materials, edks)
        self._seen.append(result)
        return result

    def __repr__(self) -> str:
        return f"RecordingKeyring({self._inner!r})"


class RecordingManager:
    """A materials manager recording what ``inner`` returns, cache hits included."""

    def __init__(self, inner: Any, seen: list[Materials]) -> None:
        self._inner = as_materials_manager(inner)
        self._seen = seen

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        result = self._inner.get_encryption_materials(request)
        self._seen.append(result)
        return result

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        result = self._inner.decrypt_materials(request)
        self._seen.append(result)
        return result


class Collector(logging.Handler):
    """Every record of the ``kmsenvelope`` loggers, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[Collector]:
    logger = logging.getLogger("kmsenvelope")
    collector = Collector()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(collector)
    try:
        yield collector
    finally:
        logger.removeHandler(collector)
        logger.setLevel(level)


# -- the checker -------------------------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-fA-F]{24,}")
_B64 = re.compile(r"[A-Za-z0-9+/\-_]{20,}")
_BYTES_LITERAL = re.compile(r"""b'(?:[^'\\]|\\.)*'|b"(?:[^"\\]|\\.)*\"""")


def decodings(text: str) -> list[bytes]:
    """The text itself, and everything its hex, base64 and bytes-literal runs decode to."""
    out = [text.encode("utf-8", "surrogatepass"), text.encode("latin-1", "replace")]
    for match in _HEX.finditer(text):
        run = match.group()
        for shift in (0, 1):
            part = run[shift:]
            out.append(bytes.fromhex(part[: len(part) // 2 * 2]))
    for match in _B64.finditer(text):
        run = match.group()
        for shift in range(4):
            part = run[shift:]
            part = part[: len(part) // 4 * 4]
            for alphabet in (part.replace("-", "+").replace("_", "/"), part):
                with contextlib.suppress(binascii.Error, ValueError):
                    out.append(base64.b64decode(alphabet, validate=True))
    for match in _BYTES_LITERAL.finditer(text):
        with contextlib.suppress(ValueError, SyntaxError):
            out.append(ast.literal_eval(match.group()))
    return out


def windows(secret: bytes) -> set[bytes]:
    if len(secret) <= WINDOW:
        return {secret}
    return {secret[i : i + WINDOW] for i in range(0, len(secret) - WINDOW + 1, 4)} | {secret[-WINDOW:]}


def find_secrets(secrets: dict[str, bytes], texts: Iterable[str]) -> list[str]:
    """``label: excerpt`` for every secret window found in the decoded texts."""
    found = []
    for text in texts:
        decoded = decodings(text)
        for label, secret in secrets.items():
            if any(window in blob for window in windows(secret) for blob in decoded):
                found.append(f"{label}: {text[:300]!r}")
    return found


def render(values: Iterable[object]) -> list[str]:
    texts: list[str] = []
    for value in values:
        texts += [repr(value), str(value)]
        if isinstance(value, BaseException):
            texts.append("".join(traceback.format_exception(value)))
            texts += [repr(arg) for arg in value.args]
            texts += [f"{f!r} {f}" for f in getattr(value, "failures", ())]
    return texts


# -- secrets known to the test -----------------------------------------------------------------------


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def materials_secrets(seen: Iterable[Materials]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for index, materials in enumerate(seen):
        if materials.plaintext_data_key is not None:
            out[f"data key #{index}"] = materials.plaintext_data_key
        signing = getattr(materials, "signing_key", None)
        if signing is not None:
            out[f"signing key #{index}"] = signing.private_numbers().private_value.to_bytes(48, "big")
        for n, key in enumerate(getattr(materials, "symmetric_signing_keys", ())):
            out[f"symmetric signing key #{index}.{n}"] = key
        key = getattr(materials, "symmetric_signing_key", None)
        if key is not None:
            out[f"symmetric signing key #{index}"] = key
    return out


def message_keys(envelope: Envelope, message: bytes, data_key: bytes) -> bytes:
    header = envelope.parse_header(message)
    return derive_message_keys(header.suite.info, data_key, header.message_id)[0]


def hierarchical_secrets(
    edk: EncryptedDataKey, branch_key: bytes, context: dict[str, str], version: bytes, *, intermediate: bool
) -> dict[str, bytes]:
    """The derived wrapping key of a hierarchical EDK and, under DB-ESDK suites, the intermediate key
    and the key-encryption key derived from it (MPL intermediate key wrapping)."""
    offset = 48 if intermediate else 0
    salt = edk.ciphertext[offset : offset + 16]
    derived = kdf_counter_hmac("sha256", branch_key, b"aws-kms-hierarchy", salt, 32)
    out = {"hierarchical derived wrapping key": derived}
    if intermediate:
        iv = edk.ciphertext[offset + 16 : offset + 28]
        aad = b"aws-kms-hierarchy" + edk.provider_info + version + encryption_context_aad(context)
        key = AesGcm(derived).decrypt(iv, edk.ciphertext[offset + 44 :], aad)
        kek, _ = hkdf_many(
            "sha512",
            key,
            None,
            (b"AWS_MPL_INTERMEDIATE_KEYWRAP_ENC", b"AWS_MPL_INTERMEDIATE_KEYWRAP_MAC"),
            32,
        )
        out |= {"intermediate key": key, "key-encryption key": kek}
    return out


def record_secrets(head: bytes, data_key: bytes, encrypted_fields: int) -> dict[str, bytes]:
    header = parse_item_header(head)
    keys = RecordKeys(header.suite, data_key, header.message_id)
    stream = (
        Cipher(algorithms.AES(keys.field_root_key), modes.CTR(b"AwsDbeField\x2c" + bytes(4)))
        .encryptor()
        .update(bytes(48 * encrypted_fields))
    )
    out = {"record commit key": keys.commit_key, "field root key": keys.field_root_key}
    out |= {f"field key {i}": stream[48 * i : 48 * i + 32] for i in range(encrypted_fields)}
    return out


def _errors(calls: Iterable[Any]) -> list[BaseException]:
    errors: list[BaseException] = []
    for call in calls:
        with pytest.raises(KmsEnvelopeError) as info:
            call()
        errors.append(info.value)
    return errors


# -- the checker works -------------------------------------------------------------------------------


def test_the_checker_finds_each_form() -> None:
    secret = os.urandom(32)
    blob = os.urandom(7) + secret + os.urandom(9)
    leaks = {
        "hex": secret.hex(),
        "HEX": secret.hex().upper(),
        "odd-aligned hex": "f" + blob.hex(),
        "base64": base64.b64encode(secret).decode(),
        "base64 at offset 1": base64.b64encode(blob[6:]).decode(),
        "base64 at offset 2": base64.b64encode(blob[5:]).decode(),
        "url-safe base64": base64.urlsafe_b64encode(blob).decode(),
        "bytes repr": repr(secret),
        "bytes repr in a message": f"failed for {blob!r}",
        "20-byte fragment in hex": secret[5:25].hex(),
        "plaintext as latin-1": secret.decode("latin-1"),
    }
    for form, text in leaks.items():
        assert find_secrets({"key": secret}, [text]), form
    unrelated = [os.urandom(64).hex(), base64.b64encode(os.urandom(64)).decode(), repr(os.urandom(64))]
    assert find_secrets({"key": secret}, unrelated) == []
    assert find_secrets({"key": secret}, [secret[:15].hex()]) == []  # under the window: not evidence


# -- the library's key paths -------------------------------------------------------------------------


def test_no_secret_in_text_raw_caching_hierarchical_items_kms(
    local_aws: LocalAws, debug_logs: Collector
) -> None:
    seen: list[Materials] = []
    secrets: dict[str, bytes] = {}
    values: list[object] = []
    plaintext = os.urandom(300)
    text_secret = f"PLAINTEXT-{uuid.uuid4()}"
    secrets["plaintext"] = plaintext
    secrets["text plaintext"] = text_secret.encode()
    context = {"tenant": "acme"}

    # Raw AES and RSA, signed and unsigned, one-shot, into a buffer, streaming.
    aes_key = os.urandom(32)
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = rsa_private.private_numbers()
    secrets |= {"AES wrapping key": aes_key}
    for name in ("d", "p", "q", "dmp1", "dmq1", "iqmp"):
        secrets[f"RSA private {name}"] = _int_bytes(getattr(numbers, name))
    pem = rsa_private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    aes = RawAesKeyring("hygiene", "aes", aes_key)
    rsa_keyring = RawRsaKeyring("hygiene", "rsa", private_key=pem)
    raw = RecordingKeyring(MultiKeyring(generator=aes, children=[rsa_keyring]), seen)
    envelopes = [
        Envelope(raw, frame_length=64),
        Envelope(raw, suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, frame_length=100),
    ]
    messages = []
    for envelope in envelopes:
        message = envelope.encrypt(plaintext, context)
        messages.append((envelope, message))
        result = envelope.decrypt_with_header(message, context)
        out = bytearray()
        envelope.decrypt_into(message, out, context)
        sink = io.BytesIO()
        header = envelope.decrypt_stream(io.BytesIO(message), sink, context)
        assert result.plaintext == bytes(out) == sink.getvalue() == plaintext
        tampered = bytearray(message)
        tampered[-5] ^= 1
        values += [envelope, envelope.materials_manager, result, result.header, header, header.to_dict()]
        values += header.encrypted_data_keys
        values += _errors(
            [
                lambda e=envelope, m=message: e.decrypt(m, {"tenant": "other"}),
                lambda e=envelope, t=bytes(tampered): e.decrypt(t, context),
                lambda e=envelope, t=bytes(tampered): e.decrypt_stream(io.BytesIO(t), io.BytesIO(), context),
                lambda m=message: Envelope(RawAesKeyring("hygiene", "aes", os.urandom(32))).decrypt(m),
                lambda m=message: Envelope(rsa_keyring).decrypt(m[:-20]),
            ]
        )
    values += [aes, rsa_keyring, raw]

    # The caching CMM: cache hits on encrypt and decrypt.
    caching = CachingMaterials(RecordingKeyring(aes, seen), max_age=60, max_messages=3)
    cached = Envelope(RecordingManager(caching, seen))
    for _ in range(4):
        message = cached.encrypt(plaintext, context)
        messages.append((cached, message))
        assert cached.decrypt(message, context) == plaintext
    values += [caching, caching.cache, cached]
    tampered = bytearray(message)
    tampered[-1] ^= 1
    values += _errors([lambda: cached.decrypt(bytes(tampered), context)])
    values += _errors([lambda: Envelope(CachingMaterials(rsa_keyring, max_age=1)).decrypt(message)])

    # Hierarchical keyring (ESDK suites) and DynamoDB items (DB-ESDK suites, intermediate wrapping).
    branch_key, beacon_key = os.urandom(32), os.urandom(32)
    version = str(uuid.uuid4())
    store = StaticBranchKeyStore("hygiene-bk", version, branch_key, beacon_key)
    secrets |= {"branch key": branch_key, "beacon key": beacon_key}
    hierarchical = HierarchicalKeyring(store, branch_key_id="hygiene-bk")
    recording_hierarchical = RecordingKeyring(hierarchical, seen)
    tree = Envelope(recording_hierarchical)
    message = tree.encrypt(plaintext, context)
    messages.append((tree, message))
    assert tree.decrypt(message, context) == plaintext
    (edk,) = tree.parse_header(message).encrypted_data_keys
    secrets |= hierarchical_secrets(edk, branch_key, context, uuid.UUID(version).bytes, intermediate=False)
    values += [
        store,
        hierarchical,
        tree,
        store.get_active_branch_key("hygiene-bk"),
        store.get_beacon_key("hygiene-bk"),
    ]
    values += _errors(
        [
            lambda: Envelope(HierarchicalKeyring(store, branch_key_id="other")).decrypt(message, context),
            lambda: store.get_branch_key_version("hygiene-bk", str(uuid.uuid4())),
        ]
    )

    actions = {"pk": Action.SIGN_ONLY, "card": Action.ENCRYPT_AND_SIGN, "blob": Action.ENCRYPT_AND_SIGN}
    item: dict[str, Any] = {"pk": {"S": "customer#1"}, "card": {"S": text_secret}, "blob": {"B": plaintext}}
    for suite in (None, SIGNING_SUITE):
        config = TableConfig("hygiene", "pk", actions=actions, keyring=recording_hierarchical, suite=suite)
        encryptor = ItemEncryptor(config)
        stored, written = encryptor.encrypt_item_with_header(item)
        before = len(seen)
        plain, verified = encryptor.decrypt_item_with_header(stored)
        assert plain == item
        decrypted = seen[before]
        assert isinstance(decrypted, DecryptionMaterials) and decrypted.plaintext_data_key is not None
        (item_edk,) = verified.encrypted_data_keys
        secrets |= {
            f"{suite} {label}": key
            for label, key in hierarchical_secrets(
                item_edk,
                branch_key,
                dict(decrypted.encryption_context),
                uuid.UUID(version).bytes,
                intermediate=True,
            ).items()
        }
        head = stored["aws_dbe_head"]["B"]
        secrets |= {
            f"{suite} {label}": key
            for label, key in record_secrets(head, decrypted.plaintext_data_key, 2).items()
        }
        tampered_item = {**stored, "card": {"B": stored["card"]["B"][:-1] + b"\x00"}}
        values += [config, encryptor, stored, written, verified, parse_item_header(head)]
        values += _errors(
            [
                lambda e=encryptor, t=tampered_item: e.decrypt_item(t),
                lambda c=config, s=stored: ItemEncryptor(
                    TableConfig("other", "pk", actions=actions, keyring=c.keyring, suite=c.suite)
                ).decrypt_item(s),
                lambda e=encryptor, s=stored: e.decrypt_item({**s, "aws_dbe_foot": {"S": "x"}}),
            ]
        )

    # AWS KMS on the local endpoint, with an AccessDenied on the second key.
    key1, key2 = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    supplier = local_aws.client_supplier()
    kms = RecordingKeyring(KmsKeyring(key1, additional_key_ids=[key2], client_supplier=supplier), seen)
    kms_envelope = Envelope(kms)
    message = kms_envelope.encrypt(plaintext, context)
    messages.append((kms_envelope, message))
    local_aws.inject_fault("Decrypt", "AccessDeniedException", region="us-east-1")
    assert kms_envelope.decrypt(message, context) == plaintext
    local_aws.inject_fault("Decrypt", "AccessDeniedException", count=2)
    values += _errors([lambda: kms_envelope.decrypt(message, context)])
    kms_items = ItemEncryptor(TableConfig("hygiene-kms", "pk", actions=actions, keyring=kms))
    stored = kms_items.encrypt_item(item)
    assert kms_items.decrypt_item(stored) == item
    values += [
        kms,
        kms_envelope,
        supplier,
        kms_items,
        stored,
        kmsenvelope.stats(),
        *kmsenvelope.stats().recent,
    ]
    values += list(local_aws.requests())

    # Content keys of every message, from the data keys the recorders saw.
    data_keys = [m.plaintext_data_key for m in seen if m.plaintext_data_key is not None]
    for index, (envelope, message) in enumerate(messages):
        header = envelope.parse_header(message)
        for data_key in data_keys:
            if len(data_key) == header.suite.data_key_length:
                secrets[f"content key of message {index}?"] = message_keys(envelope, message, data_key)
    secrets |= materials_secrets(seen)
    values += seen

    assert len([k for k in secrets if k.startswith("data key")]) >= 20
    assert any(line.startswith("kmsenvelope.kms DEBUG KMS Decrypt") for line in debug_logs.lines)
    leaks = find_secrets(secrets, render(values) + debug_logs.lines)
    assert leaks == [], "\n".join(leaks)


def test_no_secret_in_cli_output(tmp_path: Path, debug_logs: Collector) -> None:
    """keygen, encrypt, decrypt, inspect and failing commands: nothing on stdout or stderr, and nothing
    logged, shows the key file's key, a data key or the plaintext."""
    runner = CliRunner()
    key_file = tmp_path / "k.key"
    plaintext = os.urandom(2000)
    source = tmp_path / "plain.bin"
    source.write_bytes(plaintext)
    outputs: list[str] = []

    def run(*args: str, code: int = 0) -> None:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        outputs.extend([result.stdout, result.stderr])
        assert result.exit_code == code, (args, result.output)

    run("keygen", "aes", str(key_file))
    run(
        "encrypt", "--key", str(key_file), "-c", "purpose=hygiene", str(source), "-o", str(tmp_path / "m.enc")
    )
    run("encrypt", "--key", str(key_file), "--base64", str(source), "-o", str(tmp_path / "m.b64"))
    run("decrypt", "--key", str(key_file), str(tmp_path / "m.enc"), "-o", str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == plaintext
    run("inspect", str(tmp_path / "m.enc"))
    run("inspect", "--json", str(tmp_path / "m.b64"))
    message = (tmp_path / "m.enc").read_bytes()
    tampered = bytearray(message)
    tampered[-3] ^= 1
    (tmp_path / "t.enc").write_bytes(bytes(tampered))
    run("decrypt", "--key", str(key_file), str(tmp_path / "t.enc"), "-o", str(tmp_path / "t.out"), code=6)
    other = tmp_path / "other.key"
    run("keygen", "aes", str(other))
    run("decrypt", "--key", str(other), str(tmp_path / "m.enc"), "-o", str(tmp_path / "o.out"), code=5)

    document = json.loads(key_file.read_text())
    key = base64.b64decode(document["material"])
    seen: list[Materials] = []
    keyring = RecordingKeyring(RawAesKeyring(document["namespace"], document["name"], key), seen)
    assert Envelope(keyring).decrypt(message) == plaintext
    secrets = {"key file key": key, "plaintext": plaintext, **materials_secrets(seen)}
    secrets["content key"] = message_keys(Envelope(keyring), message, secrets["data key #0"])
    assert "material" not in "".join(outputs)
    leaks = find_secrets(secrets, outputs + debug_logs.lines)
    assert leaks == [], "\n".join(leaks)
